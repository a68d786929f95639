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


def _gated(df: pd.DataFrame) -> pd.DataFrame:
    """Points of a threshold-type policy that have a baseline to save against."""
    need = [THRESHOLD, LOW, TRAFFIC]
    if any(c not in df for c in need):
        return df.iloc[0:0]
    return df.dropna(subset=need)


def _facets(df: pd.DataFrame, row: str, col: str, *, width: float = 3.6, height: float = 2.8):
    rows, cols = sorted(df[row].dropna().unique()), sorted(df[col].dropna().unique())
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(width * len(cols) + 1.5, height * len(rows) + 1),
                             squeeze=False, sharex=True, layout="constrained")
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
    line style per hardware), facets by model (rows) and batch size (columns)."""
    data = _gated(df)
    if data.empty:
        return []
    data = data.assign(_bound=all_low_bound_pct(data))
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
                           label=f"bound: all states {low}-bit, {hw}")
        for (i, model), (j, batch) in ((r, c) for r in enumerate(rows) for c in enumerate(cols)):
            ax = axes[i][j]
            ax.set_title(f"{model}, batch {batch}", fontsize=9)
            ax.axhline(0, color="grey", lw=0.5)
            bottom, top = ax.get_ylim()
            if top - bottom < 1e-6:  # a flat zero facet (state on chip): show it as 0, not 1e-17 noise
                ax.set_ylim(-1, 1)
            if i == len(rows) - 1:
                ax.set_xlabel("entropy threshold (bits)")
            if j == 0:
                ax.set_ylabel(label)
        _legend(fig, axes)
        name = metric.replace("_pct", "")
        title = f"{sentence(label.split(' (')[0])} vs entropy threshold"
        fig.suptitle(f"{title}, by low bit-width (facets: model x batch size)")
        caption = ("Mean over any other swept parameter; positive = better than static high precision. "
                   + ("Dotted: analytic bound if every state were written at the low width."
                      if metric == TRAFFIC else "No closed-form bound for this metric; see the traffic figure."))
        out.append(save(fig, folder, f"vs_threshold_{name}", title, caption))
    return out


def heatmaps(df: pd.DataFrame, folder: Path) -> list[Figure]:
    """Threshold x low bit-width heatmaps of traffic and energy saving, at the largest batch swept."""
    data = _gated(df)
    if data.empty:
        return []
    batch = data[BATCH].max()
    data = data[data[BATCH] == batch]
    out = []
    for metric in (TRAFFIC, ENERGY):
        fig, axes, rows, cols = _facets(data, HW, MODEL, width=3.8, height=3.0)
        for (i, hw), (j, model) in ((r, c) for r in enumerate(rows) for c in enumerate(cols)):
            ax = axes[i][j]
            cell = data[(data[HW] == hw) & (data[MODEL] == model)]
            grid = cell.pivot_table(index=LOW, columns=THRESHOLD, values=metric, aggfunc="mean")
            if grid.empty:
                ax.set_axis_off()
                continue
            image = ax.imshow(grid.to_numpy(), origin="lower", aspect="auto", cmap="viridis")
            ax.set_xticks(range(grid.shape[1]), [f"{t:g}" for t in grid.columns])
            ax.set_yticks(range(grid.shape[0]), [str(b) for b in grid.index])
            low_value, high_value = np.nanmin(grid.to_numpy()), np.nanmax(grid.to_numpy())
            for (y, x), value in np.ndenumerate(grid.to_numpy()):
                bright = high_value > low_value and (value - low_value) / (high_value - low_value) > 0.6
                ax.text(x, y, f"{value:.1f}", ha="center", va="center", fontsize=7,
                        color="black" if bright else "white")
            ax.set_xlabel("entropy threshold (bits)")
            ax.set_ylabel("low bit-width (bits)")
            ax.set_title(f"{model} on {hw}", fontsize=9)
            fig.colorbar(image, ax=ax, label=SAVING_METRICS[metric])
        title = f"{sentence(SAVING_METRICS[metric].split(' (')[0])}: threshold x low bit-width"
        fig.suptitle(f"{title} at batch {batch}")
        out.append(save(fig, folder, f"heatmap_{metric.replace('_pct', '')}", title,
                        f"Cell = mean {SAVING_METRICS[metric]} at batch {batch} (the largest swept)."))
    return out


def crossover(df: pd.DataFrame, folder: Path) -> list[Figure]:
    """Analytic share of decode DRAM traffic that is SSM state vs batch size per model, with the
    largest saving gating could reach (all states at the lowest low width) and the measured savings."""
    need = ["analytic_weight_bytes_per_step", "analytic_ssm_state_bytes_per_stream_step", MODEL]
    if df.empty or any(c not in df for c in need):
        return []
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


def pareto(df: pd.DataFrame, folder: Path) -> list[Figure]:
    """Traffic saving vs the share of states written at low precision (a proxy for quality risk); the
    front is the points no other point beats on both."""
    data = _gated(df).dropna(subset=["low_precision_share"])
    if data.empty:
        return []
    x, y = 100 * data["low_precision_share"], data[TRAFFIC]
    order = np.argsort(x.to_numpy(), kind="stable")
    xs, ys = x.to_numpy()[order], y.to_numpy()[order]
    on_front = ys > np.concatenate([[-np.inf], np.maximum.accumulate(ys)[:-1]])
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    groups = data.groupby([MODEL, HW])
    for k, ((model, hw), part) in enumerate(groups):
        ax.scatter(100 * part["low_precision_share"], part[TRAFFIC], s=14, marker=MARKERS[k % len(MARKERS)],
                   label=f"{model} on {hw}", alpha=0.7)
    ax.step(xs[on_front], ys[on_front], where="post", color="black", lw=1.2, label="Pareto front")
    bound = all_low_bound_pct(data)
    ax.plot([0, 100], [0, bound.max()], color="grey", ls="--", lw=0.8,
            label=f"bound: saving scales with low share (best point {bound.max():.1f}% at 100%)")
    ax.set_xlabel("low-precision share of state writes (%)")
    ax.set_ylabel(SAVING_METRICS[TRAFFIC])
    title = "Pareto front: traffic saving vs low-precision share"
    ax.set_title(title)
    ax.legend(fontsize=7)
    return [save(fig, folder, "pareto", title, "Up and to the left is better: more saving for fewer "
                 "states at low precision. Dashed: linear bound of the configuration with the largest "
                 "all-low saving.")]


def chosen_point(row: pd.Series, steps: pd.DataFrame, folder: Path) -> list[Figure]:
    """Entropy, gate decisions and DRAM bandwidth over time for one point, and its latency distribution."""
    label = f"{row[MODEL]} on {row[HW]}, batch {row[BATCH]}, threshold {row.get(THRESHOLD)}, " \
            f"low {row.get(LOW)} bits"
    fig, (ent, gate, bw) = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True, layout="constrained")
    ent.plot(steps["step"], steps["stream0_entropy_bits"], lw=0.6, label="stream 0")
    ent.plot(steps["step"], steps["entropy_bits_mean"], lw=1.0, label="mean over the batch")
    if pd.notna(row.get(THRESHOLD)):
        ent.axhline(row[THRESHOLD], color="red", ls="--", lw=0.8, label="threshold")
    ent.set_ylabel("entropy (bits)")
    ent.legend(fontsize=7, loc="upper right")
    gate.step(steps["step"], steps["stream0_write_bits"], where="post", lw=0.8, label="stream 0 state width")
    gate.set_ylabel("stream 0 state width (bits)")
    share = gate.twinx()
    share.plot(steps["step"], 100 * steps["low_precision_writes"] / row[BATCH], color="C2", lw=0.6)
    share.set_ylabel("low-precision writes (% of batch)", color="C2")
    bw.plot(steps["step"], steps["dram_bandwidth_GBps"], lw=0.7, label="simulated")
    peak = row.get("hw_dram_peak_bandwidth_GBps", 0.0)
    if peak:
        bw.axhline(peak, color="red", ls="--", lw=0.8, label=f"DRAM peak {peak:,.0f} GB/s")
    bw.set_ylabel("DRAM bandwidth (GB/s)")
    bw.set_xlabel("decode step")
    bw.legend(fontsize=7, loc="lower right")
    title = "Chosen point over time: entropy, gate decisions, DRAM bandwidth"
    fig.suptitle(f"{title}\n{label}", fontsize=10)
    out = [save(fig, folder, "chosen_timeline", title, label)]

    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    latency_us = steps["latency_ns"] / 1e3
    ax.hist(latency_us, bins=50, color="C0", alpha=0.8)
    for q, style in ((0.5, "-"), (0.99, ":")):
        ax.axvline(latency_us.quantile(q), color="black", ls=style, lw=1, label=f"p{int(q * 100)} simulated")
    bound_us = row.get("bound_time_ns", np.nan) / max(1, row.get("steps", len(steps))) / 1e3
    if np.isfinite(bound_us):
        ax.axvline(bound_us, color="red", ls="--", lw=1, label=f"analytic bound {bound_us:,.1f} us")
    ax.set_xlabel("step latency (us)")
    ax.set_ylabel("steps")
    title = "Per-step latency distribution of the chosen point"
    ax.set_title(f"{title}\n{label}", fontsize=9)
    ax.legend(fontsize=7)
    out.append(save(fig, folder, "chosen_latency", title, f"{label}. Bound: roofline time / steps."))
    return out


def _config_label(frame: pd.DataFrame) -> pd.Series:
    return frame[MODEL] + " / " + frame[HW] + " / b" + frame[BATCH].astype(str)


def energy_stacked(df: pd.DataFrame, folder: Path) -> list[Figure]:
    """Energy per token by component for each configuration (model x hardware x batch), at the point of
    that configuration with the largest traffic saving; the baseline total beside it."""
    parts = [c for c in df.columns if c.startswith("energy_pJ_per_token_") and not c.endswith("_total")]
    if df.empty or not parts:
        return []
    key = TRAFFIC if TRAFFIC in df and df[TRAFFIC].notna().any() else "energy_pJ_per_token_total"
    best = df.loc[df.groupby([MODEL, HW, BATCH])[key].idxmax()].sort_values([MODEL, HW, BATCH])
    labels = _config_label(best)
    fig, (absolute, shares) = plt.subplots(1, 2, figsize=(13, 0.35 * len(best) + 3.5), layout="constrained")
    mj = best[parts] / 1e9
    left = np.zeros(len(best))
    pct = 100 * mj.div(mj.sum(axis=1), axis=0)
    left_pct = np.zeros(len(best))
    for k, part in enumerate(parts):
        name = part.removeprefix("energy_pJ_per_token_")
        absolute.barh(labels, mj[part], left=left, color=plt.cm.tab10(k % 10), label=name)
        shares.barh(labels, pct[part], left=left_pct, color=plt.cm.tab10(k % 10))
        left += mj[part].to_numpy()
        left_pct += pct[part].to_numpy()
    if "baseline_energy_pJ_per_token_total" in best:
        absolute.scatter(best["baseline_energy_pJ_per_token_total"] / 1e9, labels, color="black", marker="|",
                         s=200, label="baseline total (static high precision)", zorder=3)
    absolute.set_xlabel("energy per token (mJ)")
    shares.set_xlabel("share of energy per token (%)")
    shares.set_yticks([])
    _legend(fig, [absolute])
    title = "Energy per token by component per configuration"
    fig.suptitle(title)
    return [save(fig, folder, "energy_stacked", title, "Each bar: the gated point of that configuration "
                 "with the largest traffic saving. Energy = action counts x the hardware's energy table.")]


def throughput_vs_bound(df: pd.DataFrame, folder: Path) -> list[Figure]:
    """Simulated tokens/s beside the analytic roofline bound of the same point."""
    if df.empty or "bound_tokens_per_s" not in df:
        return []
    fig, ax = plt.subplots(figsize=(7, 5.5), layout="constrained")
    for k, ((model, hw), part) in enumerate(df.groupby([MODEL, HW])):
        ax.scatter(part["bound_tokens_per_s"], part["tokens_per_s"], s=14, marker=MARKERS[k % len(MARKERS)],
                   label=f"{model} on {hw}")
    lo = float(min(df["tokens_per_s"].min(), df["bound_tokens_per_s"].min())) * 0.8
    hi = float(max(df["tokens_per_s"].max(), df["bound_tokens_per_s"].max())) * 1.2
    ax.plot([lo, hi], [lo, hi], color="red", ls="--", lw=0.8, label="simulated = bound")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("analytic bound (tokens/s)")
    ax.set_ylabel("simulated throughput (tokens/s)")
    title = "Simulated throughput vs analytic roofline bound"
    ax.set_title(title)
    ax.legend(fontsize=7)
    ratio = (df["tokens_per_s"] / df["bound_tokens_per_s"]).describe()
    return [save(fig, folder, "throughput_vs_bound", title,
                 f"Simulated / bound: median {ratio['50%']:.3f}, min {ratio['min']:.3f}, max {ratio['max']:.3f}"
                 " (above 1 would mean a bug: no schedule beats the roofline).")]


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
