"""Speed of one quality evaluation (`hwsim.quality.evaluate_policy`, uncached) on each shipped model.

Usage: python benchmarks/bench_quality.py [--tokens 256] [--streams 4] [--seeds 2] [--models a,b]

One torch thread, a 4-bit threshold policy at 3 bits, the default sweep's quality options; a warm-up
evaluation first (model load, first-call costs), then one timed evaluation per model: seconds and
tokens/s (every gated row's tokens over the gated runs' time, as the evaluator reports it).
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--models", default="mamba2-smol-14m,mamba-pystd-3m")
    args = parser.parse_args()
    from hwsim.policies.kinds import ThresholdPolicy
    from hwsim.quality.evaluate import _model, evaluate_policy

    options = {"tokens": args.tokens, "streams": args.streams, "seeds": args.seeds, "cache_dir": None, "threads": 1}
    for name in args.models.split(","):
        loaded = _model(name)
        evaluate_policy(ThresholdPolicy(threshold_bits=2.0, low_bits=4), loaded=loaded, **options)
        start = time.perf_counter()
        row = evaluate_policy(ThresholdPolicy(threshold_bits=3.0, low_bits=4), loaded=loaded, **options)
        print(f"{name}: {time.perf_counter() - start:.1f} s per evaluation ({args.streams} streams x "
              f"{args.tokens} tokens, {args.seeds} seeds), {row['quality_eval_tokens_per_s']:,.0f} tokens/s")


if __name__ == "__main__":
    main()
