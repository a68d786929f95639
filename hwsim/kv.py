"""What each stream's KV cache holds at every decode step: how many positions, and how many of them
were stored at the low precision by the entropy gate.

A slot's stream starts with `context_tokens` positions cached (its prompt, or prompt plus tokens
generated before the simulated window; a list cycles over the slots, a continuous-batching mix) and
gains one position per step. When the slot takes a fresh stream (`DealtWorkload.fresh`) its context
starts again at the slot's length. With the KV gate on, the entry appended at a step whose state was
written at low precision is stored at `policy.kv_low_precision`, and it is read at that precision at
every later step (the prompt's entries are at the model's KV precision). Array operations only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KvPlan:
    context: np.ndarray                  # float (steps, batch): positions cached before the step
    low_written: np.ndarray              # bool (steps, batch): the entry appended at the step is low
    low_cached: dict[int, np.ndarray]    # window (0 = all) -> (steps, batch) low entries read

    def rows(self, rows: slice) -> KvPlan:
        return KvPlan(self.context[rows], self.low_written[rows], {w: v[rows] for w, v in self.low_cached.items()})


def kv_plan(context_tokens: tuple[int, ...], fresh: np.ndarray, low_written: np.ndarray,
            windows: tuple[int, ...] = (0,)) -> KvPlan:
    steps, batch = fresh.shape
    index = np.arange(steps)[:, None]
    marks = np.where(fresh, index, 0)
    marks[0] = 0
    start = np.maximum.accumulate(marks, axis=0)        # step at which the slot's stream began
    context = np.asarray(context_tokens, dtype=np.float64)[None, :] + (index - start)
    before = np.cumsum(low_written, axis=0) - low_written   # low entries appended before step t
    cols = np.arange(batch)[None, :]
    at_start = before[start, cols]
    low = {}
    for window in sorted(set(windows)):
        if window:
            first = np.maximum(index - window, start)     # oldest generated step still in the window
            low[window] = (before - before[first, cols]).astype(np.float64)
        else:
            low[window] = (before - at_start).astype(np.float64)
    return KvPlan(context=context, low_written=low_written.astype(bool), low_cached=low)
