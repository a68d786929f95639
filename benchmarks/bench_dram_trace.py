"""End-to-end speed of `hwsim dram run` on a large DRAMsim3-format trace, beside DRAMsim3's own binary.

Usage: python benchmarks/bench_dram_trace.py [--lines 17000000] [--trace PATH]
           [--dramsim3 PATH/TO/dramsim3main.out --dramsim3-config PATH/TO/HBM2_8Gb_x128.ini]
           [--dramsim3-lines N]

The trace (written once to --trace if it does not exist) mixes sequential 4 KiB runs and random 64 B
reads, 30% writes, two requests per 1 ns cycle (about half of HBM2's peak). Both simulators are timed as
whole commands (process start to exit, parsing included); hwsim on all cores (its default) and with
`--threads 1`, whose output must be the same. DRAMsim3 is timed on the first
--dramsim3-lines lines (default: all) and its time per line scaled, when a full run is too slow to wait
for; the script says so. Binaries are given by path, never vendored.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_trace(path: Path, lines: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with path.open("w") as out:
        chunk = 1_000_000
        for first in range(0, lines, chunk):
            n = min(chunk, lines - first)
            i = np.arange(first, first + n)
            runs = (i // 64) * 4096 + (i % 64) * 64                         # sequential 4 KiB runs
            random = rng.integers(0, 2**33 // 64, n) * 64
            address = np.where((i // 64) % 2 == 0, runs % 2**33, random)
            write = rng.random(n) < 0.3
            cycle = i // 2
            out.write("\n".join(f"0x{a:X} {'WRITE' if w else 'READ'} {c}"
                                for a, w, c in zip(address.tolist(), write.tolist(), cycle.tolist())))
            out.write("\n")


def timed(cmd: list[str], cwd: str | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def head(path: Path, lines: int) -> Path:
    part = path.with_name(f"{path.stem}.head{lines}{path.suffix}")
    if not part.exists():
        with path.open() as src, part.open("w") as dst:
            for _, line in zip(range(lines), src):
                dst.write(line)
    return part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=17_000_000)
    parser.add_argument("--trace", default=str(Path(tempfile.gettempdir()) / "hwsim-bench-17M.trace"))
    parser.add_argument("--dramsim3", default=None)
    parser.add_argument("--dramsim3-config", default=None)
    parser.add_argument("--dramsim3-lines", type=int, default=None)
    args = parser.parse_args()
    trace = Path(args.trace)
    if not trace.exists():
        start = time.perf_counter()
        write_trace(trace, args.lines)
        print(f"wrote {args.lines:,} lines to {trace} in {time.perf_counter() - start:.1f} s")
    lines = sum(1 for _ in trace.open())
    seconds, out = timed([sys.executable, "-m", "hwsim.cli", "dram", "run", str(trace), "--preset", "hbm2"])
    print(out.strip())
    print(f"hwsim dram run: {lines:,} lines in {seconds:.1f} s ({lines / seconds:,.0f} lines/s, end to end, "
          f"all {os.cpu_count()} cores)")
    one, out_one = timed([sys.executable, "-m", "hwsim.cli", "dram", "run", str(trace), "--preset", "hbm2",
                          "--threads", "1"])
    print(f"hwsim dram run --threads 1: {one:.1f} s ({lines / one:,.0f} lines/s)"
          + ("" if out_one == out else "  OUTPUT DIFFERS FROM THE THREADED RUN"))
    if args.dramsim3:
        n = min(args.dramsim3_lines or lines, lines)
        part = trace if n == lines else head(trace, n)
        cycles = n // 2 + 200_000
        with tempfile.TemporaryDirectory() as outdir:
            d_seconds, _ = timed([args.dramsim3, args.dramsim3_config, "-t", str(part), "-c", str(cycles),
                                  "-o", outdir])
        full = d_seconds * lines / n
        note = "" if n == lines else f" (timed on {n:,} lines, scaled)"
        print(f"DRAMsim3: {n:,} lines in {d_seconds:.1f} s; {lines:,} lines ~ {full:.1f} s{note}")
        print(f"hwsim is {full / seconds:.1f}x faster end to end ({full / one:.1f}x on one thread; DRAMsim3 "
              f"runs on one)")


if __name__ == "__main__":
    main()
