"""Transaction-level DRAM timing: how long a transfer of N bytes occupies the channels, in closed form.

A transfer is split over the (pseudo-)channels by the address interleave. Each channel's service time
is the larger of its data-bus time and its activate limit (four activates per tFAW, one per tRRD_S,
one per tRC per bank), stretched by refresh (tRFC every tREFI). So streaming reaches about
1 - tRFC/tREFI of peak and small random accesses are tFAW-bound, as DRAMsim3 and Ramulator 2 show.
Everything is numpy-vectorised over transfers; no per-burst loop.

The closed form is then scaled by the preset's calibration (configs/calibration/<preset>.yaml: a factor
per run size measured with the detailed request-level model, `hwsim dram calibrate`), so both levels
agree on the patterns hwsim generates. `from_config(dram, calibrated=False)` gives the bare closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.config.hardware import DramMemory
from hwsim.memory.calibration import Calibration, load_calibration


@dataclass(frozen=True)
class DramTiming:
    """Resolved numbers (ns, bytes) of one DRAM configuration; built once per experiment."""

    units: int
    unit_bytes_per_ns: float
    interleave_bytes: int
    row_bytes: int
    access_bytes: int
    banks_per_unit: int
    activate_interval_ns: float     # sustained: max(tFAW / 4, tRRD_S)
    tRC_ns: float
    refresh_efficiency: float       # 1 - tRFC / tREFI
    read_latency_ns: float          # closed row: tRCD + tCL + burst
    write_to_read_ns: float
    read_to_write_ns: float
    peak_bytes_per_ns: float
    calibration: Calibration | None = None

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None

    @classmethod
    def from_config(cls, dram: DramMemory, *, calibrated: bool = True) -> DramTiming:
        org, t = dram.preset.organisation, dram.preset.timings_ns
        calibration = load_calibration(dram.preset.name) if calibrated else None
        burst_ns = org.burst_length / dram.pin_rate_Gbps  # bits per pin / (Gb/s) = ns
        return cls(
            units=dram.units, unit_bytes_per_ns=dram.unit_bandwidth_GBps,
            interleave_bytes=dram.interleave_bytes, row_bytes=org.row_bytes, access_bytes=org.access_bytes,
            banks_per_unit=org.bank_groups * org.banks_per_group,
            activate_interval_ns=max(t.tFAW / 4.0, t.tRRD_S), tRC_ns=t.tRC,
            refresh_efficiency=1.0 - t.tRFC / t.tREFI,
            read_latency_ns=t.tRCD + t.tCL + burst_ns,
            write_to_read_ns=t.tCWL + burst_ns + t.tWTR_L,
            read_to_write_ns=max(t.tCL + burst_ns + 2 * t.tCK - t.tCWL, 0.0),
            peak_bytes_per_ns=dram.peak_bandwidth_GBps, calibration=calibration)

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

    def service_ns(self, nbytes: np.ndarray | float, run_bytes: np.ndarray | float) -> np.ndarray:
        """Time the channels are busy with a transfer (excluding the first-access latency)."""
        nbytes = np.asarray(nbytes, dtype=np.float64)
        blocks = np.ceil(nbytes / self.interleave_bytes)
        busiest_unit_bytes = np.minimum(np.ceil(blocks / self.units) * self.interleave_bytes, nbytes)
        bus_ns = busiest_unit_bytes / self.unit_bytes_per_ns
        activates_per_unit = np.ceil(self.activates(nbytes, run_bytes) / self.units)
        activate_ns = activates_per_unit * max(self.activate_interval_ns, self.tRC_ns / self.banks_per_unit)
        closed = np.maximum(bus_ns, activate_ns) / self.refresh_efficiency
        return closed if self.calibration is None else closed * self.calibration.scale(run_bytes)

    def efficiency(self, nbytes: float, run_bytes: float) -> float:
        """Achieved share of peak bandwidth for a transfer (a closed form the tests compare against)."""
        return float(nbytes / self.peak_bytes_per_ns / self.service_ns(nbytes, run_bytes))
