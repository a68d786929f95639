"""Deal real entropy traces to a batch of stream slots, as continuous batching would.

Slot b replays trace (b mod N) from a seeded offset; when its trace ends, the slot takes the next trace
in round-robin order from position 0 with a fresh state. Vectorised: one numpy gather per slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DealtWorkload:
    entropy_bits: np.ndarray   # float64 (steps, batch): entropy of the model's output at each step
    fresh: np.ndarray          # bool (steps, batch): the slot starts a new stream at this step

    @property
    def streams_started(self) -> int:
        return int(self.fresh.sum())


def deal(traces: list[np.ndarray], batch_size: int, steps: int, seed: int) -> DealtWorkload:
    if not traces:
        raise ValueError("no traces to deal")
    rng = np.random.default_rng(seed)
    lengths = np.array([len(t) for t in traces])
    entropy = np.empty((steps, batch_size), dtype=np.float64)
    fresh = np.zeros((steps, batch_size), dtype=bool)
    for slot in range(batch_size):  # one iteration per slot; each fills all steps with array ops
        trace_id = slot % len(traces)
        position = int(rng.integers(0, lengths[trace_id]))
        filled = 0
        while filled < steps:
            take = min(steps - filled, lengths[trace_id] - position)
            entropy[filled:filled + take, slot] = traces[trace_id][position:position + take]
            fresh[filled, slot] = True
            filled += take
            trace_id, position = (trace_id + 1) % len(traces), 0
    return DealtWorkload(entropy_bits=entropy, fresh=fresh)
