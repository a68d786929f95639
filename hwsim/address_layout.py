"""Where a decode run's data lives in DRAM, and which requests each engine transfer makes.

Regions, in address order, each aligned to 2 MiB:
  weights      layer l at weights + l * weight_bytes_per_layer (streamed in `weight_tile_bytes` runs)
  lm_head      one block (vocab x d_model), streamed like the weights
  embeddings   vocab rows of d_model x activation bytes; a step gathers one row per stream
  ssm_state    slot (layer, stream) at ssm_state + (layer * batch + stream) * slot; slot = the state at
               `high_bits`; a state written at low precision uses the start of its slot
  conv_state   slot (layer, stream) likewise
  spill        write-back buffer, checkpoints and replays: one high-precision slot per (layer, stream)
A transfer's bytes are split into these parts (weights first, then states, the rest conv state) and
each part becomes accesses of `access_bytes` in runs (one run per stream for states). The detailed
fidelity and `hwsim export-trace` both use this layout, so an exported trace replays the same traffic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.geometry import ModelFootprint
from hwsim.memory.mapping import slot_stride_bytes
from hwsim.sizing import state_bytes

ALIGN_BYTES = 2 * 2**20


def _align(x: float) -> int:
    return int(math.ceil(x / ALIGN_BYTES) * ALIGN_BYTES)


def run_addresses(starts: np.ndarray, run_bytes: float, access_bytes: int) -> np.ndarray:
    """Byte addresses of the accesses covering runs of `run_bytes` from each start."""
    per_run = max(1, math.ceil(run_bytes / access_bytes))
    starts = np.asarray(starts, dtype=np.int64)
    return (starts[:, None] + np.arange(per_run, dtype=np.int64)[None, :] * access_bytes).ravel()


@dataclass(frozen=True)
class AddressLayout:
    access_bytes: int
    batch: int
    vocab: int
    weight_bytes_per_layer: float
    embedding_row_bytes: float
    state_slot_bytes: float
    conv_slot_bytes: float
    base: dict[str, int]
    seed: int = 0

    @classmethod
    def build(cls, fp: ModelFootprint, *, batch: int, vocab: int, high_bits: int, group_size: int,
              scale_bits: int, access_bytes: int, seed: int = 0, interleave_bytes: int = 0,
              channels: int = 1) -> AddressLayout:
        """`interleave_bytes` and `channels` (the DRAM's) space the per-stream slots so their starts rotate
        over the channels (`mapping.slot_stride_bytes`), as the fast level's calibration assumes;
        without them slots are only rounded to whole accesses."""
        def slot_of(nbytes: float) -> float:
            if interleave_bytes <= 0:
                return _align_to(nbytes, access_bytes)
            return float(slot_stride_bytes(nbytes, access_bytes=access_bytes, interleave_bytes=interleave_bytes,
                                           channels=channels))

        slot = slot_of(float(state_bytes(fp.layer.ssm_state_elements, high_bits, group_size, scale_bits)))
        conv_slot = slot_of(max(fp.conv_state_bytes_per_stream_layer,
                                float(state_bytes(fp.layer.conv_state_elements, high_bits, group_size,
                                                  scale_bits))))
        sizes = {"weights": fp.n_layers * fp.weight_bytes_per_layer, "lm_head": fp.lm_head_bytes,
                 "embeddings": vocab * fp.embedding_bytes_per_token,
                 "ssm_state": fp.n_layers * batch * slot, "conv_state": fp.n_layers * batch * conv_slot,
                 "spill": fp.n_layers * batch * slot}
        base, at = {}, 0
        for name, size in sizes.items():
            base[name] = at
            at += _align(size)
        base["end"] = at
        return cls(access_bytes, batch, vocab, fp.weight_bytes_per_layer, fp.embedding_bytes_per_token,
                   slot, conv_slot, base, seed)

    def stream(self, region: str, offset: float, nbytes: float) -> np.ndarray:
        """Contiguous bytes [offset, offset + nbytes) of a region (weights, LM head)."""
        if nbytes <= 0:
            return np.zeros(0, dtype=np.int64)
        first = int(offset) // self.access_bytes
        count = math.ceil((offset + nbytes) / self.access_bytes) - first
        return self.base[region] + (first + np.arange(count, dtype=np.int64)) * self.access_bytes

    def per_stream(self, region: str, layer: int, nbytes: float, run_bytes: float) -> np.ndarray:
        """`nbytes` of per-(layer, stream) slots, one run of `run_bytes` per stream, streams in order."""
        if nbytes <= 0:
            return np.zeros(0, dtype=np.int64)
        slot = self.conv_slot_bytes if region == "conv_state" else self.state_slot_bytes
        run = max(min(run_bytes, slot), 1.0)
        runs = math.ceil(nbytes / run)
        index = layer * self.batch + np.arange(runs, dtype=np.int64) % self.batch
        starts = self.base[region] + index * int(slot)
        return run_addresses(starts, run, self.access_bytes)

    def embedding_rows(self, step: int, count: int) -> np.ndarray:
        """One gathered embedding row per stream; token ids from a generator seeded by (seed, step)."""
        tokens = np.random.default_rng((self.seed, step)).integers(0, self.vocab, count)
        starts = self.base["embeddings"] + (tokens * self.embedding_row_bytes).astype(np.int64)
        starts -= starts % self.access_bytes
        return run_addresses(starts, self.embedding_row_bytes, self.access_bytes)


def _align_to(nbytes: float, access_bytes: int) -> float:
    return float(math.ceil(nbytes / access_bytes) * access_bytes)
