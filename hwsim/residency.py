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
          ssm_read_first: float, ssm_max_per_layer: float, conv_per_layer: float,
          weights_per_layer: float, lm_head_bytes: float) -> Placement:
    steps = len(ssm_write_per_layer)
    if sram.residency.kind == "lru":
        return _lru(budget_bytes, layers, ssm_write_per_layer, ssm_read_first, conv_per_layer,
                    weights_per_layer, lm_head_bytes)
    remaining = float(budget_bytes)
    ssm_alloc = conv_layers = weight_layers = 0.0
    lm_head = 0.0
    for category in sram.residency.order:
        if category == "ssm_state":
            ssm_alloc = min(remaining, layers * ssm_max_per_layer)
            remaining -= ssm_alloc
        elif category == "conv_state":
            conv_layers = min(layers, remaining // conv_per_layer) if conv_per_layer else layers
            remaining -= conv_layers * conv_per_layer
        elif category == "weights":
            weight_layers = min(layers, remaining // weights_per_layer) if weights_per_layer else layers
            remaining -= weight_layers * weights_per_layer
        elif category == "lm_head" and lm_head_bytes <= remaining:
            lm_head, remaining = 1.0, remaining - lm_head_bytes
    layer_index = np.arange(layers)
    write_share = _fill_layer_major(ssm_alloc, ssm_write_per_layer, layer_index)
    first = _fill_layer_major(ssm_alloc, np.array([ssm_read_first]), layer_index)
    read_share = np.vstack([first, write_share[:-1]])
    conv = np.broadcast_to((layer_index < conv_layers).astype(float), (steps, layers))
    weights = np.broadcast_to((layer_index < weight_layers).astype(float), (steps, layers))
    return Placement(write_share, read_share, conv, weights, np.full(steps, lm_head), max(remaining, 0.0))


def _fill_layer_major(alloc: float, per_layer: np.ndarray, layer_index: np.ndarray) -> np.ndarray:
    """Share of each layer's bytes that fits when `alloc` bytes are filled layer 0 first."""
    per_layer = np.asarray(per_layer, dtype=np.float64)[:, None]
    resident = np.clip(alloc - layer_index[None, :] * per_layer, 0.0, per_layer)
    return np.divide(resident, per_layer, out=np.ones_like(resident), where=per_layer > 0)


def _lru(budget: float, layers: int, ssm_write: np.ndarray, ssm_read_first: float, conv: float,
         weights: float, lm_head: float) -> Placement:
    previous = np.concatenate([[ssm_read_first], ssm_write[:-1]])
    layer_index = np.arange(layers)[None, :]
    # bytes touched between the use of (layer l, step t-1) and (layer l, step t): one full cycle
    reuse = (layers * (weights + conv) + lm_head
             + (layers - 1 - layer_index) * previous[:, None] + (layer_index + 1) * ssm_write[:, None])
    hit = (reuse <= budget).astype(float)
    cycle = layers * (weights + conv + ssm_write) + lm_head
    lm = (cycle <= budget).astype(float)
    spare = float(max(budget - cycle.max(), 0.0))
    return Placement(hit, hit, hit, hit, lm, spare)
