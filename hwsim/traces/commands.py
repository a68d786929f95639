"""`hwsim trace ...`: extract, source, stats, list. Only `extract` imports torch, and only when run."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path


def register(subparsers) -> None:
    trace = subparsers.add_parser("trace", help="entropy traces: extract, inspect, list")
    commands = trace.add_subparsers(dest="trace_command", metavar="TRACE_COMMAND", required=True,
                                    help="list | stats | extract | source")

    p = commands.add_parser("extract", help="run a local causal LM and write an entropy trace (needs [traces])")
    p.add_argument("--model", required=True,
                   help="local model directory, cached Hugging Face id, or pkg:PACKAGE (folder of an installed package)")
    p.add_argument("--gguf", help="GGUF file name inside the model directory")
    p.add_argument("--revision", help="model revision (Hugging Face cache)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", type=Path, help="UTF-8 text to score (score mode)")
    source.add_argument("--prompt", help="prompt to continue (generate mode)")
    p.add_argument("--mode", required=True, choices=("score", "generate"),
                   help="score: teacher-forced over a text; generate: the model writes its own continuation")
    p.add_argument("--max-tokens", type=int, help="score: keep the first N tokens; generate: tokens to generate")
    p.add_argument("--temperature", type=float, default=0.0, help="generate: 0 = greedy (default)")
    p.add_argument("--seed", type=int, default=0, help="generate: seed of the sampler")
    p.add_argument("--chat", action="store_true", help="generate: wrap the prompt in the tokenizer's chat template")
    p.add_argument("--context", type=int, default=1024, help="score: window length in tokens")
    p.add_argument("--stride", type=int, default=768, help="score: shift between windows in tokens")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", type=Path, required=True, help="trace file to write (.parquet)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_extract)

    p = commands.add_parser("source", help="write a text from Python's docs or stdlib, for --text")
    kinds = p.add_subparsers(dest="source_kind", metavar="KIND", required=True, help="pydocs | stdlib")
    k = kinds.add_parser("pydocs", help="topics of the Python reference manual (pydoc_data.topics)")
    k.add_argument("--start-topic", required=True, help="first pydoc topic to take, e.g. assert")
    k.add_argument("--max-chars", type=int, required=True, help="stop after this many characters")
    k.add_argument("--out", type=Path, required=True, help="text file to write (a .json sidecar holds provenance)")
    k.set_defaults(func=_source)
    k = kinds.add_parser("stdlib", help="source code of standard-library modules")
    k.add_argument("modules", nargs="+", metavar="MODULE", help="standard-library modules, e.g. fractions")
    k.add_argument("--out", type=Path, required=True, help="text file to write (a .json sidecar holds provenance)")
    k.set_defaults(func=_source)

    p = commands.add_parser("stats", help="entropy statistics per trace (catalog names or files)")
    p.add_argument("traces", nargs="+", metavar="TRACE_OR_NAME", help="catalog names (hwsim trace list) or trace files")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="also write entropy histograms")
    p.set_defaults(func=_stats)

    p = commands.add_parser("list", help="the shipped traces in workloads/catalog.yaml")
    p.set_defaults(func=_list)


def extract_command(args: argparse.Namespace) -> str:
    """The canonical command line for these arguments (recorded in provenance and the catalog)."""
    words = ["hwsim", "trace", "extract", "--model", args.model]
    if args.gguf:
        words += ["--gguf", args.gguf]
    if args.revision:
        words += ["--revision", args.revision]
    words += ["--text", str(args.text)] if args.text is not None else ["--prompt", args.prompt]
    if args.chat:
        words += ["--chat"]
    words += ["--mode", args.mode]
    if args.max_tokens:
        words += ["--max-tokens", str(args.max_tokens)]
    if args.mode == "generate":
        words += ["--temperature", f"{args.temperature:g}"]
        if args.temperature > 0:
            words += ["--seed", str(args.seed)]
    else:
        words += ["--context", str(args.context), "--stride", str(args.stride)]
    if args.threads != 1:
        words += ["--threads", str(args.threads)]
    return shlex.join(words + ["--out", str(args.out)])


def check_extract_args(args: argparse.Namespace) -> None:
    """Counts, sizes and the output file are checked before a model is loaded."""
    import math

    from hwsim.errors import HwsimInputError
    from hwsim.files import check_output_file

    limits = (("--max-tokens", args.max_tokens, 1, 1 << 24), ("--context", args.context, 2, 1 << 20),
              ("--stride", args.stride, 1, args.context), ("--threads", args.threads, 1, 1024))
    for flag, value, low, high in limits:
        if value is not None and not low <= value <= high:
            raise HwsimInputError(f"{value} is out of range", key=flag, allowed=f"{low} to {high:,}")
    if not math.isfinite(args.temperature) or args.temperature < 0:
        raise HwsimInputError(f"{args.temperature} is not a temperature", key="--temperature",
                              allowed="a finite number >= 0 (0 = greedy)")
    if args.out.suffix != ".parquet":
        raise HwsimInputError(f"{args.out}: a trace is written as .parquet", key="--out")
    check_output_file(args.out)
    if args.text is not None and not args.text.is_file():
        raise HwsimInputError("text file not found", file=args.text, key="--text")


def _extract(args: argparse.Namespace) -> int:
    from hwsim.traces.extract import extract

    check_extract_args(args)
    frame = extract(model=args.model, gguf=args.gguf, revision=args.revision, text=args.text, prompt=args.prompt,
                    mode=args.mode, max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed,
                    context=args.context, stride=args.stride, chat=args.chat, threads=args.threads, out=args.out,
                    command=extract_command(args), progress=not args.quiet)
    print(f"wrote {args.out}: {len(frame)} tokens, mean entropy {frame['entropy_bits'].mean():.3f} bits")
    return 0


def _source(args: argparse.Namespace) -> int:
    from hwsim.errors import HwsimInputError
    from hwsim.files import check_output_file
    from hwsim.traces import sources

    if args.source_kind == "pydocs" and not 1 <= args.max_chars <= 1 << 30:
        raise HwsimInputError(f"{args.max_chars} is out of range", key="--max-chars", allowed="1 to 2^30")
    check_output_file(args.out)
    if args.source_kind == "pydocs":
        text, info = sources.pydocs_text(args.start_topic, args.max_chars)
    else:
        text, info = sources.stdlib_text(args.modules)
    sources.write_text(args.out, text, info)
    print(f"wrote {args.out}: {len(text)} characters; {info['source']}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from hwsim.traces.catalog import load_trace
    from hwsim.traces.stats import entropy_table, plot_histograms

    if args.plot:
        from hwsim.files import check_output_file

        check_output_file(args.plot, flag="--plot")
    traces = [load_trace(name) for name in args.traces]
    table = entropy_table(traces)
    shown = table.rename(columns=lambda c: c.replace("entropy_", "").replace("_bits", "")
                         .replace("share_under_", "<"))
    for column in shown.columns:
        if column.startswith("<"):
            shown[column] = 100 * shown[column]
    print("entropy in bits; <t: share of tokens (%) with entropy below t bits")
    print(shown.to_string(float_format=lambda x: f"{x:.2f}"))
    if args.plot:
        plot_histograms(traces, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _list(args: argparse.Namespace) -> int:
    import textwrap

    from hwsim.traces.catalog import catalog_frame

    frame = catalog_frame()
    frame["model"] = frame["model"].map(lambda m: textwrap.shorten(str(m), 22, placeholder="..."))
    frame["source"] = frame["source"].map(lambda m: textwrap.shorten(str(m), 24, placeholder="..."))
    print(frame.to_string(index=False))
    print("(full provenance: workloads/catalog.yaml, or hwsim trace stats NAME)")
    return 0
