"""`hwsim report DIR`: report.html + figures/ from a sweep's stored results, without re-simulating.

The HTML is self-contained (PNG figures inline as base64, SVG copies beside it in figures/) so it opens
offline in any browser. A figure that cannot be drawn from what was swept is skipped with a note.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import traceback
from pathlib import Path

import pandas as pd

from hwsim import __version__
from hwsim.errors import HwsimInputError
from hwsim.files import write_atomic
from hwsim.sweeps import figures as F
from hwsim.sweeps.store import PointStore

TARGET_SAVING_PCT = 25.0
FIGURE_FUNCTIONS = (F.savings_vs_threshold, F.heatmaps, F.crossover, F.pareto, F.energy_stacked,
                    F.throughput_vs_bound, F.quality)
KEY_METRICS = ["tokens_per_s", "bound_tokens_per_s", "step_latency_ns_p50", "dram_bytes_per_token",
               "dram_bandwidth_GBps_avg", "energy_pJ_per_token_total", "low_precision_share",
               "state_share_of_dram_traffic", "ssm_state_sram_share", F.TRAFFIC, F.ENERGY, F.GAIN]
CONDITION_COLUMNS = [F.MODEL, F.HW, F.BATCH, F.THRESHOLD, F.LOW, "cfg.policy.kind", "cfg.workload.traces"]


def load_results(out: Path) -> pd.DataFrame:
    path = Path(out) / "results.parquet"
    if not path.is_file():
        raise HwsimInputError("no results.parquet here: run `hwsim sweep --out DIR` first", file=path)
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as error:  # truncated or not Parquet (pyarrow's errors are both)
        raise HwsimInputError(f"not a readable results table ({type(error).__name__}: {error}); rerun the "
                              "sweep into this folder to rewrite it", file=path) from None
    missing = {"status", "point_hash"} - set(table.columns)
    if missing:
        raise HwsimInputError(f"not a sweep results table: no column(s) {', '.join(sorted(missing))}",
                              file=path)
    return table


def choose_point(ok: pd.DataFrame, out: Path) -> tuple[pd.Series, pd.DataFrame] | None:
    """The stored point with steps.parquet and the largest traffic saving (else the first with steps)."""
    store = PointStore(out)
    with_steps = ok[ok["point_hash"].map(store.has_steps)]
    if with_steps.empty:
        return None
    if F.TRAFFIC in with_steps and with_steps[F.TRAFFIC].notna().any():
        row = with_steps.loc[with_steps[F.TRAFFIC].idxmax()]
    else:
        row = with_steps.iloc[0]
    try:
        return row, pd.read_parquet(store.point_dir(row["point_hash"]) / "steps.parquet")
    except (OSError, ValueError):  # a damaged steps file: draw the report without the timeline
        return None


def draw_figures(ok: pd.DataFrame, out: Path, functions=FIGURE_FUNCTIONS,
                 chosen_figures: bool = True) -> tuple[list[F.Figure], list[str]]:
    folder = Path(out) / "figures"
    drawn, notes = [], []
    jobs = [(fn.__name__, lambda fn=fn: fn(ok, folder)) for fn in functions]
    chosen = choose_point(ok, out) if chosen_figures else None
    if chosen is not None:
        jobs.insert(min(4, len(jobs)), ("chosen_point", lambda: F.chosen_point(chosen[0], chosen[1], folder)))
    elif chosen_figures:
        notes.append("chosen-point timeline: skipped (no finished point kept steps.parquet)")
    for name, job in jobs:
        try:
            got = job()
        except Exception as error:  # noqa: BLE001 - one figure's failure must not lose the report
            notes.append(f"{name}: could not be drawn ({type(error).__name__}: {error})")
            notes.append(traceback.format_exc(limit=3))
            continue
        if not got:
            notes.append(f"{name}: skipped (the sweep has no gated points with a threshold and a baseline)")
        drawn.extend(got)
    return drawn, notes


def target_table(ok: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Points whose DRAM traffic saving reaches TARGET_SAVING_PCT, and a sentence that says so plainly."""
    if ok.empty or F.TRAFFIC not in ok or ok[F.TRAFFIC].isna().all():
        return pd.DataFrame(), "No finished point has a baseline, so no traffic saving was measured."
    cols = [c for c in CONDITION_COLUMNS + [F.TRAFFIC, F.ENERGY, F.GAIN, "low_precision_share"] if c in ok]
    hits = ok[ok[F.TRAFFIC] >= TARGET_SAVING_PCT].sort_values(F.TRAFFIC, ascending=False)[cols]
    best = ok.loc[ok[F.TRAFFIC].idxmax()]
    where = ", ".join(f"{c.removeprefix('cfg.').removesuffix('.name')}={best[c]}"
                      for c in CONDITION_COLUMNS if c in ok and pd.notna(best[c]))
    if hits.empty:
        return hits, (f"No point reaches a {TARGET_SAVING_PCT:.0f}% DRAM traffic saving. The largest is "
                      f"{best[F.TRAFFIC]:.1f}% ({where}).")
    return hits, (f"{len(hits)} of {len(ok)} points reach a {TARGET_SAVING_PCT:.0f}% DRAM traffic saving; "
                  f"the largest is {best[F.TRAFFIC]:.1f}% ({where}).")


def _table_html(frame: pd.DataFrame, max_rows: int = 200) -> str:
    shown = frame.head(max_rows)
    text = shown.to_html(index=False, float_format=lambda v: f"{v:,.4g}", na_rep="", border=0, escape=True)
    more = f"<p>({len(frame) - max_rows} more rows in results.csv)</p>" if len(frame) > max_rows else ""
    return text + more


def _figure_html(fig: F.Figure, out: Path) -> str:
    data = base64.b64encode(fig.png.read_bytes()).decode("ascii")
    svg = fig.svg.relative_to(out).as_posix()
    return (f'<figure id="{fig.name}"><h3>{html.escape(fig.title)}</h3>'
            f'<img alt="{html.escape(fig.title)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{html.escape(fig.caption)} <a href="{svg}">SVG</a></figcaption></figure>')


STYLE = """body{font-family:sans-serif;max-width:1400px;margin:1em auto;padding:0 1em;color:#222}
img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;font-size:12px}
td,th{padding:2px 6px;border-bottom:1px solid #eee;text-align:right}figure{margin:2em 0}
.note{color:#a40}pre{font-size:11px;background:#f6f6f6;padding:4px}"""


def write_report(out: str | Path, *, title: str | None = None, extra_figures: list[F.Figure] = (),
                 extra_tables: dict[str, pd.DataFrame] | None = None, functions=FIGURE_FUNCTIONS,
                 chosen_figures: bool = True) -> Path:
    """Write DIR/report.html and DIR/figures/*.png|svg from DIR/results.parquet (+ one steps.parquet).
    `functions` and `chosen_figures` select the figures (compare draws a focused subset)."""
    out = Path(out)
    table = load_results(out)
    ok = table[table["status"] == "ok"].reset_index(drop=True)
    failed = table[table["status"] != "ok"]
    drawn, notes = draw_figures(ok, out, functions, chosen_figures)
    hits, verdict = target_table(ok)
    params = [c for c in table.columns if c.startswith("param.")]
    title = title or f"hwsim sweep report: {out.name}"
    swept = html.escape(", ".join(p.removeprefix("param.") for p in params) or "nothing")
    head = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>")
    intro = (f"<p>{len(table)} points: {len(ok)} finished, {len(failed)} failed. Swept: {swept}. "
             f"hwsim {__version__}, written {_dt.datetime.now().isoformat(timespec='seconds')} from "
             "results.parquet (no re-simulation).</p>")
    parts = [head, intro,
             f"<h2>Where the traffic saving reaches {TARGET_SAVING_PCT:.0f}%</h2><p>{html.escape(verdict)}</p>"]
    if not hits.empty:
        parts.append(_table_html(hits))
    for heading, frame in (extra_tables or {}).items():
        parts.append(f"<h2>{html.escape(heading)}</h2>"
                     + frame.to_html(float_format=lambda v: f"{v:,.4g}", na_rep="", border=0))
    parts.extend(_figure_html(fig, out) for fig in extra_figures)
    parts.append("<h2>Figures</h2>")
    parts.extend(_figure_html(fig, out) for fig in drawn)
    if notes:
        parts.append("<h2>Notes</h2>" + "".join(
            f"<pre class='note'>{html.escape(n)}</pre>" for n in notes))
    if not failed.empty:
        parts.append("<h2>Failed points</h2>" + _table_html(failed[params + ["point_hash", "error"]]))
    parts.append("<h2>All points</h2>" + _table_html(
        table[params + ["status"] + [c for c in KEY_METRICS if c in table]]))
    parts.append("</body></html>")
    report = out / "report.html"
    write_atomic(report, lambda tmp: tmp.write_text("\n".join(parts), encoding="utf-8"))
    return report
