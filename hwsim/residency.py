"""Where data lives: which bytes of each step and layer SRAM holds, and which go to DRAM.

`pinned` fills SRAM in a fixed category order. SSM states are rewritten every step, so each state is
placed when it is written (layer-major, first layers first) at no migration cost: a state stored at
4 bits takes a quarter of the room, so lower precision puts more states on chip. `lru` lets every
category compete for SRAM; decode touches the same objects in the same cyclic order every step, so by
Mattson's stack-distance property an object hits iff the bytes touched since its last use fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.config.hardware import Sram


@dataclass(frozen=True)
class Placement:
    """Share of bytes kept in SRAM, per step (rows) and layer (columns) where it can vary."""

    ssm_write_sram: np.ndarray   # (steps, layers): share of the states written at step t kept on chip
    ssm_read_sram: np.ndarray    # (steps, layers): share of the states read at step t found on chip
    conv_sram: np.ndarray        # (steps, layers)
    weights_sram: np.ndarray     # (steps, layers)
    lm_head_sram: np.ndarray     # (steps,)
    spare_bytes: float           # SRAM left for a write-back buffer (gate_on: current)


def place(sram: Sram, *, budget_bytes: float, layers: int, ssm_write_per_layer: np.ndarray,
          ssm_read_first: np.ndarray, ssm_max_per_layer: np.ndarray, conv_per_layer: np.ndarray,
          weights_per_layer: np.ndarray, lm_head_bytes: float) -> Placement:
    """Per-layer inputs: `ssm_write_per_layer` (steps, layers) state bytes written, `ssm_read_first`
    (layers,) read at the first step, `ssm_max_per_layer`, `conv_per_layer`, `weights_per_layer`
    (layers,). Layers of a hybrid differ; a pure Mamba model's are alike."""
    steps = len(ssm_write_per_layer)
    conv_per_layer = np.broadcast_to(np.asarray(conv_per_layer, dtype=np.float64), (layers,))
    weights_per_layer = np.broadcast_to(np.asarray(weights_per_layer, dtype=np.float64), (layers,))
    if sram.residency.kind == "lru":
        return _lru(budget_bytes, layers, ssm_write_per_layer, ssm_read_first, conv_per_layer,
                    weights_per_layer, lm_head_bytes)
    remaining = float(budget_bytes)
    ssm_alloc = 0.0
    conv_fit = weight_fit = np.zeros(layers, dtype=bool)   # not resident unless the order places them
    lm_head = 0.0
    for category in sram.residency.order:
        if category == "ssm_state":
            ssm_alloc = min(remaining, float(np.sum(ssm_max_per_layer)))
            remaining -= ssm_alloc
        elif category == "conv_state":
            conv_fit = np.cumsum(conv_per_layer) <= remaining
            remaining -= float(conv_per_layer[conv_fit].sum())
        elif category == "weights":
            weight_fit = np.cumsum(weights_per_layer) <= remaining
            remaining -= float(weights_per_layer[weight_fit].sum())
        elif category == "lm_head" and lm_head_bytes <= remaining:
            lm_head, remaining = 1.0, remaining - lm_head_bytes
    write_share = _fill_layer_major(ssm_alloc, ssm_write_per_layer)
    first = _fill_layer_major(ssm_alloc, np.asarray(ssm_read_first, dtype=np.float64)[None, :])
    read_share = np.vstack([first, write_share[:-1]])
    conv = np.broadcast_to(conv_fit.astype(float), (steps, layers))
    weights = np.broadcast_to(weight_fit.astype(float), (steps, layers))
    return Placement(write_share, read_share, conv, weights, np.full(steps, lm_head), max(remaining, 0.0))


def _fill_layer_major(alloc: float, per_layer: np.ndarray) -> np.ndarray:
    """Share of each layer's bytes (rows: steps) that fits when `alloc` bytes are filled layer 0 first."""
    per_layer = np.asarray(per_layer, dtype=np.float64)
    before = np.cumsum(per_layer, axis=1) - per_layer
    resident = np.clip(alloc - before, 0.0, per_layer)
    return np.divide(resident, per_layer, out=np.ones_like(resident), where=per_layer > 0)


def _lru(budget: float, layers: int, ssm_write: np.ndarray, ssm_read_first: np.ndarray, conv: np.ndarray,
         weights: np.ndarray, lm_head: float) -> Placement:
    previous = np.vstack([np.asarray(ssm_read_first, dtype=np.float64)[None, :], ssm_write[:-1]])
    # bytes touched between the use of (layer l, step t-1) and (layer l, step t): one full cycle
    after = previous.sum(axis=1, keepdims=True) - np.cumsum(previous, axis=1)
    upto = np.cumsum(ssm_write, axis=1)
    reuse = float((weights + conv).sum()) + lm_head + after + upto
    hit = (reuse <= budget).astype(float)
    cycle = float((weights + conv).sum()) + ssm_write.sum(axis=1) + lm_head
    lm = (cycle <= budget).astype(float)
    spare = float(max(budget - cycle.max(), 0.0))
    return Placement(hit, hit, hit, hit, lm, spare)
