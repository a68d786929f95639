"""Running sweeps: the point store, failures, resume after SIGKILL, process pool vs Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hwsim.cli import main
from hwsim.paths import WORKLOADS_DIR
from hwsim.sweeps.execute import run_sweep
from hwsim.sweeps.spec import load_sweep

TRACE = str(WORKLOADS_DIR / "traces" / "prose-pydocs.parquet")


def write_sweep(folder: Path, *, steps: int = 32, batches=(2, 8), thresholds=(1.0, 3.0), extra=()) -> Path:
    sweep = {"name": "tiny", "base": "default",
             "grid": {"workload.batch_size": list(batches), "policy.threshold_bits": list(thresholds)},
             "points": [{"model": "mamba2-130m", "workload.steps": steps, "workload.traces": [TRACE]},
                        *extra]}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def finished_points(out: Path) -> dict[str, int]:
    """hash -> mtime_ns of its summary.json, for every finished point."""
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "points").glob("*/summary.json")
            if not p.parent.name.startswith(".")}


def test_unknown_trace_stops_the_sweep_before_it_runs(tmp_path, capsys):
    bad = {"model": "mamba2-130m", "workload.steps": 32, "workload.traces": ["no-such-trace"]}
    sweep = write_sweep(tmp_path, extra=[bad])
    rc = main(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--no-progress", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 2 and "no-such-trace" in err and "workload.traces[0]" in err and "point 1" in err
    assert not (tmp_path / "out").exists()


def test_failing_point_is_recorded_and_the_others_finish(tmp_path, capsys, monkeypatch):
    import shutil

    from hwsim.sweeps import execute

    doomed = tmp_path / "doomed.parquet"  # valid when the sweep is checked, gone when its points run
    shutil.copy(TRACE, doomed)
    bad = {"model": "mamba2-130m", "workload.steps": 32, "workload.traces": [str(doomed)]}
    sweep = write_sweep(tmp_path, extra=[bad])
    out = tmp_path / "out"
    real = execute.cached_entropies

    def vanishing(exp):
        doomed.unlink(missing_ok=True)
        return real(exp)

    monkeypatch.setattr(execute, "cached_entropies", vanishing)
    rc = main(["sweep", str(sweep), "--out", str(out), "--scheduler", "inline", "--no-progress", "--no-report"])
    printed = capsys.readouterr().out
    assert rc == 4 and "4 point(s) failed" in printed  # exit status = number of failed points
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 8 and (table["status"] == "ok").sum() == 4  # 4 grid cells x 2 points
    failed = table[table["status"] == "failed"]
    assert failed["point_hash"].nunique() == 4 and failed["error"].str.contains("doomed").all()
    error = json.loads((out / "points" / failed["point_hash"].iloc[0] / "error.json").read_text())
    assert "Traceback" in error["traceback"]
    assert list(table.columns[:4]) == ["param.workload.batch_size", "param.policy.threshold_bits",
                                       "param.model", "param.workload.steps"]
    assert {"point_hash", "status", "error", "tokens_per_s", "saving_dram_bytes_per_token_pct"} <= set(table)
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == 8

    before = finished_points(out)
    shutil.copy(TRACE, doomed)
    rc = main(["sweep", str(sweep), "--out", str(out), "--scheduler", "inline", "--no-progress", "--no-report"])
    assert rc == 4
    assert "0 computed, 4 already done, 4 failed" in capsys.readouterr().out  # failures are retried
    assert finished_points(out) == before


def test_resume_after_sigkill_loses_nothing_and_recomputes_nothing(tmp_path):
    sweep = write_sweep(tmp_path, steps=256, batches=(16, 32, 48, 64), thresholds=(0.5, 1.0, 2.0))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "hwsim.cli", "sweep", str(sweep), "--out", str(out), "--workers", "1",
               "--no-progress", "--no-report"]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while len(finished_points(out)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its pool workers, mid-way
        proc.wait()
    before = finished_points(out)
    assert 2 <= len(before) < 12, "the sweep should have been killed mid-way"
    pids = {h: json.loads((out / "points" / h / "point.json").read_text())["pid"] for h in before}

    spec, file = load_sweep(sweep)
    table, counts = run_sweep(spec, file, out, scheduler="inline", progress=False, report=False)
    assert counts["cached"] == len(before) and counts["ok"] == 12 - len(before) and counts["failed"] == 0
    after = finished_points(out)
    assert len(after) == 12 and table["point_hash"].is_unique and (table["status"] == "ok").all()
    assert {h: after[h] for h in before} == before  # finished points untouched
    assert {h: json.loads((out / "points" / h / "point.json").read_text())["pid"] for h in before} == pids
    assert not [p for p in (out / "points").iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_table_as_the_process_pool(tmp_path):
    sweep = write_sweep(tmp_path)
    spec, file = load_sweep(sweep)
    pool, _ = run_sweep(spec, file, tmp_path / "pool", workers=2, progress=False, report=False)
    dask, counts = run_sweep(spec, file, tmp_path / "dask", workers=2, scheduler="local", progress=False,
                             report=False)
    assert counts["ok"] == 4
    assert (dask["status"] == "ok").all()
    pd.testing.assert_frame_equal(pool.drop(columns=["hwsim_version"]), dask.drop(columns=["hwsim_version"]))


def test_steps_are_kept_only_where_asked(tmp_path):
    sweep = write_sweep(tmp_path)
    raw = yaml.safe_load(sweep.read_text())
    raw.update(keep_steps_all_below=0, keep_steps={"workload.batch_size": 8, "policy.threshold_bits": 3.0})
    sweep.write_text(yaml.safe_dump(raw))
    spec, file = load_sweep(sweep)
    table, _ = run_sweep(spec, file, tmp_path / "out", scheduler="inline", progress=False, report=False)
    kept = [h for h in table["point_hash"] if (tmp_path / "out" / "points" / h / "steps.parquet").exists()]
    assert len(kept) == 1
    assert table.set_index("point_hash").loc[kept[0], "param.workload.batch_size"] == 8
    assert all((tmp_path / "out" / "points" / h / "resolved.yaml").exists() for h in table["point_hash"])
