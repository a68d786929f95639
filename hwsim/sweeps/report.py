"""`hwsim report DIR`: report.html + figures/ from a sweep's stored results, without re-simulating.

The page opens with a verdict generated from the results (`hwsim.sweeps.verdict`), then the workload
breakdown, the figures (interactive plotly, with plotly.js inline so the page works offline; static PNG
and SVG beside it in figures/ for papers), the tables (sortable, filterable) and the provenance. A
figure that cannot be drawn from what was swept is skipped with a note that says why.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import subprocess
import sys
import traceback
from pathlib import Path

import pandas as pd
import yaml

from hwsim import __version__
from hwsim.errors import HwsimInputError
from hwsim.files import write_atomic
from hwsim.paths import CONFIGS_DIR, PROJECT_ROOT
from hwsim.sweeps import figures as F
from hwsim.sweeps import frames as R
from hwsim.sweeps import interactive
from hwsim.sweeps import tables as T
from hwsim.sweeps.store import PointStore
from hwsim.sweeps.verdict import TARGET_SAVING_PCT, claim_sentences, headline

FIGURE_FUNCTIONS = (F.workload_breakdown, F.savings_vs_threshold, F.heatmaps, F.crossover, F.saving_vs_share,
                    F.energy_stacked, F.simulated_over_bound, F.quality)
NEEDS = {
    "workload_breakdown": "runs of single traces beside the mix at one setting (an `also:` entry over workload.traces)",
    "savings_vs_threshold": "threshold-gated points with a baseline",
    "heatmaps": "threshold-gated points with a baseline",
    "saving_vs_share": "threshold-gated points with a baseline",
    "crossover": "geometry columns",
    "energy_stacked": "energy columns",
    "simulated_over_bound": "the simulated_over_bound column",
}


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


def _steps(store: PointStore, row: pd.Series) -> pd.DataFrame:
    return pd.read_parquet(store.point_dir(row["point_hash"]) / "steps.parquet")


def choose_point(ok: pd.DataFrame, out: Path, default: R.DefaultPoint | None = None):
    """(row, steps, baseline steps or None, label) for the timeline: the default experiment when it kept
    steps (its static baseline point beside it when that kept steps too), else the first point with
    steps, said so in the label; None when no point kept steps."""
    store = PointStore(out)
    with_steps = ok[ok["point_hash"].map(store.has_steps)]
    if with_steps.empty:
        return None
    frame = with_steps if "is_default" in with_steps else R.annotate(with_steps, default)
    row = R.exact_default(frame, default)
    if row is None or not store.has_steps(row["point_hash"]):
        row = frame.iloc[0]
        label = (f"not the default operating point (it kept no steps): {row[F.MODEL]} on {row[F.HW]}, "
                 f"batch {row[F.BATCH]}, policy {row.get(R.KIND)}")
        return row, _steps(store, row), None, label
    label = f"default operating point: {default.label()}, {int(row[R.STEPS])} steps"
    same = frame[(frame[R.KIND] == "static") & (frame[F.MODEL] == row[F.MODEL]) & (frame[F.HW] == row[F.HW])
                 & (frame[F.BATCH] == row[F.BATCH]) & (frame[R.STEPS] == row[R.STEPS])]
    baseline = _steps(store, same.iloc[0]) if not same.empty else None
    return row, _steps(store, row), baseline, label


def draw_figures(ok: pd.DataFrame, out: Path, functions=FIGURE_FUNCTIONS, chosen_figures: bool = True,
                 default: R.DefaultPoint | None = None):
    """Static figures (files) and their interactive divs ({name: html}); notes for what was skipped."""
    folder = Path(out) / "figures"
    drawn, divs, notes = [], {}, []
    jobs = [(fn.__name__, lambda fn=fn: fn(ok, folder), getattr(interactive, fn.__name__, None), (ok,)) for fn in functions]
    try:
        chosen = choose_point(ok, out, default) if chosen_figures else None
    except (OSError, ValueError):  # a damaged steps file: draw the report without the timeline
        chosen = None
    if chosen is not None:
        row, steps, baseline, label = chosen
        at = min(2, len(jobs))
        jobs[at:at] = [(name, lambda fn=fn: fn(row, steps, folder, baseline, label), getattr(interactive, name),
                        (row, steps, baseline)) for name, fn in (("timeline", F.timeline), ("latency", F.latency))]
    elif chosen_figures:
        notes.append("timeline and latency: skipped (no finished point kept steps.parquet)")
    for name, job, live, args in jobs:
        try:
            got = job()
            if got and live is not None:
                divs.update(live(*args))
        except Exception as error:  # noqa: BLE001 - one figure's failure must not lose the report
            notes.append(f"{name}: could not be drawn ({type(error).__name__}: {error})")
            notes.append(traceback.format_exc(limit=3))
            continue
        if not got and name != "quality":
            notes.append(f"{name}: skipped (the sweep has no {NEEDS.get(name, 'data for it')})")
        drawn.extend(got)
    return drawn, divs, notes


def target_table(ok: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Main-set points whose DRAM traffic saving reaches TARGET_SAVING_PCT, and the sentence about them."""
    frame = ok if "is_main" in ok else R.annotate(ok, None)
    sentence = claim_sentences(frame)[0]
    if frame.empty or F.TRAFFIC not in frame or frame[F.TRAFFIC].isna().all():
        return frame.iloc[0:0], sentence
    main = R.main_set(frame)
    return main[main[F.TRAFFIC] >= TARGET_SAVING_PCT].sort_values(F.TRAFFIC, ascending=False), sentence


def _figure_html(fig: F.Figure, out: Path, div: str | None) -> str:
    links = " ".join(f'<a href="{p.relative_to(out).as_posix()}">{p.suffix[1:].upper()}</a>' for p in (fig.png, fig.svg))
    if div is None:
        data = base64.b64encode(fig.png.read_bytes()).decode("ascii")
        body = f'<img alt="{html.escape(fig.title)}" src="data:image/png;base64,{data}">'
    else:
        body = div
    return (f'<figure id="{fig.name}"><h3>{html.escape(fig.title)}</h3>{body}'
            f"<figcaption>{html.escape(fig.caption)} Static: {links}</figcaption></figure>")


def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not available (not a git checkout)"
    return head + (" (with uncommitted changes)" if dirty else "")


def _shown(path: Path) -> str:
    """A path relative to the working directory when it lies below it (no machine paths in a page)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _command() -> str:
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if program in ("hwsim", "cli.py", "__main__.py", "-m"):
        return " ".join(["hwsim", *(_shown(Path(a)) if Path(a).is_absolute() else a for a in sys.argv[1:])])
    return " ".join(sys.argv) or "(called from Python)"


def _preset_source(kind: str, name) -> str:
    path = CONFIGS_DIR / kind / f"{name}.yaml"
    try:
        return str(yaml.safe_load(path.read_text()).get("source", ""))
    except (OSError, AttributeError, yaml.YAMLError):
        return "(not a shipped preset)"


def provenance_html(table: pd.DataFrame, out: Path) -> str:
    from hwsim.traces.catalog import read_catalog

    sweep_file = out / "sweep.yaml"
    resolved = sweep_file.read_text() if sweep_file.is_file() else "(no sweep.yaml)"
    items = [("command that wrote this page", _command()), ("rebuild this page", f"hwsim report {_shown(out)}"),
             ("hwsim", f"{__version__}, commit {_git_commit()}"),
             ("written", _dt.datetime.now().isoformat(timespec="seconds"))]
    parts = ["<h2 id='provenance'>Provenance</h2><ul>"]
    parts += [f"<li><b>{html.escape(k)}</b>: <code>{html.escape(v)}</code></li>" for k, v in items]
    parts.append('<li><b>results</b>: <a href="results.csv">results.csv</a> (every point, raw column names and '
                 'units as in the README glossary); resolved sweep file: <a href="sweep.yaml">sweep.yaml</a></li></ul>')
    parts.append(f"<details><summary>resolved sweep file</summary><pre>{html.escape(resolved)}</pre></details>")
    rows = []
    for kind, column in (("models", F.MODEL), ("hardware", F.HW)):
        for name in sorted(table[column].dropna().unique()) if column in table else []:
            rows.append({"kind": kind[:-1] if kind == "models" else kind, "name": name,
                         "source": _preset_source(kind, name)})
    try:
        entries = read_catalog().traces
    except HwsimInputError:
        entries = []
    for e in entries:
        rows.append({"kind": f"trace ({e.domain})", "name": e.name,
                     "source": f"{e.source}; {e.tokens:,} tokens, {e.mode} by {e.model_file or e.model} "
                     f"({e.model_architecture}); licence {e.licence}"})
    columns = [T.Column("kind", "kind"), T.Column("name", "name"), T.Column("source", "source")]
    parts.append(T.table_html(pd.DataFrame(rows), columns, table_id="provenance-table",
                              caption="Models, hardware and traces (workloads/catalog.yaml)"))
    return "".join(parts)


STYLE = """body{font-family:sans-serif;max-width:1400px;margin:1em auto;padding:0 1em;color:#222;box-sizing:border-box}
img{max-width:100%;border:1px solid #ddd}figure{margin:2em 0}figcaption{font-size:13px;color:#444}
.verdict li{margin:.4em 0}.table{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}caption{text-align:left;font-size:12px;color:#555}
td,th{padding:2px 6px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{cursor:pointer;background:#f4f4f4;white-space:normal;max-width:9em}th[data-dir=asc]::after{content:" \\25B2"}
th[data-dir=desc]::after{content:" \\25BC"}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.default td{background:#fff1f0}input.filter{margin:.3em 0;width:28em;max-width:100%}
.note{color:#a40}pre{font-size:11px;background:#f6f6f6;padding:4px;white-space:pre-wrap}"""


def write_report(out: str | Path, *, title: str | None = None, extra_figures: list[F.Figure] = (),
                 extra_tables: dict[str, pd.DataFrame] | None = None, functions=FIGURE_FUNCTIONS,
                 chosen_figures: bool = True) -> Path:
    """Write DIR/report.html and DIR/figures/*.png|svg from DIR/results.parquet (+ kept steps.parquet).
    `functions` and `chosen_figures` select the figures (compare draws a focused subset)."""
    out = Path(out)
    table = load_results(out)
    default = R.default_point(out)
    ok = R.annotate(table[table["status"] == "ok"].reset_index(drop=True), default)
    failed = table[table["status"] != "ok"]
    drawn, divs, notes = draw_figures(ok, out, functions, chosen_figures, default)
    hits, _ = target_table(ok)
    try:
        quality_requested = bool(yaml.safe_load((out / "sweep.yaml").read_text()).get("quality", False))
    except (OSError, AttributeError, yaml.YAMLError):
        quality_requested = None
    title = title or f"hwsim sweep report: {out.name}"
    head = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<meta name='viewport' content='width=device-width'><style>{STYLE}</style>"
            f"{interactive.plotly_script() if divs else ''}</head><body><h1>{html.escape(title)}</h1>")
    parts = [head, "<h2>Verdict</h2><ul class='verdict'>"
             + "".join(f"<li>{html.escape(s)}</li>" for s in headline(ok, default, quality_requested)) + "</ul>",
             (f"<p>{len(table)} points: {len(ok)} finished, {len(failed)} failed; main grid: {int(ok['is_main'].sum())} "
             "points on the default trace mix. Written from results.parquet (no re-simulation); "
             "<a href='#provenance'>provenance</a>, <a href='results.csv'>results.csv</a>.</p>")]
    for heading, frame in (extra_tables or {}).items():
        parts.append(f"<h2>{html.escape(heading)}</h2><div class='table'>"
                     + frame.to_html(float_format=lambda v: f"{v:,.2f}", na_rep="", border=0) + "</div>")
    parts.extend(_figure_html(fig, out, None) for fig in extra_figures)
    parts.append("<h2>Figures</h2><p>Hover a point for its parameters and figures, drag to zoom (double-click "
                 "to reset), click a legend entry to hide it. The red star marks the default operating point.</p>")
    parts.extend(_figure_html(fig, out, divs.get(fig.name)) for fig in drawn)
    parts.append(f"<h2>Points of the main grid reaching {TARGET_SAVING_PCT:.0f}%</h2>")
    parts.append(T.table_html(hits, T.RESULT_COLUMNS, table_id="hits-table") if not hits.empty
                 else "<p>No point of the main grid reaches it.</p>")
    parts.append("<h2>All finished points</h2><p>Click a header to sort; type in the box to filter. "
                 "Rows of the default setting are shaded.</p>")
    parts.append(T.table_html(ok, T.RESULT_COLUMNS, table_id="results-table", highlight=ok["is_default"]))
    if not failed.empty:
        parts.append("<h2>Failed points</h2>" + T.table_html(failed, T.FAILED_COLUMNS, table_id="failed-table"))
    if notes:
        parts.append("<h2>Notes</h2>" + "".join(f"<pre class='note'>{html.escape(n)}</pre>" for n in notes))
    parts.append(provenance_html(table, out))
    parts.append(T.TABLE_SCRIPT + "</body></html>")
    report = out / "report.html"
    write_atomic(report, lambda tmp: tmp.write_text("\n".join(parts), encoding="utf-8"))
    return report
