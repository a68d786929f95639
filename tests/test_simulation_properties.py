"""Invariants of whole simulations (hypothesis): conservation, bounds, monotonicity, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import entropy_inputs, small_experiment
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.runner import simulate_experiment

SLOW = settings(max_examples=12, deadline=None)


def run(*overrides, entropies=None, **kw):
    exp = small_experiment(*overrides, **kw)
    summary, steps = simulate_experiment(exp, entropies or entropy_inputs(), keep_steps=True)
    return exp, summary, steps


@SLOW
@given(st.sampled_from(["threshold", "hysteresis", "speculative", "static"]),
       st.sampled_from(["hbm3-accel", "lpddr5x-edge", "sram-accel"]),
       st.sampled_from(["previous", "current"]), st.integers(1, 16))
def test_bytes_conserved_and_time_never_below_the_bound(kind, hardware, gate_on, batch):
    _, summary, steps = run(f"policy={{kind: {kind}, gate_on: {gate_on}}}",
                              f"workload.batch_size={batch}", hardware=hardware)
    # what the accelerator asked of DRAM equals what the DRAM queue served
    assert summary["dram_served_bytes"] == pytest.approx(summary["dram_bytes_total"], rel=1e-9)
    assert summary["simulated_time_ns"] >= summary["bound_time_ns"] * (1 - 1e-9)
    assert (steps["latency_ns"] > 0).all()


@SLOW
@given(st.sampled_from(["hbm3-accel", "lpddr5x-edge"]), st.sampled_from(["mamba-130m", "mamba2-130m"]))
def test_traffic_and_energy_monotone_in_low_bit_width(hardware, model):
    # low_bits == high_bits is no gate at all (refused), so the 16-bit end is the static baseline
    settings = [(f"policy.low_bits={bits}", "policy.threshold_bits=3.0") for bits in (2, 4, 8)]
    settings.append(("policy={kind: static, bits: 16}",))
    results = [run(*overrides, hardware=hardware, model=model)[1] for overrides in settings]
    traffic = [r["dram_bytes_per_token"] + r["sram_bytes_per_token"] for r in results]
    energy = [r["energy_pJ_per_token_dram_read"] + r["energy_pJ_per_token_dram_write"]
              + r["energy_pJ_per_token_sram_read"] + r["energy_pJ_per_token_sram_write"] for r in results]
    assert traffic == sorted(traffic)
    assert energy == sorted(energy)


@SLOW
@given(st.lists(st.floats(0, 6), min_size=2, max_size=5, unique=True))
def test_traffic_monotone_in_the_low_precision_share(thresholds):
    results = [run(f"policy.threshold_bits={t}")[1] for t in sorted(thresholds)]
    shares = [r["low_precision_share"] for r in results]
    traffic = [r["dram_bytes_per_token"] + r["sram_bytes_per_token"] for r in results]
    assert shares == sorted(shares)
    assert traffic == sorted(traffic, reverse=True)


def test_same_seed_same_results_other_seed_other_offsets():
    a = run("workload.seed=3")[2]
    b = run("workload.seed=3")[2]
    c = run("workload.seed=4")[2]
    assert a.equals(b)
    assert not np.allclose(a["entropy_bits_mean"], c["entropy_bits_mean"])


@SLOW
@given(st.integers(1, 64), st.sampled_from(["pinned", "lru"]))
def test_sram_never_over_capacity(batch, residency):
    exp, _, steps = run(f"workload.batch_size={batch}", f"hardware.sram.residency.kind={residency}",
                              "policy.threshold_bits=2.0", model="mamba-130m")
    from hwsim.geometry import footprint
    from hwsim.traffic import check_capacity
    fp = footprint(exp.model)
    budget = check_capacity(exp, fp)
    resident = (steps["ssm_state_sram_share"] * (steps["sram_write_bytes_ssm_state"])
                + (steps["sram_read_bytes_conv_state"] - steps["dram_read_bytes_conv_state"])
                + (steps["sram_read_bytes_lm_head"] - steps["dram_read_bytes_lm_head"]))
    weights_resident = fp.n_layers * fp.weight_bytes_per_layer - steps["dram_read_bytes_weights"]
    assert ((resident + weights_resident) <= budget * (1 + 1e-9)).all()


def test_lower_precision_puts_more_state_on_chip():
    high = run("policy={kind: static, bits: 16}", "workload.batch_size=32", model="mamba2-130m")[1]
    low = run("policy={kind: static, bits: 4}", "workload.batch_size=32", model="mamba2-130m")[1]
    assert low["ssm_state_sram_share"] > high["ssm_state_sram_share"]


def test_state_in_sram_makes_gating_pointless_for_dram():
    # mamba-130m's whole state for 8 streams (9 MiB at 16 bit) fits the 230 MB SRAM of sram-accel
    summary = run("policy.threshold_bits=8.0", hardware="sram-accel", model="mamba-130m")[1]
    assert summary["ssm_state_sram_share"] == pytest.approx(1.0)
    assert summary["dram_bytes_per_token_ssm_state"] == 0.0


def test_gating_the_conv_state_saves_more_on_mamba1():
    plain = run("policy.threshold_bits=4.0", model="mamba-130m", hardware="lpddr5x-edge")[1]
    both = run("policy.threshold_bits=4.0", "policy.gate_conv_state=true", model="mamba-130m",
               hardware="lpddr5x-edge")[1]
    assert both["dram_bytes_per_token_conv_state"] < plain["dram_bytes_per_token_conv_state"]
    assert both["dram_bytes_per_token_ssm_state"] == pytest.approx(plain["dram_bytes_per_token_ssm_state"])
    assert both["dram_served_bytes"] == pytest.approx(both["dram_bytes_total"])
