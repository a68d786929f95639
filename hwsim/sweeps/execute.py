"""Running the points: a local process pool (default) or a Dask cluster, both calling `run_point`.

`run_point` is the whole unit of work: it simulates one validated experiment into a private temp folder
and publishes it atomically, recording a failure as error.json instead of raising, so one bad point
never stops the sweep and a killed sweep never leaves half a point behind. Pool workers watch the
sweep's process and exit as soon as it is gone (SIGKILL included), and one folder runs one sweep at a
time (a lock file `DIR/.hwsim-sweep.lock`; a second sweep on it is refused with a clear message).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml
from tqdm import tqdm

from hwsim.errors import HwsimInputError
from hwsim.files import write_text_atomic
from hwsim.sweeps.store import PointStore, process_alive, write_json

LOCK_NAME = ".hwsim-sweep.lock"
#: Seconds between a worker's checks that the sweep that started it still lives.
PARENT_POLL_S = 0.5

_ENTROPIES: dict[tuple | None, list] = {}


def cached_entropies(exp) -> list:
    """Traces are loaded once per worker process and reused by every point that replays them."""
    from hwsim.runner import workload_entropies

    key = exp.workload.traces
    if key not in _ENTROPIES:
        if len(_ENTROPIES) >= 8:
            _ENTROPIES.clear()
        _ENTROPIES[key] = workload_entropies(exp)
    return _ENTROPIES[key]


def run_point(task: dict) -> dict:
    """Simulate one point and publish DIR/points/<hash>/ (summary.json, resolved.yaml, point.json and,
    when asked, steps.parquet), or error.json with the traceback. Never raises."""
    from hwsim.config.experiment import Experiment
    from hwsim.runner import run_experiment

    store, point_hash = PointStore(task["root"]), task["point_hash"]
    started = time.perf_counter()
    tmp = store.new_tmp(point_hash)
    meta = {"point_hash": point_hash, "params": task["params"], "pid": os.getpid(),
            "host": socket.gethostname()}
    try:
        exp = Experiment.model_validate(task["experiment"])
        entropies = cached_entropies(exp)
        result = run_experiment(exp, tmp if task["keep_steps"] else None, entropies=entropies)
        if not task["keep_steps"]:
            write_text_atomic(tmp / "summary.json", json.dumps(result.summary, indent=2, sort_keys=True))
            write_text_atomic(tmp / "resolved.yaml", yaml.safe_dump(exp.model_dump(mode="json"), sort_keys=False))
        write_json(tmp / "point.json", {**meta, "wall_s": time.perf_counter() - started, "status": "ok"})
        store.publish(tmp, point_hash)
        return {"point_hash": point_hash, "status": "ok", "error": ""}
    except Exception as error:  # noqa: BLE001 - recorded, not raised: the sweep goes on
        for child in tmp.iterdir():
            child.unlink(missing_ok=True)
        message = f"{type(error).__name__}: {error}"
        write_json(tmp / "error.json", {**meta, "error": message, "traceback": traceback.format_exc(),
                                        "wall_s": time.perf_counter() - started})
        store.publish(tmp, point_hash)
        return {"point_hash": point_hash, "status": "failed", "error": message}


def pending_tasks(points: list, store: PointStore) -> tuple[list[dict], int]:
    """Tasks for the points not finished yet (one per distinct hash); also the count already done.
    A finished point is redone only when steps are now wanted and it has none."""
    tasks, seen, done = [], set(), 0
    for p in points:
        if p.point_hash in seen:
            continue
        seen.add(p.point_hash)
        if store.is_done(p.point_hash) and (not p.keep_steps or store.has_steps(p.point_hash)):
            done += 1
            continue
        tasks.append({"root": str(store.root), "point_hash": p.point_hash, "params": p.params,
                      "experiment": p.resolved, "keep_steps": p.keep_steps})
    return tasks, done


def execute(points: list, store: PointStore, *, workers: int | None = None, scheduler: str | None = None,
            progress: bool = True) -> Counter:
    """Run every unfinished point; returns counts of ok, failed and cached points (distinct hashes).
    `scheduler`: None = local process pool of `workers`; `local` = Dask LocalCluster; `tcp://...` = a
    running Dask scheduler; `inline` = this process, serially (debugging, tests)."""
    store.points_dir.mkdir(parents=True, exist_ok=True)
    store.clean_tmp()
    tasks, done = pending_tasks(points, store)
    counts = Counter(cached=done, ok=0, failed=0)
    workers = max(1, workers or os.cpu_count() or 1)
    bar = tqdm(total=done + len(tasks), initial=done, unit="point", desc="sweep", disable=not progress,
               dynamic_ncols=True)
    bar.set_postfix(failed=0, cached=done)

    def finished(task: dict, outcome: dict | None, error: BaseException | None) -> None:
        if outcome is None:  # the worker itself died: record it from here
            text = f"{type(error).__name__}: {error}"
            store.record_failure(task["point_hash"], task["params"], text,
                                 "".join(traceback.format_exception(error)))
            outcome = {"status": "failed"}
        counts[outcome["status"]] += 1
        bar.update(1)
        bar.set_postfix(failed=counts["failed"], cached=done)

    try:
        if not tasks:
            pass
        elif scheduler == "inline":  # debugging and tests: this process, one point after another
            for task in tasks:
                finished(task, run_point(task), None)
        elif scheduler:
            _run_dask(tasks, scheduler, workers, finished)
        else:
            _run_pool(tasks, workers, finished)
    finally:
        bar.close()
    return counts


def _watch_parent(parent_pid: int) -> None:
    """Pool initializer: a daemon thread ends this worker the moment the sweep process is gone, so a
    killed sweep leaves no worker computing (and publishing) points behind it."""
    import threading

    def watch() -> None:
        while process_alive(parent_pid):
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="hwsim-parent-watch", daemon=True).start()


def _run_pool(tasks: list[dict], workers: int, finished) -> None:
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context,
                             initializer=_watch_parent, initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(run_point, task): task for task in tasks}
        try:
            for future in as_completed(futures):
                error = future.exception()
                finished(futures[future], None if error else future.result(), error)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _run_dask(tasks: list[dict], scheduler: str, workers: int, finished) -> None:
    """`local`: a LocalCluster of `workers` single-threaded processes; else the address of a running
    scheduler (tcp://host:port), whose workers must have hwsim installed and see the output folder."""
    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=min(workers, len(tasks)), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as error:
            raise HwsimInputError(f"cannot reach the Dask scheduler at {scheduler} ({type(error).__name__}: "
                                  f"{error})", key="--scheduler") from None
    try:
        futures = client.map(run_point, tasks, pure=False)
        task_of = {future.key: task for future, task in zip(futures, tasks)}
        for future in dask_completed(futures):
            if future.status == "finished":
                finished(task_of[future.key], future.result(), None)
            else:
                finished(task_of[future.key], None, future.exception())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def default_workers() -> int:
    return os.cpu_count() or 1


def resolve_out(out: str | Path | None, name: str) -> Path:
    from hwsim.paths import REPORTS_DIR, output_path

    return Path(out) if out else output_path(REPORTS_DIR, *name.split("/"), key="name")


def write_base_experiment(spec, sweep_file: Path | None, out: Path) -> None:
    """DIR/base.yaml: the sweep's base experiment, resolved (the report's default operating point)."""
    from hwsim.config.loading import load_experiment
    from hwsim.files import write_atomic
    from hwsim.sweeps.spec import base_experiment_path

    base = load_experiment(base_experiment_path(spec.base, sweep_file))
    write_atomic(out / "base.yaml", lambda tmp: tmp.write_text(
        yaml.safe_dump(base.model_dump(mode="json"), sort_keys=False)))


def run_sweep(spec, sweep_file: Path | None, out: Path, *, workers: int | None = None,
              scheduler: str | None = None, progress: bool = True, report: bool = True):
    """Expand, run what is unfinished, write results.parquet/csv and (by default) the report.
    Returns (results table, counts)."""
    from hwsim.files import check_output_dir, write_atomic
    from hwsim.sweeps.report import write_report
    from hwsim.sweeps.spec import expand
    from hwsim.sweeps.store import results_table, write_results

    check_scheduler(scheduler)
    points = expand(spec, sweep_file)
    out = check_output_dir(Path(out))
    out.mkdir(parents=True, exist_ok=True)
    if spec.quality:
        import importlib.util

        if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
            raise HwsimInputError("quality: true needs the [traces] extra (torch, transformers)", file=sweep_file,
                                  key="quality", allowed="install it (see README) or set quality: false")
    with folder_lock(out):
        write_atomic(out / "sweep.yaml", lambda tmp: tmp.write_text(
            yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)))
        write_base_experiment(spec, sweep_file, out)  # the report marks the base as the default point
        store = PointStore(out)
        counts = execute(points, store, workers=workers, scheduler=scheduler, progress=progress)
        table = results_table(points, store)
        if spec.quality:
            from hwsim.sweeps.quality_columns import add_quality_columns

            table = add_quality_columns(table, points, spec.quality_options,
                                        workers=1 if scheduler == "inline" else workers)
        write_results(table, out)
        if report:
            write_report(out, title=f"hwsim sweep report: {spec.name}")
    return table, counts


def folder_lock(out: Path):
    """Hold `DIR/.hwsim-sweep.lock` for the whole run; a second sweep on the same folder is refused
    (it would otherwise compute the same points twice and race on their publication)."""
    from contextlib import contextmanager

    import filelock

    @contextmanager
    def held():
        lock = filelock.FileLock(str(out / LOCK_NAME), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise HwsimInputError(f"another hwsim sweep is running on {out} (lock {out / LOCK_NAME}); "
                                  "wait for it to finish or give another --out", key="--out") from None
        try:
            yield
        finally:
            lock.release()

    return held()


def check_scheduler(scheduler: str | None) -> None:
    """None, inline, local or tcp://HOST:PORT (tls:// too): anything else is refused before work."""
    import re

    if scheduler in (None, "inline", "local"):
        return
    if not isinstance(scheduler, str) or not re.fullmatch(r"(tcp|tls)://[^\s/:]+:\d{1,5}", scheduler):
        raise HwsimInputError(f"{scheduler!r} is not a scheduler", key="--scheduler",
                              allowed="local, inline, or tcp://HOST:PORT of a running Dask scheduler")
    host, port = scheduler.split("://", 1)[1].rsplit(":", 1)
    try:  # a quick probe before any output exists (Dask's own connect waits much longer)
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as error:
        raise HwsimInputError(f"cannot reach the Dask scheduler at {scheduler} ({error})",
                              key="--scheduler") from None
