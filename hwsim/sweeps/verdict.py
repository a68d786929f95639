"""The report's opening: a few sentences generated from the results, never typed by hand.

Where the 25% traffic claim holds and where not (by model, batch, threshold, low width, hardware),
what the default setting gets, what it costs in quality (or why that is not measured here), whether
entropy gating beats random gating at the same share, and how the saving depends on the trace domain.
"""

from __future__ import annotations

import pandas as pd

from hwsim.sweeps import frames as R

TARGET_SAVING_PCT = 25.0
TRAFFIC, ENERGY, GAIN = "saving_dram_bytes_per_token_pct", "saving_energy_per_token_pct", "gain_tokens_per_s_pct"
AXES = [(R.MODEL, "model", "{}"), (R.BATCH, "batch", "batch {}"), (R.THRESHOLD, "threshold", "{:g} bit(s)"),
        (R.LOW, "low width", "{}-bit"), (R.HW, "hardware", "{}")]


def _pct(value: float) -> str:
    return f"{value:.1f}%"


def _axis_sentence(main: pd.DataFrame, column: str, label: str, fmt: str) -> str | None:
    best = main.groupby(column)[TRAFFIC].max().sort_index()
    if len(best) < 2:
        return None
    hit = [f"{fmt.format(v)} ({_pct(s)})" for v, s in best.items() if s >= TARGET_SAVING_PCT]
    miss = [f"{fmt.format(v)} ({_pct(s)})" for v, s in best.items() if s < TARGET_SAVING_PCT]
    if not hit:
        return f"{label}: at no value (best: {', '.join(miss)})"
    if not miss:
        return f"{label}: at every value (best: {', '.join(hit)})"
    return f"{label}: at {', '.join(hit)}, not at {', '.join(miss)}"


def claim_sentences(frame: pd.DataFrame) -> list[str]:
    """Where the main grid reaches the target, axis by axis (best saving per value in brackets)."""
    main = R.main_set(frame).dropna(subset=[TRAFFIC]) if TRAFFIC in frame else frame.iloc[0:0]
    if main.empty:
        return ["No finished point has a baseline, so no traffic saving was measured."]
    hits = main[main[TRAFFIC] >= TARGET_SAVING_PCT]
    best = main.loc[main[TRAFFIC].idxmax()]
    where = (f"{best[R.MODEL]} on {best[R.HW]}, batch {best[R.BATCH]}"
             + (f", threshold {best[R.THRESHOLD]:g} bit(s), {best[R.LOW]:.0f}-bit low"
                if pd.notna(best.get(R.THRESHOLD)) else ""))
    if hits.empty:
        first = (f"The {TARGET_SAVING_PCT:.0f}% DRAM traffic saving is reached at no point of the main grid "
                 f"({len(main)} points); the largest is {_pct(best[TRAFFIC])} ({where}).")
    else:
        first = (f"The {TARGET_SAVING_PCT:.0f}% DRAM traffic saving holds at {len(hits)} of {len(main)} points "
                 f"of the main grid; the largest is {_pct(best[TRAFFIC])} ({where}).")
    parts = [s for column, label, fmt in AXES if column in main
             for s in [_axis_sentence(main, column, label, fmt)] if s]
    out = [first]
    if parts:
        out.append(f"Reached (best saving per value): {'; '.join(parts)}.")
    return out


def default_sentence(row: pd.Series | None, default: R.DefaultPoint | None) -> list[str]:
    if row is None or default is None or pd.isna(row.get(TRAFFIC)):
        return ["The sweep does not hold the default operating point, so its saving is not reported here."]
    steps = int(row.get(R.STEPS, default.steps))
    text = (f"The default setting ({default.label()}, {steps} steps"
            + (", as `hwsim run` runs it" if steps == default.steps and row.get(R.DOMAIN) == R.MIX else "")
            + f") saves {_pct(row[TRAFFIC])} of DRAM traffic per token and {_pct(row[ENERGY])} of energy "
            f"per token, and runs {_pct(row[GAIN])} more tokens/s, with {100 * row['low_precision_share']:.1f}% "
            "of state writes at low precision")
    peak, avg = row.get("hw_dram_peak_bandwidth_GBps"), row.get("dram_bandwidth_GBps_avg")
    if peak and pd.notna(avg) and pd.notna(row.get("baseline_dram_bandwidth_GBps_avg")):
        text += (f"; DRAM bandwidth stays saturated ({avg:,.0f} GB/s gated, "
                 f"{row['baseline_dram_bandwidth_GBps_avg']:,.0f} GB/s baseline, peak {peak:,.0f} GB/s) "
                 "while steps get shorter")
    return [text + "."]


def quality_sentences(frame: pd.DataFrame, row: pd.Series | None, quality_requested: bool | None) -> list[str]:
    has = "quality_kl_bits_mean" in frame and frame["quality_kl_bits_mean"].notna().any()
    if not has:
        if quality_requested is False:
            why = ("the sweep file sets `quality: false`, so no model was run (the default sweep skips it to "
                   "keep the main job short); set `quality: true` or run `hwsim quality` on the sweep file")
        elif quality_requested:
            why = "the sweep asked for quality but no quality_* column was filled; see the notes"
        else:
            why = "these results carry no quality_* columns"
        return [f"Quality cost: not measured in this sweep: {why}.",
                ("Entropy vs random gating: at the same low-precision share both save the same bytes, so "
                 "which is better is a quality question; it cannot be answered without the quality columns.")]
    out = []
    if row is not None and pd.notna(row.get("quality_kl_bits_mean")):
        share = row.get("quality_low_share", float("nan"))
        out.append(f"Quality cost at the default setting: KL divergence {row['quality_kl_bits_mean']:.4f} bits "
                   f"per token, perplexity {row.get('quality_ppl_change_pct', float('nan')):+.2f}% "
                   f"(model {row.get('quality_model', '?')}, measured with {share:.0%} of its state writes low, "
                   f"matched to the traffic run's {row.get('low_precision_share', float('nan')):.0%}).")
        if pd.notna(row.get("quality_trace_kl_bits_mean")):
            out.append(f"Gated instead by the shipped traces' entropies for the same tokens, at "
                       f"{row.get('quality_trace_low_share', float('nan')):.0%} low: KL "
                       f"{row['quality_trace_kl_bits_mean']:.4f} bits per token, perplexity "
                       f"{row.get('quality_trace_ppl_change_pct', float('nan')):+.2f}%.")
    verdicts = frame.get("quality_entropy_vs_random")
    if verdicts is not None and verdicts.notna().any():
        counts = verdicts.value_counts()
        order = ["better", "indistinguishable", "worse"]  # a fixed order: counts read alike from run to run
        shown = ", ".join(f"{v}: {counts.get(v, 0)} point(s)"
                          for v in order + sorted(set(counts.index) - set(order)))
        out.append(f"Entropy vs random gating at the same share (KL, over seeds): {shown}.")
    return out


def domain_sentences(frame: pd.DataFrame) -> list[str]:
    rows = R.domain_rows(frame)
    if rows.empty or TRAFFIC not in rows:
        return []
    out = []
    for batch, part in rows.groupby(R.BATCH):
        stats = part.groupby(R.DOMAIN)[TRAFFIC].agg(["mean", "std", "min", "max", "count"])
        order = [d for d in R.DOMAIN_ORDER if d in stats.index] + [d for d in stats.index if d not in R.DOMAIN_ORDER]
        shown = "; ".join(f"{d} {stats.loc[d, 'mean']:.1f}% ({stats.loc[d, 'min']:.1f}-{stats.loc[d, 'max']:.1f}, "
                          f"{stats.loc[d, 'count']:.0f} runs)" for d in order)
        out.append(f"By trace domain at batch {batch} (mean, range over traces and seeds): {shown}.")
    return out


def headline(frame: pd.DataFrame, default: R.DefaultPoint | None, quality_requested: bool | None) -> list[str]:
    row = R.exact_default(frame, default)
    return (claim_sentences(frame) + default_sentence(row, default) + quality_sentences(frame, row, quality_requested)
            + domain_sentences(frame))


def markdown(out) -> str:
    """The verdict of a stored sweep as Markdown bullets (what README.md quotes)."""
    from pathlib import Path

    import yaml

    from hwsim.sweeps.report import load_results

    out = Path(out)
    table = load_results(out)
    default = R.default_point(out)
    frame = R.annotate(table[table["status"] == "ok"].reset_index(drop=True), default)
    quality = bool(yaml.safe_load((out / "sweep.yaml").read_text()).get("quality", False))
    return "\n".join(f"- {line}" for line in headline(frame, default, quality))


if __name__ == "__main__":  # python -m hwsim.sweeps.verdict reports/default
    import sys

    print(markdown(sys.argv[1] if len(sys.argv) > 1 else "reports/default"))
