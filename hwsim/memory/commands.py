"""`hwsim dram run | presets | calibrate` and `hwsim export-trace`: the detailed DRAM model's commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwsim.cache import add_cache_argument
from hwsim.config.dram import MAX_QUEUE_DEPTH, QUEUE_RELEASES
from hwsim.errors import HwsimInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    dram = subparsers.add_parser("dram", help="request-level DRAM model: replay traces, list presets, calibrate")
    sub = dram.add_subparsers(dest="dram_command", metavar="SUBCOMMAND", required=True,
                              help="run | presets | calibrate")
    run = sub.add_parser("run", help="replay a DRAMsim3 or Ramulator 2 trace through the detailed model")
    run.add_argument("trace", metavar="TRACE", help="a DRAMsim3 (0xADDR READ CYCLE) or Ramulator 2 (LD 0xADDR) trace")
    run.add_argument("--preset", default="hbm3-6400", help="a configs/dram preset (default hbm3-6400)")
    run.add_argument("--stacks", type=int, default=1, help="stacks (or devices) of the preset (default 1)")
    run.add_argument("--queue-depth", type=int, default=128, help="entries per channel queue (default 128)")
    run.add_argument("--mapping", default=None, help="address mapping, MSB first (default RoBaBgCoCh)")
    run.add_argument("--interleave-bytes", type=int, default=256,
                     help="bytes kept in one channel before the next (a power of two, default 256)")
    run.add_argument("--closed-row", action="store_true", help="closed-row policy (default open row)")
    run.add_argument("--queue-release", choices=QUEUE_RELEASES, default="completion",
                     help="when a request frees its queue entry: completion (its data burst ends; default) or "
                     "column (its column command issues, an activated request waiting in its bank's slot: "
                     "Ramulator 2's read buffer)")
    run.add_argument("--format", choices=("dramsim3", "ramulator2"), default=None,
                     help="trace format (default: guessed from the first line)")
    run.add_argument("--threads", type=int, default=None,
                     help="threads for parsing and for the channels (default: all cores; 1: one thread)")
    add_cache_argument(run)
    run.set_defaults(func=cmd_run)
    presets = sub.add_parser("presets", help="list the DRAM presets")
    presets.set_defaults(func=cmd_presets)
    cal = sub.add_parser("calibrate", help="calibrate the fast model from the detailed one (into the user "
                         "cache, or --out)")
    cal.add_argument("--preset", action="append", help="preset name (repeatable; default: all)")
    cal.add_argument("--stacks", type=int, default=1, help="stacks (or devices) of the preset (default 1)")
    cal.add_argument("--interleave-bytes", type=int, default=256, help="interleave granularity in bytes (default 256)")
    cal.add_argument("--queue-depth", type=int, default=128, help="entries per channel queue (default 128)")
    cal.add_argument("--out", default=None, help="write the calibration (JSON) here instead of the cache; "
                     "with several presets, a folder")
    add_cache_argument(cal)
    cal.set_defaults(func=cmd_calibrate)
    export = subparsers.add_parser("export-trace", help="write a run's DRAM requests as a DRAMsim3 or "
                                   "Ramulator 2 trace")
    export.add_argument("experiment", metavar="EXPERIMENT", help="an experiment file or preset name")
    export.add_argument("--format", choices=("dramsim3", "ramulator2"), default="dramsim3",
                        help="trace line format (default dramsim3)")
    export.add_argument("--steps", type=int, default=None, help="only the first N steps")
    export.add_argument("--out", required=True, help="trace file to write")
    export.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value",
                        help="override one key of the experiment, as for run")
    add_cache_argument(export)
    export.set_defaults(func=cmd_export)


#: Bounds of the count and size options (beyond them a typo, not a design): flag -> (low, high).
LIMITS = {"--stacks": (1, 64), "--queue-depth": (1, MAX_QUEUE_DEPTH), "--interleave-bytes": (1, 1 << 30),
          "--steps": (1, 1 << 30), "--threads": (1, 1024)}


def check_count(flag: str, value: int | None) -> None:
    """Every count and size option is checked before work starts: a clear error, never a hang."""
    low, high = LIMITS[flag]
    if value is not None and not low <= value <= high:
        raise HwsimInputError(f"{value} is out of range", key=flag, allowed=f"{low} to {high:,}")


def _dram(preset: str, stacks: int = 1, interleave_bytes: int = 256):
    from hwsim.config import DramPreset, load_preset
    from hwsim.config.hardware import DramMemory
    from hwsim.config.loading import validate

    check_count("--stacks", stacks)
    check_count("--interleave-bytes", interleave_bytes)
    raw = {"preset": load_preset("dram", preset, DramPreset), "stacks": stacks,
           "interleave_bytes": interleave_bytes, "source": "hwsim dram command line"}
    return validate(DramMemory, raw, file=None, prefix="dram")


def use_threads(requested: int | None) -> int:
    """numba's threads for this command: all it has by default, at most what it has."""
    from hwsim.memory.jit import get_num_threads, set_num_threads

    threads = min(requested or get_num_threads(), get_num_threads())
    set_num_threads(threads)
    return threads


def cmd_run(args: argparse.Namespace) -> int:
    from hwsim.memory.detailed import DetailedDram
    from hwsim.memory.dram_traces import read_trace
    from hwsim.memory.mapping import DEFAULT_MAPPING, parse_mapping

    check_count("--queue-depth", args.queue_depth)
    if args.mapping is not None:
        parse_mapping(args.mapping)  # an empty --mapping is an error, not the default
    check_count("--threads", args.threads)
    dram = _dram(args.preset, args.stacks, args.interleave_bytes)
    threads = use_threads(args.threads)
    trace = read_trace(args.trace, fmt=args.format, tCK_ns=dram.preset.timings_ns.tCK, threads=threads)
    model = DetailedDram(dram, queue_depth=args.queue_depth, mapping=args.mapping or DEFAULT_MAPPING,
                         closed_row=args.closed_row, parallel=threads > 1, queue_release=args.queue_release)
    model.submit(trace.address, trace.is_write, trace.arrival_ns, completion=False)
    print(format_stats(model.stats(), f"{args.trace} ({trace.format}, {len(trace.address):,} requests) on "
                       f"{args.preset} x{args.stacks}, queue {args.queue_depth}, mapping "
                       f"{args.mapping or DEFAULT_MAPPING}{', closed row' if args.closed_row else ''}"
                       f"{', entries freed at the column command' if args.queue_release == 'column' else ''}"))
    return 0


def format_stats(st, title: str) -> str:
    pct = st.latency_percentiles_ns()
    return "\n".join([
        title,
        (f"bandwidth_GBps        {st.bandwidth_GBps:,.2f} ({100 * st.efficiency:.1f}% of peak "
        f"{st.peak_bandwidth_GBps:,.1f})"),
        f"elapsed_ns            {st.elapsed_ns:,.1f}",
        "latency_ns            " + "  ".join(f"{k} {v:,.1f}" for k, v in pct.items())
        + f"  mean {st.latency_ns.mean() if len(st.latency_ns) else 0.0:,.1f}",
        f"row_hit_rate          {st.row_hit_rate:.3f}",
        f"reads / writes        {st.reads:,} / {st.writes:,}",
        f"activates             {st.activates:,}",
        f"refreshes             {st.refreshes:,} ({st.wasted_activates:,} activates wasted by refresh)",
        "energy_pJ             " + "  ".join(f"{k} {v:,.0f}" for k, v in st.energy_pJ.items()),
    ])


def cmd_presets(args: argparse.Namespace) -> int:
    import textwrap

    from hwsim.config import DramPreset, load_preset
    from hwsim.config.loading import known_presets

    print(f"{'name':<16}{'peak GB/s':>11}  source")
    for name in known_presets("dram"):
        p = load_preset("dram", name, DramPreset)
        source = textwrap.shorten(p.source, width=100 - 29, placeholder=" ...")
        print(f"{name:<16}{p.organisation.peak_bandwidth_GBps:>11,.1f}  {source}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import time

    from hwsim.config.loading import known_presets
    from hwsim.memory.calibration import cache_path, calibrate, calibration_key, write_calibration

    names = args.preset or known_presets("dram")
    for name in names:
        dram = _dram(name, args.stacks, args.interleave_bytes)
        start = time.perf_counter()
        cal = calibrate(dram, queue_depth=args.queue_depth)
        seconds = time.perf_counter() - start
        if args.out is None:
            path = cache_path(calibration_key(dram, queue_depth=args.queue_depth, mapping=cal.mapping))
        else:
            out = Path(args.out)
            path = out / f"{name}.json" if len(names) > 1 or out.is_dir() else out
        write_calibration(cal, path)
        print(f"{name}: {len(cal.busiest_accesses)} sequential points, strided {len(cal.run_bytes)} run sizes x "
              f"{len(cal.run_counts)} counts, random {len(cal.random_run_bytes)} x {len(cal.random_run_counts)}, "
              f"refresh x{cal.refresh_factor:.4f}, "
              f"{seconds:.1f} s -> {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from hwsim.config.loading import load_experiment
    from hwsim.export import export_trace
    from hwsim.files import check_output_file

    check_count("--steps", args.steps)
    check_output_file(args.out)
    exp = load_experiment(args.experiment, args.overrides)
    count = export_trace(exp, Path(args.out), fmt=args.format, steps=args.steps)
    print(f"wrote {count:,} requests ({args.format}) to {args.out}")
    return 0
