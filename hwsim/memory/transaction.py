"""Transaction-level DRAM timing: how long a transfer of N bytes occupies the channels, in closed form.

A transfer is split over the (pseudo-)channels by the address interleave. Each channel's service time
is the larger of its data-bus time and its activate limit (four activates per tFAW, one per tRRD_S,
one per tRC per bank), stretched by refresh (tRFC every tREFI), or, for a queue that keeps a clock,
without refresh and with refreshes placed at their fixed times (`refreshed_end`). So streaming reaches
about 1 - tRFC/tREFI of peak and small random accesses are tFAW-bound, as DRAMsim3 and Ramulator 2 show.
Everything is numpy-vectorised over transfers; no per-burst loop.

The closed form is then scaled by the configuration's calibration (`DramMemory.calibration`, resolved
with the experiment by `hwsim.memory.calibration`): a factor by run size, run count and pattern measured
with the detailed request-level model, so both levels agree on the patterns hwsim generates. This module
only reads that data; `from_config(dram, calibrated=False)` gives the bare closed form.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hwsim.config.dram import DramCalibration
from hwsim.config.hardware import DramMemory
from hwsim.errors import HwsimInputError

PATTERNS = ("strided", "random")
#: a gather's channel loads are averaged over draws of about GATHER_BLOCKS interleave blocks in all,
#: within these bounds (source: estimate; chosen so the mean busiest load is known to ~0.5%: 2**16 blocks
#: left 1.6% at 24 x 5 KiB on 160 channels). No floor above one draw: a gather of a whole prefill's
#: tokens (GPU model) is one large draw whose busiest channel varies little, and a floor of 128 draws
#: of it took 24 GB
GATHER_BLOCKS = 2**18
GATHER_DRAWS = (1, 4096)


@dataclass(frozen=True)
class DramTiming:
    """Resolved numbers (ns, bytes) of one DRAM configuration; built once per experiment."""

    channels: int
    channel_bytes_per_ns: float
    interleave_bytes: int
    row_bytes: int
    access_bytes: int
    banks_per_channel: int
    bank_groups: int
    ccd_long_ns: float              # column to column in one bank group (tCCD_L, at least a burst)
    activate_interval_ns: float     # sustained: max(tFAW / 4, tRRD_S, the row command bus share)
    tRC_ns: float
    refresh_efficiency: float       # 1 - tRFC / tREFI
    refresh_interval_ns: float      # tREFI: every channel refreshes at k x tREFI (k >= 1) from power-on
    read_latency_ns: float          # closed row: tRCD + tCL + burst
    write_to_read_ns: float
    read_to_write_ns: float
    peak_bytes_per_ns: float
    calibration: DramCalibration | None = None

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None

    @classmethod
    def from_config(cls, dram: DramMemory, *, calibrated: bool = True) -> DramTiming:
        """Resolve `dram`; with `calibrated` (the default) its calibration must have been resolved."""
        if calibrated and dram.calibration is None:
            raise HwsimInputError(
                "the DRAM configuration has no calibration: load the experiment with "
                "hwsim.config.load_experiment, or resolve it with hwsim.memory.calibration.calibrated(dram)",
                key="hardware.dram.calibration")
        org, t = dram.preset.organisation, dram.preset.timings_ns
        burst_ns = org.burst_length / dram.pin_rate_Gbps  # bits per pin / (Gb/s) = ns
        return cls(
            channels=dram.total_channels, channel_bytes_per_ns=dram.channel_bandwidth_GBps,
            interleave_bytes=dram.interleave_bytes, row_bytes=org.row_bytes, access_bytes=org.access_bytes,
            banks_per_channel=org.bank_groups * org.banks_per_group, bank_groups=org.bank_groups,
            ccd_long_ns=max(t.tCCD_L, burst_ns),
            activate_interval_ns=max(t.tFAW / 4.0, t.tRRD_S, org.command_bus_shared_by * t.row_command),
            tRC_ns=t.tRC,
            refresh_efficiency=1.0 - t.tRFC / t.tREFI, refresh_interval_ns=t.tREFI,
            read_latency_ns=t.tRCD + t.tCL + burst_ns,
            write_to_read_ns=t.tCWL + burst_ns + t.tWTR_L,
            read_to_write_ns=max(t.tCL + burst_ns + 2 * t.tCK - t.tCWL, 0.0),
            peak_bytes_per_ns=dram.peak_bandwidth_GBps, calibration=dram.calibration if calibrated else None)

    def activates(self, nbytes: np.ndarray | float, run_bytes: np.ndarray | float) -> np.ndarray:
        """Row activations to move `nbytes` laid out as contiguous runs of `run_bytes`.

        A run touches min(channels, ceil(run / interleave)) channels, each needing at least one row, and
        at least run / row_bytes rows in all."""
        nbytes = np.asarray(nbytes, dtype=np.float64)
        run = np.maximum(np.minimum(np.asarray(run_bytes, dtype=np.float64), nbytes), 1.0)
        runs = np.ceil(nbytes / run)
        touched = np.minimum(self.channels, np.ceil(run / self.interleave_bytes))
        per_run = np.maximum(touched, np.ceil(run / self.row_bytes))
        return np.where(nbytes > 0, runs * per_run, 0.0)

    def busiest_channel_bytes(self, nbytes: np.ndarray | float) -> np.ndarray:
        """Bytes of a contiguous transfer that land on its busiest channel (the interleave deals blocks
        round-robin; at most one block, the last, is partial)."""
        nbytes = np.asarray(nbytes, dtype=np.float64)
        full, partial = np.floor(nbytes / self.interleave_bytes), np.mod(nbytes, self.interleave_bytes)
        rounds, extra = np.floor(full / self.channels), np.mod(full, self.channels)
        with_extra = np.where(extra > 0, (rounds + 1) * self.interleave_bytes, 0.0)
        return np.maximum(with_extra, rounds * self.interleave_bytes + partial)

    def unrefreshed_ns(self, nbytes: np.ndarray | float, run_bytes: np.ndarray | float) -> np.ndarray:
        """The closed form without refresh: the busiest channel's bus time or its activate limit."""
        bus_ns = self.busiest_channel_bytes(nbytes) / self.channel_bytes_per_ns
        activates_per_channel = np.ceil(self.activates(nbytes, run_bytes) / self.channels)
        activate_ns = activates_per_channel * max(self.activate_interval_ns, self.tRC_ns / self.banks_per_channel)
        return np.maximum(bus_ns, activate_ns)

    def sequential_ns(self, nbytes: np.ndarray | float) -> np.ndarray:
        """Calibrated time of one contiguous run, without refresh and beyond its first access: the
        detailed model's time for the busiest channel's accesses (linear past the measured range)."""
        cal = self.calibration
        accesses = np.ceil(self.busiest_channel_bytes(nbytes) / self.access_bytes - 1e-9)
        grid = np.asarray(cal.busiest_accesses, dtype=np.float64)
        times = np.asarray(cal.sequential_ns, dtype=np.float64)
        slope = (times[-1] - times[-2]) / (grid[-1] - grid[-2])
        inside = np.interp(accesses, grid, times)
        return np.where(accesses > grid[-1], times[-1] + (accesses - grid[-1]) * slope, inside)

    def pattern_base_ns(self, nbytes: np.ndarray | float, run_bytes: np.ndarray | float,
                        pattern: str = "strided") -> np.ndarray:
        """What the pattern factors scale. `strided`: the calibrated time of one stream of the same bytes,
        or the activate limit of the runs if that is longer. `random`: `gather_ns`, the expected busiest
        channel of runs in random slots."""
        if pattern == "random":
            return self.gather_ns(nbytes, run_bytes)
        activates_per_channel = np.ceil(self.activates(nbytes, run_bytes) / self.channels)
        activate_ns = activates_per_channel * max(self.activate_interval_ns, self.tRC_ns / self.banks_per_channel)
        return np.maximum(self.sequential_ns(nbytes), activate_ns)

    def gather_ns(self, nbytes: np.ndarray | float, run_bytes: np.ndarray | float) -> np.ndarray:
        """Expected time of the busiest channel when `nbytes / run_bytes` runs lie in random slots of
        their own size (embedding rows: row = token x row bytes), each channel taken as the longer of
        its bus time and its activates (one per DRAM row a run touches in it) at the sustained activate
        interval. Which channels a run can start on depends on the run size against the interleave
        period (a 2 KiB row on 32 channels of 256 B blocks starts on every 8th), and how many runs
        pile on the busiest channel is chance: both are counted, over seeded draws (`gather_loads`), so
        the measured factor on top is only what banks and timing add. One computation per distinct
        (run, count), cached."""
        nbytes = np.asarray(nbytes, dtype=np.float64)
        run = np.maximum(np.minimum(np.asarray(run_bytes, dtype=np.float64), nbytes), 1.0)
        count = np.maximum(np.rint(nbytes / run), 1.0)
        run_acc = np.maximum(np.ceil(run / self.access_bytes - 1e-9), 1.0)
        shape = np.broadcast(run_acc, count).shape
        keys = np.stack([np.broadcast_to(run_acc, shape).ravel(), np.broadcast_to(count, shape).ravel()], axis=1)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        geometry, times = self.gather_shape()
        values = np.array([busiest_gather_ns(int(r), int(c), geometry, times) for r, c in unique])
        return np.where(nbytes > 0, values[inverse.ravel()].reshape(shape), 0.0)

    def gather_shape(self) -> tuple[tuple[int, int, int, int, int], tuple[float, float, float, float]]:
        """(geometry, times) of `gather_channels_ns` for this configuration."""
        block_acc = max(1, min(self.interleave_bytes, self.row_bytes) // self.access_bytes)
        geometry = (self.channels, block_acc, self.row_bytes // (block_acc * self.access_bytes), self.bank_groups,
                    self.banks_per_channel // self.bank_groups)
        times = (self.access_bytes / self.channel_bytes_per_ns, self.ccd_long_ns,
                 max(self.activate_interval_ns, self.tRC_ns / self.banks_per_channel), self.tRC_ns)
        return geometry, times

    @property
    def refresh_ns(self) -> float:
        """What one refresh costs a busy memory: the streaming stretch f (calibrated, else tREFI over
        tREFI - tRFC) spread over the refreshes of a stream, (1 - 1/f) x tREFI (tRFC uncalibrated)."""
        stretch = self.calibration.refresh_factor if self.calibration is not None else 1.0 / self.refresh_efficiency
        return (1.0 - 1.0 / stretch) * self.refresh_interval_ns

    def service_ns(self, nbytes: np.ndarray | float, run_bytes: np.ndarray | float,
                   pattern: str = "strided", *, refresh: bool = True) -> np.ndarray:
        """Time the channels are busy with a transfer (excluding the first-access latency).

        `pattern`: how runs of `run_bytes` lie, `strided` (consecutive per-stream slots, the default:
        also weights and the LM head) or `random` (gathered rows). Uncalibrated: the closed form over
        the refresh efficiency. Calibrated: one run takes the sequential table; from `run_counts[0]`
        runs the closed form times the pattern's factor (bilinear in log2 run size and count); between
        one and `run_counts[0]` runs the two are blended in log2 count. `refresh=False`: without refresh,
        for a queue that places refreshes on the clock (`refreshed_end`) instead of stretching every
        transfer by their average cost."""
        core = self.unrefreshed_ns(nbytes, run_bytes)
        cal = self.calibration
        if cal is None:
            return core / self.refresh_efficiency if refresh else core
        if pattern not in PATTERNS:
            raise ValueError(f"unknown access pattern {pattern!r}; known: {', '.join(PATTERNS)}")
        nbytes = np.asarray(nbytes, dtype=np.float64)
        run = np.maximum(np.minimum(np.asarray(run_bytes, dtype=np.float64), nbytes), 1.0)
        count = np.maximum(nbytes / run, 1.0)
        many = self.pattern_base_ns(nbytes, run, pattern) * interpolate(cal, pattern, run, count)
        w = np.clip(np.log2(count) / np.log2(cal.run_counts[0]), 0.0, 1.0)
        one = self.sequential_ns(nbytes)
        stretch = cal.refresh_factor if refresh else 1.0
        return np.where(nbytes > 0, (one * (1 - w) + many * w) * stretch, 0.0)


def refreshed_end(start_ns: float, service_ns: float, interval_ns: float, refresh_ns: float) -> tuple[float, float]:
    """(start, end) of `service_ns` of channel time from `start_ns` when every channel refreshes for
    `refresh_ns` at each k x `interval_ns` (k >= 1), as the detailed level does (all channels at once,
    from power-on; a refresh due while the memory idles still takes its time). A start inside a refresh
    waits for its end; each refresh falling inside the transfer lengthens it. Short transfers spaced by
    compute meet a refresh per tREFI of wall time, not per tREFI of busy time: with the average stretch
    instead, int4 mamba-130m on 5 HBM3 stacks ran 5.3% faster than the detailed level."""
    if refresh_ns <= 0.0 or not interval_ns < float("inf"):
        return start_ns, start_ns + service_ns
    k = start_ns // interval_ns
    if k >= 1.0 and start_ns < k * interval_ns + refresh_ns:
        start_ns = k * interval_ns + refresh_ns
    end = start_ns + service_ns
    due = (k + 1.0) * interval_ns
    while due < end:
        end += refresh_ns
        due += interval_ns
    return start_ns, end


def whole_blocks(run_bytes, block_bytes: int) -> np.ndarray:
    """Whether runs of `run_bytes` in random slots of their own size never straddle a multiple of
    `block_bytes` (an interleave block, a row period): whole multiples of it, or divisors of it."""
    run = np.maximum(np.rint(np.asarray(run_bytes, dtype=np.float64)), 1.0)
    return (np.mod(run, block_bytes) == 0) | (np.mod(block_bytes, run) == 0)


def run_kind(run_bytes, periods_bytes) -> np.ndarray:
    """Which of `periods_bytes` runs of `run_bytes` never straddle, as bits (bit i: period i)."""
    return sum(whole_blocks(run_bytes, p).astype(np.int64) << i for i, p in enumerate(periods_bytes))


def interpolate(cal: DramCalibration, pattern: str, run_bytes, count) -> np.ndarray:
    """The calibration factor at (run size, run count): linear in log2 of both, clamped at the edges.

    Random runs are interpolated among grid sizes of their kind (`run_kind`: which of the interleave
    block and the row period they never straddle; with fewer than two such sizes, of their kind for
    the block alone): a gather of whole blocks is served differently from one whose rows start and
    end inside blocks, and the curves interleave (hbm2, 64 rows, factor at 1440 / 1536 / 1728 B:
    1.121 / 1.071 / 1.113; one GDDR6 chip, 40 rows, 3072 / 3584 / 4096 B, rows of 4096 B never
    opening a second DRAM row per channel: 1.050 / 1.047 / 1.109), so interpolating across kinds
    missed by 3-4%."""
    table = np.asarray(getattr(cal, pattern), dtype=np.float64)           # (counts, runs)
    runs, counts = ((cal.random_run_bytes, cal.random_run_counts) if pattern == "random"
                    else (cal.run_bytes, cal.run_counts))
    x = np.log2(np.maximum(np.asarray(run_bytes, dtype=np.float64), 1.0))
    xs = np.log2(np.asarray(runs, dtype=np.float64))
    if pattern == "random":
        periods = cal.random_periods_bytes
        grid_kind = run_kind(runs, periods)
        flat_x, kind = x.ravel(), np.broadcast_to(run_kind(run_bytes, periods), x.shape).ravel()
        by_count = np.empty((len(table), flat_x.size))
        for k in np.unique(kind):
            same = next((m for m in (grid_kind == k, (grid_kind & 1) == (k & 1)) if m.sum() >= 2),
                        np.ones(len(runs), dtype=bool))
            at = kind == k
            by_count[:, at] = np.stack([np.interp(flat_x[at], xs[same], row[same]) for row in table])
        by_count = by_count.reshape(len(table), *x.shape)
    else:
        by_count = np.stack([np.interp(x, xs, row) for row in table])      # (counts, *shape)
    y = np.log2(np.asarray(count, dtype=np.float64))
    ys = np.log2(np.asarray(counts, dtype=np.float64))
    if len(ys) == 1:
        return by_count[0]
    j = np.clip(np.searchsorted(ys, y, side="right") - 1, 0, len(ys) - 2)
    w = np.clip((y - ys[j]) / (ys[j + 1] - ys[j]), 0.0, 1.0)
    low = np.take_along_axis(by_count, j[None, ...], axis=0)[0] if by_count.ndim > 1 else by_count[j]
    high = np.take_along_axis(by_count, (j + 1)[None, ...], axis=0)[0] if by_count.ndim > 1 else by_count[j + 1]
    return low * (1 - w) + high * w


@lru_cache(maxsize=4096)
def busiest_gather_ns(run_accesses: int, count: int, geometry: tuple[int, int, int, int, int],
                      times: tuple[float, float, float, float]) -> float:
    """Mean over seeded draws of `gather_channels_ns` for `count` runs of `run_accesses` accesses in
    random slots of the run's size: about GATHER_BLOCKS interleave blocks in all, so the mean is known
    to about 0.5%."""
    blocks_per_run = -(-run_accesses // geometry[1]) + 1
    draws = int(np.clip(GATHER_BLOCKS // max(count * blocks_per_run, 1), *GATHER_DRAWS))
    slots = np.random.default_rng(0).integers(0, 2**31, size=(draws, count), dtype=np.int64)
    return float(gather_channels_ns(slots * run_accesses, run_accesses, geometry, times).mean())


def gather_channels_ns(first: np.ndarray, run_accesses: int, geometry: tuple[int, int, int, int, int],
                       times: tuple[float, float, float, float]) -> np.ndarray:
    """Per draw (a row of `first`, each run's first access index), the busiest channel's time beyond
    the first access for runs of `run_accesses` accesses starting there.

    `geometry` = (channels, accesses per interleave block, blocks per channel row, bank groups, banks per
    group), placed as the default mapping `RoBaBgCoCh` places blocks; `times` = (burst, tCCD_L, sustained
    activate interval, tRC) in ns. A channel takes the longest of: its accesses back to back, the
    accesses of its busiest bank group at tCCD_L, its rows at the activate interval, and the rows of its
    busiest bank at tRC (one row per run and bank row it touches). The calibration evaluates it on the
    very draws it measures (common random numbers), the fast level on its own seeded draws."""
    units, block_accesses, row_blocks, groups, banks_per_group = geometry
    burst_ns, ccd_long_ns, act_ns, trc_ns = times
    banks = groups * banks_per_group
    draws = first.shape[0]
    blocks_per_run = -(-run_accesses // block_accesses) + 1
    first = np.asarray(first, dtype=np.int64)[..., None]
    block = first // block_accesses + np.arange(blocks_per_run, dtype=np.int64)
    lo = np.maximum(first, block * block_accesses)
    hi = np.minimum(first + run_accesses, (block + 1) * block_accesses)
    accesses = np.maximum(hi - lo, 0)
    channel, rest = block % units, block // units // row_blocks          # rest: Ro Ba Bg digits
    group, bank = rest % groups, (rest // groups) % banks_per_group
    bank_row = rest // groups                                             # Ro and Ba: one row of one bank
    draw = np.arange(draws)[:, None, None] * units + channel
    # a new row: the run's first block on a channel, or a block in another row than the one `units` blocks back (same channel)
    new_row = accesses > 0
    new_row[..., units:] &= bank_row[..., units:] != bank_row[..., :-units]

    def per(index, weights, size):
        return np.bincount(index.ravel(), weights=weights.ravel(), minlength=draws * units * size).reshape(
            draws, units, size)

    by_group = per(draw * groups + group, accesses, groups)
    by_bank = per(draw * banks + group * banks_per_group + bank, new_row, banks)
    # beyond the first access (its latency is charged apart): each chain's later links
    busiest_bank = by_bank.max(axis=2)
    channel_ns = np.maximum.reduce([
        np.maximum(by_group.sum(axis=2) - 1, 0) * burst_ns, np.maximum(by_group.max(axis=2) - 1, 0) * ccd_long_ns,
        np.maximum(by_bank.sum(axis=2) - 1, 0) * act_ns,
        np.maximum(busiest_bank - 1, 0) * trc_ns])
    return channel_ns.max(axis=1)
