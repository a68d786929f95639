"""The report opens offline in headless Chromium and every figure loads (`-m browser`)."""

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

#: Runs after load: writes one line per <img> (loaded or not) into the DOM that --dump-dom prints.
PROBE = """<script>window.addEventListener('load', () => {
  const out = document.createElement('pre'); out.id = 'img-probe';
  out.textContent = Array.from(document.images).map(
    (img, i) => 'IMG ' + i + ' ' + (img.complete && img.naturalWidth > 0 ? 'ok' : 'broken')).join('\\n');
  document.body.appendChild(out);
});</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium (apt-get install -y chromium)")
def test_report_opens_in_headless_chromium_with_every_figure(tmp_path):
    trace = str(WORKLOADS_DIR / "traces" / "prose-pydocs.parquet")
    spec = SweepSpec(name="browser", grid={"policy.threshold_bits": [1.0, 3.0], "workload.batch_size": [2, 32]},
                     points=[{"model": "mamba2-130m", "workload.steps": 16, "workload.traces": [trace]}])
    run_sweep(spec, None, tmp_path / "out", scheduler="inline", progress=False, report=True)
    report = tmp_path / "out" / "report.html"
    n_figures = report.read_text().count("<figure ")
    probe = tmp_path / "out" / "probe.html"  # the report plus the probe, beside it (same relative links)
    probe.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
               probe.as_uri()]
    dom = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120).stdout
    results = re.findall(r"IMG \d+ (ok|broken)", dom)
    assert n_figures >= 8 and len(results) == n_figures, dom[-2000:]
    assert set(results) == {"ok"}
