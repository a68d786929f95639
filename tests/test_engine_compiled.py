"""The compiled decode recurrence gives exactly the simpy process's results (not merely close), on
every policy kind, across chunk boundaries, with and without SRAM residency."""

from __future__ import annotations

import math

import pytest

from hwsim.runner import run_experiment
from tests.helpers import entropy_inputs, small_experiment

POINTS = [
    ("policy={kind: threshold, threshold_bits: 2.0}",),
    ("policy={kind: threshold, threshold_bits: 2.0, gate_on: current}",),
    ("policy={kind: hysteresis, threshold_bits: 2.0, min_dwell_steps: 4}",),
    ("policy={kind: percentile, target_low_share: 0.5, calibration_tokens: 64}",),
    ("policy={kind: speculative, rollback_threshold_bits: 3.0, checkpoint_interval_steps: 8}",),
    ("policy={kind: static, bits: 8}", "hardware=lpddr5x-edge"),
    ("policy={kind: threshold, threshold_bits: 3.0}", "model=mamba-130m", "workload.batch_size=32"),
]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.mark.parametrize("overrides", POINTS)
def test_compiled_equals_simpy(overrides):
    entropies = entropy_inputs()
    runs = {engine: run_experiment(small_experiment(*overrides, f"run.engine={engine}"), entropies=entropies,
                                   keep_steps=True)
            for engine in ("simpy", "compiled")}
    simpy_summary, compiled_summary = runs["simpy"].summary, runs["compiled"].summary
    assert simpy_summary.keys() == compiled_summary.keys()
    differ = [k for k in simpy_summary if not _same(simpy_summary[k], compiled_summary[k])]
    assert differ == []
    assert runs["simpy"].steps.equals(runs["compiled"].steps)


def test_small_sweep_identical_on_both_engines(tmp_path):
    """The same small sweep with the simpy engine and the compiled one: identical result tables (the
    point hash and the engine setting differ by construction and are left out)."""
    import yaml

    from hwsim.paths import WORKLOADS_DIR
    from hwsim.sweeps.execute import run_sweep
    from hwsim.sweeps.spec import load_sweep

    trace = str(WORKLOADS_DIR / "traces" / "code-stdlib.parquet")
    tables = {}
    for engine in ("simpy", "compiled"):
        sweep = {"name": f"tiny-{engine}", "base": "default",
                 "grid": {"workload.batch_size": [2, 16], "policy.threshold_bits": [1.0, 3.0],
                          "policy.low_bits": [4, 8]},
                 "points": [{"model": "mamba2-130m", "workload.steps": 40, "workload.traces": [trace],
                             "run.engine": engine, "run.chunk_steps": 16}]}
        path = tmp_path / f"{engine}.yaml"
        path.write_text(yaml.safe_dump(sweep, sort_keys=False))
        spec, file = load_sweep(path)
        table, counts = run_sweep(spec, file, tmp_path / engine, scheduler="inline", progress=False, report=False)
        assert counts["failed"] == 0
        tables[engine] = table.drop(columns=[c for c in table.columns if c in ("point_hash", "param.run.engine")])
    assert tables["simpy"].equals(tables["compiled"])
