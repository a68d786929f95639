"""`hwsim sweep`, `hwsim report`, `hwsim compare`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hwsim.cache import add_cache_argument
from hwsim.errors import HwsimInputError

#: More local workers than this is a typo, not a machine.
MAX_WORKERS = 1024


def _execution_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=None,
                        help="local worker processes, or LocalCluster workers (default: all cores)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="tcp://HOST:PORT of a running Dask scheduler, or `local` for a Dask "
                        "LocalCluster, or `inline` to run in this process for debugging (default: a local process pool)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (it is drawn only when stderr is a terminal)")
    add_cache_argument(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    sweep = subparsers.add_parser(
        "sweep", help="run a sweep file (default: configs/sweeps/default.yaml)",
        epilog="examples: hwsim sweep; hwsim sweep models-hardware --workers 2; hwsim sweep my.yaml --dry-run")
    sweep.add_argument("sweep", nargs="?", default=None, metavar="SWEEP",
                       help="a sweep file, or the name of one in configs/sweeps (default: default)")
    sweep.add_argument("--out", help="output folder (default: reports/<sweep name>)")
    sweep.add_argument("--no-report", action="store_true", help="skip report.html at the end")
    sweep.add_argument("--dry-run", action="store_true",
                       help="list the points (count, axes, estimated time) and run nothing")
    _execution_args(sweep)
    sweep.set_defaults(func=cmd_sweep)

    report = subparsers.add_parser("report", help="write DIR/report.html and DIR/figures from stored results")
    report.add_argument("dir", metavar="DIR", help="a sweep output folder (holds results.parquet)")
    report.set_defaults(func=cmd_report)

    hybrids = subparsers.add_parser(
        "hybrids", help="the hybrid presets' comparison table (bytes per token by category, gating saving, "
        "throughput, KV crossovers) as markdown",
        epilog="examples: hwsim hybrids; hwsim hybrids --out reports/hybrids.md --set workload.steps=32")
    hybrids.add_argument("sweep", nargs="?", default="hybrids", metavar="SWEEP",
                         help="a sweep file or name under configs/sweeps giving the points (default: hybrids)")
    hybrids.add_argument("--out", default=None, help="markdown file (default: reports/hybrids.md)")
    hybrids.set_defaults(func=cmd_hybrids)

    compare = subparsers.add_parser("compare", help="the same experiment on several hardware configurations")
    compare.add_argument("hardware", nargs="+", metavar="HW", help="hardware preset names or .yaml files")
    compare.add_argument("--experiment", default=None,
                         help="experiment file or name under configs/experiments (default: default)")
    compare.add_argument("--out", help="output folder (default: reports/compare/<HW_A>-vs-<HW_B>...)")
    compare.add_argument("--json", action="store_true", help="print the side-by-side table as JSON")
    compare.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value",
                         help="override one experiment key on every configuration, e.g. workload.steps=256")
    _execution_args(compare)
    compare.set_defaults(func=cmd_compare)


def _workers(args) -> int | None:
    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        raise HwsimInputError(f"{args.workers} workers", key="--workers", allowed=f"1 to {MAX_WORKERS}")
    return args.workers


def _finish(counts, table, out: Path, started: float) -> int:
    failed = int((table["status"] != "ok").sum())
    print(f"{len(table)} points ({counts['ok']} computed, {counts['cached']} already done, "
          f"{failed} failed) in {time.perf_counter() - started:.1f} s -> {out}")
    if failed:
        print(f"{failed} point(s) failed; see {out}/points/<hash>/error.json and the report")
    return min(failed, 100)


def cmd_sweep(args: argparse.Namespace) -> int:
    from hwsim.sweeps.execute import resolve_out, run_sweep
    from hwsim.sweeps.spec import load_sweep

    started = time.perf_counter()
    spec, file = load_sweep(args.sweep)
    _workers(args)
    if args.dry_run:
        return _dry_run(spec, file, _workers(args))
    out = resolve_out(args.out, spec.name)
    table, counts = run_sweep(spec, file, out, workers=_workers(args), scheduler=args.scheduler,
                              progress=not args.no_progress and sys.stderr.isatty(), report=not args.no_report)
    if not args.no_report:
        print(f"report: {out / 'report.html'}")
    return _finish(counts, table, out, started)


def _dry_run(spec, file, workers: int | None) -> int:
    """What a sweep would run: its points, the axes that vary, and a time estimate from one point."""
    import os

    from hwsim.runner import run_experiment
    from hwsim.sweeps.spec import expand

    points = expand(spec, file)
    axes: dict[str, set] = {}
    for point in points:
        for key, value in point.params.items():
            axes.setdefault(key, set()).add(str(value))
    print(f"{spec.name}: {len(points)} points")
    for key, values in sorted(axes.items()):
        shown = ", ".join(sorted(values)[:8]) + (", ..." if len(values) > 8 else "")
        print(f"  {key} ({len(values)}): {shown}"[:100])
    if points:
        run_experiment(points[0].experiment)   # warm up (compiles the engine), not stored
        started = time.perf_counter()
        run_experiment(points[0].experiment)
        one_s = time.perf_counter() - started
        parallel = max(1, workers or os.cpu_count() or 1)
        print(f"estimated {one_s * len(points) / parallel:,.0f} s on {parallel} worker(s) "
              f"(the first point took {one_s:.2f} s; points differ in size)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from hwsim.files import check_output_dir
    from hwsim.sweeps.report import write_report

    if not Path(args.dir).is_dir():
        raise HwsimInputError("not a folder (give a sweep's --out folder)", file=args.dir)
    check_output_dir(args.dir, flag="DIR")
    path = write_report(Path(args.dir))
    print(f"wrote {path} and {Path(args.dir) / 'figures'}/")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from hwsim.config.loading import parse_assignment
    from hwsim.paths import slug
    from hwsim.sweeps.compare import to_markdown, write_compare
    from hwsim.sweeps.execute import resolve_out, run_sweep
    from hwsim.sweeps.report import write_report
    from hwsim.sweeps.spec import hardware_sweep

    if len(args.hardware) < 2:
        raise HwsimInputError("compare needs at least two hardware configurations", key="HW")
    if len(set(args.hardware)) != len(args.hardware):
        raise HwsimInputError(f"a configuration is listed twice: {' '.join(args.hardware)}", key="HW")
    started = time.perf_counter()
    _workers(args)
    if args.experiment is not None:
        from hwsim.sweeps.spec import base_experiment_path

        try:
            base_experiment_path(args.experiment, None)
        except HwsimInputError as error:
            raise HwsimInputError(f"unknown experiment {args.experiment!r}", key="--experiment",
                                  allowed=error.allowed) from None
    name = slug("-vs-".join(Path(h).stem for h in args.hardware))
    spec = hardware_sweep(args.hardware, args.experiment, name)
    points = [parse_assignment(assignment) for assignment in args.overrides]
    if points:
        spec = spec.model_copy(update={"points": [dict(points)]})
    out = resolve_out(args.out, f"compare/{name}")
    table, counts = run_sweep(spec, None, out, workers=_workers(args), scheduler=args.scheduler,
                              progress=not args.no_progress and sys.stderr.isatty(), report=False)
    compared, figures = write_compare(table, out)
    from hwsim.sweeps import figures as F

    write_report(out, title=f"hwsim compare: {', '.join(args.hardware)}", extra_figures=figures,
                 extra_tables={"Side by side": compared}, chosen_figures=False,
                 functions=(F.crossover, F.energy_stacked, F.throughput_vs_bound))
    if args.json:
        import json

        print(json.dumps(json.loads(compared.to_json(orient="index")), indent=1))
        return 0 if counts["failed"] == 0 else min(counts["failed"], 100)
    print(to_markdown(compared))
    print(f"wrote {out}/compare.csv, compare.md, figures/compare_*.png|svg, report.html")
    return _finish(counts, table, out, started)


def cmd_hybrids(args) -> int:
    from hwsim.files import write_text_atomic
    from hwsim.paths import REPORTS_DIR
    from hwsim.sweeps.hybrid_figure import crossover_figure
    from hwsim.sweeps.hybrids import crossover_rows, hybrid_rows, render_markdown
    from hwsim.sweeps.spec import expand, load_sweep

    spec, file = load_sweep(args.sweep)
    points = expand(spec, file)
    out = Path(args.out) if args.out else REPORTS_DIR / "hybrids.md"
    figure = crossover_figure(points, out.parent / "figures")
    text = render_markdown(hybrid_rows(points), crossover_rows(points), spec.description or spec.name,
                           figure=(figure, out.parent))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, text)
    print(text)
    print(f"wrote {out}, {figure.png}, {figure.svg}", file=sys.stderr)
    return 0
