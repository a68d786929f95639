"""Calibrate the fast (transaction-level) model from the detailed (request-level) one, for exactly the
DRAM configuration being resolved.

What is measured: for each pattern hwsim's engine issues, on a fresh detailed model of the resolved
configuration (all stacks, its pin rate, interleave, mapping and the queue depth of the DMA), the time
of one read transfer of `count` runs of `run` bytes, with refresh left out. The factor stored is that
time less the first-access latency, over the closed form without refresh (`DramTiming.unrefreshed_ns`).
Refresh is measured once, apart: a sequential stream over several tREFI with and without refresh gives
`refresh_factor`. Measuring refresh apart makes the factors independent of where a transfer falls in
the refresh period (a 1 MiB transfer from t = 0 never meets a refresh, a later one may), so small
measurements suffice and the fast level charges refresh at its average cost, as it always did.

Patterns (the engine's transfers): `strided` - `count` runs in consecutive per-stream slots, at the slot
stride `mapping.slot_stride_bytes` gives (the stride `layout.AddressLayout` uses), the shape of state,
conv-state and weight transfers (count 1 = one sequential run); `random` - runs in randomly drawn slots
of the run's own size, as `address_layout` lays out embedding rows (row = token x row bytes), the shape
of embedding gathers. A random pattern's time varies from draw to draw (which channels the runs pile
on is chance, 20% for a few runs): the factor is the detailed time over the gather base summed over the
same draws (`random_factor`; the base is evaluated on the very placements measured), drawn until it is
known to RANDOM_SE, each batch in one pass on independent copies of the channels
(`DetailedDram(replicas=...)`), each grid point from its own seeds. Grid: run sizes from one access to `MAX_RUN_BYTES` at
`RUNS_PER_OCTAVE` per octave, counts `RUN_COUNTS` (a point above `MAX_PATTERN_BYTES` takes the factor
of the largest count that fits: transfers that large are steady streams); random runs in two classes,
whole interleave blocks and runs that straddle blocks, each its own curve (`random_run_grid`). Beyond
the grid the factor is held (the closed form is linear there).

The result (`DramCalibration`) is data: recorded in the resolved configuration (so in resolved.yaml and
in a sweep point's hash), cached in the user cache directory (`hwsim.cache`) under the sha256 of its
inputs, which include the source of the models that produce it, so changing either recalibrates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from hwsim.cache import cache_dir
from hwsim.config.dram import DramCalibration
from hwsim.config.hardware import DramMemory
from hwsim.files import write_text_atomic
from hwsim.memory.detailed import DEFAULT_QUEUE_DEPTH, DetailedDram
from hwsim.memory.mapping import DEFAULT_MAPPING, slot_stride_bytes
from hwsim.memory.transaction import DramTiming, gather_channels_ns, whole_blocks

RUNS_PER_OCTAVE = 4
MAX_RUN_BYTES = 4 * 2**20
RUN_COUNTS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 1024, 8192)
#: the random (gather) grid is coarser, each point drawn until known to RANDOM_SE: with the base
#: evaluated on the measured draws the factor is smooth in run size and count (at 64 runs on 5 HBM3
#: stacks 1.442, 1.429, 1.440, 1.432 at 1216, 1440, 1536, 1728 B over 400 draws), and gathered rows
#: are embedding rows, a few KiB (d_model x 2 B); two per octave in each class (`random_run_grid`)
MAX_RANDOM_RUN_BYTES = 64 * 2**10
RANDOM_RUN_COUNTS = (2, 3, 4, 8, 16, 32, 64, 128, 256, 1024, 8192)
#: one channel's sequential accesses: every count up to DENSE_ACCESSES, then SEQUENTIAL_PER_OCTAVE per
#: octave up to MAX_RUN_BYTES of one channel
DENSE_ACCESSES = 256
SEQUENTIAL_PER_OCTAVE = 8
MAX_CHANNEL_BYTES = 2**20
MAX_PATTERN_BYTES = 2**20
#: the refresh measurement streams this many refresh intervals
REFRESH_PERIODS = 4
PATTERNS = ("strided", "random")
#: random patterns: draws in batches (the first RANDOM_DRAWS) until the factor's standard error is
#: RANDOM_SE, at most RANDOM_DRAWS_MAX draws and RANDOM_ACCESSES_MAX accesses per grid point (a few
#: runs vary by 20% from draw to draw: 21 draws of 24 x 5 KiB on 5 HBM3 stacks left a 4% error, and
#: with every grid point drawing the same seeds those errors were alike across the grid, +5% at 64 runs)
RANDOM_SE = 0.01
RANDOM_DRAWS = 16
RANDOM_DRAWS_MAX = 1024
RANDOM_ACCESSES_MAX = 2**20
#: grid point k draws seeds from k x RANDOM_SEED_STRIDE (independent of its neighbours'); tests draw below it
RANDOM_SEED_STRIDE = 2**20
#: the code whose behaviour a calibration records: editing any of these recalibrates
MODEL_SOURCES = ("calibration.py", "controller_kernel.py", "detailed.py", "mapping.py", "transaction.py")


def run_grid(access_bytes: int, per_octave: int = RUNS_PER_OCTAVE, top_bytes: int = MAX_RUN_BYTES) -> tuple[int, ...]:
    """Run sizes: whole accesses, `per_octave` per octave from one access to `top_bytes`."""
    sizes, x = set(), float(access_bytes)
    while x <= top_bytes * 1.0001:
        sizes.add(round(x / access_bytes) * access_bytes)
        x *= 2 ** (1 / per_octave)
    return tuple(sorted(sizes))


def random_run_grid(access_bytes: int, block_bytes: int, top_bytes: int = MAX_RANDOM_RUN_BYTES) -> tuple[int, ...]:
    """Random run sizes in two classes (`transaction.whole_blocks`), each interpolated on its own: the
    divisors of an interleave block and whole blocks at 2^k and 1.5 x 2^k blocks (embedding rows,
    d_model x 2 B, are whole blocks on every preset); and, also two per octave, sizes that straddle
    blocks."""
    whole = {access_bytes * 2**k for k in range(64) if access_bytes * 2**k < block_bytes
             and block_bytes % (access_bytes * 2**k) == 0}
    blocks = 1
    while blocks * block_bytes <= top_bytes:
        whole |= {blocks * block_bytes} | ({3 * blocks // 2 * block_bytes} if blocks >= 2 else set())
        blocks *= 2
    # between the octaves' whole-block sizes, at 2^(k + 1/4) and 2^(k + 3/4); one that happens to be
    # whole blocks moves up an access
    straddling = set()
    for k in range(64):
        for x in (2 ** (k + 0.25), 2 ** (k + 0.75)):
            r = max(1, round(x / access_bytes)) * access_bytes
            r += access_bytes if r > block_bytes and whole_blocks(r, block_bytes) else 0
            if access_bytes < r <= top_bytes and not whole_blocks(r, block_bytes):
                straddling.add(r)
    return tuple(sorted(r for r in whole | straddling if r <= top_bytes))


def pattern_addresses(dram: DramMemory, pattern: str, run_bytes: int, count: int, seed: int = 0) -> np.ndarray:
    """Access addresses of `count` runs of `run_bytes` laid out as `pattern` (see the module docstring)."""
    access = dram.preset.organisation.access_bytes
    per_run = np.arange(max(1, math.ceil(run_bytes / access)), dtype=np.int64) * access
    if pattern == "strided" or count == 1:
        stride = slot_stride_bytes(run_bytes, access_bytes=access, interleave_bytes=dram.interleave_bytes,
                                   channels=dram.total_channels)
        starts = np.arange(count, dtype=np.int64) * stride
    elif pattern == "random":
        slots = (dram.capacity_bytes - run_bytes) // max(run_bytes, 1)
        starts = np.random.default_rng(seed).integers(0, slots, count).astype(np.int64) * int(run_bytes)
        starts -= starts % access
    else:
        raise ValueError(f"unknown pattern {pattern!r}; known: {', '.join(PATTERNS)}")
    return (starts[:, None] + per_run[None, :]).ravel()


def measure_ns(dram: DramMemory, address: np.ndarray, *, queue_depth: int = DEFAULT_QUEUE_DEPTH,
               mapping: str = DEFAULT_MAPPING, refresh: bool = False, start_ns: float = 0.0) -> float:
    """Detailed-model time (ns) from `start_ns` to the last completion of one read transfer, on a fresh
    controller (every bank closed)."""
    model = DetailedDram(dram, queue_depth=queue_depth, mapping=mapping, refresh=refresh)
    return float(model.submit(address, False, start_ns, keep_latency=False).max()) - start_ns


def random_draws_max(run_bytes: int, count: int, access_bytes: int) -> int:
    """The most draws a random grid point takes: RANDOM_ACCESSES_MAX accesses, within the bounds."""
    accesses = max(1, math.ceil(run_bytes / access_bytes)) * count
    return int(np.clip(RANDOM_ACCESSES_MAX // accesses, RANDOM_DRAWS, RANDOM_DRAWS_MAX))


def random_transfers(dram: DramMemory, run_bytes: int, count: int, *, draws: int, seed: int = 0,
                     queue_depth: int = DEFAULT_QUEUE_DEPTH, mapping: str = DEFAULT_MAPPING
                     ) -> tuple[np.ndarray, np.ndarray]:
    """`draws` draws of a random pattern (seeds seed, seed + 1, ...), each on its own fresh copy of the
    channels, all in one pass: each draw's detailed time and its runs' first access indices."""
    address = [pattern_addresses(dram, "random", run_bytes, count, seed + d) for d in range(draws)]
    replica = np.repeat(np.arange(draws), [len(a) for a in address])
    model = DetailedDram(dram, queue_depth=queue_depth, mapping=mapping, refresh=False, replicas=draws)
    done = model.submit(np.concatenate(address), False, 0.0, keep_latency=False, replica=replica)
    last = np.full(draws, -np.inf)
    np.maximum.at(last, replica, done)
    access = dram.preset.organisation.access_bytes
    first = np.stack([a.reshape(count, -1)[:, 0] // access for a in address])
    return last, first


def random_factor(dram: DramMemory, closed: DramTiming, run_bytes: int, count: int, *, seed: int = 0,
                  queue_depth: int = DEFAULT_QUEUE_DEPTH, mapping: str = DEFAULT_MAPPING) -> float:
    """Detailed time beyond the first access over the gather base, both summed over
    the same draws (common random numbers: which channels the runs pile on is chance both see), in
    batches until the ratio's standard error is RANDOM_SE or the draw limit is reached."""
    run_accesses = -(-run_bytes // closed.access_bytes)
    limit = random_draws_max(run_bytes, count, closed.access_bytes)
    detailed, base = np.zeros(0), np.zeros(0)
    want = min(RANDOM_DRAWS, limit)
    while True:
        last, first = random_transfers(dram, run_bytes, count, draws=want - len(base), seed=seed + len(base),
                                       queue_depth=queue_depth, mapping=mapping)
        detailed = np.concatenate([detailed, np.maximum(last - closed.read_latency_ns, 0.0)])
        base = np.concatenate([base, gather_channels_ns(first, run_accesses, *closed.gather_shape())])
        n = len(base)
        ratio = detailed.sum() / max(base.sum(), 1e-9)
        # the ratio estimator's standard error (delta method), relative
        se = np.sqrt(np.sum((detailed - ratio * base) ** 2) / (n * (n - 1))) / max(base.mean() * ratio, 1e-9)
        if se <= RANDOM_SE or n >= limit:
            return float(ratio)
        want = int(min(limit, max(n + RANDOM_DRAWS, math.ceil(1.1 * n * (se / RANDOM_SE) ** 2))))


def calibration_key(dram: DramMemory, *, queue_depth: int, mapping: str) -> str:
    """sha256 of every input the calibration depends on, the models' source code included."""
    here = Path(__file__).parent
    code = hashlib.sha256(b"".join((here / name).read_bytes() for name in MODEL_SOURCES)).hexdigest()
    inputs = {"organisation": dram.preset.organisation.model_dump(mode="json"),
              "timings_ns": dram.preset.timings_ns.model_dump(mode="json"), "stacks": dram.stacks,
              "pin_rate_Gbps": dram.pin_rate_Gbps, "interleave_bytes": dram.interleave_bytes,
              "queue_depth": int(queue_depth), "mapping": mapping, "code": code}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def refresh_factor(dram: DramMemory, *, queue_depth: int, mapping: str) -> float:
    """Detailed time of a sequential stream over REFRESH_PERIODS x tREFI with refresh, over without.
    Channels refresh independently, so one stack stands for all."""
    one = dram.model_copy(update={"stacks": 1, "calibration": None})
    t = dram.preset.timings_ns
    access = dram.preset.organisation.access_bytes
    nbytes = REFRESH_PERIODS * t.tREFI * one.peak_bandwidth_GBps
    address = np.arange(int(nbytes // access), dtype=np.int64) * access
    on = measure_ns(one, address, queue_depth=queue_depth, mapping=mapping, refresh=True)
    off = measure_ns(one, address, queue_depth=queue_depth, mapping=mapping, refresh=False)
    return on / off


def busiest_grid(access_bytes: int) -> tuple[int, ...]:
    top = MAX_CHANNEL_BYTES // access_bytes
    dense = set(range(1, DENSE_ACCESSES + 1))
    octaves = math.log2(top / DENSE_ACCESSES)
    dense |= {round(DENSE_ACCESSES * 2 ** (i / SEQUENTIAL_PER_OCTAVE))
              for i in range(round(octaves * SEQUENTIAL_PER_OCTAVE) + 1)}
    return tuple(sorted(dense))


def channel_stream(dram: DramMemory, accesses: int, mapping: str) -> np.ndarray:
    """The first `accesses` accesses a sequential stream from address 0 sends to channel 0. Channels
    are independent controllers, so that channel alone times a whole stream whose busiest channel
    serves `accesses`. (Mappings with the channel as the lowest field; others get the whole stream.)"""
    access = dram.preset.organisation.access_bytes
    block = max(1, min(dram.interleave_bytes, dram.preset.organisation.row_bytes) // access)
    if not mapping.endswith("Ch"):
        blocks = -(-accesses // block)
        return np.arange(blocks * block * dram.total_channels, dtype=np.int64) * access
    i = np.arange(accesses, dtype=np.int64)
    return ((i // block) * dram.total_channels * block + i % block) * access


def calibrate(dram: DramMemory, *, queue_depth: int = DEFAULT_QUEUE_DEPTH,
              mapping: str = DEFAULT_MAPPING) -> DramCalibration:
    """Measure the whole grid on the detailed model (no cache; `calibrated` is the cached entry point)."""
    closed = DramTiming.from_config(dram, calibrated=False)
    access = dram.preset.organisation.access_bytes
    busiest = busiest_grid(access)
    sequential = [max(measure_ns(dram, channel_stream(dram, a, mapping), queue_depth=queue_depth,
                                 mapping=mapping) - closed.read_latency_ns, 0.0) for a in busiest]
    runs = run_grid(access)
    seq_cal = DramCalibration.model_construct(busiest_accesses=busiest, sequential_ns=tuple(sequential))
    sequential_of = dataclasses.replace(closed, calibration=seq_cal)  # the strided base, half-calibrated

    def strided_factor(i, j, run, count):
        detailed = measure_ns(dram, pattern_addresses(dram, "strided", run, count), queue_depth=queue_depth,
                              mapping=mapping)
        return (detailed - closed.read_latency_ns) / float(sequential_of.pattern_base_ns(count * run, run, "strided"))

    block = max(1, min(dram.interleave_bytes, dram.preset.organisation.row_bytes) // access) * access
    random_runs = random_run_grid(access, block)

    def random_factor_at(i, j, run, count):
        return random_factor(dram, closed, run, count, seed=(1 + j * len(random_runs) + i) * RANDOM_SEED_STRIDE,
                             queue_depth=queue_depth, mapping=mapping)

    strided = grid_table(runs, RUN_COUNTS, strided_factor)
    random = grid_table(random_runs, RANDOM_RUN_COUNTS, random_factor_at)
    return DramCalibration(
        key=calibration_key(dram, queue_depth=queue_depth, mapping=mapping),
        source=(f"hwsim.memory.calibration (detailed model of {dram.stacks} x {dram.preset.name} at "
                f"{dram.pin_rate_Gbps:g} Gb/s/pin, interleave {dram.interleave_bytes} B, queue depth "
                f"{queue_depth}, mapping {mapping}; refresh measured apart)"),
        queue_depth=queue_depth, mapping=mapping,
        refresh_factor=round(refresh_factor(dram, queue_depth=queue_depth, mapping=mapping), 6),
        busiest_accesses=busiest, sequential_ns=tuple(round(v, 4) for v in sequential),
        run_bytes=runs, run_counts=RUN_COUNTS, random_run_bytes=random_runs, random_run_counts=RANDOM_RUN_COUNTS,
        random_periods_bytes=(block, dram.total_channels * dram.preset.organisation.row_bytes),
        strided=rounded_table(strided), random=rounded_table(random))


def grid_table(runs, counts, factor_at) -> np.ndarray:
    """Factors by (count, run); a point above MAX_PATTERN_BYTES takes the factor of the count below."""
    table = np.ones((len(counts), len(runs)))
    for i, run in enumerate(runs):
        for j, count in enumerate(counts):
            big = count * run > MAX_PATTERN_BYTES and j > 0
            table[j, i] = table[j - 1, i] if big else max(factor_at(i, j, run, count), 0.01)
    return table


def rounded_table(table: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(round(float(v), 5) for v in row) for row in table)


def cache_path(key: str) -> Path:
    return cache_dir("calibration") / f"{key}.json"


def write_calibration(cal: DramCalibration, path: str | Path) -> Path:
    return write_text_atomic(path, json.dumps(cal.model_dump(mode="json"), indent=1) + "\n")


def read_calibration(path: str | Path) -> DramCalibration | None:
    """A calibration file validated as data; None if it is missing or does not validate."""
    try:
        return DramCalibration.model_validate(json.loads(Path(path).read_text()))
    except (OSError, ValueError):
        return None


def calibrated(dram: DramMemory, *, queue_depth: int = DEFAULT_QUEUE_DEPTH,
               mapping: str = DEFAULT_MAPPING) -> DramMemory:
    """`dram` with the calibration of exactly its inputs: the one it carries if that matches, else the
    cached one, else a fresh measurement (then cached). A recorded calibration whose key no longer
    matches (timings overridden, another hwsim) is derived data and is replaced, never applied."""
    key = calibration_key(dram, queue_depth=queue_depth, mapping=mapping)
    if dram.calibration is not None and dram.calibration.key == key:
        return dram
    path = cache_path(key)
    cal = read_calibration(path)
    if cal is None or cal.key != key:
        cal = calibrate(dram.model_copy(update={"calibration": None}), queue_depth=queue_depth, mapping=mapping)
        write_calibration(cal, path)
    return dram.model_copy(update={"calibration": cal})


def resolve_calibration(exp):
    """The experiment with its DRAM calibrated for the queue depth the detailed level would use."""
    hw = exp.hardware
    if hw.dram is None:
        return exp
    # a GPU preset has no DMA section: its memory controllers are taken at the default depth
    dram = calibrated(hw.dram, queue_depth=hw.dma.queue_depth if hw.dma else DEFAULT_QUEUE_DEPTH)
    if dram is hw.dram:
        return exp
    return exp.model_copy(update={"hardware": hw.model_copy(update={"dram": dram})})
