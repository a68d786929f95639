"""The report opens offline in headless Chromium (`-m browser`): every figure renders (an interactive
plot drawn by plotly.js, or a loaded image), sorting a table column reorders it, filtering hides rows,
the page fits 1,400 px, and nothing is logged to the console as an error."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from hwsim.paths import WORKLOADS_DIR
from hwsim.sweeps.execute import run_sweep
from hwsim.sweeps.spec import SweepSpec

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

#: First thing in <head>: record console errors and uncaught exceptions before any other script runs.
CATCH = """<script>window.__errors = [];
const __error = console.error; console.error = function () { window.__errors.push(Array.from(arguments).join(' '));
  __error.apply(console, arguments); };
window.addEventListener('error', e => window.__errors.push('uncaught: ' + e.message));</script>"""

#: After load: one line per figure, the result of sorting and filtering the results table, the width.
PROBE = """<script>window.addEventListener('load', () => setTimeout(() => {
  const lines = [];
  document.querySelectorAll('figure').forEach(f => {
    const plot = f.querySelector('.plotly-graph-div'), img = f.querySelector('img');
    const ok = plot ? plot.querySelectorAll('.main-svg').length > 0 && !!plot._fullLayout
                    : (img && img.complete && img.naturalWidth > 0);
    lines.push('FIG ' + f.id + ' ' + (ok ? 'ok' : 'broken'));
  });
  const table = document.getElementById('results-table');
  const heads = Array.from(table.tHead.rows[0].cells);
  const th = heads.find(h => h.textContent.startsWith('DRAM traffic saving'));
  const col = heads.indexOf(th);
  const values = () => Array.from(table.tBodies[0].rows).map(r => parseFloat(r.cells[col].dataset.sort))
    .filter(v => !isNaN(v));  // empty cells sort last either way
  const before = values().join(',');
  th.click(); const up = values(); th.click(); const down = values();
  const sorted = a => a.every((v, i) => i === 0 || a[i - 1] <= v);
  lines.push('SORT ' + (sorted(up) && sorted(down.slice().reverse()) && up.join(',') !== before ? 'ok' : 'broken'));
  const box = document.querySelector('input.filter[data-table="results-table"]');
  box.value = 'code'; box.dispatchEvent(new Event('input'));
  const shown = Array.from(table.tBodies[0].rows).filter(r => r.style.display !== 'none').length;
  lines.push('FILTER ' + shown + ' of ' + table.tBodies[0].rows.length);
  lines.push('WIDTH ' + document.documentElement.scrollWidth);
  lines.push('ERRORS ' + JSON.stringify(window.__errors));
  const out = document.createElement('pre'); out.id = 'probe'; out.textContent = lines.join('\\n');
  document.body.appendChild(out);
}, 500));</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium (apt-get install -y chromium)")
def test_report_renders_sorts_and_logs_no_errors_in_headless_chromium(tmp_path):
    prose = str(WORKLOADS_DIR / "traces" / "prose-pydocs.parquet")
    code = str(WORKLOADS_DIR / "traces" / "code-stdlib.parquet")
    spec = SweepSpec(name="browser", grid={"policy.threshold_bits": [1.0, 3.0], "workload.batch_size": [2, 32]},
                     points=[{"model": "mamba2-130m", "workload.steps": 16, "workload.traces": [prose]}],
                     also=[{"grid": {"workload.traces": [[prose], [code]], "workload.seed": [1, 2]},
                            "points": [{"model": "mamba2-130m", "workload.steps": 16, "workload.batch_size": 32,
                                        "policy.threshold_bits": 1.0}]}])
    run_sweep(spec, None, tmp_path / "out", scheduler="inline", progress=False, report=True)
    report = tmp_path / "out" / "report.html"
    text = report.read_text()
    n_figures = text.count("<figure ")
    probe = tmp_path / "out" / "probe.html"  # the report plus the probe, beside it (same relative links)
    probe.write_text(text.replace("<head>", "<head>" + CATCH, 1).replace("</body>", PROBE + "</body>"))
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
               "--window-size=1400,900", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000",
               "--dump-dom", probe.as_uri()]
    dom = subprocess.run(command, check=False, capture_output=True, text=True, timeout=180).stdout
    figures = re.findall(r"FIG (\S+) (ok|broken)", dom)
    assert n_figures >= 10 and len(figures) == n_figures, dom[-3000:]
    assert {state for _, state in figures} == {"ok"}, figures
    assert "SORT ok" in dom
    shown, total = map(int, re.search(r"FILTER (\d+) of (\d+)", dom).groups())
    assert 0 < shown < total  # only the code-stdlib rows stay
    assert int(re.search(r"WIDTH (\d+)", dom).group(1)) <= 1400
    assert "ERRORS []" in dom, re.search(r"ERRORS .*", dom).group(0)
