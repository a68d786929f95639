"""Tiny cases worked out by hand: one layer, two steps."""

from __future__ import annotations

import numpy as np

from hwsim.config import load_experiment
from hwsim.runner import simulate_experiment

TINY_MODEL = {
    "name": "tiny-mamba2", "architecture": "mamba2", "source": "test: hand-sized",
    "n_layers": 1, "d_model": 64, "expand": 2, "d_state": 16, "d_conv": 4, "headdim": 64, "ngroups": 1,
    "vocab_size": 256, "tie_embeddings": True,
}


def tiny(policy: dict, **workload):
    raw = {"hardware": {"preset": "hbm3-accel", "sram": {"residency": {"order": []}}},
           "model": TINY_MODEL, "policy": policy,
           "workload": {"batch_size": 2, "steps": 2, "seed": 0, **workload}, "run": {"baseline": False}}
    return load_experiment(raw=raw)


def test_one_layer_two_steps_static_16_bit_bytes_by_hand():
    # d_inner = 128, heads = 2, conv channels = 128 + 2*16 = 160.
    # weights: in_proj 64 x (2*128 + 2*16 + 2) = 18560, out_proj 128 x 64 = 8192 -> 26752 x 2 B = 53504 B;
    #          conv 160x4 + 160 bias, dt_bias/D/A_log 3 x 2, norm 128, layer norm 64 = 998 x 2 B = 1996 B.
    # LM head (tied) 256 x 64 x 2 B = 32768 B; embeddings 2 streams x 64 x 2 B = 256 B.
    # SSM state 128 x 16 x 2 B = 4096 B per stream; conv state 160 x 4 x 2 B = 1280 B per stream.
    exp = tiny({"kind": "static", "bits": 16})
    summary, steps = simulate_experiment(exp, [np.full(100, 0.5)], keep_steps=True)
    row = steps.iloc[0]
    assert row["dram_read_bytes_weights"] == 53504 + 1996
    assert row["dram_read_bytes_lm_head"] == 32768
    assert row["dram_read_bytes_embeddings"] == 256
    assert row["dram_read_bytes_ssm_state"] == 2 * 4096
    assert row["dram_write_bytes_ssm_state"] == 2 * 4096
    assert row["dram_read_bytes_conv_state"] == row["dram_write_bytes_conv_state"] == 2 * 1280
    assert summary["dram_bytes_total"] == 2 * (55500 + 32768 + 256 + 2 * 8192 + 2 * 2560)


def test_one_layer_two_steps_4_bit_state_with_group_scales_by_hand():
    # 2048 state elements at 4 bit = 1024 B + 2048 / 64 groups x 2 B scales = 64 B -> 1088 B per stream.
    # Step 0 sees no entropy yet -> writes 16 bit; step 1 sees 0.5 < 1 -> writes 4 bit and reads 16 bit.
    exp = tiny({"kind": "threshold", "threshold_bits": 1.0, "low_bits": 4, "group_size": 64,
                "scale_bits": 16})
    _, steps = simulate_experiment(exp, [np.full(100, 0.5)], keep_steps=True)
    assert steps["dram_write_bytes_ssm_state"].tolist() == [2 * 4096, 2 * 1088]
    assert steps["dram_read_bytes_ssm_state"].tolist() == [2 * 4096, 2 * 4096]
    assert steps["low_precision_writes"].tolist() == [0, 2]


def test_one_layer_step_time_is_bus_time_plus_compute_and_latency():
    # Everything is DRAM-bound on this tiny layer; the step can be no faster than its bytes at peak and
    # no slower than all transfers serialised plus compute, latencies and turnarounds.
    exp = tiny({"kind": "static", "bits": 16}, steps=2)
    summary, _ = simulate_experiment(exp, [np.full(100, 0.5)], keep_steps=True)
    assert summary["simulated_time_ns"] >= summary["bound_dram_time_ns"]
    assert summary["simulated_time_ns"] < 10 * summary["bound_time_ns"] + 1000
