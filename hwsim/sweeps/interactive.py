"""Interactive versions of the report's figures (plotly): hover shows a point's parameters and figures,
drag to zoom, click a legend entry to hide it. Same data and the same rules as the static figures in
`hwsim.sweeps.figures` (one y axis across facets, one colour scale across heatmap panels, the 25% line,
the default operating point as a red star). Each function returns {figure name: HTML div}; the page
carries plotly.js once, inline (`plotly_script`), so it opens offline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hwsim.sweeps import figures as F
from hwsim.sweeps.frames import DOMAIN, DOMAIN_ORDER, TRACES, domain_rows

HOVER = [(F.MODEL, "model", ""), (F.HW, "hardware", ""), (F.BATCH, "batch", ""),
         (F.THRESHOLD, "threshold (bits)", ":g"), (F.LOW, "low width (bits)", ""),
         (DOMAIN, "workload", ""), (F.TRAFFIC, "DRAM traffic saving (%)", ":.2f"),
         (F.ENERGY, "energy saving (%)", ":.2f"), (F.GAIN, "tokens/s gain (%)", ":.2f"),
         ("low_precision_share", "low-precision share", ":.3f"), ("tokens_per_s", "tokens/s", ":,.0f"),
         ("simulated_over_bound", "simulated / bound time", ":.3f")]
STAR = {"symbol": "star", "size": 16, "color": "rgba(0,0,0,0)", "line": {"color": "red", "width": 2}}
CONFIG = {"displaylogo": False, "responsive": True}


def plotly_script() -> str:
    """plotly.js, inline, once per page."""
    from plotly.offline import get_plotlyjs

    return f"<script>{get_plotlyjs()}</script>"


def _div(fig, name: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{name}", config=CONFIG)


def _hover(frame: pd.DataFrame) -> tuple[np.ndarray, str]:
    cols = [(c, label, fmt) for c, label, fmt in HOVER if c in frame and frame[c].notna().any()]
    data = frame[[c for c, _, _ in cols]].to_numpy(dtype=object) if cols else np.empty((len(frame), 0))
    template = "<br>".join(f"{label}: %{{customdata[{i}]{fmt}}}" for i, (_, label, fmt) in enumerate(cols))
    return data, template + "<extra></extra>"


def _scatter(frame: pd.DataFrame, x, y, *, name: str, mode: str = "markers", group: str | None = None,
             show: bool = True, **style):
    import plotly.graph_objects as go

    custom, template = _hover(frame)
    return go.Scatter(x=x, y=y, mode=mode, name=name, legendgroup=group or name, showlegend=show,
                      customdata=custom, hovertemplate=template, **style)


def _target(fig, **where) -> None:
    fig.add_hline(y=F.TARGET_PCT, line={"color": "red", "dash": "dash", "width": 1},
                  annotation_text="25% claim", annotation_position="top left", **where)


def savings_vs_threshold(df: pd.DataFrame) -> dict[str, str]:
    from plotly.subplots import make_subplots

    data = F._gated(df)
    if data.empty:
        return {}
    data = data.assign(_default=F.is_default(data))
    rows, cols = sorted(data[F.MODEL].unique()), sorted(data[F.BATCH].unique())
    lows, hws = sorted(data[F.LOW].unique()), sorted(data[F.HW].unique())
    dashes = ["solid", "dash", "dot", "dashdot"]
    out = {}
    for metric, label in F.SAVING_METRICS.items():
        fig = make_subplots(rows=len(rows), cols=len(cols), shared_xaxes=True, shared_yaxes="all",
                            subplot_titles=[f"{m}, batch {b}" for m in rows for b in cols],
                            vertical_spacing=0.12, horizontal_spacing=0.04)
        seen = set()
        for (model, batch, hw, low), line in data.groupby([F.MODEL, F.BATCH, F.HW, F.LOW]):
            line = line.sort_values(F.THRESHOLD)
            name = f"{low}-bit low, {hw}"
            fig.add_trace(_scatter(line, line[F.THRESHOLD], line[metric], name=name, mode="lines+markers",
                                   show=name not in seen, line={"dash": dashes[hws.index(hw) % 4],
                                                                "color": colour(lows.index(low), len(lows))}),
                          row=rows.index(model) + 1, col=cols.index(batch) + 1)
            seen.add(name)
        for k, (_, point) in enumerate(data[data["_default"]].iterrows()):
            one = data.loc[[point.name]]
            fig.add_trace(_scatter(one, one[F.THRESHOLD], one[metric], name="default operating point",
                                   show=k == 0, marker=STAR),
                          row=rows.index(point[F.MODEL]) + 1, col=cols.index(point[F.BATCH]) + 1)
        _target(fig, row="all", col="all")
        fig.update_xaxes(title_text="entropy threshold (bits)", row=len(rows))
        fig.update_yaxes(title_text=label, col=1)
        fig.update_layout(height=280 * len(rows) + 160, margin={"t": 60, "b": 40},
                          legend={"orientation": "h", "y": -0.12}, template="plotly_white")
        out[f"vs_threshold_{metric.replace('_pct', '')}"] = _div(fig, metric)
    return out


def colour(i: int, n: int) -> str:
    import plotly.colors as pc

    return pc.sample_colorscale("Viridis", [0.85 * i / max(1, n - 1)])[0]


def heatmaps(df: pd.DataFrame) -> dict[str, str]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    data = F._gated(df)
    if data.empty:
        return {}
    batches = F.heatmap_batches(data)
    data = data[data[F.BATCH].isin(batches)].assign(_default=F.is_default(data))
    hws = sorted(data[F.HW].unique())
    cols = [(m, b) for m in sorted(data[F.MODEL].unique()) for b in batches]
    out = {}
    for metric in (F.TRAFFIC, F.ENERGY):
        vmin, vmax = float(data[metric].min()), float(data[metric].max())
        fig = make_subplots(rows=len(hws), cols=len(cols), subplot_titles=[
            f"{hw}: {m}, batch {b}" for hw in hws for m, b in cols], horizontal_spacing=0.03, vertical_spacing=0.1)
        for i, hw in enumerate(hws):
            for j, (model, batch) in enumerate(cols):
                cell = data[(data[F.HW] == hw) & (data[F.MODEL] == model) & (data[F.BATCH] == batch)]
                grid = cell.pivot_table(index=F.LOW, columns=F.THRESHOLD, values=metric, aggfunc="mean")
                if grid.empty:
                    continue
                fig.add_trace(go.Heatmap(
                    z=grid.to_numpy(), x=[f"{t:g}" for t in grid.columns], y=[f"{b}-bit" for b in grid.index],
                    zmin=vmin, zmax=vmax, coloraxis="coloraxis", text=np.round(grid.to_numpy(), 1),
                    texttemplate="%{text}", hovertemplate=(f"{hw}, {model}, batch {batch}<br>threshold %{{x}} bits"
                                                           f"<br>low %{{y}}<br>{F.SAVING_METRICS[metric]}: "
                                                           "%{z:.2f}<extra></extra>")), row=i + 1, col=j + 1)
                for _, point in cell[cell["_default"]].iterrows():
                    fig.add_trace(go.Scatter(x=[f"{point[F.THRESHOLD]:g}"], y=[f"{point[F.LOW]}-bit"],
                                             mode="markers", marker=STAR, name="default operating point",
                                             hoverinfo="skip"), row=i + 1, col=j + 1)
        fig.update_layout(coloraxis={"colorscale": "Viridis", "cmin": vmin, "cmax": vmax,
                                     "colorbar": {"title": {"text": "%"}}},
                          height=260 * len(hws) + 120, template="plotly_white", showlegend=False)
        out[f"heatmap_{metric.replace('_pct', '')}"] = _div(fig, f"heat-{metric}")
    return out


def saving_vs_share(df: pd.DataFrame) -> dict[str, str]:
    import plotly.graph_objects as go

    data = F._gated(df).dropna(subset=["low_precision_share"])
    if data.empty:
        return {}
    batches = sorted(data[F.BATCH].unique())
    fig = go.Figure()
    for (model, hw, batch, low), part in data.groupby([F.MODEL, F.HW, F.BATCH, F.LOW]):
        part = part.sort_values(F.THRESHOLD)
        fig.add_trace(_scatter(part, 100 * part["low_precision_share"], part[F.TRAFFIC],
                               name=f"{model}, {hw}, batch {batch}, {low}-bit", mode="lines+markers",
                               line={"color": colour(batches.index(batch), len(batches)),
                                     "dash": "solid" if low == data[F.LOW].min() else "dot"}))
    marked = data[F.is_default(data)]
    if not marked.empty:
        fig.add_trace(_scatter(marked, 100 * marked["low_precision_share"], marked[F.TRAFFIC],
                               name="default operating point", marker=STAR))
    _target(fig)
    fig.update_layout(xaxis_title="low-precision share of state writes (%)", yaxis_title=F.SAVING_METRICS[F.TRAFFIC],
                      height=560, template="plotly_white")
    return {"saving_vs_share": _div(fig, "share")}


def simulated_over_bound(df: pd.DataFrame) -> dict[str, str]:
    import plotly.graph_objects as go

    data = F.main_rows(df).dropna(subset=["simulated_over_bound"]) if "simulated_over_bound" in df else df.iloc[0:0]
    if data.empty:
        return {}
    fig = go.Figure()
    for (model, hw), part in data.groupby([F.MODEL, F.HW]):
        fig.add_trace(_scatter(part, part[F.BATCH], part["simulated_over_bound"], name=f"{model} on {hw}"))
    marked = data[F.is_default(data)]
    if not marked.empty:
        fig.add_trace(_scatter(marked, marked[F.BATCH], marked["simulated_over_bound"],
                               name="default operating point", marker=STAR))
    fig.add_hline(y=1.0, line={"color": "red", "dash": "dash", "width": 1}, annotation_text="simulated = bound")
    fig.update_layout(xaxis={"type": "log", "title": "batch size (streams)"},
                      yaxis_title="simulated time / roofline bound time", height=480, template="plotly_white")
    return {"simulated_over_bound": _div(fig, "bound")}


def energy_stacked(df: pd.DataFrame) -> dict[str, str]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    parts = [c for c in df.columns if c.startswith("energy_pJ_per_token_") and not c.endswith("_total")]
    if df.empty or not parts:
        return {}
    best = F.energy_rows(df)
    labels = list(F._config_label(best))
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=["energy per token (mJ, log scale)", "share of energy per token (%)"])
    fig.add_trace(_scatter(best, best["energy_pJ_per_token_total"] / 1e9, labels, name="gated total"), 1, 1)
    if "baseline_energy_pJ_per_token_total" in best:
        fig.add_trace(_scatter(best, best["baseline_energy_pJ_per_token_total"] / 1e9, labels,
                               name="baseline total", marker={"symbol": "line-ns-open", "size": 14,
                                                              "color": "black"}), 1, 1)
    marked = best[F.is_default(best)]
    if not marked.empty:
        fig.add_trace(_scatter(marked, marked["energy_pJ_per_token_total"] / 1e9, list(F._config_label(marked)),
                               name="default operating point", marker=STAR), 1, 1)
    pct = 100 * best[parts].div(best[parts].sum(axis=1), axis=0)
    for part in parts:
        fig.add_trace(go.Bar(x=pct[part], y=labels, orientation="h", name=part.removeprefix("energy_pJ_per_token_"),
                             hovertemplate="%{y}<br>%{x:.1f}%<extra>%{fullData.name}</extra>"), 1, 2)
    fig.update_layout(barmode="stack", height=28 * len(best) + 220, template="plotly_white")
    fig.update_xaxes(type="log", row=1, col=1)
    return {"energy": _div(fig, "energy")}


def workload_breakdown(df: pd.DataFrame) -> dict[str, str]:
    import plotly.graph_objects as go

    rows = domain_rows(df) if DOMAIN in df else df.iloc[0:0]
    if rows.empty:
        return {}
    domains = [d for d in DOMAIN_ORDER if d in set(rows[DOMAIN])] + sorted(set(rows[DOMAIN]) - set(DOMAIN_ORDER))
    batches = sorted(rows[F.BATCH].unique())
    fig = go.Figure()
    for k, batch in enumerate(batches):
        part = rows[rows[F.BATCH] == batch]
        stats = part.groupby(DOMAIN)[F.TRAFFIC].agg(["mean", "std"]).reindex(domains)
        fill = colour(k, len(batches))
        fig.add_trace(go.Bar(x=domains, y=stats["mean"], error_y={"type": "data", "array": stats["std"].fillna(0)},
                             name=f"batch {batch}", offsetgroup=str(k), marker_color=fill, opacity=0.75,
                             hovertemplate="%{x}<br>mean %{y:.2f}%<extra>batch " + str(batch) + "</extra>"))
        trace_names = part[TRACES].fillna("default set") if TRACES in part else part[DOMAIN]
        custom = np.column_stack([trace_names, part.get("param.workload.seed", pd.Series(0, index=part.index)),
                                  part[F.TRAFFIC], part["low_precision_share"]])
        fig.add_trace(go.Scatter(x=part[DOMAIN], y=part[F.TRAFFIC], mode="markers", name=f"runs, batch {batch}",
                                 offsetgroup=str(k), marker={"color": "black", "size": 5}, customdata=custom,
                                 hovertemplate=("trace %{customdata[0]}, seed %{customdata[1]}<br>saving "
                                                "%{customdata[2]:.2f}%<br>low share %{customdata[3]:.3f}<extra></extra>")))
    _target(fig)
    fig.update_layout(barmode="group", scattermode="group", yaxis_title=F.SAVING_METRICS[F.TRAFFIC], height=480, template="plotly_white")
    return {"workload_breakdown": _div(fig, "domains")}


def timeline(row: pd.Series, steps: pd.DataFrame, baseline: pd.DataFrame | None = None) -> dict[str, str]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=["entropy (bits)", "low-precision writes (% of batch)", "step latency (ms)",
                                        "DRAM bandwidth (GB/s)"])
    fig.add_trace(go.Scatter(x=steps["step"], y=steps["entropy_bits_mean"], name="mean entropy"), 1, 1)
    fig.add_trace(go.Scatter(x=steps["step"], y=100 * steps["low_precision_writes"] / row[F.BATCH],
                             name="low-precision writes"), 2, 1)
    fig.add_trace(go.Scatter(x=steps["step"], y=steps["latency_ns"] / 1e6, name="gated latency"), 3, 1)
    fig.add_trace(go.Scatter(x=steps["step"], y=steps["dram_bandwidth_GBps"], name="gated bandwidth"), 4, 1)
    if baseline is not None:
        fig.add_trace(go.Scatter(x=baseline["step"], y=baseline["latency_ns"] / 1e6, name="baseline latency",
                                 line={"color": "grey"}), 3, 1)
        fig.add_trace(go.Scatter(x=baseline["step"], y=baseline["dram_bandwidth_GBps"], name="baseline bandwidth",
                                 line={"color": "grey"}), 4, 1)
    peak = row.get("hw_dram_peak_bandwidth_GBps", 0.0)
    if peak:
        fig.add_hline(y=peak, line={"color": "red", "dash": "dash"}, row=4, col=1, annotation_text="DRAM peak")
        fig.update_yaxes(range=[0, peak * 1.1], row=4, col=1)
    fig.update_yaxes(range=[0, 100], row=2, col=1)
    fig.update_layout(height=820, template="plotly_white", xaxis4_title="decode step")
    return {"timeline": _div(fig, "timeline")}


def latency(row: pd.Series, steps: pd.DataFrame, baseline: pd.DataFrame | None = None) -> dict[str, str]:
    import plotly.graph_objects as go

    gated = steps["latency_ns"].to_numpy() / 1e6
    base = baseline["latency_ns"].to_numpy() / 1e6 if baseline is not None else None
    lo, hi = F.robust_range(np.concatenate([gated, base]) if base is not None else gated)
    size = (hi - lo) / 60
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=np.clip(gated, lo, hi), name="gated", opacity=0.7,
                               xbins={"start": lo, "end": hi, "size": size}))
    if base is not None:
        fig.add_trace(go.Histogram(x=np.clip(base, lo, hi), name="baseline (16-bit)", opacity=0.6,
                                   marker_color="grey", xbins={"start": lo, "end": hi, "size": size}))
    fig.update_layout(barmode="overlay", xaxis={"title": "step latency (ms)", "range": [lo, hi]},
                      yaxis_title="steps", height=420, template="plotly_white")
    return {"latency": _div(fig, "latency")}


def crossover(df: pd.DataFrame) -> dict[str, str]:
    """The state share of decode traffic and the reachable saving vs batch (the first two panels of the
    static figure; the arithmetic-intensity panel stays static)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    need = ["analytic_weight_bytes_per_step", "analytic_ssm_state_bytes_per_stream_step", F.MODEL]
    df = F.main_rows(df)
    if df.empty or any(c not in df for c in need):
        return {}
    low = df[F.LOW].min() if F.LOW in df and df[F.LOW].notna().any() else 4
    high = df[F.HIGH].max() if F.HIGH in df and df[F.HIGH].notna().any() else 16
    ratio = 1.0 - float(F.effective_bits(low, high)) / float(F.effective_bits(high, high))
    batch = np.logspace(0, np.log10(max(1024, int(df[F.BATCH].max()) * 2)), 120)
    fig = make_subplots(rows=1, cols=2, subplot_titles=["SSM state share of DRAM traffic (%)",
                                                        "DRAM traffic saving per token (%)"])
    for k, (model, row) in enumerate(df.drop_duplicates(F.MODEL).set_index(F.MODEL).iterrows()):
        colour = f"hsl({(k * 137) % 360},60%,40%)"
        weights, ssm = row["analytic_weight_bytes_per_step"], row["analytic_ssm_state_bytes_per_stream_step"]
        conv = row.get("analytic_conv_state_bytes_per_stream_step", 0.0)
        share = 100.0 * batch * ssm / (weights + batch * (ssm + conv))
        fig.add_trace(go.Scatter(x=batch, y=share, name=f"{model}: analytic share", line={"color": colour},
                                 legendgroup=model, hovertemplate="batch %{x:.0f}: %{y:.1f}%<extra></extra>"), 1, 1)
        fig.add_trace(go.Scatter(x=batch, y=share * ratio, name=f"{model}: bound, all states {low}-bit",
                                 line={"color": colour, "dash": "dash"}, legendgroup=model,
                                 hovertemplate="batch %{x:.0f}: %{y:.1f}%<extra></extra>"), 1, 2)
        measured = df[df[F.MODEL] == model]
        if F.TRAFFIC in measured:
            fig.add_trace(_scatter(measured, measured[F.BATCH], measured[F.TRAFFIC], name=f"{model}: simulated",
                                   group=model, marker={"color": colour, "size": 6, "opacity": 0.6}), 1, 2)
    marked = df[F.is_default(df)]
    if not marked.empty and F.TRAFFIC in marked:
        fig.add_trace(_scatter(marked, marked[F.BATCH], marked[F.TRAFFIC], name="default operating point",
                               marker=STAR), 1, 2)
    _target(fig, row=1, col=2)
    fig.update_xaxes(type="log", title_text="batch size (streams)")
    fig.update_layout(height=480, template="plotly_white")
    return {"crossover": _div(fig, "crossover")}
