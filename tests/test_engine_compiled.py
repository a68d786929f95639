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
