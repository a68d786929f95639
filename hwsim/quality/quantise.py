"""Store a recurrent state the way the hardware model charges it: integer groups with scales, or float.

One function, `store`, rounds each stream's state to the precision its `write_bits` say and returns
the values that will be read back (quantise -> dequantise). Widths of 16 and above are floating point
(16 = IEEE half, 32 = unchanged), as in `hwsim.policies.base.state_bytes`; narrower widths are
symmetric integers with one scale per `group_size` consecutive elements of a stream's flattened state
(group 16 on a d_state-16 Mamba-1 state = one scale per row; group >= the state size = per tensor).
Scales are rounded to `scale_bits`: 32 = fp32, 16 = fp16, 8 = a power of two (E8M0, as in the MX
formats), always rounded up so no value clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from hwsim.sizing import FLOAT_BITS

Rounding = Literal["nearest", "stochastic"]


@dataclass(frozen=True)
class StateFormat:
    """How integer states are grouped and scaled, and how they are rounded."""

    group_size: int = 64
    scale_bits: int = 16
    rounding: Rounding = "nearest"


def _round_scale(scale: torch.Tensor, scale_bits: int) -> torch.Tensor:
    if scale_bits >= 32:
        return scale
    if scale_bits == 16:
        half = scale.to(torch.float16).float()
        return torch.where(half < scale, torch.nextafter(half.to(torch.float16),
                                                         torch.tensor(float("inf"), dtype=torch.float16)).float(),
                           half)
    return torch.exp2(torch.ceil(torch.log2(scale)))  # 8-bit: power-of-two exponent


def quantise_rows(x: torch.Tensor, bits: int, fmt: StateFormat,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Round every row of x [rows, elements] to `bits` and back (float32 out)."""
    x = x.float()
    if bits >= 32:
        return x.clone()
    if bits >= FLOAT_BITS:
        return x.to(torch.float16).float()
    rows, elements = x.shape
    group = min(fmt.group_size, elements)
    pad = (-elements) % group
    padded = torch.nn.functional.pad(x, (0, pad)).view(rows, -1, group)
    levels = 2 ** (bits - 1) - 1                       # symmetric: int4 -> [-7, 7], int2 -> [-1, 1]
    absmax = padded.abs().amax(dim=-1, keepdim=True)
    scale = _round_scale(torch.where(absmax > 0, absmax / levels, torch.ones_like(absmax)), fmt.scale_bits)
    scaled = padded / scale
    if fmt.rounding == "stochastic":
        noise = torch.rand(scaled.shape, generator=generator, dtype=scaled.dtype)
        codes = torch.floor(scaled + noise)
    else:
        codes = torch.round(scaled)
    restored = codes.clamp_(-levels, levels) * scale
    return restored.view(rows, -1)[:, :elements]


def store(state: torch.Tensor, write_bits: torch.Tensor, fmt: StateFormat,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """The state [batch, ...] as read back after each row was written at write_bits[row] bits."""
    flat = state.reshape(state.shape[0], -1)
    widths = torch.unique(write_bits).tolist()
    if len(widths) == 1:  # every row alike: no gather or scatter (the same values either way)
        return quantise_rows(flat, int(widths[0]), fmt, generator).reshape(state.shape).to(state.dtype)
    out = torch.empty(flat.shape, dtype=torch.float32)
    for bits in widths:  # index_select/index_copy_: ~3x faster than boolean-index assignment here
        rows = (write_bits == bits).nonzero().flatten()
        out.index_copy_(0, rows, quantise_rows(flat.index_select(0, rows), int(bits), fmt, generator))
    return out.view(state.shape).to(state.dtype)


def relative_error(stored: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """Per-row ||stored - exact|| / ||exact|| over all non-batch dims (0 where exact is 0)."""
    diff = (stored.float() - exact.float()).reshape(stored.shape[0], -1).norm(dim=1)
    norm = exact.float().reshape(exact.shape[0], -1).norm(dim=1)
    return torch.where(norm > 0, diff / norm.clamp_min(1e-30), torch.zeros_like(norm))
