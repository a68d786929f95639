"""The report's figures, drawn from the stored results table (and one point's steps.parquet) alone.

Each function takes the table of finished points and returns the figures it drew (PNG + SVG) or none
when the sweep lacks what it needs (an axis not swept draws one facet; nothing to draw is skipped).
Every axis names its unit; the analytic bound is drawn where one exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hwsim.files import write_atomic

MODEL, HW, BATCH = "cfg.model.name", "cfg.hardware.name", "cfg.workload.batch_size"
THRESHOLD, LOW, HIGH = "cfg.policy.threshold_bits", "cfg.policy.low_bits", "cfg.policy.high_bits"
TRAFFIC, ENERGY, GAIN = "saving_dram_bytes_per_token_pct", "saving_energy_per_token_pct", "gain_tokens_per_s_pct"
SAVING_METRICS = {
    TRAFFIC: "DRAM traffic saving per token (%)",
    ENERGY: "energy saving per token (%)",
    GAIN: "throughput gain, tokens/s (%)",
}
LINESTYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    caption: str
    png: Path
    svg: Path


def sentence(label: str) -> str:
    return label[:1].upper() + label[1:]


def save(fig, folder: Path, name: str, title: str, caption: str) -> Figure:
    folder.mkdir(parents=True, exist_ok=True)
    png, svg = folder / f"{name}.png", folder / f"{name}.svg"
    write_atomic(png, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    fig.set_layout_engine("none")  # keep the layout just computed: the SVG need not solve it again
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: smaller, faster to write
        write_atomic(svg, lambda tmp: fig.savefig(tmp, format="svg"))
    plt.close(fig)
    return Figure(name=name, title=title, caption=caption, png=png, svg=svg)


def effective_bits(bits: pd.Series | float, high: pd.Series | float, df: pd.DataFrame | None = None):
    """Stored bits per state element, group scales included (integer widths carry one scale per group)."""
    scale = (df["cfg.policy.scale_bits"] / df["cfg.policy.group_size"]) if df is not None else 0.25
    return np.where(np.asarray(bits) < 16, np.asarray(bits) + scale, np.asarray(bits))


def all_low_bound_pct(df: pd.DataFrame) -> pd.Series:
    """Traffic saving if every state were written at the low width: measured baseline state traffic x
    (1 - low/high effective bits) / baseline traffic. No threshold can beat it."""
    low = effective_bits(df[LOW], df[HIGH], df)
    high = effective_bits(df[HIGH], df[HIGH], df)
    share = df["baseline_dram_bytes_per_token_ssm_state"] / df["baseline_dram_bytes_per_token"]
    return pd.Series(100.0 * share * (1.0 - low / high), index=df.index)


TARGET_PCT = 25.0
DEFAULT_STYLE = {"marker": "*", "s": 220, "facecolor": "none", "edgecolor": "red", "linewidths": 1.6,
                 "zorder": 5}


def target_line(ax, label: bool = True) -> None:
    """The 25% claim, on every saving axis."""
    ax.axhline(TARGET_PCT, color="red", lw=0.9, ls=(0, (6, 3)), label="25% claim" if label else None)


def is_default(df: pd.DataFrame) -> pd.Series:
    return df["is_default"].astype(bool) if "is_default" in df else pd.Series(False, index=df.index)


def main_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The main set (the sweep's most common workload); all rows when the frame is not annotated."""
    return df[df["is_main"].astype(bool)] if "is_main" in df else df


def _gated(df: pd.DataFrame) -> pd.DataFrame:
    """Main-set points of a threshold-type policy that have a baseline to save against."""
    need = [THRESHOLD, LOW, TRAFFIC]
    if any(c not in df for c in need):
        return df.iloc[0:0]
    return main_rows(df).dropna(subset=need)


def _facets(df: pd.DataFrame, row: str, col: str, *, width: float = 3.6, height: float = 2.8, sharey=True):
    rows, cols = sorted(df[row].dropna().unique()), sorted(df[col].dropna().unique())
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(width * len(cols) + 1.5, height * len(rows) + 1),
                             squeeze=False, sharex=True, sharey=sharey, layout="constrained")
    return fig, axes, rows, cols


def _legend(fig, axes) -> None:
    handles = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles.keys()), loc="outside lower center", fontsize=8,
                   ncols=min(4, len(handles)))


def savings_vs_threshold(df: pd.DataFrame, folder: Path) -> list[Figure]:
    """Saving against the static high-precision baseline vs threshold: one line per low bit-width (and
    line style per hardware), facets by model (rows) and batch size (columns), one y axis for all."""
    data = _gated(df)
    if data.empty:
        return []
    data = data.assign(_bound=all_low_bound_pct(data), _default=is_default(data))
    hardware = sorted(data[HW].unique())
    lows = sorted(data[LOW].unique())
    colours = {low: plt.cm.viridis(i / max(1, len(lows))) for i, low in enumerate(lows)}
    out = []
    for metric, label in SAVING_METRICS.items():
        fig, axes, rows, cols = _facets(data, MODEL, BATCH)
        grouped = data.groupby([MODEL, BATCH, HW, LOW, THRESHOLD], as_index=False)[[metric, "_bound"]].mean()
        for (model, batch, hw, low), line in grouped.groupby([MODEL, BATCH, HW, LOW]):
            ax = axes[rows.index(model)][cols.index(batch)]
            style = LINESTYLES[hardware.index(hw) % len(LINESTYLES)]
            ax.plot(line[THRESHOLD], line[metric], style, marker="o", ms=3, color=colours[low],
                    label=f"{low}-bit low, {hw}")
            if metric == TRAFFIC:
                ax.axhline(line["_bound"].max(), color=colours[low], lw=0.8, ls=(0, (1, 3)),
                           label=f"bound: all states {low}-bit")
        for _, point in data[data["_default"]].iterrows():
            ax = axes[rows.index(point[MODEL])][cols.index(point[BATCH])]
            ax.scatter([point[THRESHOLD]], [point[metric]], label="default operating point", **DEFAULT_STYLE)
        for (i, model), (j, batch) in ((r, c) for r in enumerate(rows) for c in enumerate(cols)):
            ax = axes[i][j]
            ax.set_title(f"{model}, batch {batch}", fontsize=9)
            ax.axhline(0, color="grey", lw=0.5)
            target_line(ax)
            if i == len(rows) - 1:
                ax.set_xlabel("entropy threshold (bits)")
            if j == 0:
                ax.set_ylabel(label)
        _legend(fig, axes)
        name = metric.replace("_pct", "")
        title = f"{sentence(label.split(' (')[0])} vs entropy threshold"
        fig.suptitle(f"{title}, by low bit-width (facets: model x batch size, one y axis)")
        caption = ("Default trace mix; positive = better than static high precision; all panels share one y "
                   "axis; dashed red: the 25% claim; red star: the default operating point. "
                   + ("Dotted: analytic bound if every state were written at the low width."
                      if metric == TRAFFIC else "No closed-form bound for this metric; see the traffic figure."))
        out.append(save(fig, folder, f"vs_threshold_{name}", title, caption))
    return out


def heatmap_batches(data: pd.DataFrame) -> list:
    """The default's batch (when swept) and the largest batch."""
    batches = [data[BATCH].max()]
    defaults = data[is_default(data)]
    if not defaults.empty and defaults[BATCH].iloc[0] != batches[0]:
        batches.insert(0, defaults[BATCH].iloc[0])
    return batches


def heatmaps(df: pd.DataFrame, folder: Path) -> list[Figure]:
    """Threshold x low bit-width heatmaps of traffic and energy saving (hardware rows x model and batch
    columns) on ONE colour scale per metric, at the default's batch and the largest batch."""
    data = _gated(df)
    if data.empty:
        return []
    batches = heatmap_batches(data)
    data = data[data[BATCH].isin(batches)].assign(_default=is_default(data))
    out = []
    for metric in (TRAFFIC, ENERGY):
        hws = sorted(data[HW].unique())
        cols = [(m, b) for m in sorted(data[MODEL].unique()) for b in batches]
        fig, axes = plt.subplots(len(hws), len(cols), figsize=(3.3 * len(cols) + 1.5, 2.6 * len(hws) + 1),
                                 squeeze=False, layout="constrained")
        vmin, vmax = float(data[metric].min()), float(data[metric].max())
        if vmax - vmin < 1e-9:
            vmax = vmin + 1.0
        image = None
        for (i, hw), (j, (model, batch)) in ((r, c) for r in enumerate(hws) for c in enumerate(cols)):
            ax = axes[i][j]
            cell = data[(data[HW] == hw) & (data[MODEL] == model) & (data[BATCH] == batch)]
            grid = cell.pivot_table(index=LOW, columns=THRESHOLD, values=metric, aggfunc="mean")
            if grid.empty:
                ax.set_axis_off()
                continue
            image = ax.imshow(grid.to_numpy(), origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
            ax.set_xticks(range(grid.shape[1]), [f"{t:g}" for t in grid.columns])
            ax.set_yticks(range(grid.shape[0]), [str(b) for b in grid.index])
            for (y, x), value in np.ndenumerate(grid.to_numpy()):
                bright = (value - vmin) / (vmax - vmin) > 0.6
                ax.text(x, y, f"{value:.1f}" + ("*" if value >= TARGET_PCT else ""), ha="center", va="center",
                        fontsize=7, color="black" if bright else "white",
                        fontweight="bold" if value >= TARGET_PCT else "normal")
            for _, point in cell[cell["_default"]].iterrows():
                x, y = list(grid.columns).index(point[THRESHOLD]), list(grid.index).index(point[LOW])
                ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, ec="red", lw=2))
            if i == len(hws) - 1:
                ax.set_xlabel("entropy threshold (bits)")
            if j == 0:
                ax.set_ylabel(f"{hw}\nlow width (bits)")
            ax.set_title(f"{model}, batch {batch}", fontsize=9)
        if image is not None:
            fig.colorbar(image, ax=axes, label=SAVING_METRICS[metric], shrink=0.8)
        title = f"{sentence(SAVING_METRICS[metric].split(' (')[0])}: threshold x low bit-width"
        fig.suptitle(f"{title} (one colour scale for all panels)")
        out.append(save(fig, folder, f"heatmap_{metric.replace('_pct', '')}", title,
                        f"Cell = {SAVING_METRICS[metric]} at batch {', '.join(map(str, batches))}; one colour "
                        "scale across panels; * and bold: at or above 25%; red box: the default operating point."))
    return out


def crossover(df: pd.DataFrame, folder: Path) -> list[Figure]:
    """Analytic share of decode DRAM traffic that is SSM state vs batch size per model, with the
    largest saving gating could reach (all states at the lowest low width) and the measured savings."""
    need = ["analytic_weight_bytes_per_step", "analytic_ssm_state_bytes_per_stream_step", MODEL]
    if df.empty or any(c not in df for c in need):
        return []
    df = main_rows(df)
    models = df.drop_duplicates(MODEL).set_index(MODEL)
    low = df[LOW].min() if LOW in df and df[LOW].notna().any() else 4
    high = df[HIGH].max() if HIGH in df and df[HIGH].notna().any() else 16
    ratio = 1.0 - float(effective_bits(low, high)) / float(effective_bits(high, high))
    max_batch = max(1024, int(df[BATCH].max()) * 2)
    batch = np.logspace(0, np.log10(max_batch), 200)
    fig, (share_ax, save_ax, phase_ax) = plt.subplots(1, 3, figsize=(17, 4.5), layout="constrained")
    for k, (model, row) in enumerate(models.iterrows()):
        colour = f"C{k}"
        weights, ssm = row["analytic_weight_bytes_per_step"], row["analytic_ssm_state_bytes_per_stream_step"]
        conv = row.get("analytic_conv_state_bytes_per_stream_step", 0.0)
        share = 100.0 * batch * ssm / (weights + batch * (ssm + conv))
        share_ax.plot(batch, share, color=colour, label=f"{model} (analytic)")
        cross = weights / ssm
        share_ax.axvline(cross, color=colour, ls=":", lw=1)
        share_ax.annotate(f"state = weights\nat batch {cross:.0f}", (cross, 50), fontsize=7, color=colour,
                          rotation=90, ha="right", va="center")
        save_ax.plot(batch, share * ratio, color=colour, ls="--", label=f"{model}: bound, all states {low}-bit")
        measured = df[df[MODEL] == model]
        if "baseline_dram_bytes_per_token_ssm_state" in measured:
            state = 100 * measured["baseline_dram_bytes_per_token_ssm_state"] / measured["baseline_dram_bytes_per_token"]
            share_ax.scatter(measured[BATCH], state, color=colour, marker="x", s=25,
                             label=f"{model} (simulated baseline, after SRAM residency)")
        if TRAFFIC in measured:
            save_ax.scatter(measured[BATCH], measured[TRAFFIC], color=colour, s=12, alpha=0.6,
                            label=f"{model}: simulated points")
            marked = measured[is_default(measured)]
            if not marked.empty:
                save_ax.scatter(marked[BATCH].iloc[:1], marked[TRAFFIC].iloc[:1], label="default operating point",
                                **DEFAULT_STYLE)
    _phase_intensity(phase_ax, df, models, batch)
    for ax in (share_ax, save_ax, phase_ax):
        ax.set_xscale("log")
        ax.set_xlabel("batch size (streams)")
        ax.legend(fontsize=7)
    share_ax.set_ylabel("SSM state share of DRAM traffic (%)")
    share_ax.set_title("Where the state dominates decode traffic")
    share_ax.axhline(50, color="grey", lw=0.5)
    save_ax.set_ylabel("DRAM traffic saving per token (%)")
    save_ax.set_title("Where gating can pay at all")
    save_ax.axhspan(0, 5, color="grey", alpha=0.15, label="< 5%: gating cannot pay")
    target_line(save_ax)
    save_ax.legend(fontsize=7)
    title = "Crossover: state share of decode traffic vs batch size"
    fig.suptitle(f"{title} (analytic from geometry, simulated on top)")
    caption = (f"Analytic: weights + LM head once per step, SSM state read + written per stream at "
               f"{high} bits; conv state counted as other traffic. Dashed bound: every state at {low} bits. "
               "Simulated shares are lower where the SRAM keeps part of the state. Right: FLOPs per DRAM "
               f"byte of a decode step and of the prefill of a {PREFILL_TOKENS}-token prompt per stream "
               "(weights read once, final state written once; activations not counted, so an upper "
               "bound), against each hardware's ridge point (peak matmul FLOP/s / peak DRAM bandwidth): "
               "above the ridge a phase is compute-bound, below it memory-bound.")
    return [save(fig, folder, "crossover", title, caption)]


#: prompt length of the prefill curve in the crossover figure
PREFILL_TOKENS = 2048


def _phase_intensity(ax, df: pd.DataFrame, models: pd.DataFrame, batch: np.ndarray) -> None:
    """Arithmetic intensity of decode and prefill per model against the hardware ridge points."""
    for k, (model, row) in enumerate(models.iterrows()):
        weights, ssm = row["analytic_weight_bytes_per_step"], row["analytic_ssm_state_bytes_per_stream_step"]
        conv = row.get("analytic_conv_state_bytes_per_stream_step", 0.0)
        flops = row["analytic_matmul_flops_per_token"]
        decode = batch * flops / (weights + batch * (ssm + conv))
        prefill = batch * PREFILL_TOKENS * flops / (weights + batch * (ssm + conv) / 2)
        ax.plot(batch, decode, color=f"C{k}", label=f"{model}: decode step")
        ax.plot(batch, prefill, color=f"C{k}", ls="--", label=f"{model}: prefill, {PREFILL_TOKENS} tokens")
    if {"hw_peak_matmul_TFLOPS", "hw_dram_peak_bandwidth_GBps", HW} <= set(df.columns):
        for hardware, row in df.drop_duplicates(HW).set_index(HW).iterrows():
            if row["hw_dram_peak_bandwidth_GBps"] > 0:
                ridge = row["hw_peak_matmul_TFLOPS"] * 1e3 / row["hw_dram_peak_bandwidth_GBps"]
                ax.axhline(ridge, color="grey", ls=":", lw=1)
                ax.annotate(f"ridge {hardware}: {ridge:.0f} FLOP/B", (batch[0], ridge), fontsize=7,
                            va="bottom", color="grey")
    ax.set_yscale("log")
    ax.set_ylabel("matmul FLOPs per DRAM byte")
    ax.set_title("Prefill is compute-bound, decode memory-bound")


def saving_vs_share(df: pd.DataFrame, folder: Path) -> list[Figure]:
    """Traffic saving vs the share of states written at low precision. Lines join the thresholds of one
    configuration (model, hardware, batch, low width): thresholds are choices, batch sizes and models
    are workloads, so no front is drawn across them."""
    data = _gated(df).dropna(subset=["low_precision_share"])
    if data.empty:
        return []
    fig, ax = plt.subplots(figsize=(9, 5.5), layout="constrained")
    batches = sorted(data[BATCH].unique())
    for k, ((model, hw, batch, low), part) in enumerate(data.groupby([MODEL, HW, BATCH, LOW])):
        part = part.sort_values(THRESHOLD)
        colour = plt.cm.viridis(batches.index(batch) / max(1, len(batches) - 1) * 0.9)
        ax.plot(100 * part["low_precision_share"], part[TRAFFIC], ls=LINESTYLES[int(low != data[LOW].min())],
                marker=MARKERS[sorted(data[MODEL].unique()).index(model) % len(MARKERS)], ms=4, lw=0.8,
                color=colour, alpha=0.8, label=f"batch {batch}")
    marked = data[is_default(data)]
    if not marked.empty:
        ax.scatter(100 * marked["low_precision_share"], marked[TRAFFIC], label="default operating point",
                   **DEFAULT_STYLE)
    target_line(ax)
    ax.set_xlabel("low-precision share of state writes (%)")
    ax.set_ylabel(SAVING_METRICS[TRAFFIC])
    title = "Traffic saving vs low-precision share (one line per configuration)"
    ax.set_title(title)
    _legend(fig, [ax])
    return [save(fig, folder, "saving_vs_share", title, "Each line: one model, hardware, batch and low width "
                 "(solid: the lowest low width) across thresholds; marker shape = model. The slope is the "
                 "state's share of traffic: the same low share saves more where the state dominates. "
                 "Red star: the default operating point.")]


def timeline(row: pd.Series, steps: pd.DataFrame, folder: Path, baseline: pd.DataFrame | None = None,
             label: str = "") -> list[Figure]:
    """Entropy, gate decisions, step latency and DRAM bandwidth over time at the default operating
    point, the baseline's latency and bandwidth beside them."""
    fig, (ent, gate, lat, bw) = plt.subplots(4, 1, figsize=(10, 9), sharex=True, layout="constrained")
    ent.plot(steps["step"], steps["stream0_entropy_bits"], lw=0.5, label="stream 0")
    ent.plot(steps["step"], steps["entropy_bits_mean"], lw=1.0, label="mean over the batch")
    if pd.notna(row.get(THRESHOLD)):
        ent.axhline(row[THRESHOLD], color="red", ls="--", lw=0.8, label="threshold")
    ent.set_ylabel("entropy (bits)")
    ent.legend(fontsize=7, loc="upper right")
    gate.plot(steps["step"], 100 * steps["low_precision_writes"] / row[BATCH], color="C2", lw=0.6)
    gate.set_ylabel("low-precision writes\n(% of batch)")
    gate.set_ylim(0, 100)
    lat.plot(steps["step"], steps["latency_ns"] / 1e6, lw=0.6, label="gated")
    if baseline is not None:
        lat.plot(baseline["step"], baseline["latency_ns"] / 1e6, lw=0.6, color="grey", label="baseline (16-bit)")
    lat.set_ylabel("step latency (ms)")
    lat.legend(fontsize=7, loc="upper right")
    peak = row.get("hw_dram_peak_bandwidth_GBps", 0.0)
    bw.plot(steps["step"], steps["dram_bandwidth_GBps"], lw=0.7, label="gated")
    if baseline is not None:
        bw.plot(baseline["step"], baseline["dram_bandwidth_GBps"], lw=0.7, color="grey", label="baseline (16-bit)")
    if peak:
        bw.axhline(peak, color="red", ls="--", lw=0.8, label=f"DRAM peak {peak:,.0f} GB/s")
        bw.set_ylim(0, peak * 1.1)
    bw.set_ylabel("DRAM bandwidth (GB/s)")
    bw.set_xlabel("decode step")
    bw.legend(fontsize=7, loc="lower right")
    title = "Default operating point over time: entropy, gate decisions, step latency, DRAM bandwidth"
    fig.suptitle(f"{title}\n{label}", fontsize=10)
    avg, base = row.get("dram_bandwidth_GBps_avg", np.nan), row.get("baseline_dram_bandwidth_GBps_avg", np.nan)
    caption = (f"{label}. DRAM bandwidth stays saturated ({avg:,.0f} GB/s gated vs {base:,.0f} GB/s baseline, "
               f"peak {peak:,.0f} GB/s) while steps get shorter: gating moves fewer bytes per token, and the "
               "memory stays busy with the next step's bytes.")
    return [save(fig, folder, "timeline", title, caption)]


def robust_range(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.quantile(values, [0.005, 0.995])
    pad = 0.05 * max(hi - lo, 1e-12)
    return float(lo - pad), float(hi + pad)


def latency(row: pd.Series, steps: pd.DataFrame, folder: Path, baseline: pd.DataFrame | None = None,
            label: str = "") -> list[Figure]:
    """Per-step latency distribution of the default operating point beside its baseline's, on the range
    of the central 99% of steps (outliers counted in the caption)."""
    gated = steps["latency_ns"].to_numpy() / 1e6
    base = baseline["latency_ns"].to_numpy() / 1e6 if baseline is not None else None
    both = np.concatenate([gated, base]) if base is not None else gated
    lo, hi = robust_range(both)
    bins = np.linspace(lo, hi, 60)
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    ax.hist(np.clip(gated, lo, hi), bins=bins, color="C0", alpha=0.7, label="gated")
    if base is not None:
        ax.hist(np.clip(base, lo, hi), bins=bins, color="grey", alpha=0.6, label="baseline (16-bit)")
    for values, colour, name in ((gated, "C0", "gated"), (base, "black", "baseline")):
        if values is not None:
            ax.axvline(np.median(values), color=colour, lw=1, label=f"p50 {name} {np.median(values):.3f} ms")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("step latency (ms)")
    ax.set_ylabel("steps")
    title = "Per-step latency: default operating point vs its baseline"
    ax.set_title(f"{title}\n{label}", fontsize=9)
    ax.legend(fontsize=7)
    outside = int(((both < lo) | (both > hi)).sum())
    return [save(fig, folder, "latency", title, f"{label}. Range: the central 99% of steps; {outside} step(s) "
                 "outside it are counted in the edge bins.")]


def _config_label(frame: pd.DataFrame) -> pd.Series:
    return frame[MODEL] + " / " + frame[HW] + " / b" + frame[BATCH].astype(str)


def energy_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (model x hardware x batch): the default's policy where swept, else
    the point with the largest traffic saving."""
    df = main_rows(df)
    marked = df[is_default(df)]
    if not marked.empty and THRESHOLD in df and LOW in df:
        same = df[(df[THRESHOLD] == marked[THRESHOLD].iloc[0]) & (df[LOW] == marked[LOW].iloc[0])]
        if not same.empty:
            df = same
    key = TRAFFIC if TRAFFIC in df and df[TRAFFIC].notna().any() else "energy_pJ_per_token_total"
    return df.loc[df.groupby([MODEL, HW, BATCH])[key].idxmax()].sort_values([MODEL, HW, BATCH])


def energy_stacked(df: pd.DataFrame, folder: Path) -> list[Figure]:
    """Energy per token per configuration on a log axis (gated and baseline), and its split by component
    in percent (readable at every batch size)."""
    parts = [c for c in df.columns if c.startswith("energy_pJ_per_token_") and not c.endswith("_total")]
    if df.empty or not parts:
        return []
    best = energy_rows(df)
    labels = _config_label(best)
    fig, (absolute, shares) = plt.subplots(1, 2, figsize=(13, 0.35 * len(best) + 3.5), layout="constrained",
                                           sharey=True)
    absolute.scatter(best["energy_pJ_per_token_total"] / 1e9, labels, color="C0", label="gated total", zorder=3)
    if "baseline_energy_pJ_per_token_total" in best:
        absolute.scatter(best["baseline_energy_pJ_per_token_total"] / 1e9, labels, color="black", marker="|",
                         s=200, label="baseline total (static high precision)", zorder=3)
    marked = best[is_default(best)]
    if not marked.empty:
        absolute.scatter(marked["energy_pJ_per_token_total"] / 1e9, _config_label(marked),
                         label="default operating point", **DEFAULT_STYLE)
    absolute.set_xscale("log")
    absolute.grid(axis="x", which="both", alpha=0.3)
    pct = 100 * best[parts].div(best[parts].sum(axis=1), axis=0)
    left = np.zeros(len(best))
    for k, part in enumerate(parts):
        shares.barh(labels, pct[part], left=left, color=plt.cm.tab10(k % 10),
                    label=part.removeprefix("energy_pJ_per_token_"))
        left += pct[part].to_numpy()
    absolute.set_xlabel("energy per token (mJ, log scale)")
    shares.set_xlabel("share of energy per token (%)")
    _legend(fig, [absolute, shares])
    title = "Energy per token per configuration, and where it goes"
    fig.suptitle(title)
    return [save(fig, folder, "energy", title, "Each row: one model / hardware / batch at the default's "
                 "threshold and low width (else its largest traffic saving). Left: totals on a log axis; right: "
                 "the split by component in percent. Energy = action counts x the hardware's energy table.")]


def simulated_over_bound(df: pd.DataFrame, folder: Path) -> list[Figure]:
    """Simulated time over the analytic roofline time (the ratio `hwsim run` prints), per point."""
    if df.empty or "simulated_over_bound" not in df or df["simulated_over_bound"].isna().all():
        return []
    data = main_rows(df).dropna(subset=["simulated_over_bound"])
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    hws = sorted(data[HW].unique())
    for (model, hw), part in data.groupby([MODEL, HW]):
        jitter = 1 + 0.04 * (hws.index(hw) - (len(hws) - 1) / 2)
        ax.scatter(part[BATCH] * jitter, part["simulated_over_bound"], s=16, color=f"C{hws.index(hw)}",
                   marker=MARKERS[sorted(data[MODEL].unique()).index(model) % len(MARKERS)],
                   label=f"{model} on {hw}", alpha=0.8)
    marked = data[is_default(data)]
    if not marked.empty:
        ax.scatter(marked[BATCH], marked["simulated_over_bound"], label="default operating point", **DEFAULT_STYLE)
    ax.axhline(1.0, color="red", ls="--", lw=0.8, label="simulated = bound")
    ax.set_xscale("log")
    ax.set_xlabel("batch size (streams)")
    ax.set_ylabel("simulated time / roofline bound time")
    title = "Simulated time over the analytic roofline bound"
    ax.set_title(title)
    ax.legend(fontsize=7)
    ratio = data["simulated_over_bound"].describe()
    return [save(fig, folder, "simulated_over_bound", title,
                 f"Simulated / bound time (as `hwsim run` prints it): median {ratio['50%']:.3f}, min "
                 f"{ratio['min']:.3f}, max {ratio['max']:.3f}. Below 1 would mean a bug: no schedule beats the "
                 "roofline. GPU points sit higher: kernels run one after another with launch and latency floors.")]


def workload_breakdown(df: pd.DataFrame, folder: Path) -> list[Figure]:
    """Traffic saving per trace domain (mean, spread over traces and seeds as error bars, every run as
    a dot) beside the default mix, per batch size of the breakdown."""
    from hwsim.sweeps.frames import DOMAIN, DOMAIN_ORDER, domain_rows

    if DOMAIN not in df:
        return []
    rows = domain_rows(df)
    if rows.empty:
        return []
    batches = sorted(rows[BATCH].unique())
    domains = [d for d in DOMAIN_ORDER if d in set(rows[DOMAIN])] + sorted(set(rows[DOMAIN]) - set(DOMAIN_ORDER))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    width = 0.8 / len(batches)
    for metric, ax in ((TRAFFIC, axes[0]), ("low_precision_share", axes[1])):
        scale = 100 if metric == "low_precision_share" else 1
        for k, batch in enumerate(batches):
            part = rows[rows[BATCH] == batch]
            stats = part.groupby(DOMAIN)[metric].agg(["mean", "std"]).reindex(domains) * scale
            x = np.arange(len(domains)) + (k - (len(batches) - 1) / 2) * width
            ax.bar(x, stats["mean"], width * 0.9, yerr=stats["std"].fillna(0), capsize=3, alpha=0.75,
                   color=plt.cm.viridis(k / max(1, len(batches)) * 0.9), label=f"batch {batch}")
            for i, domain in enumerate(domains):
                values = part.loc[part[DOMAIN] == domain, metric] * scale
                ax.scatter(np.full(len(values), x[i]), values, s=8, color="black", zorder=3)
            marked = part[is_default(part) & (part[DOMAIN] == domains[-1])] if metric == TRAFFIC else part.iloc[0:0]
            if not marked.empty:
                ax.scatter([x[-1]], [marked[TRAFFIC].mean()], label="default operating point", **DEFAULT_STYLE)
        ax.set_xticks(range(len(domains)), domains)
    target_line(axes[0])
    axes[0].set_ylabel(SAVING_METRICS[TRAFFIC])
    axes[1].set_ylabel("low-precision share of state writes (%)")
    axes[0].legend(fontsize=7)
    setting = rows.iloc[0]
    label = (f"{setting[MODEL]} on {setting[HW]}, threshold {setting.get(THRESHOLD, float('nan')):g} bit(s), "
             f"{setting.get(LOW, float('nan')):.0f}-bit low")
    title = "Workload breakdown: saving per trace domain beside the default mix"
    fig.suptitle(f"{title}\n{label}", fontsize=10)
    return [save(fig, folder, "workload_breakdown", title, f"{label}. Bars: mean over the domain's traces and "
                 "seeds (each trace alone); error bars: standard deviation; dots: every run. The mix replays "
                 "all shipped traces round-robin, so its share of easy tokens is set by the mix.")]


def quality(df: pd.DataFrame, folder: Path) -> list[Figure]:
    """With `quality: true`: traffic saving against the quality cost (KL, perplexity change), random
    gating at the same share beside it, and the all-low quality by bit-width and group size."""
    data = _gated(df)
    if "quality_kl_bits_mean" not in data or data["quality_kl_bits_mean"].isna().all():
        return []
    from hwsim.quality import figures as Q  # matplotlib only; torch is not imported

    data = data.dropna(subset=["quality_kl_bits_mean", TRAFFIC])
    folder.mkdir(parents=True, exist_ok=True)
    drawn = []
    for metric, name in (("quality_kl_bits_mean", "quality_pareto_kl"),
                         ("quality_ppl_change_pct", "quality_pareto_ppl")):
        png, svg = folder / f"{name}.png", folder / f"{name}.svg"
        for path in (png, svg):
            Q.pareto_figure(data, path, saving=TRAFFIC, quality=metric)
        title = f"Traffic saving vs quality cost ({metric}), entropy vs random gating"
        drawn.append(Figure(name=name, title=title, png=png, svg=svg, caption=(
            "Blue: entropy gating; grey: random gating at the same low-precision share (mean ± std over "
            "seeds). Quality measured on the shipped Mamba model against its full-precision run.")))
    if {"quality_low_bits", "quality_group_size"} <= set(data.columns):
        png, svg = folder / "quality_vs_bits.png", folder / "quality_vs_bits.svg"
        for path in (png, svg):
            Q.bits_group_figure(data, path)
        drawn.append(Figure(name="quality_vs_bits", title="Quality of an all-low state vs bit-width and "
                            "group size", png=png, svg=svg, caption="Every state at the low width: what a "
                            "width costs before any gating."))
    return drawn


#: the name `hwsim compare` asks for (the ratio plot replaced the log-log scatter)
throughput_vs_bound = simulated_over_bound
