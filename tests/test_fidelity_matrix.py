"""End to end, the fast level against `run.fidelity: detailed` on a matrix of 4 models x 3 batch sizes x
2 hardware x 2 policies (one decode step each, fp16 weights, to keep the detailed runs short): total
decode time within 3%, deviation printed. Slow tier: 48 cases, 18.5 minutes measured here with the machine under load (worst -1.24%: mamba2-370m, batch 16, hbm3-accel)."""

from __future__ import annotations

import itertools

import pytest
from helpers import entropy_inputs

from hwsim.config import load_experiment
from hwsim.runner import simulate_experiment

MODELS = ("mamba-130m", "mamba2-130m", "mamba-370m", "mamba2-370m")
BATCHES = (1, 4, 16)
HARDWARE = ("hbm3-accel", "lpddr5x-edge")
POLICIES = {"threshold": [], "static": ["policy={kind: static, bits: 16}"]}


def decode_ns(fidelity: str, model: str, batch: int, hardware: str, policy: str, weight_bits: int = 16,
              steps: int = 1) -> float:
    exp = load_experiment(overrides=[f"model={model}", f"hardware={hardware}", f"workload.batch_size={batch}",
                                     f"workload.steps={steps}", "run.baseline=false", f"run.fidelity={fidelity}",
                                     f"model.weight_bits={weight_bits}", *POLICIES[policy]])
    return simulate_experiment(exp, entropy_inputs())[0]["simulated_time_ns"]


@pytest.mark.slow
def test_fast_and_detailed_agree_on_the_matrix():
    devs = {}
    for case in itertools.product(MODELS, BATCHES, HARDWARE, POLICIES):
        devs[case] = decode_ns("fast", *case) / decode_ns("detailed", *case) - 1
        print(" ".join(map(str, case)), f"{100 * devs[case]:+.2f}%", flush=True)
    worst = max(devs, key=lambda c: abs(devs[c]))
    print(f"worst: {' '.join(map(str, worst))} {100 * devs[worst]:+.2f}% over {len(devs)} cases")
    assert abs(devs[worst]) < 0.03


@pytest.mark.slow
def test_fast_and_detailed_agree_with_int4_weights():
    # short weight transfers spaced by compute: refresh falls on the clock, not on busy time (the
    # average stretch had mamba-130m batch 2 on hbm3-accel at -5.3%; refresh on the clock -1.9%)
    devs = {}
    for case in itertools.product(("mamba-130m", "mamba2-370m"), (2, 8), HARDWARE):
        devs[case] = decode_ns("fast", *case, "threshold", 4, 4) / decode_ns("detailed", *case, "threshold", 4, 4) - 1
        print(" ".join(map(str, case)), f"int4 {100 * devs[case]:+.2f}%", flush=True)
    assert max(abs(d) for d in devs.values()) < 0.03
