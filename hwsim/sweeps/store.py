"""The point store: DIR/points/<hash>/ holds one finished point, written all-or-nothing.

A worker fills a private temp folder (`points/.tmp-<hash>-<random>`) and renames it into place with
os.replace, so a point folder either holds a complete result or does not exist: a sweep killed at any
moment (SIGKILL included) loses only the points in flight, and the next run skips what finished.
A finished point has `summary.json`; a failed one has `error.json` (retried on the next run). An error
record never replaces a finished point, and a temp folder is removed only once the process named in
it is gone, so a store is safe under a second process (the sweep also holds a folder lock).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwsim.bounds import matmul_precision
from hwsim.files import write_atomic, write_text_atomic
from hwsim.geometry import footprint
from hwsim.sizing import state_bytes

POINTS = "points"
TMP_PREFIX = ".tmp-"


class PointStore:
    """Folders of finished points under `root/points`, keyed by the point hash."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.points_dir = self.root / POINTS

    def point_dir(self, point_hash: str) -> Path:
        return self.points_dir / point_hash

    def is_done(self, point_hash: str) -> bool:
        """A readable summary.json (a half-written one from an older hwsim counts as not done)."""
        return self.read(point_hash)[0] == "ok"

    def has_steps(self, point_hash: str) -> bool:
        return (self.point_dir(point_hash) / "steps.parquet").is_file()

    def new_tmp(self, point_hash: str) -> Path:
        tmp = self.points_dir / f"{TMP_PREFIX}{point_hash[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        return tmp

    def publish(self, tmp: Path, point_hash: str) -> Path:
        """Move a filled temp folder into place; an older result (failed, or lacking steps) is replaced,
        but an error record never replaces a finished point (the late failure is dropped)."""
        final = self.point_dir(point_hash)
        old = None
        if not (tmp / "summary.json").is_file() and self.is_done(point_hash):
            shutil.rmtree(tmp, ignore_errors=True)
            return final
        if final.exists():
            old = self.points_dir / f"{TMP_PREFIX}old-{point_hash[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def record_failure(self, point_hash: str, params: dict, error: str, traceback_text: str) -> None:
        """Used by the parent when a worker died before it could record its own failure."""
        tmp = self.new_tmp(point_hash)
        write_json(tmp / "error.json", {"point_hash": point_hash, "params": params, "error": error,
                                        "traceback": traceback_text})
        self.publish(tmp, point_hash)

    def clean_tmp(self) -> int:
        """Remove temp folders left by killed runs: only those whose owner process is gone."""
        if not self.points_dir.is_dir():
            return 0
        stale = [p for p in self.points_dir.iterdir()
                 if p.name.startswith(TMP_PREFIX) and not process_alive(owner_pid(p.name))]
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        return len(stale)

    def read(self, point_hash: str) -> tuple[str, dict, str]:
        """(status, summary, error) of one point: ok, failed or missing."""
        folder = self.point_dir(point_hash)
        summary = _read_json(folder / "summary.json")
        if isinstance(summary, dict):
            return "ok", summary, ""
        error = _read_json(folder / "error.json")
        if isinstance(error, dict):
            return "failed", {}, str(error.get("error", ""))
        return "missing", {}, ""


def _read_json(path: Path) -> Any:
    """The parsed file, or None when it is absent or unreadable (then the point is simply redone)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def owner_pid(name: str) -> int | None:
    """The process id in a temp name `.tmp-[old-]HASH-PID-RANDOM` (None for older names without one)."""
    parts = name.removeprefix(TMP_PREFIX).removeprefix("old-").split("-")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def process_alive(pid: int | None) -> bool:
    """Whether `pid` is a live process on this host (a zombie counts as gone)."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def param_value(value: Any) -> Any:
    """A swept value as one table cell: scalars stay, a list of names joins with '+', else JSON."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return "+".join(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


#: Resolved settings every row carries, swept or not, so figures can group by them.
CONFIG_COLUMNS = {
    "cfg.model.name": ("model", "name"), "cfg.model.architecture": ("model", "architecture"),
    "cfg.hardware.name": ("hardware", "name"), "cfg.policy.kind": ("policy", "kind"),
    "cfg.policy.threshold_bits": ("policy", "threshold_bits"), "cfg.policy.low_bits": ("policy", "low_bits"),
    "cfg.policy.high_bits": ("policy", "high_bits"), "cfg.policy.group_size": ("policy", "group_size"),
    "cfg.policy.scale_bits": ("policy", "scale_bits"), "cfg.workload.batch_size": ("workload", "batch_size"),
    "cfg.workload.steps": ("workload", "steps"), "cfg.workload.traces": ("workload", "traces"),
}


def analytic_columns(exp) -> dict[str, float]:
    """Closed-form figures of a point (geometry and hardware datasheet), for the report's curves:
    per-step weight bytes, per-stream state bytes read+written at high precision, matmul FLOPs and fp32
    element-wise ops per token, and the hardware's peaks by the rule of `hwsim.bounds`."""
    fp = footprint(exp.model)
    policy, layer = exp.policy, fp.layer
    if layer is None:   # a hybrid stack: per-layer arrays (hwsim.stack), KV and experts beside
        stack = fp.stack
        ssm = 2.0 * float(state_bytes(stack.ssm_state_elements + stack.linear_state_elements, policy.high_bits,
                                      policy.group_size, policy.scale_bits).sum())
        conv = 2.0 * float(stack.conv_state_bytes_per_stream.sum())
        vector = float(stack.vector_ops_per_stream.sum())
        matmul = float(stack.matmul_flops_per_stream.sum() + fp.lm_head_flops_per_stream)
    else:
        ssm = 2.0 * fp.n_layers * float(state_bytes(layer.ssm_state_elements, policy.high_bits,
                                                    policy.group_size, policy.scale_bits))
        conv = 2.0 * fp.n_layers * fp.conv_state_bytes_per_stream_layer
        vector = fp.n_layers * (layer.scan_ops + layer.conv_ops)
        matmul = float(fp.n_layers * fp.matmul_flops_per_stream_layer + fp.lm_head_flops_per_stream)
    hw = exp.hardware
    return {
        "analytic_weight_bytes_per_step": fp.weight_bytes_total,
        "analytic_ssm_state_bytes_per_stream_step": ssm,
        "analytic_conv_state_bytes_per_stream_step": conv,
        "analytic_state_crossover_batch": fp.weight_bytes_total / ssm,
        "analytic_vector_ops_per_token": float(vector),
        "analytic_matmul_flops_per_token": matmul,
        "hw_peak_matmul_TFLOPS": float(hw.compute.matmul_TFLOPS.get(
            matmul_precision(hw, fp.weight_precision_key), np.nan)),
        "hw_dram_peak_bandwidth_GBps": float(hw.dram.peak_bandwidth_GBps) if hw.dram else 0.0,
    }


def results_table(points: list, store: PointStore) -> pd.DataFrame:
    """One tidy row per point: param.<key> columns, point_hash, status, error, cfg.* and analytic_*
    columns, then every summary metric (units in the names, as the runner writes them)."""
    params = pd.DataFrame([{f"param.{k}": param_value(v) for k, v in p.params.items()} for p in points])
    rows = []
    for p in points:  # one JSON read per point: I/O, not arithmetic
        status, summary, error = store.read(p.point_hash)
        cfg = {col: param_value(p.resolved.get(sec, {}).get(key)) for col, (sec, key) in CONFIG_COLUMNS.items()}
        rows.append({"point_hash": p.point_hash, "status": status, "error": error, **cfg,
                     **analytic_columns(p.experiment), **summary})
    table = pd.concat([params.reset_index(drop=True), pd.DataFrame(rows)], axis=1)
    for column in table.columns[table.dtypes == object]:
        kinds = table[column].dropna().map(type).unique()
        if len(kinds) > 1:  # mixed ints and strings would not survive Parquet
            table[column] = table[column].map(lambda v: v if v is None else str(v))
    return table


def write_results(table: pd.DataFrame, out: Path) -> None:
    write_atomic(out / "results.parquet", lambda tmp: table.to_parquet(tmp, index=False))
    write_atomic(out / "results.csv", lambda tmp: table.to_csv(tmp, index=False))
