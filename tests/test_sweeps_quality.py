"""`quality: true` in a sweep: quality columns joined per policy, and the report's quality figures."""

from __future__ import annotations

import re

import pytest

from hwsim.paths import WORKLOADS_DIR
from hwsim.sweeps.execute import run_sweep
from hwsim.sweeps.report import write_report
from hwsim.sweeps.spec import SweepSpec

pytest.importorskip("torch")
pytestmark = pytest.mark.torch

TRACE = str(WORKLOADS_DIR / "traces" / "prose-pydocs.parquet")


def test_quality_columns_once_per_policy_and_quality_figures(tmp_path):
    # two hardware presets x two thresholds: four points, two distinct policies
    spec = SweepSpec(name="q", grid={"hardware": ["hbm3-accel", "lpddr5x-edge"], "policy.threshold_bits": [2.0, 6.0]},
                     points=[{"model": "mamba-130m", "workload.batch_size": 8, "workload.steps": 16,
                              "workload.traces": [TRACE]}],
                     quality=True, quality_options={"tokens": 24, "streams": 2, "seeds": 2})
    table, _ = run_sweep(spec, None, tmp_path, scheduler="inline", progress=False, report=False)
    assert (table["status"] == "ok").all()
    assert table["quality_kl_bits_mean"].notna().all()
    # quality depends on the policy, not the hardware: same threshold -> same quality figures
    by_threshold = table.groupby("param.policy.threshold_bits")["quality_kl_bits_mean"].nunique()
    assert (by_threshold == 1).all()
    html = write_report(tmp_path).read_text()
    assert {"quality_pareto_kl", "quality_pareto_ppl"} <= set(re.findall(r'<figure id="([^"]+)">', html))


def test_sweep_file_rejects_unknown_quality_option():
    with pytest.raises(ValueError, match="quality_options.tokenz"):
        SweepSpec(quality=True, quality_options={"tokenz": 3})
