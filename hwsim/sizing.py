"""How many bytes a tensor takes at a storage width: the one rule for states and weights.

At and above `FLOAT_BITS` a tensor is stored as floating point without scales; an integer width
stores one scale of `scale_bits` per group of `group_size` values beside the payload.
"""

from __future__ import annotations

import numpy as np

FLOAT_BITS = 16


def stored_bytes(elements: float, bits: np.ndarray | int, group_size: int, scale_bits: int) -> np.ndarray:
    """Bytes of `elements` values at `bits` (array or scalar), group scales included below FLOAT_BITS;
    0 bits means nothing stored."""
    bits = np.asarray(bits, dtype=np.float64)
    payload = elements * bits / 8.0
    scales = np.where(bits < FLOAT_BITS, np.ceil(elements / group_size) * scale_bits / 8.0, 0.0)
    return np.where(bits > 0, payload + scales, 0.0)


def state_bytes(elements: int, bits: np.ndarray | int, group_size: int, scale_bits: int) -> np.ndarray:
    """Bytes of a recurrent state of `elements` values stored at `bits` (one per stream and layer)."""
    return stored_bytes(elements, bits, group_size, scale_bits)


def quantised_bytes(params: float, bits: int, group_size: int, scale_bits: int) -> float:
    """Bytes of `params` weights at `bits`; integer widths carry one scale per group."""
    return float(stored_bytes(params, bits, group_size, scale_bits))


#: storage width of each KV cache precision; fp formats carry no group scales, int formats do
KV_PRECISION_BITS = {"fp16": 16, "fp8": 8, "int8": 8, "int4": 4, "int2": 2}


def kv_position_bytes(elements, precision: str, group_size: int, scale_bits: int) -> np.ndarray:
    """Bytes of one cached position of `elements` KV values: fp formats without scales (fp8 keeps one
    scale per tensor, not counted), int formats with one scale per group, as weights and states."""
    bits = KV_PRECISION_BITS[precision]
    if precision.startswith("fp"):
        return np.asarray(elements, dtype=np.float64) * bits / 8.0
    return stored_bytes(np.asarray(elements, dtype=np.float64), bits, group_size, scale_bits)
