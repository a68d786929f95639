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


def test_quality_is_measured_at_each_points_own_low_share(tmp_path):
    """match_share: the quality model is gated to the share the traffic simulation wrote low, not the
    share its own entropy gives at the point's threshold; `only` limits which points are measured."""
    spec = SweepSpec(name="m", grid={"policy.threshold_bits": [1.0, 4.0], "workload.batch_size": [4, 8]},
                     points=[{"model": "mamba-130m", "workload.steps": 64, "workload.traces": [TRACE]}],
                     quality=True, quality_options={"tokens": 48, "streams": 2, "seeds": 2,
                                                    "only": {"workload.batch_size": 8}})
    table, _ = run_sweep(spec, None, tmp_path, scheduler="inline", progress=False, report=False)
    measured = table[table["param.workload.batch_size"] == 8]
    assert table.loc[table["param.workload.batch_size"] == 4, "quality_kl_bits_mean"].isna().all()
    target = measured["quality_target_low_share"]
    assert (abs(target - measured["low_precision_share"]) <= 0.025 + 1e-9).all()
    # the quality model's own gate lands near the target (its entropies during the gated run differ
    # slightly from the reference run the threshold was calibrated on)
    assert (abs(measured["quality_low_share"] - target) < 0.15).all()
    # gated by the shipped trace's entropies for the same tokens (the default quality model shares the
    # traces' tokenizer: exact alignment), calibrated on those very entropies: the share lands on target
    assert (abs(measured["quality_trace_low_share"] - target) <= 0.05).all()  # one step of 48: the gate reads the previous step
    assert measured["quality_trace_kl_bits_mean"].notna().all()
    for domain in measured["quality_domains"].iloc[0].split(","):  # each domain's figures, both gates
        assert measured[[f"quality_{domain}_kl_bits_mean", f"quality_trace_{domain}_kl_bits_mean"]].notna().all().all()
    # a larger traffic share gives a larger measured share (up to the noise above)
    ordered = measured.sort_values("low_precision_share")
    assert ordered["quality_low_share"].iloc[-1] > ordered["quality_low_share"].iloc[0]


def test_quality_columns_from_a_process_pool_equal_serial_ones(tmp_path):
    """The evaluations spread over worker processes (the default run) give the very columns the serial
    path gives, each point joined to its own policy's figures."""
    from hwsim.sweeps.quality_columns import add_quality_columns

    spec = SweepSpec(name="p", grid={"policy.threshold_bits": [1.0, 4.0]},
                     points=[{"model": "mamba-130m", "workload.batch_size": 8, "workload.steps": 32,
                              "workload.traces": [TRACE]}],
                     quality=False)
    table, _ = run_sweep(spec, None, tmp_path / "sweep", scheduler="inline", progress=False, report=False)
    from hwsim.sweeps.spec import expand

    points = expand(spec, None)
    options = SweepSpec(quality=True, quality_options={"tokens": 24, "streams": 2, "seeds": 2}).quality_options
    serial = add_quality_columns(table, points, options, workers=1, cache=None)  # both computed, not cached
    pooled = add_quality_columns(table, points, options, workers=2, cache=None)
    columns = [c for c in serial.columns if c.startswith("quality_") and c != "quality_eval_tokens_per_s"
               and c != "quality_cached"]
    assert len(columns) > 40
    assert serial[columns].equals(pooled[columns])
    assert serial["quality_kl_bits_mean"].nunique() == 2
