"""`hwsim compare HW_A HW_B ...`: one experiment on several hardware configurations, side by side.

It is a sweep over `hardware` (same store, resume and report); on top it prints a metric x hardware
table (saved as CSV and Markdown), bars per metric and a roofline plot placing each configuration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hwsim.files import write_atomic
from hwsim.sweeps import figures as F

#: (row label with unit, results column, scale applied for display)
COMPARE_METRICS = [
    ("tokens/s (simulated)", "tokens_per_s", 1.0),
    ("tokens/s (analytic bound)", "bound_tokens_per_s", 1.0),
    ("tokens/s baseline (static high precision)", "baseline_tokens_per_s", 1.0),
    ("step latency p50 (us)", "step_latency_ns_p50", 1e-3),
    ("step latency p99 (us)", "step_latency_ns_p99", 1e-3),
    ("DRAM traffic per token (MB)", "dram_bytes_per_token", 1e-6),
    ("DRAM bandwidth avg (GB/s)", "dram_bandwidth_GBps_avg", 1.0),
    ("DRAM peak bandwidth (GB/s)", "hw_dram_peak_bandwidth_GBps", 1.0),
    ("energy per token (mJ)", "energy_pJ_per_token_total", 1e-9),
    ("DRAM traffic saving from gating (%)", F.TRAFFIC, 1.0),
    ("energy saving from gating (%)", F.ENERGY, 1.0),
    ("throughput gain from gating (%)", F.GAIN, 1.0),
    ("low-precision share of state writes (%)", "low_precision_share", 100.0),
    ("SSM state held in SRAM (%)", "ssm_state_sram_share", 100.0),
    ("state share of DRAM traffic (%)", "state_share_of_dram_traffic", 100.0),
]


def compare_table(results: pd.DataFrame) -> pd.DataFrame:
    """Rows = metrics (units in the label), columns = hardware configurations, failed ones blank."""
    ok = results[results["status"] == "ok"]
    present = [(label, col, scale) for label, col, scale in COMPARE_METRICS if col in ok]
    frame = ok.set_index(F.HW)[[col for _, col, _ in present]] * [scale for *_, scale in present]
    frame.columns = [label for label, _, _ in present]
    table = frame.T
    table.index.name = "metric"
    return table.reindex(columns=list(dict.fromkeys(results[F.HW])))


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-style Markdown table (no tabulate dependency)."""
    header = ["metric", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, row in table.iterrows():
        cells = ["" if pd.isna(v) else f"{v:,.4g}" for v in row]
        lines.append("| " + " | ".join([str(label), *cells]) + " |")
    return "\n".join(lines) + "\n"


def metric_bars(table: pd.DataFrame, folder: Path) -> F.Figure:
    """One small bar chart per metric, one bar per hardware configuration."""
    import matplotlib.pyplot as plt

    n = len(table.index)
    cols = 4
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False, layout="constrained")
    colours = [f"C{i}" for i in range(len(table.columns))]
    for ax, (label, row) in zip(axes.ravel(), table.iterrows()):
        ax.bar(range(len(row)), row.to_numpy(dtype=float), color=colours)
        ax.set_xticks(range(len(row)), list(table.columns), rotation=20, fontsize=7)
        ax.set_title(label, fontsize=8)
        ax.set_ylabel(label.split("(")[-1].rstrip(")") if "(" in label else "", fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    title = "Hardware comparison: one panel per metric"
    fig.suptitle(title)
    return F.save(fig, folder, "compare_bars", title, "Same workload and policy on each configuration.")


def roofline(results: pd.DataFrame, folder: Path) -> F.Figure:
    """Each configuration at x = FLOPs per DRAM byte, y = achieved FLOP/s (gated: filled, baseline:
    hollow), under its own roofline min(peak matmul FLOP/s, intensity x DRAM peak bandwidth): matmul
    FLOPs only, the same rule as the run's bound (`hwsim.bounds`); element-wise work has its own peak."""
    import matplotlib.pyplot as plt

    ok = results[results["status"] == "ok"]
    flops = ok["analytic_matmul_flops_per_token"]
    intensity = flops / ok["dram_bytes_per_token"].replace(0, np.nan)
    achieved = flops * ok["tokens_per_s"]
    base_intensity = flops / ok.get("baseline_dram_bytes_per_token", pd.Series(np.nan, ok.index)).replace(0, np.nan)
    base_achieved = flops * ok.get("baseline_tokens_per_s", pd.Series(np.nan, ok.index))
    finite = pd.concat([intensity, base_intensity]).replace([np.inf, -np.inf], np.nan).dropna()
    lo = max(1e-2, float(finite.min()) / 10) if len(finite) else 0.1
    hi = float(finite.max()) * 100 if len(finite) else 1e4
    x = np.logspace(np.log10(lo), np.log10(hi), 200)
    fig, ax = plt.subplots(figsize=(8, 5.5), layout="constrained")
    skipped = []
    for k, (i, row) in enumerate(ok.iterrows()):
        colour = f"C{k}"
        peak = row["hw_peak_matmul_TFLOPS"] * 1e12
        bandwidth = row["hw_dram_peak_bandwidth_GBps"] * 1e9
        ceiling = np.minimum(peak, x * bandwidth) if bandwidth else np.full_like(x, peak)
        ax.plot(x, ceiling, color=colour, lw=1, label=f"{row[F.HW]} roofline")
        if not np.isfinite(intensity[i]):
            skipped.append(row[F.HW])
            continue
        ax.scatter(intensity[i], achieved[i], color=colour, s=40, zorder=3, label=f"{row[F.HW]} gated")
        if np.isfinite(base_intensity[i]):
            ax.scatter(base_intensity[i], base_achieved[i], facecolors="none", edgecolors=colour, s=40,
                       zorder=3, label=f"{row[F.HW]} baseline")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (FLOP per byte of DRAM traffic)")
    ax.set_ylabel("achieved throughput (FLOP/s)")
    title = "Roofline: each hardware configuration and its ceiling"
    ax.set_title(title)
    ax.legend(fontsize=7)
    caption = ("Matmul FLOPs per token from the model geometry (projections and LM head) x tokens/s, under "
               "the matmul peak: the rule of the run's analytic bound. Scan and conv work runs on the "
               "vector units and is bounded separately in summary.json (bound_vector_time_ns).")
    if skipped:
        caption += f" Not placed (no DRAM traffic): {', '.join(skipped)}."
    return F.save(fig, folder, "compare_roofline", title, caption)


def write_compare(results: pd.DataFrame, out: Path) -> tuple[pd.DataFrame, list[F.Figure]]:
    """compare.csv, compare.md and the two comparison figures under out/figures."""
    table = compare_table(results)
    write_atomic(out / "compare.csv", lambda tmp: table.to_csv(tmp))
    write_atomic(out / "compare.md", lambda tmp: tmp.write_text(to_markdown(table)))
    figs = []
    if not table.empty and len(table.columns):
        figs = [metric_bars(table, out / "figures"), roofline(results, out / "figures")]
    return table, figs
