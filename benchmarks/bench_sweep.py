"""Wall time of the default sweep from scratch, and points/s with 1 vs 2 local workers and a 2-worker
Dask LocalCluster (speedups against 1 worker). Every run starts from an empty output folder, so the
figures include pool start-up; report drawing is timed separately.

    python benchmarks/bench_sweep.py [--subset N] [--traces a.parquet ...] [--large N]

`--large N` also times an N-point sweep (the default sweep's axes with more thresholds and seeds,
384 steps per point, each with its baseline) on 2 workers: the design-space exploration rate (target:
10,000 points in under 10 minutes, i.e. 17 points/s).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hwsim.sweeps.execute import run_sweep
from hwsim.sweeps.report import write_report
from hwsim.sweeps.spec import expand, load_sweep


def timed(label: str, spec, out: Path, **kwargs) -> float:
    started = time.perf_counter()
    table, counts = run_sweep(spec, None, out, progress=False, report=False, **kwargs)
    wall_s = time.perf_counter() - started
    assert counts["failed"] == 0, table.loc[table["status"] != "ok", "error"].head().tolist()
    print(f"{label:<34} {len(table):>4} points {wall_s:7.1f} s  {len(table) / wall_s:6.2f} points/s")
    return len(table) / wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sweep", default=None, help="sweep file (default: configs/sweeps/default.yaml)")
    parser.add_argument("--subset", type=int, default=24, help="points for the worker comparison")
    parser.add_argument("--traces", nargs="*", default=None,
                        help="replay these trace files instead of the shipped set (before the catalog exists)")
    parser.add_argument("--large", type=int, default=0, help="also time a sweep of this many points")
    args = parser.parse_args()
    spec, file = load_sweep(args.sweep)
    base = str(file.parent / spec.base) if file and (file.parent / spec.base).suffix == ".yaml" else spec.base
    extra = {"workload.traces": args.traces} if args.traces else {}
    spec = spec.model_copy(update={"base": base, "points": [{**p, **extra} for p in spec.points] or [extra]})
    print(f"default sweep: {len(expand(spec))} points")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        run_sweep(spec, None, tmp / "default", workers=2, progress=False, report=False)
        simulate_s = time.perf_counter() - started
        write_report(tmp / "default")
        total_s = time.perf_counter() - started
        print(f"default sweep from scratch, 2 workers: {total_s:.1f} s wall "
              f"({simulate_s:.1f} s simulating, {total_s - simulate_s:.1f} s report)")

        grid = {k: v for k, v in spec.grid.items()}
        for key in ("hardware", "model"):  # the worker comparison: one hardware, one model
            if key in grid:
                grid[key] = grid[key][:1]
        small = spec.model_copy(update={"grid": grid, "keep_steps": None, "keep_steps_all_below": 0})
        n = len(expand(small))
        if n > args.subset:
            print(f"(worker comparison on {n} points)")
        one = timed("local pool, 1 worker", small, tmp / "w1", workers=1)
        two = timed("local pool, 2 workers", small, tmp / "w2", workers=2)
        dask = timed("Dask LocalCluster, 2 workers", small, tmp / "dask", workers=2, scheduler="local")
        print(f"speedup 2 vs 1 worker: {two / one:.2f}x; Dask LocalCluster (2) vs 1 worker: {dask / one:.2f}x")
        if args.large:
            timed(f"{args.large}-point sweep, 2 workers", large_sweep(spec, args.large), tmp / "large", workers=2)


def large_sweep(spec, points: int):
    """The default sweep's grid with thresholds and seeds added until it has at least `points` points,
    then cut to exactly `points` with an explicit point list."""
    grid = dict(spec.grid)
    grid["policy.threshold_bits"] = [round(0.25 * k, 2) for k in range(1, 25)]
    base = len(expand(spec.model_copy(update={"grid": grid, "keep_steps": None})))
    grid["workload.seed"] = list(range(-(-points // base)))
    big = spec.model_copy(update={"grid": grid, "keep_steps": None})
    rows = [p.params for p in expand(big)][:points]
    return spec.model_copy(update={"grid": {}, "points": [{**r, "workload.steps": 384} for r in rows],
                                   "keep_steps": None})


if __name__ == "__main__":
    main()
