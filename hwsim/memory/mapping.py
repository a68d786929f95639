"""Address mapping: which (pseudo-)channel, bank group, bank, row and column a byte address falls in.

A mapping is a string of fields from the most to the least significant digit, as Ramulator 2 names
them: `Ro` row, `Ra` rank (one rank here, so it takes no digits), `Bg` bank group, `Ba` bank within its
group, `Co` column, `Ch` channel (every (pseudo-)channel of every stack, counted as one field). Fields
are mixed-radix digits, not bits, so 5 stacks x 32 pseudo-channels = 160 channels map without holes.

Below the string sit the byte offset inside one access (`access_bytes`) and, when `interleave_bytes` is
larger than one access, the low column digits that keep one interleave block in one channel (the
fast model's interleave). The field names are Ramulator's, but not every string is one of its mappers:
Ramulator 2.1 has no `RoBaBgCoCh`, and its `RoBaRaCoCh` with cache-line channel interleave puts the
pseudo-channel above the column (Ro Ba Bg Pc Co Ch), so `benchmarks/compare_ramulator.py` re-encodes
each request in hwsim's layout rather than naming a common string.

Default `RoBaBgCoCh`: consecutive interleave blocks rotate over all channels; within a channel a row
fills before the next bank group is used, so streams get row hits and activates overlap across groups.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimInputError
from hwsim.memory.jit import njit

DEFAULT_MAPPING = "RoBaBgCoCh"
FIELDS = ("Ro", "Ra", "Bg", "Ba", "Co", "Ch")
REQUIRED = ("Ro", "Bg", "Ba", "Co", "Ch")


def parse_mapping(text: str) -> tuple[str, ...]:
    """Split `RoBaBgCoCh` into fields, rejecting unknown, missing or repeated ones."""
    parts = re.findall(r"[A-Z][a-z]", text)
    if "".join(parts) != text:
        raise HwsimInputError(f"mapping {text!r}: not a sequence of two-letter fields", key="mapping",
                              allowed=", ".join(FIELDS))
    unknown = [p for p in parts if p not in FIELDS]
    if unknown:
        raise HwsimInputError(f"mapping {text!r}: unknown field(s) {', '.join(unknown)}", key="mapping",
                              allowed=", ".join(FIELDS))
    missing = [f for f in REQUIRED if f not in parts]
    repeated = sorted({p for p in parts if parts.count(p) > 1})
    if missing or repeated:
        problem = (f"missing {', '.join(missing)}" if missing else "") + \
                  (f"repeated {', '.join(repeated)}" if repeated else "")
        raise HwsimInputError(f"mapping {text!r}: {problem}", key="mapping",
                              allowed="each of " + ", ".join(REQUIRED) + " once (Ra optional)")
    return tuple(parts)


def _take_digit(rest: np.ndarray, size: int) -> np.ndarray:
    """rest % size, leaving rest // size in `rest` (in place: a 17 M-request trace would otherwise
    page-fault in a new 136 MB array per operation). A power-of-two size by mask and shift, the
    same floor results on int64 (two's complement) at a fraction of integer division's cost."""
    if size > 0 and size & (size - 1) == 0:
        digit = rest & (size - 1)
        np.right_shift(rest, size.bit_length() - 1, out=rest)
    else:
        digit = rest % size
        np.floor_divide(rest, size, out=rest)
    return digit


@dataclass(frozen=True)
class AddressMapping:
    """Decodes byte addresses into (channel, bank, bank group, row) arrays; `encode` is its inverse."""

    order: tuple[str, ...]
    sizes: dict[str, int]          # digits per field
    access_bytes: int
    block_accesses: int            # accesses per interleave block kept in one channel

    @classmethod
    def build(cls, text: str, *, channels: int, bank_groups: int, banks_per_group: int, row_bytes: int,
              access_bytes: int, interleave_bytes: int, capacity_bytes: int) -> AddressMapping:
        order = parse_mapping(text)
        block = max(1, min(interleave_bytes, row_bytes) // access_bytes)
        columns = row_bytes // access_bytes
        if columns % block:
            raise HwsimInputError(f"interleave {interleave_bytes} B does not divide the {row_bytes} B row",
                                  key="interleave_bytes")
        rows = max(1, capacity_bytes // (channels * bank_groups * banks_per_group * row_bytes))
        sizes = {"Ro": rows, "Ra": 1, "Bg": bank_groups, "Ba": banks_per_group, "Co": columns // block,
                 "Ch": channels}
        return cls(order, sizes, access_bytes, block)

    def decode(self, address: np.ndarray) -> dict[str, np.ndarray]:
        """Field digits of each address (row wraps modulo the capacity)."""
        out = self._digits(address)
        out["Co"] = out["Co"] * self.block_accesses + out.pop("low_column")
        return out

    def _digits(self, address: np.ndarray) -> dict[str, np.ndarray]:
        rest = np.array(address, dtype=np.int64)  # a copy: consumed in place
        _take_digit(rest, self.access_bytes)
        out = {"low_column": _take_digit(rest, self.block_accesses)}
        for name in reversed(self.order):
            out[name] = _take_digit(rest, self.sizes[name])
        return out

    def locate(self, address: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(channel, bank index within the channel, bank group, row) of each address."""
        f = self._digits(address)
        bank = f["Bg"] * self.sizes["Ba"]
        bank += f["Ba"]
        return f["Ch"], bank, f["Bg"], f["Ro"]

    def digit_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The mapping as data for compiled decoders (`locate_one`): digit sizes from the least
        significant (offset in an access, low column, then the fields), each size's shift (-1 if not a
        power of two), and the positions of the channel, bank group, bank and row digits among them."""
        names = ["offset", "low_column", *reversed(self.order)]
        sizes = np.array([self.access_bytes, self.block_accesses, *(self.sizes[n] for n in names[2:])],
                         dtype=np.int64)
        shifts = np.array([int(v).bit_length() - 1 if v & (v - 1) == 0 else -1 for v in sizes], dtype=np.int64)
        where = np.array([names.index(n) for n in ("Ch", "Bg", "Ba", "Ro")], dtype=np.int64)
        return sizes, shifts, where

    def encode(self, **digits: int) -> int:
        """Byte address of the given field digits (missing fields are 0); for tests and examples."""
        column = digits.get("Co", 0)
        value = 0
        parts = dict(digits, Co=column // self.block_accesses)
        for name in self.order:
            value = value * self.sizes[name] + parts.get(name, 0)
        return (value * self.block_accesses + column % self.block_accesses) * self.access_bytes


def slot_stride_bytes(slot_bytes: float, *, access_bytes: int, interleave_bytes: int, channels: int) -> int:
    """Stride between consecutive per-stream slots of `slot_bytes`: a whole number k of interleave
    blocks with gcd(k, channels) == 1, so the starts of consecutive slots rotate over every channel and a
    part-filled slot (a low-precision state) does not leave channels idle. (A stride that is a multiple
    of the channel period would put every run's first block on the same channels.) Slots smaller than
    one block are only rounded up to whole accesses."""
    slot = max(math.ceil(slot_bytes / access_bytes) * access_bytes, access_bytes)
    if slot < interleave_bytes or channels <= 1:
        return slot
    k = math.ceil(slot / interleave_bytes)
    while math.gcd(k, channels) != 1:
        k += 1
    return k * interleave_bytes


@njit(cache=True)
def locate_one(address, sizes, shifts, where, banks_per_group):
    """(channel, bank within the channel, row) of one address from `digit_table`: what `locate` gives,
    for loops that decode as they go instead of through whole-array temporaries."""
    rest = address
    channel, group, bank, row = 0, 0, 0, 0
    for i in range(sizes.shape[0]):
        if shifts[i] >= 0:
            digit = rest & (sizes[i] - 1)
            rest = rest >> shifts[i]
        else:
            digit = rest % sizes[i]
            rest = rest // sizes[i]
        if i == where[0]:
            channel = digit
        elif i == where[1]:
            group = digit
        elif i == where[2]:
            bank = digit
        elif i == where[3]:
            row = digit
    return channel, group * banks_per_group + bank, row
