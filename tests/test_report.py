"""Reports from stored results: every figure drawn, and graceful when an axis was not swept."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

from hwsim.cli import main
from hwsim.paths import WORKLOADS_DIR
from hwsim.sweeps import frames as R
from hwsim.sweeps import verdict as V
from hwsim.sweeps.execute import run_sweep
from hwsim.sweeps.report import choose_point, target_table, write_report
from hwsim.sweeps.spec import SweepSpec

TRACE = str(WORKLOADS_DIR / "traces" / "prose-pydocs.parquet")
BASE_POINT = {"workload.steps": 24, "workload.traces": [TRACE]}
CODE = str(WORKLOADS_DIR / "traces" / "code-stdlib.parquet")
EXPECTED = {"vs_threshold_saving_dram_bytes_per_token", "vs_threshold_saving_energy_per_token",
            "vs_threshold_gain_tokens_per_s", "heatmap_saving_dram_bytes_per_token",
            "heatmap_saving_energy_per_token", "crossover", "saving_vs_share", "timeline", "latency",
            "energy", "simulated_over_bound", "workload_breakdown"}
INTERACTIVE = EXPECTED


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A small stored result set: 2 models x 2 batch sizes x 2 thresholds x 2 low widths, run once."""
    out = tmp_path_factory.mktemp("sweep")
    spec = SweepSpec(name="small", grid={"model": ["mamba2-130m", "mamba-130m"], "workload.batch_size": [2, 48],
                                         "policy.threshold_bits": [1.0, 3.0], "policy.low_bits": [4, 8]},
                     points=[BASE_POINT], keep_steps_all_below=0,
                     keep_steps={"model": "mamba2-130m", "workload.batch_size": 48},
                     also=[{"grid": {"workload.traces": [[TRACE], [CODE]], "workload.seed": [1, 2]},
                            "points": [{"model": "mamba2-130m", "workload.batch_size": 48, "workload.steps": 24,
                                        "policy.threshold_bits": 1.0, "policy.low_bits": 4}]}])
    table, _ = run_sweep(spec, None, out, scheduler="inline", progress=False, report=False)
    assert (table["status"] == "ok").all()
    return out


def figures_in(html: str) -> set[str]:
    return set(re.findall(r'<figure id="([^"]+)">', html))


def test_report_draws_every_figure_from_stored_results(stored, monkeypatch):
    import hwsim.runner

    monkeypatch.setattr(hwsim.runner, "simulate_experiment", None)  # a report never re-simulates
    assert main(["report", str(stored)]) == 0
    html = (stored / "report.html").read_text()
    assert figures_in(html) == EXPECTED
    for name in EXPECTED:
        assert (stored / "figures" / f"{name}.png").stat().st_size > 5000
        assert (stored / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    page = re.sub(r"<script>.*?</script>", "", html, flags=re.DOTALL)  # plotly.js itself names URLs
    assert "could not be drawn" not in page and "http" not in page.replace('xmlns="http://', "")
    assert "25%" in page
    for name in INTERACTIVE:  # an interactive plot in the figure, the static files linked beside it
        block = page.split(f'<figure id="{name}">', 1)[1].split("</figure>", 1)[0]
        assert 'class="plotly-graph-div"' in block and f'href="figures/{name}.svg"' in block, name
    assert "cfg.model.name" not in page and "None" not in re.sub(r"<pre>.*?</pre>", "", page, flags=re.DOTALL)
    assert "<th data-col" in page and 'href="results.csv"' in page and "sweep.yaml" in page


def test_report_states_plainly_when_no_point_reaches_25_percent(stored, tmp_path):
    table = pd.read_parquet(stored / "results.parquet")
    hits, verdict = target_table(table)
    assert (hits["saving_dram_bytes_per_token_pct"] >= 25).all()
    assert f"holds at {len(hits)} of 16 points" in verdict if len(hits) else "at no point" in verdict
    table["saving_dram_bytes_per_token_pct"] = table["saving_dram_bytes_per_token_pct"].clip(upper=10)
    hits, verdict = target_table(table)
    assert hits.empty and verdict.startswith("The 25% DRAM traffic saving is reached at no point of the main "
                                             "grid (16 points); the largest is 10.0%")
    assert choose_point(table, tmp_path) is None  # no steps.parquet here: the timeline is skipped


def test_verdict_names_where_the_claim_holds_the_default_quality_and_domains(stored):
    table = pd.read_parquet(stored / "results.parquet")
    default = R.DefaultPoint(model="mamba2-130m", hardware="hbm3-accel", batch=48, kind="threshold",
                             threshold=1.0, low=4, high=16, steps=24, name="test")
    frame = R.annotate(table, default)
    assert frame["is_main"].sum() == 16 and set(R.domain_rows(frame)[R.DOMAIN]) == {"prose", "code"}
    text = V.headline(frame, default, quality_requested=False)
    assert text[1].startswith("Reached (best saving per value): model: ") and "batch: " in text[1]
    row = R.exact_default(frame, default)
    assert row is not None and f"saves {row['saving_dram_bytes_per_token_pct']:.1f}% of DRAM traffic" in text[2]
    assert "the sweep file sets `quality: false`" in text[3] and "Entropy vs random" in text[4]
    assert text[5].startswith("By trace domain at batch 48") and "prose" in text[5] and "code" in text[5]


def _single(tmp_path, **point):
    spec = SweepSpec(name="one", points=[{**BASE_POINT, "model": "mamba-130m", "workload.batch_size": 4,
                                          **point}])
    run_sweep(spec, None, tmp_path, scheduler="inline", progress=False, report=False)
    write_report(tmp_path)
    return (tmp_path / "report.html").read_text()


def test_sweep_of_one_point_writes_a_report_with_one_facet(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"name": "s", "points": [{**BASE_POINT, "model": "mamba-130m",
                                                              "workload.batch_size": 4}]}))
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o"), "--scheduler", "inline",
                 "--no-progress"]) == 0
    html = (tmp_path / "o" / "report.html").read_text()
    assert {"vs_threshold_saving_dram_bytes_per_token", "crossover", "timeline"} <= figures_in(html)
    assert "could not be drawn" not in html


def test_report_without_gating_or_baseline_skips_what_it_cannot_draw(tmp_path):
    html = _single(tmp_path, **{"policy": {"kind": "static", "bits": 8}, "run.baseline": False})
    assert "could not be drawn" not in html
    assert "vs_threshold_saving_dram_bytes_per_token" not in figures_in(html)
    assert "no traffic saving was measured" in html


def test_report_of_only_failed_points(tmp_path, monkeypatch):
    from hwsim.sweeps import execute

    def broken(exp):  # passes every up-front check, fails while the point runs
        raise FileNotFoundError("trace vanished")

    monkeypatch.setattr(execute, "cached_entropies", broken)
    spec = SweepSpec(name="bad", points=[BASE_POINT])
    _, counts = run_sweep(spec, None, tmp_path, scheduler="inline", progress=False, report=True)
    assert counts["failed"] == 1
    html = (tmp_path / "report.html").read_text()
    assert "0 finished, 1 failed" in html and "Failed points" in html


def test_report_without_results_is_a_clean_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no results.parquet" in capsys.readouterr().err
