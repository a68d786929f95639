"""Transaction-level DRAM timing: how long a transfer of N bytes occupies the channels, in closed form.

A transfer is split over the (pseudo-)channels by the address interleave. Each channel's service time
is the larger of its data-bus time and its activate limit (four activates per tFAW, one per tRRD_S,
one per tRC per bank), stretched by refresh (tRFC every tREFI). So streaming reaches about
1 - tRFC/tREFI of peak and small random accesses are tFAW-bound, as DRAMsim3 and Ramulator 2 show.
Everything is numpy-vectorised over transfers; no per-burst loop.

The closed form is then scaled by the configuration's calibration (`DramMemory.calibration`, resolved
with the experiment by `hwsim.memory.calibration`): a factor by run size, run count and pattern measured
with the detailed request-level model, so both levels agree on the patterns hwsim generates. This module
only reads that data; `from_config(dram, calibrated=False)` gives the bare closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.config.dram import DramCalibration
from hwsim.config.hardware import DramMemory
from hwsim.errors import HwsimInputError

PATTERNS = ("strided", "random")


@dataclass(frozen=True)
class DramTiming:
    """Resolved numbers (ns, bytes) of one DRAM configuration; built once per experiment."""

    units: int
    unit_bytes_per_ns: float
    interleave_bytes: int
    row_bytes: int
    access_bytes: int
    banks_per_unit: int
    activate_interval_ns: float     # sustained: max(tFAW / 4, tRRD_S, the row command bus share)
    tRC_ns: float
    refresh_efficiency: float       # 1 - tRFC / tREFI
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
            units=dram.units, unit_bytes_per_ns=dram.unit_bandwidth_GBps,
            interleave_bytes=dram.interleave_bytes, row_bytes=org.row_bytes, access_bytes=org.access_bytes,
            banks_per_unit=org.bank_groups * org.banks_per_group,
            activate_interval_ns=max(t.tFAW / 4.0, t.tRRD_S, org.command_bus_shared_by * t.row_command),
            tRC_ns=t.tRC,
            refresh_efficiency=1.0 - t.tRFC / t.tREFI,
            read_latency_ns=t.tRCD + t.tCL + burst_ns,
            write_to_read_ns=t.tCWL + burst_ns + t.tWTR_L,
            read_to_write_ns=max(t.tCL + burst_ns + 2 * t.tCK - t.tCWL, 0.0),
            peak_bytes_per_ns=dram.peak_bandwidth_GBps, calibration=dram.calibration if calibrated else None)

    def activates(self, nbytes: np.ndarray | float, run_bytes: np.ndarray | float) -> np.ndarray:
        """Row activations to move `nbytes` laid out as contiguous runs of `run_bytes`.

        A run touches min(units, ceil(run / interleave)) channels, each needing at least one row, and
        at least run / row_bytes rows in all."""
        nbytes = np.asarray(nbytes, dtype=np.float64)
        run = np.maximum(np.minimum(np.asarray(run_bytes, dtype=np.float64), nbytes), 1.0)
        runs = np.ceil(nbytes / run)
        touched = np.minimum(self.units, np.ceil(run / self.interleave_bytes))
        per_run = np.maximum(touched, np.ceil(run / self.row_bytes))
        return np.where(nbytes > 0, runs * per_run, 0.0)

    def busiest_unit_bytes(self, nbytes: np.ndarray | float) -> np.ndarray:
        """Bytes of a contiguous transfer that land on its busiest channel (the interleave deals blocks
        round-robin; at most one block, the last, is partial)."""
        nbytes = np.asarray(nbytes, dtype=np.float64)
        full, partial = np.floor(nbytes / self.interleave_bytes), np.mod(nbytes, self.interleave_bytes)
        rounds, extra = np.floor(full / self.units), np.mod(full, self.units)
        with_extra = np.where(extra > 0, (rounds + 1) * self.interleave_bytes, 0.0)
        return np.maximum(with_extra, rounds * self.interleave_bytes + partial)

    def unrefreshed_ns(self, nbytes: np.ndarray | float, run_bytes: np.ndarray | float) -> np.ndarray:
        """The closed form without refresh: the busiest channel's bus time or its activate limit."""
        bus_ns = self.busiest_unit_bytes(nbytes) / self.unit_bytes_per_ns
        activates_per_unit = np.ceil(self.activates(nbytes, run_bytes) / self.units)
        activate_ns = activates_per_unit * max(self.activate_interval_ns, self.tRC_ns / self.banks_per_unit)
        return np.maximum(bus_ns, activate_ns)

    def sequential_ns(self, nbytes: np.ndarray | float) -> np.ndarray:
        """Calibrated time of one contiguous run, without refresh and beyond its first access: the
        detailed model's time for the busiest channel's accesses (linear past the measured range)."""
        cal = self.calibration
        accesses = np.ceil(self.busiest_unit_bytes(nbytes) / self.access_bytes - 1e-9)
        grid = np.asarray(cal.busiest_accesses, dtype=np.float64)
        times = np.asarray(cal.sequential_ns, dtype=np.float64)
        slope = (times[-1] - times[-2]) / (grid[-1] - grid[-2])
        inside = np.interp(accesses, grid, times)
        return np.where(accesses > grid[-1], times[-1] + (accesses - grid[-1]) * slope, inside)

    def pattern_base_ns(self, nbytes: np.ndarray | float, run_bytes: np.ndarray | float) -> np.ndarray:
        """What the pattern factors scale: the calibrated time of one stream of the same bytes, or the
        activate limit of the runs if that is longer."""
        activates_per_unit = np.ceil(self.activates(nbytes, run_bytes) / self.units)
        activate_ns = activates_per_unit * max(self.activate_interval_ns, self.tRC_ns / self.banks_per_unit)
        return np.maximum(self.sequential_ns(nbytes), activate_ns)

    def service_ns(self, nbytes: np.ndarray | float, run_bytes: np.ndarray | float,
                   pattern: str = "strided") -> np.ndarray:
        """Time the channels are busy with a transfer (excluding the first-access latency).

        `pattern`: how runs of `run_bytes` lie, `strided` (consecutive per-stream slots, the default:
        also weights and the LM head) or `random` (gathered rows). Uncalibrated: the closed form over
        the refresh efficiency. Calibrated: one run takes the sequential table; from `run_counts[0]`
        runs the closed form times the pattern's factor (bilinear in log2 run size and count); between
        one and `run_counts[0]` runs the two are blended in log2 count."""
        core = self.unrefreshed_ns(nbytes, run_bytes)
        cal = self.calibration
        if cal is None:
            return core / self.refresh_efficiency
        if pattern not in PATTERNS:
            raise ValueError(f"unknown access pattern {pattern!r}; known: {', '.join(PATTERNS)}")
        nbytes = np.asarray(nbytes, dtype=np.float64)
        run = np.maximum(np.minimum(np.asarray(run_bytes, dtype=np.float64), nbytes), 1.0)
        count = np.maximum(nbytes / run, 1.0)
        many = self.pattern_base_ns(nbytes, run) * interpolate(cal, pattern, run, count)
        w = np.clip(np.log2(count) / np.log2(cal.run_counts[0]), 0.0, 1.0)
        one = self.sequential_ns(nbytes)
        return np.where(nbytes > 0, (one * (1 - w) + many * w) * cal.refresh_factor, 0.0)


def interpolate(cal: DramCalibration, pattern: str, run_bytes, count) -> np.ndarray:
    """The calibration factor at (run size, run count): linear in log2 of both, clamped at the edges."""
    table = np.asarray(getattr(cal, pattern), dtype=np.float64)           # (counts, runs)
    x = np.log2(np.maximum(np.asarray(run_bytes, dtype=np.float64), 1.0))
    xs = np.log2(np.asarray(cal.run_bytes, dtype=np.float64))
    by_count = np.stack([np.interp(x, xs, row) for row in table])          # (counts, *shape)
    y = np.log2(np.asarray(count, dtype=np.float64))
    ys = np.log2(np.asarray(cal.run_counts, dtype=np.float64))
    if len(ys) == 1:
        return by_count[0]
    j = np.clip(np.searchsorted(ys, y, side="right") - 1, 0, len(ys) - 2)
    w = np.clip((y - ys[j]) / (ys[j + 1] - ys[j]), 0.0, 1.0)
    low = np.take_along_axis(by_count, j[None, ...], axis=0)[0] if by_count.ndim > 1 else by_count[j]
    high = np.take_along_axis(by_count, (j + 1)[None, ...], axis=0)[0] if by_count.ndim > 1 else by_count[j + 1]
    return low * (1 - w) + high * w
