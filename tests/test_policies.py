"""Gating rules: golden cases by hand and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwsim.policies.kinds import (
    HysteresisPolicy,
    PercentilePolicy,
    SpeculativePolicy,
    StaticPolicy,
    ThresholdPolicy,
)


def column(values):
    return np.asarray(values, dtype=float)[:, None]


def no_fresh(n, batch=1):
    fresh = np.zeros((n, batch), dtype=bool)
    fresh[0] = True
    return fresh


def test_threshold_previous_uses_the_entropy_known_before_the_step():
    entropy = column([0.5, 3.0, 0.2, 0.1])
    plan = ThresholdPolicy(threshold_bits=1.0).plan(entropy, no_fresh(4))
    # step 0: nothing known -> 16; step 1 sees 0.5 -> 4; step 2 sees 3.0 -> 16; step 3 sees 0.2 -> 4
    assert plan.write_bits[:, 0].tolist() == [16, 4, 16, 4]
    assert plan.read_bits[:, 0].tolist() == [16, 16, 4, 16]  # read back in the precision written


def test_threshold_current_uses_the_steps_own_entropy():
    plan = ThresholdPolicy(threshold_bits=1.0, gate_on="current").plan(column([0.5, 3.0, 0.2, 0.1]),
                                                                        no_fresh(4))
    assert plan.write_bits[:, 0].tolist() == [4, 16, 4, 4]


def test_fresh_stream_reads_a_full_precision_state_and_forgets_the_gate():
    fresh = no_fresh(4)
    fresh[2] = True
    plan = ThresholdPolicy(threshold_bits=1.0).plan(column([0.1, 0.1, 0.1, 0.1]), fresh)
    assert plan.write_bits[:, 0].tolist() == [16, 4, 16, 4]
    assert plan.read_bits[:, 0].tolist() == [16, 16, 16, 16]


def test_lossy_upgrades_are_counted():
    plan = ThresholdPolicy(threshold_bits=1.0).plan(column([0.5, 3.0, 0.2, 0.1]), no_fresh(4))
    assert plan.lossy_upgrades == 1  # step 2 reads the 4-bit state of step 1 and writes 16 bits


def test_static_policy():
    plan = StaticPolicy(bits=8).plan(column([0.0, 9.0]), no_fresh(2))
    assert plan.write_bits[:, 0].tolist() == [8, 8]


@settings(max_examples=50, deadline=None)
@given(arrays(float, (60, 3), elements=st.floats(0, 8)), st.integers(1, 6))
def test_hysteresis_keeps_each_precision_for_the_minimum_dwell(entropy, dwell):
    plan = HysteresisPolicy(threshold_bits=2.0, min_dwell_steps=dwell).plan(entropy, no_fresh(60, 3))
    for stream in plan.write_bits.T:
        changes = np.flatnonzero(np.diff(stream)) + 1
        runs = np.diff(np.concatenate([[0], changes]))
        assert (runs >= dwell).all()  # every completed run lasted at least the dwell


def test_percentile_reaches_its_target_share_on_the_calibration_prefix():
    rng = np.random.default_rng(1)
    traces = [rng.gamma(1.0, 2.0, 4000) for _ in range(3)]
    policy = PercentilePolicy(target_low_share=0.3, calibration_tokens=4000, gate_on="current")
    calibrated = policy.calibrated(traces)
    entropy = np.stack(traces, axis=1)
    share = (calibrated.plan(entropy, no_fresh(4000, 3)).write_bits == 4).mean()
    assert share == pytest.approx(0.3, abs=0.01)


def test_speculative_rollback_replays_since_the_checkpoint():
    entropy = column([0.1, 0.1, 0.1, 9.0, 0.1, 0.1])
    plan = SpeculativePolicy(checkpoint_interval_steps=100, rollback_threshold_bits=6.0).plan(
        entropy, no_fresh(6))
    # fresh at step 0 = checkpoint; steps 0..3 run at low; step 3 rolls back and re-runs 4 steps
    assert plan.replay_steps[:, 0].tolist() == [0, 0, 0, 4, 0, 0]
    assert plan.write_bits[:, 0].tolist() == [4, 4, 4, 16, 4, 4]


def test_speculative_periodic_checkpoints():
    plan = SpeculativePolicy(checkpoint_interval_steps=2, rollback_threshold_bits=6.0).plan(
        column([0.1] * 6), no_fresh(6))
    assert (plan.checkpoint_bits[:, 0] > 0).tolist() == [False, True, False, True, False, True]
