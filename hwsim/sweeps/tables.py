"""The report's tables: human headers with units, rounding by unit, sortable and filterable offline.

A column is shown through a `Column` (header, scale, decimals); raw field names never reach the page.
Columns that are empty for every row are dropped. Sorting and filtering are plain JavaScript in the
page (`TABLE_SCRIPT`, no library, no network): click a header to sort (numbers by value), type in the
box above a table to keep the rows that contain the text.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    scale: float = 1.0
    decimals: int | None = None  # None: text


C = Column
RESULT_COLUMNS = [
    C("cfg.model.name", "model"), C("cfg.hardware.name", "hardware"), C("execution", "execution"),
    C("domain", "workload"), C("cfg.workload.batch_size", "batch", 1, 0), C("cfg.workload.steps", "steps", 1, 0),
    C("param.workload.seed", "seed", 1, 0), C("cfg.policy.kind", "policy"),
    C("cfg.policy.threshold_bits", "threshold (bits)", 1, 1), C("cfg.policy.low_bits", "low width (bits)", 1, 0),
    C("saving_dram_bytes_per_token_pct", "DRAM traffic saving (%)", 1, 1),
    C("saving_energy_per_token_pct", "energy saving (%)", 1, 1),
    C("gain_tokens_per_s_pct", "tokens/s gain (%)", 1, 1),
    C("low_precision_share", "low-precision writes (%)", 100, 1),
    C("state_share_of_dram_traffic", "state share of DRAM traffic (%)", 100, 1),
    C("dram_bytes_per_token", "DRAM per token (GB)", 1e-9, 3),
    C("dram_bandwidth_GBps_avg", "DRAM bandwidth (GB/s)", 1, 0),
    C("tokens_per_s", "tokens/s", 1, 0), C("step_latency_ns_p50", "step p50 (ms)", 1e-6, 3),
    C("ttft_ns", "TTFT (ms)", 1e-6, 2), C("tpot_ns", "TPOT (ms)", 1e-6, 3),
    C("energy_pJ_per_token_total", "energy per token (mJ)", 1e-9, 2),
    C("simulated_over_bound", "simulated / bound time", 1, 3),
    C("quality_kl_bits_mean", "KL (bits/token)", 1, 4), C("quality_ppl_change_pct", "perplexity change (%)", 1, 2),
    C("quality_entropy_vs_random", "entropy vs random"),
]
FAILED_COLUMNS = [C("point_hash", "point"), C("error", "error")]


def _cell(value, column: Column) -> tuple[str, str]:
    """(shown text, sort key) of one cell."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "", ""
    if column.decimals is None or not isinstance(value, (int, float, np.number)) or isinstance(value, bool):
        text = str(value)
        return text, text
    scaled = float(value) * column.scale
    return f"{scaled:,.{column.decimals}f}", repr(scaled)


def present(frame: pd.DataFrame, columns: list[Column]) -> list[Column]:
    """The columns the frame holds with at least one value."""
    return [c for c in columns if c.key in frame and frame[c.key].notna().any()]


def table_html(frame: pd.DataFrame, columns: list[Column], *, table_id: str, caption: str = "",
               max_rows: int = 500, highlight: pd.Series | None = None) -> str:
    """A sortable, filterable table of `frame` (highlighted rows get class `default`)."""
    shown = present(frame, columns)
    head = "".join(f'<th data-col="{i}" title="click to sort">{html.escape(c.header)}</th>'
                   for i, c in enumerate(shown))
    rows = []
    for index, record in frame.head(max_rows).iterrows():
        cells = []
        for c in shown:
            text, key = _cell(record[c.key], c)
            numeric = ' class="num"' if c.decimals is not None else ""
            cells.append(f'<td{numeric} data-sort="{html.escape(key)}">{html.escape(text)}</td>')
        mark = ' class="default"' if highlight is not None and bool(highlight.get(index, False)) else ""
        rows.append(f"<tr{mark}>{''.join(cells)}</tr>")
    more = (f"<p>({len(frame) - max_rows} more rows in results.csv)</p>" if len(frame) > max_rows else "")
    filt = (f'<input class="filter" type="search" data-table="{table_id}" '
            f'placeholder="filter rows (e.g. batch 256, h100-sxm)" aria-label="filter {table_id}">')
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<div class="table">{filt}<table id="{table_id}" class="sortable">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>{more}")


TABLE_SCRIPT = """<script>
(function () {
  function key(cell) { const s = cell.dataset.sort; const n = parseFloat(s);
    return (s !== '' && !isNaN(n) && String(n) !== 'NaN' && /^[-+0-9.eE]+$/.test(s)) ? n : s; }
  document.querySelectorAll('table.sortable th').forEach(function (th) {
    th.addEventListener('click', function () {
      const table = th.closest('table'), body = table.tBodies[0], col = +th.dataset.col;
      const up = th.dataset.dir !== 'asc';
      table.querySelectorAll('th').forEach(function (o) { delete o.dataset.dir; });
      th.dataset.dir = up ? 'asc' : 'desc';
      const rows = Array.from(body.rows);
      rows.sort(function (a, b) {
        const x = key(a.cells[col]), y = key(b.cells[col]);
        if (x === '' && y !== '') return 1; if (y === '' && x !== '') return -1;
        const c = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
        return up ? c : -c; });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  document.querySelectorAll('input.filter').forEach(function (box) {
    box.addEventListener('input', function () {
      const words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
      const table = document.getElementById(box.dataset.table);
      Array.from(table.tBodies[0].rows).forEach(function (r) {
        const text = r.textContent.toLowerCase();
        r.style.display = words.every(function (w) { return text.includes(w); }) ? '' : 'none'; });
    });
  });
})();
</script>"""
