"""Sweeps that are killed or run twice at once, and writes that fail half-way (a full disk)."""

from __future__ import annotations

import errno
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
from hwsim.sweeps.store import PointStore, process_alive

TRACE = str(WORKLOADS_DIR / "traces" / "prose-pydocs.parquet")
SMALL = ["--set", "model=mamba2-130m", "--set", "workload.batch_size=4", "--set", "workload.steps=64",
         "--set", "run.chunk_steps=16", "--set", f"workload.traces=[{TRACE}]"]


def write_sweep(folder: Path, steps: int = 256) -> Path:
    sweep = {"name": "safety", "base": "default",
             "grid": {"workload.batch_size": [16, 32, 48, 64], "policy.threshold_bits": [0.5, 1.0, 2.0]},
             "points": [{"model": "mamba2-130m", "workload.steps": steps, "workload.traces": [TRACE]}]}
    path = folder / "safety.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def sweep_command(sweep: Path, out: Path, workers: int = 2) -> list[str]:
    return [sys.executable, "-m", "hwsim.cli", "sweep", str(sweep), "--out", str(out), "--workers", str(workers),
            "--no-progress", "--no-report"]


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def finished(out: Path) -> list[Path]:
    return [p for p in (out / "points").glob("*/summary.json") if not p.parent.name.startswith(".")]


# --- the point store under a second process --------------------------------------------------------------

def test_an_error_record_never_replaces_a_finished_point(tmp_path):
    store = PointStore(tmp_path)
    tmp = store.new_tmp("ab" * 32)
    (tmp / "summary.json").write_text(json.dumps({"tokens": 1}))
    store.publish(tmp, "ab" * 32)
    store.record_failure("ab" * 32, {}, "late error", "")
    assert store.read("ab" * 32) == ("ok", {"tokens": 1}, "")
    assert not [p for p in store.points_dir.iterdir() if p.name.startswith(".")]


def test_clean_up_spares_temp_folders_of_live_processes(tmp_path):
    store = PointStore(tmp_path)
    mine = store.new_tmp("cd" * 32)  # owned by this (live) process
    dead = store.points_dir / f".tmp-{'ef' * 8}-999999999-deadbeef"
    dead.mkdir()
    legacy = store.points_dir / f".tmp-{'ef' * 8}-cafebabe"  # an older name without a pid
    legacy.mkdir()
    assert store.clean_tmp() == 2
    assert mine.is_dir() and not dead.exists() and not legacy.exists()
    assert process_alive(os.getpid()) and not process_alive(999999999)


def test_half_written_summary_counts_as_not_done(tmp_path):
    store = PointStore(tmp_path)
    folder = store.point_dir("12" * 32)
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text('{"tokens": 1')
    assert not store.is_done("12" * 32) and store.read("12" * 32)[0] == "missing"


def test_a_second_sweep_on_a_locked_folder_is_refused(tmp_path, capsys):
    import filelock

    from hwsim.sweeps.execute import LOCK_NAME

    sweep = write_sweep(tmp_path, steps=8)
    out = tmp_path / "out"
    out.mkdir()
    with filelock.FileLock(str(out / LOCK_NAME)):
        assert main(["sweep", str(sweep), "--out", str(out), "--no-progress", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "another hwsim sweep is running" in err and "--out" in err
    assert not (out / "points").exists()


# --- full disk: nothing partial under a final name -------------------------------------------------------

def test_full_disk_during_run_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    import pyarrow.parquet as pq

    real = pq.ParquetWriter.write_table
    calls = {"n": 0}

    def write_table(self, table, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second chunk: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", write_table)
    out = tmp_path / "run"
    rc = main(["run", "--out", str(out), *SMALL])
    err = capsys.readouterr().err
    assert rc == 3 and "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert not (out / "steps.parquet").exists() and not (out / "summary.json").exists()
    assert not [p for p in out.iterdir()], "a temporary file was left behind"


def test_full_disk_in_any_atomic_write_keeps_the_old_file(tmp_path):
    from hwsim.files import write_atomic

    target = tmp_path / "summary.json"
    target.write_text("old")

    def fails(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        write_atomic(target, fails)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


@pytest.mark.slow
def test_full_tmpfs_leaves_no_partial_file(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          check=False, capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.decode().strip()})")
    try:
        out = mount / "run"
        done = subprocess.run([sys.executable, "-m", "hwsim.cli", "run", "--out", str(out),
                               "--set", "workload.steps=4096", *SMALL[:2]], check=False, capture_output=True,
                              text=True, cwd=Path(__file__).resolve().parent.parent)
        assert done.returncode == 3, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert not (out / "steps.parquet").exists() and not (out / "summary.json").exists()
        assert not [p for p in out.iterdir() if p.name.startswith(".")]
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# --- processes -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_sigkill_of_the_sweep_leaves_no_live_worker(tmp_path):
    sweep = write_sweep(tmp_path, steps=512)
    out = tmp_path / "out"
    proc = subprocess.Popen(sweep_command(sweep, out), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent)
    try:
        deadline = time.monotonic() + 120
        while len(group_members(proc.pid)) < 3 and time.monotonic() < deadline:  # parent + 2 workers
            time.sleep(0.05)
        assert len(group_members(proc.pid)) >= 3, "the pool never started"
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: its workers must notice by themselves
        proc.wait()
        deadline = time.monotonic() + 5
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert group_members(proc.pid) == [], "workers outlived their sweep"
        settled = len(finished(out))
        time.sleep(1.0)
        assert len(finished(out)) == settled  # nobody publishes points any more
    finally:
        for pid in group_members(proc.pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_two_sweeps_on_one_folder_neither_lose_nor_duplicate_points(tmp_path):
    sweep = write_sweep(tmp_path)
    out = tmp_path / "out"
    root = Path(__file__).resolve().parent.parent
    procs = [subprocess.Popen(sweep_command(sweep, out, workers=1), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=root) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    refused = [err for code, _, err in results if code == 2]
    assert codes in ([0, 0], [0, 2]), results
    assert all("another hwsim sweep is running" in err and "Traceback" not in err for err in refused)
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 12 and table["point_hash"].is_unique and (table["status"] == "ok").all()
    assert len(finished(out)) == 12
    pids = {json.loads((p.parent / "point.json").read_text())["pid"] for p in finished(out)}
    assert len(pids) >= 1
    # a third run finds everything done and computes nothing
    again = subprocess.run(sweep_command(sweep, out, workers=1), check=False, capture_output=True, text=True,
                           cwd=root)
    assert again.returncode == 0 and "0 computed, 12 already done, 0 failed" in again.stdout
    assert not [p for p in (out / "points").iterdir() if p.name.startswith(".tmp-")]
