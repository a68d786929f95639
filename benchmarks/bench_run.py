"""Simulated tokens per wall-second of the default experiment (issue target: >= 20,000 on one core).

Runs the default experiment (Mamba-2 2.7B, batch 64, HBM3 accelerator, threshold policy, shipped
traces) without its baseline, over 2,048 steps, then over 4x the steps and half/all layers to show the
cost grows linearly with steps x layers and not with bytes moved.
Usage: python benchmarks/bench_run.py [--steps N]
"""

from __future__ import annotations

import argparse
import time

from hwsim.config import load_experiment
from hwsim.runner import simulate_experiment, workload_entropies


def timed(exp, entropies, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        simulate_experiment(exp, entropies)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2048)
    args = parser.parse_args()
    base = load_experiment(overrides=[f"workload.steps={args.steps}", "run.baseline=false"])
    entropies = workload_entropies(base)
    rows = []
    for label, overrides in [
        ("default", []),
        ("4x steps", [f"workload.steps={4 * args.steps}"]),
        ("32 layers", ["model.n_layers=32"]),
        ("batch 256 (4x bytes)", ["workload.batch_size=256", "hardware=hbm3e-accel"]),
    ]:
        exp = load_experiment(overrides=[f"workload.steps={args.steps}", "run.baseline=false", *overrides])
        seconds = timed(exp, entropies)
        tokens = exp.workload.steps * exp.workload.batch_size
        layer_steps = exp.workload.steps * exp.model.n_layers
        rows.append((label, seconds, tokens / seconds, layer_steps / seconds))
    print(f"{'case':<24}{'wall s':>10}{'sim tokens/s':>16}{'layer-steps/s':>16}")
    for label, seconds, tps, lps in rows:
        print(f"{label:<24}{seconds:>10.3f}{tps:>16,.0f}{lps:>16,.0f}")


if __name__ == "__main__":
    main()
