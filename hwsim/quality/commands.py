"""`hwsim quality EXPERIMENT_OR_SWEEP.yaml`: quality cost of every distinct policy, beside its controls."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hwsim.cache import add_cache_argument
from hwsim.errors import HwsimInputError
from hwsim.files import check_output_dir, write_atomic, write_text_atomic
from hwsim.paths import REPORTS_DIR, output_path

#: Bounds of the size options: flag -> (attribute, low, high).
LIMITS = {"--tokens": ("tokens", 2, 1 << 20), "--streams": ("streams", 1, 4096), "--seeds": ("seeds", 1, 1000)}

TABLE = [("policy", "policy", "{}"), ("low share", "quality_low_share", "{:.0%}"),
         ("KL mean (bits)", "quality_kl_bits_mean", "{:.2e}"), ("KL p99", "quality_kl_bits_p99", "{:.2e}"),
         ("top-1", "quality_top1_agreement", "{:.2%}"), ("ppl %", "quality_ppl_change_pct", "{:+.2f}"),
         ("random KL mean", "quality_random_kl_bits_mean_mean", "{:.2e}"),
         ("± std", "quality_random_kl_bits_mean_std", "{:.1e}"),
         ("random ppl %", "quality_random_ppl_change_pct_mean", "{:+.2f}"),
         ("vs random", "quality_entropy_vs_random", "{}"),
         ("all-low ppl %", "quality_all_low_ppl_change_pct", "{:+.2f}"),
         ("state rel err", "quality_state_rel_error_mean", "{:.3f}")]


def register(subparsers: argparse._SubParsersAction) -> None:
    quality = subparsers.add_parser(
        "quality", help="quality cost (KL, perplexity) of an experiment's or sweep's gating policies on a "
        "real Mamba model, with all-high, all-low and random-gating controls")
    quality.add_argument("file", metavar="EXPERIMENT_OR_SWEEP.yaml", help="whose policies to evaluate")
    quality.add_argument("--model", default=None, help="local Hugging Face Mamba / Mamba-2 checkpoint "
                         "directory or a name under workloads/models (default: the shipped model)")
    quality.add_argument("--tokens", type=int, default=256, help="tokens per stream")
    quality.add_argument("--streams", type=int, default=4, help="token streams (from workloads/texts)")
    quality.add_argument("--seeds", type=int, default=3, help="random-gating seeds per policy")
    quality.add_argument("--gate", default="self",
                         help="entropy the gate sees: self (the gated run's own, causal), reference (the full-precision "
                         "run's), trace (the shipped trace of each stream's text) or one trace name")
    quality.add_argument("--rounding", choices=["nearest", "stochastic"], default="nearest",
                         help="how the quantiser rounds (stochastic: seeded)")
    quality.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value",
                         help="override one key of the experiment, as for run")
    quality.add_argument("--out", help="output folder (default: reports/quality/<file stem>)")
    quality.add_argument("--cache", default=None, help="quality cache folder (default: <cache-dir>/quality)")
    add_cache_argument(quality)
    quality.add_argument("--no-cache", action="store_true", help="recompute instead of reading the cache")
    quality.set_defaults(func=cmd_quality)


def format_table(frame) -> str:
    cells = [[label for label, _, _ in TABLE]]
    for _, row in frame.iterrows():
        cells.append([fmt.format(row[key]) if key in row and row[key] == row[key] else "-"
                      for _, key, fmt in TABLE])
    widths = [max(len(r[i]) for r in cells) for i in range(len(TABLE))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in cells)


def statement(frame) -> str:
    """The plain sentence the issue asks for: does entropy gating beat random gating at equal share?"""
    gated = frame[(frame["quality_low_share"] > 0) & (frame["quality_low_share"] < 1)]
    if gated.empty:
        return "No policy here gates (every state is at one precision), so there is no entropy-vs-random comparison."
    counts = gated["quality_entropy_vs_random"].value_counts().to_dict()
    n = len(gated)
    lines = [(f"Entropy gating vs random gating at the same low-precision share, by mean KL over "
              f"{int(gated['quality_seeds'].iloc[0])} random seeds: better in {counts.get('better', 0)} of {n} "
              f"policies, worse in {counts.get('worse', 0)}, indistinguishable in "
              f"{counts.get('indistinguishable', 0)} (better = below every seed and more than 2 std under "
              "their mean).")]
    for _, row in gated.iterrows():
        lines.append(
            f"- {row['policy']}: low share {row['quality_low_share']:.0%}; entropy-gated KL "
            f"{row['quality_kl_bits_mean']:.3g} bits, ppl {row['quality_ppl_change_pct']:+.2f}%; random KL "
            f"{row['quality_random_kl_bits_mean_mean']:.3g} ± {row['quality_random_kl_bits_mean_std']:.2g} "
            f"(min {row['quality_random_kl_bits_mean_min']:.3g}, max {row['quality_random_kl_bits_mean_max']:.3g}), "
            f"ppl {row['quality_random_ppl_change_pct_mean']:+.2f}% ± "
            f"{row['quality_random_ppl_change_pct_std']:.2f}: **{row['quality_entropy_vs_random']}** "
            f"(by perplexity: {row['quality_entropy_vs_random_ppl']}).")
    return "\n".join(lines)


def width_table(frame) -> str:
    """All-low control per (bits, group, scale bits): what a width costs before any gating."""
    keys = ["quality_low_bits", "quality_group_size", "quality_scale_bits"]
    cols = {"quality_all_low_kl_bits_mean": ("KL mean (bits)", "{:.2e}"),
            "quality_all_low_kl_bits_p99": ("KL p99", "{:.2e}"),
            "quality_all_low_top1_agreement": ("top-1", "{:.2%}"),
            "quality_all_low_ppl_change_pct": ("ppl %", "{:+.2f}"),
            "quality_all_low_state_rel_error_mean": ("state rel err", "{:.3f}")}
    table = frame.groupby(keys, as_index=False)[list(cols)].first()
    head = "| bits | group | scale bits | " + " | ".join(label for label, _ in cols.values()) + " |"
    lines = [head, "|" + "---|" * (3 + len(cols))]
    for _, row in table.iterrows():
        cells = [str(int(row[k])) for k in keys] + [fmt.format(row[c]) for c, (_, fmt) in cols.items()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(frame, out: Path, source: str) -> Path:
    first = frame.iloc[0]
    text = [f"# State-precision quality: {source}", "",
            (f"Model `{first['quality_model']}` ({first['quality_model_id']}), {int(first['quality_streams'])} "
            f"streams x {int(first['quality_tokens'])} tokens, gate entropy: {first['quality_gate']}, rounding: "
            f"{first['quality_rounding']}. Reference (full-precision) perplexity "
            f"{first['quality_reference_ppl']:.2f}. Evaluation speed: "
            f"{frame['quality_eval_tokens_per_s'].max():.0f} tokens/s (batch rows x steps per wall second; "
            "NaN when every result came from the cache)."), "",
            "## Entropy gating vs random gating", "", statement(frame), "",
            "## Every state at the low width (all-low control)", "", width_table(frame), "",
            "## All policies", "", "```", format_table(frame), "```", "",
            ("Columns: KL = KL(full precision || gated) of the next-token distributions, in bits, over all "
            "steps; top-1 = agreement of the arg-max token; ppl % = perplexity change on the streams' own "
            "next tokens; state rel err = ||stored - exact|| / ||exact|| of the SSM state, mean over layers "
            "and snapshot steps. Controls per policy: all-high, all-low (static at its widths) and random "
            "gating with the same number of low-precision writes per stream."), ""]
    figures = sorted(p.name for p in out.glob("*.png"))
    text += [f"![{name}]({name})" for name in figures]
    path = out / "quality_report.md"
    write_text_atomic(path, "\n".join(text) + "\n")
    return path


def cmd_quality(args: argparse.Namespace) -> int:
    import pandas as pd

    from hwsim.paths import slug
    from hwsim.quality.evaluate import DEFAULT_CACHE_DIR, evaluate_policy
    from hwsim.quality.figures import bits_group_figure, share_figure
    from hwsim.quality.policies import describe, distinct_policies

    for flag, (attribute, low, high) in LIMITS.items():
        value = getattr(args, attribute)
        if not low <= value <= high:
            raise HwsimInputError(f"{value} is out of range", key=flag, allowed=f"{low} to {high:,}")
    out = Path(args.out) if args.out else output_path(REPORTS_DIR / "quality", slug(Path(args.file).stem),
                                                       key="FILE")
    check_output_dir(out)
    policies = distinct_policies(args.file, args.overrides)
    rows, started = [], time.perf_counter()
    for index, policy in enumerate(policies, 1):
        row = evaluate_policy(policy, model_dir=args.model, tokens=args.tokens, streams=args.streams,
                              seeds=args.seeds, gate=args.gate, rounding=args.rounding,
                              cache_dir=None if args.no_cache else (args.cache or DEFAULT_CACHE_DIR))
        rows.append({"policy": describe(policy), "policy_kind": policy.kind, **row})
        print(f"[{index}/{len(policies)}] {describe(policy)}: KL {row['quality_kl_bits_mean']:.3g} bits, "
              f"ppl {row['quality_ppl_change_pct']:+.2f}%, vs random: {row['quality_entropy_vs_random']}")
    frame = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)  # only once there is something to write
    write_atomic(out / "quality.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
    write_atomic(out / "quality.csv", lambda tmp: frame.to_csv(tmp, index=False))
    share_figure(frame, out / "quality_vs_share.png")
    share_figure(frame, out / "ppl_vs_share.png", quality="quality_ppl_change_pct")
    if frame["quality_low_bits"].nunique() > 1 or frame["quality_group_size"].nunique() > 1:
        bits_group_figure(frame, out / "quality_vs_bits.png")
    print(format_table(frame))
    print(statement(frame))
    report = write_report(frame, out, args.file)
    print(f"wrote {out / 'quality.parquet'}, {out / 'quality.csv'}, {report} "
          f"({time.perf_counter() - started:.0f} s)")
    return 0
