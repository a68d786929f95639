"""The fast model, calibrated from the detailed one, agrees with it (3% bandwidth, 5% end to end)."""

from __future__ import annotations

import pytest
from helpers import entropy_inputs

from hwsim.config import DramPreset, load_experiment, load_preset
from hwsim.memory.calibration import RUN_BYTES, measure, one_stack, pattern_addresses
from hwsim.memory.transaction import DramTiming
from hwsim.runner import simulate_experiment

PATTERNS = {"random 32 B": 32, "strided 256 B": 256, "conv/state tile 16 KiB": 16384,
            "state tile 64 KiB": 65536, "weight tile 2 MiB": 2097152}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_fast_model_agrees_with_detailed_per_pattern(pattern):
    preset = load_preset("dram", "hbm3_6400", DramPreset)
    dram = one_stack(preset)
    run = PATTERNS[pattern]
    nbytes = len(pattern_addresses(run, 32)) * 32
    detailed_GBps = nbytes / measure(dram, run)
    fast = DramTiming.from_config(dram)
    fast_GBps = nbytes / (float(fast.service_ns(nbytes, run)) + fast.read_latency_ns)
    print(f"hbm3_6400 {pattern}: detailed {detailed_GBps:.1f} GB/s, calibrated fast {fast_GBps:.1f} GB/s "
          f"({100 * (fast_GBps / detailed_GBps - 1):+.2f}%)")
    assert fast_GBps == pytest.approx(detailed_GBps, rel=0.03)


def test_every_preset_has_a_calibration_with_its_source():
    from hwsim.config.loading import known_presets
    from hwsim.memory.calibration import CALIBRATION_DIR, load_calibration

    for name in known_presets("dram"):
        cal = load_calibration(name)
        assert cal is not None and cal.run_bytes == tuple(float(r) for r in RUN_BYTES)
        assert f"hwsim dram calibrate --preset {name}" in (CALIBRATION_DIR / f"{name}.yaml").read_text()


def test_end_to_end_decode_time_agrees_between_fidelities():
    times = {}
    for fidelity in ("fast", "detailed"):
        exp = load_experiment(overrides=["model=mamba-130m", "hardware=hbm3-accel", "model.weight_bits=4",
                                         "workload.batch_size=2", "workload.steps=2", "run.baseline=false",
                                         f"run.fidelity={fidelity}"])
        summary, _ = simulate_experiment(exp, entropy_inputs())
        times[fidelity] = summary["simulated_time_ns"]
    dev = times["fast"] / times["detailed"] - 1
    print(f"mamba-130m int4, batch 2, 2 steps on hbm3-accel: fast {times['fast']:.0f} ns, detailed "
          f"{times['detailed']:.0f} ns ({100 * dev:+.2f}%)")
    assert abs(dev) < 0.05


@pytest.mark.slow
def test_end_to_end_fp16_weights_agree():
    times = {}
    for fidelity in ("fast", "detailed"):
        exp = load_experiment(overrides=["model=mamba-130m", "hardware=hbm3-accel", "workload.batch_size=4",
                                         "workload.steps=2", "run.baseline=false", f"run.fidelity={fidelity}"])
        times[fidelity] = simulate_experiment(exp, entropy_inputs())[0]["simulated_time_ns"]
    print(f"mamba-130m fp16: fast/detailed - 1 = {100 * (times['fast'] / times['detailed'] - 1):+.2f}%")
    assert times["fast"] == pytest.approx(times["detailed"], rel=0.05)
