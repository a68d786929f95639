"""Simulated requests per wall-second of the detailed DRAM model (DRAMsim3 / Ramulator 2: ~20k-380k here).

Usage: python benchmarks/bench_dram.py [--requests N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hwsim.config import DramPreset, load_preset
from hwsim.config.hardware import DramMemory
from hwsim.memory.detailed import DetailedDram


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2_000_000)
    args = parser.parse_args()
    dram = DramMemory(preset=load_preset("dram", "hbm3-6400", DramPreset), source="benchmark")
    DetailedDram(dram).submit(np.arange(64) * 32, False, 0.0)  # compile (numba) outside the timing
    n = args.requests
    rng = np.random.default_rng(0)
    cases = {"sequential reads q=128": (np.arange(n, dtype=np.int64) * 32, False, 128),
             "sequential reads q=32": (np.arange(n, dtype=np.int64) * 32, False, 32),
             "random 32 B reads q=128": (rng.integers(0, 2**28, n) * 32, False, 128),
             "mixed 30% writes q=128": (rng.integers(0, 2**20, n) * 32, rng.random(n) < 0.3, 128)}
    print(f"{'case (hbm3-6400, 1 stack)':<28}{'requests/s':>14}{'GB/s':>10}")
    for label, (address, writes, depth) in cases.items():
        model = DetailedDram(dram, queue_depth=depth)
        start = time.perf_counter()
        model.submit(address, writes, 0.0)
        seconds = time.perf_counter() - start
        print(f"{label:<28}{n / seconds:>14,.0f}{model.stats().bandwidth_GBps:>10,.1f}")


if __name__ == "__main__":
    main()
