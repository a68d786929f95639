"""Calibrate the fast (transaction-level) model from the detailed (request-level) one, per DRAM preset.

For the access patterns hwsim generates (streams of runs: weight tiles, per-stream state tiles, conv
states, strided small runs, random single accesses) the detailed model serves a transfer on one stack;
the ratio of its time to the closed form's, by run size, is stored in configs/calibration/<preset>.yaml
and `DramTiming` multiplies its service time by it (log-interpolated in run size). Regenerate with
`hwsim dram calibrate --preset NAME`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from hwsim.config.dram import DramPreset
from hwsim.config.hardware import DramMemory
from hwsim.paths import CONFIGS_DIR

CALIBRATION_DIR = CONFIGS_DIR / "calibration"
#: run sizes (bytes) the table covers: single accesses, strided runs, state tiles, weight tiles
RUN_BYTES = (32, 64, 256, 1024, 4096, 16384, 65536, 262144, 2097152)
TRANSFER_BYTES = 8 * 2**20
#: streams are long enough to span several tREFI, so refresh enters at its average cost
STREAM_TRANSFER_BYTES = 32 * 2**20
QUEUE_DEPTH = 128
INTERLEAVE_BYTES = 256


def transfer_bytes(run_bytes: int) -> int:
    return STREAM_TRANSFER_BYTES if run_bytes >= 65536 else TRANSFER_BYTES


def pattern_addresses(run_bytes: int, access_bytes: int, total_bytes: int | None = None,
                      seed: int = 0) -> np.ndarray:
    """Runs of `run_bytes` at the addresses hwsim uses for them: runs of a row or more sit in slots
    twice their size (state slots hold the high-precision state; a low-precision one uses the start);
    smaller runs are scattered at random (gathers, random and strided accesses)."""
    run = max(run_bytes, access_bytes)
    runs = max(1, (total_bytes or transfer_bytes(run_bytes)) // run)
    per_run = np.arange(run // access_bytes, dtype=np.int64) * access_bytes
    if run >= 2 * 2**20:   # weight tiles: one contiguous stream
        starts = np.arange(runs, dtype=np.int64) * run
    elif run >= 1024:
        starts = np.arange(runs, dtype=np.int64) * 2 * run
    else:
        rng = np.random.default_rng(seed)
        starts = rng.choice(2**31 // run, size=runs, replace=False).astype(np.int64) * run
    return (starts[:, None] + per_run[None, :]).ravel()


def one_stack(preset: DramPreset) -> DramMemory:
    return DramMemory(preset=preset, interleave_bytes=INTERLEAVE_BYTES,
                      source="calibration: one stack at the preset's pin rate")


def measure(dram: DramMemory, run_bytes: int, *, total_bytes: int | None = None,
            queue_depth: int = QUEUE_DEPTH) -> float:
    """Detailed-model time (ns) of one read transfer of `total_bytes` in runs of `run_bytes`."""
    from hwsim.memory.detailed import DetailedDram

    model = DetailedDram(dram, queue_depth=queue_depth)
    address = pattern_addresses(run_bytes, dram.preset.organisation.access_bytes, total_bytes)
    return float(model.submit(address, False, 0.0, keep_latency=False).max())


@dataclass(frozen=True)
class Calibration:
    preset: str
    run_bytes: tuple[float, ...]
    factor: tuple[float, ...]

    def scale(self, run_bytes) -> np.ndarray:
        """Service-time multiplier for runs of `run_bytes` (interpolated in log2 of the run size)."""
        x = np.log2(np.maximum(np.asarray(run_bytes, dtype=np.float64), 1.0))
        return np.interp(x, np.log2(self.run_bytes), self.factor)


def calibrate(preset: DramPreset) -> dict:
    """Measure every run size; the returned mapping is what the YAML file holds."""
    from hwsim.memory.transaction import DramTiming

    dram = one_stack(preset)
    closed = DramTiming.from_config(dram, calibrated=False)
    rows = []
    for run in RUN_BYTES:
        detailed_ns = measure(dram, run)
        nbytes = len(pattern_addresses(run, preset.organisation.access_bytes)) * preset.organisation.access_bytes
        fast_ns = float(closed.service_ns(nbytes, run))
        factor = (detailed_ns - closed.read_latency_ns) / fast_ns
        rows.append({"run_bytes": run, "factor": round(factor, 5),
                     "detailed_GBps": round(nbytes / detailed_ns, 2)})
    return {"preset": preset.name,
            "source": f"hwsim dram calibrate --preset {preset.name} (detailed model, one stack, "
                      f"queue depth {QUEUE_DEPTH}, interleave {INTERLEAVE_BYTES} B, default mapping, "
                      f"{TRANSFER_BYTES // 2**20} MiB read transfers, {STREAM_TRANSFER_BYTES // 2**20} MiB from 64 KiB runs)",
            "queue_depth": QUEUE_DEPTH, "interleave_bytes": INTERLEAVE_BYTES, "points": rows}


def write_calibration(data: dict, directory: Path = CALIBRATION_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{data['preset']}.yaml"
    header = ("# Fast-model calibration: service time x factor by run size, measured with the detailed "
              "model.\n# Generated; do not edit by hand. Regenerate: " + data["source"].split(" (")[0] + "\n")
    path.write_text(header + yaml.safe_dump(data, sort_keys=False))
    return path


def load_calibration(preset_name: str, directory: Path = CALIBRATION_DIR) -> Calibration | None:
    path = directory / f"{preset_name}.yaml"
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text())
    points = data["points"]
    return Calibration(preset_name, tuple(float(p["run_bytes"]) for p in points),
                       tuple(float(p["factor"]) for p in points))
