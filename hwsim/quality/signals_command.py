"""`hwsim gate-signals`: which gate signal is worth its cost, at equal low-precision share.

Writes to the output folder: `signals.csv` (one row per signal, share, seed and stream),
`summary.csv`, `report.md` (the table, each signal's hardware cost and causality, and a plain
verdict per share) and `signals.png` (state-byte saving against KL, one curve per signal).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hwsim.errors import HwsimInputError
from hwsim.files import check_output_dir, write_atomic, write_text_atomic
from hwsim.paths import REPORTS_DIR

if TYPE_CHECKING:  # pandas is loaded by the study itself, not by the command line
    import pandas as pd

DEFAULT_SHARES = (0.25, 0.5, 0.75)


#: The signal names of `hwsim.quality.signals.SIGNALS` (kept here so the CLI starts without torch).
SIGNAL_NAMES = ("random", "entropy", "top1", "surprisal", "update_norm", "entropy_keep_layer",
                "entropy_keep_heads", "oracle")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gate-signals", help="compare gate signals (entropy, top-1, surprisal, state-update norm, per-layer and "
        "per-head masks, random, a one-step oracle) at equal low-precision share on a real Mamba model")
    parser.add_argument("--model", default=None, help="checkpoint directory or a name under workloads/models "
                        "(default: mamba2-smol-14m, which shares the traces' tokenizer)")
    parser.add_argument("--tokens", type=int, default=256, help="tokens per stream")
    parser.add_argument("--streams", type=int, default=7, help="streams over the shipped traces (one per trace)")
    parser.add_argument("--shares", default=",".join(str(s) for s in DEFAULT_SHARES),
                        help="low-precision shares, comma-separated, each in (0, 1)")
    parser.add_argument("--signals", default=",".join(SIGNAL_NAMES), help=f"subset of {', '.join(SIGNAL_NAMES)}")
    parser.add_argument("--seeds", type=int, default=2, help="seeds of the random control")
    parser.add_argument("--low-bits", type=int, default=4, choices=[2, 3, 4, 8])
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--out", default=str(REPORTS_DIR / "gate-signals"), help="output folder")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.set_defaults(func=cmd_gate_signals)


def _parse(args) -> tuple[list[float], list[str]]:
    try:
        shares = [float(s) for s in args.shares.split(",") if s.strip()]
    except ValueError:
        raise HwsimInputError(f"not a list of numbers: {args.shares!r}", key="--shares") from None
    if not shares or any(not 0.0 < s < 1.0 for s in shares):
        raise HwsimInputError(f"shares must lie strictly between 0 and 1, got {args.shares!r}", key="--shares")
    signals = [s.strip() for s in args.signals.split(",") if s.strip()]
    unknown = [s for s in signals if s not in SIGNAL_NAMES]
    if unknown or not signals:
        raise HwsimInputError(f"unknown signal(s) {unknown or args.signals!r}", key="--signals",
                              allowed=", ".join(SIGNAL_NAMES))
    for flag, value, low, high in (("--tokens", args.tokens, 8, 1 << 16), ("--streams", args.streams, 1, 512),
                                   ("--seeds", args.seeds, 1, 100)):
        if not low <= value <= high:
            raise HwsimInputError(f"{value} is out of range", key=flag, allowed=f"{low} to {high}")
    return shares, signals


def verdicts(summary: pd.DataFrame) -> list[str]:
    """One plain sentence per share: the best causal signal against random and the oracle (KL mean)."""
    lines = []
    for share, group in summary.groupby("share"):
        by = group.set_index("signal")
        if "random" not in by.index:
            continue
        random_kl, random_std = by.loc["random", "kl_bits_mean"], by.loc["random", "kl_seed_std"]
        causal = by.drop(index=[s for s in ("random", "oracle") if s in by.index])
        if causal.empty:
            continue
        best = causal["kl_bits_mean"].idxmin()
        best_kl = causal.loc[best, "kl_bits_mean"]
        spread = 2.0 * (0.0 if math.isnan(random_std) else random_std)  # one seed: no spread
        if best_kl < random_kl - spread:
            judgement = f"beats random by {random_kl / best_kl:.2f}x"
        elif best_kl > random_kl + spread:
            judgement = "is worse than random"
        else:
            judgement = "is indistinguishable from random"
        sentence = (f"At {share:.0%} of states low, the best signal is **{best}** (KL {best_kl:.2e} bits/token, "
                    f"ppl {causal.loc[best, 'ppl_change_pct']:+.2f}%); it {judgement} "
                    f"(random {random_kl:.2e} ± {random_std:.1e} over seeds)")
        if "entropy" in causal.index and best != "entropy":
            sentence += f"; the entropy gate gives {causal.loc['entropy', 'kl_bits_mean']:.2e}"
        if "oracle" in by.index:
            sentence += f"; the one-step oracle reaches {by.loc['oracle', 'kl_bits_mean']:.2e}"
        lines.append(sentence + ".")
    return lines


def figure(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for signal, group in summary.groupby("signal"):
        group = group.sort_values("state_saving_pct")
        style = {"random": {"color": "grey", "linestyle": "--"}, "oracle": {"color": "black", "linestyle": ":"}}
        ax.plot(group["state_saving_pct"], group["kl_bits_mean"], marker="o", label=signal, **style.get(signal, {}))
    ax.set_yscale("log")
    ax.set_xlabel("state bytes saved (%)")
    ax.set_ylabel("KL to full precision (bits/token, mean)")
    ax.set_title("Gate signals at equal low-precision share")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def _markdown(table: pd.DataFrame) -> list[str]:
    """A (signal, share) x domain table as markdown rows."""
    header = ["signal", "share", *map(str, table.columns)]
    rows = [f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
    for (signal, share), values in table.iterrows():
        cells = [signal, f"{share:.0%}", *(f"{v:.2e}" for v in values)]
        rows.append(f"| {' | '.join(cells)} |")
    return rows


def report(summary: pd.DataFrame, by_domain: pd.DataFrame, meta: dict) -> str:
    from hwsim.quality.signals import SIGNALS

    lines = [f"# Gate signals at equal low-precision share ({meta['model']})", "",
             (f"{meta['streams']} streams of {meta['tokens']} tokens over the shipped traces ({meta['alignment']}); "
             f"states stored at {meta['low_bits']} or 16 bits, group {meta['group_size']}, fp16 scales; "
             f"random control over {meta['seeds']} seeds. Each signal writes exactly the same share of each "
             "stream's states low, at its lowest-scored steps. Evaluation "
             f"{meta['seconds']:.0f} s ({meta['tokens_per_s']:.0f} tokens/s over all variants)."), "",
             "## Verdict", "", *[f"- {v}" for v in verdicts(summary)], "",
             "![state bytes saved against KL, one curve per signal](signals.png)", "",
             "## Results", "", "| signal | share | saved | KL mean (bits) | ± seeds | ± streams | KL p99 | top-1 | ppl % |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in summary.sort_values(["share", "kl_bits_mean"]).iterrows():
        lines.append(f"| {r.signal} | {r.low_share:.0%} | {r.state_saving_pct:.1f}% | {r.kl_bits_mean:.2e} | "
                     f"{r.kl_seed_std:.1e} | {r.kl_stream_std:.1e} | {r.kl_bits_p99:.2e} | {r.top1_agreement:.2%} | "
                     f"{r.ppl_change_pct:+.2f} |".replace("nan", "-"))
    lines += ["", "## Per domain (KL mean, bits/token)", "", *_markdown(by_domain), "",
              "## What each signal costs and when it is known", "", "| signal | known | hardware cost |", "|---|---|---|"]
    for name in summary["signal"].unique():
        signal = SIGNALS[name]
        lines.append(f"| {signal.label} | {signal.known} | {signal.cost} |")
    if meta.get("keep_layer") is not None:
        lines += ["", (f"The per-layer mask keeps layer {meta['keep_layer']} high (the most sensitive on separate "
                       "calibration streams, later tokens of the same traces).")]
    return "\n".join(lines) + "\n"


def cmd_gate_signals(args) -> int:
    shares, signals = _parse(args)
    out = check_output_dir(args.out)
    import torch

    from hwsim.quality.evaluate import default_streams
    from hwsim.quality.model import load_model
    from hwsim.quality.quantise import StateFormat
    from hwsim.quality.signals import compare_signals, summarise
    from hwsim.quality.streams import same_tokenizer_as_traces, trace_streams
    from hwsim.traces.catalog import catalog_entry

    torch.set_num_threads(args.threads)
    loaded = load_model(args.model or "mamba2-smol-14m")
    exact = same_tokenizer_as_traces(loaded.tokenizer)
    streams = default_streams(loaded, tokens=args.tokens, streams=args.streams)
    per_trace = -(-args.streams // 7)
    calibration = (trace_streams(tokens=args.tokens, streams=7, start_tokens=per_trace * args.tokens)
                   if exact else streams)
    domains = {s.source: catalog_entry(s.source).domain for s in streams} if exact else None
    started = time.perf_counter()
    frame = compare_signals(loaded, streams, calibration, shares=shares, signals=signals, seeds=args.seeds,
                            low_bits=args.low_bits, fmt=StateFormat(args.group_size, 16, "nearest"), domains=domains,
                            progress=True)
    seconds = time.perf_counter() - started
    summary = summarise(frame)
    by_domain = frame.groupby(["signal", "share", "domain"])["kl_bits_mean"].mean().unstack("domain")
    variants = frame.groupby(["signal", "share", "seed"]).ngroups
    meta = {"model": loaded.name, "streams": len(streams), "tokens": args.tokens, "low_bits": args.low_bits,
            "group_size": args.group_size, "seeds": args.seeds, "seconds": seconds,
            "tokens_per_s": variants * len(streams) * args.tokens / seconds,
            "alignment": "the model's tokenizer is the traces': exact" if exact else "the shipped texts",
            "keep_layer": frame.attrs.get("keep_layer")}
    write_atomic(out / "signals.csv", lambda tmp: frame.to_csv(tmp, index=False))
    write_atomic(out / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False))
    write_text_atomic(out / "meta.json", json.dumps(meta, indent=1, default=str) + "\n")
    write_text_atomic(out / "report.md", report(summary, by_domain, meta))
    figure(summary, out / "signals.png")
    print("\n".join(verdicts(summary)))
    print(f"wrote {out}/report.md, summary.csv, signals.csv, signals.png ({seconds:.0f} s)")
    return 0
