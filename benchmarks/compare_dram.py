"""Compare hwsim's detailed DRAM level with DRAMsim3 on the same traces; regenerates the tables.

Usage: python benchmarks/compare_dram.py --dramsim3 PATH/dramsim3main.out --dramsim3-config
           PATH/configs/HBM2_8Gb_x128.ini [--requests 200000] [--decode-trace run.trace] [--out FILE.md]

Binaries and configs are given by path (build them outside the repository; never vendored). hwsim runs
the hbm2 preset (2 KiB rows: DRAMsim3's HBM2 opens one row per 2 KiB of a stream) with the mapping made
identical: `rorabgbachco` = hwsim `RoRaBgBaChCo` with a 64 B interleave, 128 entries per channel (DRAMsim3: 16
per-bank queues of 8). Patterns: sequential 64 B reads, uniformly random 64 B reads, and an exported
decode trace (`hwsim export-trace ... --format dramsim3`) if given. Loads: 25% and 50% of the pattern's
saturated throughput (hwsim's, issue cycles spaced evenly), and saturated; all capped at one request per
1 ns cycle (64 GB/s), the most DRAMsim3's trace frontend issues, so "saturated" is that cap where the
memory is faster (sequential HBM2 reaches 238 GB/s in hwsim, beyond what the frontend can offer).

Figures: bandwidth (bytes / time to the last completion), activates, mean and p99 read latency.
Latency is compared at 25% and 50% only: saturated, DRAMsim3 counts from when its controller accepts a
request and hwsim from the trace's issue time (queueing in front of the controller included). DRAMsim3's
p99 comes from its 20-cycle histogram buckets (interpolated), so it is good to about 10 ns.
Targets: bandwidth and activates within 2%, latency within 5%.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from hwsim.config import DramPreset, load_preset
from hwsim.config.hardware import DramMemory
from hwsim.memory.detailed import DetailedDram
from hwsim.memory.dram_traces import format_lines, read_trace

MAPPING = "RoRaBgBaChCo"
ACCESS = 64


def hwsim_dram() -> DramMemory:
    preset = load_preset("dram", "hbm2", DramPreset)
    return DramMemory(preset=preset, interleave_bytes=ACCESS, source="compare_dram: DRAMsim3 HBM2_8Gb_x128")


def run_hwsim(address, is_write, cycle) -> dict:
    model = DetailedDram(hwsim_dram(), queue_depth=128, mapping=MAPPING)
    done = model.submit(address, is_write, cycle.astype(np.float64))
    st = model.stats()
    lat = (done - cycle)[~is_write]
    return {"bandwidth_GBps": len(address) * ACCESS / (done.max() - cycle.min()), "activates": st.activates,
            "mean_latency_ns": float(lat.mean()), "p99_latency_ns": float(np.percentile(lat, 99))}


def histogram_p99(channels: list[dict]) -> float:
    bins: dict[tuple[float, float], int] = {}
    for c in channels:
        for key, count in c.items():
            if key.startswith("read_latency[") and "-0]" not in key:
                lo, hi = key[len("read_latency["):-1].split("-")
                edge = (float(lo), float(hi) + 1 if hi else float("inf"))
                bins[edge] = bins.get(edge, 0) + count
    edges = sorted(bins)
    total, seen = sum(bins.values()), 0
    for lo, hi in edges:
        if seen + bins[(lo, hi)] >= 0.99 * total:
            if hi == float("inf"):
                return -lo  # in DRAMsim3's open top bucket: only a lower bound (shown as >=)
            return lo + (0.99 * total - seen) / bins[(lo, hi)] * (hi - lo)
        seen += bins[(lo, hi)]
    return float("nan")


def run_dramsim3(binary: str, config: str, address, is_write, cycle, work: Path, epoch_cycles: int) -> dict:
    trace = work / "trace.txt"
    trace.write_text("\n".join(format_lines(address, is_write, cycle.astype(np.float64), fmt="dramsim3")) + "\n")
    requests = len(address)
    # enough cycles to finish: the trace's span plus its bytes at a tenth of peak
    cycles = int(cycle.max() + requests * ACCESS / 25.6 + 10_000)
    out = work / "out"
    out.mkdir(exist_ok=True)
    subprocess.run([binary, config, "-t", str(trace), "-c", str(cycles), "-o", str(out)], check=True,
                   capture_output=True)
    channels = list(json.loads((out / "dramsim3.json").read_text()).values())
    reads = sum(c["num_reads_done"] for c in channels)
    mean = sum(c["average_read_latency"] * c["num_reads_done"] for c in channels) / max(reads, 1)
    # bandwidth: requests over the busy time, from the per-epoch log (epoch = 1000 cycles here)
    busy = last_busy_cycle(out / "dramsim3epoch.json", epoch_cycles)
    return {"bandwidth_GBps": requests * ACCESS / (busy - cycle.min()),
            "activates": sum(c["num_act_cmds"] for c in channels), "mean_latency_ns": mean,
            "p99_latency_ns": histogram_p99(channels), "done": reads + sum(c["num_writes_done"] for c in channels)}


def last_busy_cycle(epoch_file: Path, epoch_cycles: int) -> float:
    """When the last request completed, from DRAMsim3's per-epoch log: the last epoch with completions,
    interpolated inside it at the previous epoch's rate (good to a few cycles with short epochs)."""
    done: dict[int, int] = {}
    for e in json.loads(epoch_file.read_text()):
        done[e["epoch_num"]] = done.get(e["epoch_num"], 0) + e["num_reads_done"] + e["num_writes_done"]
    busy = [k for k, v in sorted(done.items()) if v > 0]
    last = busy[-1]
    rate = max(done.get(last - 1, 0), done[last], 1)
    return (last - 1) * epoch_cycles + epoch_cycles * min(done[last] / rate, 1.0)


def patterns(n: int, rng) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"sequential": (np.arange(n, dtype=np.int64) * ACCESS, np.zeros(n, bool)),
            "random": (rng.integers(0, 2**33 // ACCESS, n) * ACCESS, np.zeros(n, bool))}


def dev(a: float, b: float) -> str:
    return f"{100 * (a / b - 1):+.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dramsim3", required=True)
    parser.add_argument("--dramsim3-config", required=True)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--decode-trace", default=None, help="a DRAMsim3-format trace from hwsim export-trace")
    parser.add_argument("--out", default=None, help="also write the table (markdown) here")
    parser.add_argument("--epoch-cycles", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cases = patterns(args.requests, rng)
    if args.decode_trace:
        t = read_trace(args.decode_trace, fmt="dramsim3")
        cases["decode"] = (t.address[: args.requests], t.is_write[: args.requests])
    rows = ["| pattern | load | GB/s hwsim / DRAMsim3 | activates | mean latency ns | p99 latency ns |",
            "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.ini"
        text = Path(args.dramsim3_config).read_text()
        config.write_text(text.replace("epoch_period = 1000000", f"epoch_period = {args.epoch_cycles}"))
        for name, (address, is_write) in cases.items():
            saturated = run_hwsim(address, is_write, np.zeros(len(address)))  # the memory's own limit
            for load in ("25%", "50%", "saturated"):
                # DRAMsim3's trace frontend adds at most one request per cycle: no load above that
                if load == "saturated":
                    per_ns = 1.0
                else:
                    per_ns = min(float(load[:-1]) / 100 * saturated["bandwidth_GBps"] / ACCESS, 1.0)
                cycle = np.floor(np.arange(len(address)) / per_ns).astype(np.int64)
                h = run_hwsim(address, is_write, cycle)
                work = Path(tmp) / f"{name}-{load}"
                work.mkdir()
                d = run_dramsim3(args.dramsim3, str(config), address, is_write, cycle, work, args.epoch_cycles)
                lat = (f"{h['mean_latency_ns']:.1f} / {d['mean_latency_ns']:.1f} "
                       f"({dev(h['mean_latency_ns'], d['mean_latency_ns'])})") if load != "saturated" else "n/a"
                if load == "saturated":
                    p99 = "n/a"
                elif d["p99_latency_ns"] < 0:
                    p99 = f"{h['p99_latency_ns']:.0f} / >={-d['p99_latency_ns']:.0f}"
                else:
                    p99 = (f"{h['p99_latency_ns']:.0f} / {d['p99_latency_ns']:.0f} "
                           f"({dev(h['p99_latency_ns'], d['p99_latency_ns'])})")
                rows.append(f"| {name} | {load} | {h['bandwidth_GBps']:.1f} / {d['bandwidth_GBps']:.1f} "
                            f"({dev(h['bandwidth_GBps'], d['bandwidth_GBps'])}) | {h['activates']:,} / "
                            f"{d['activates']:,} ({dev(h['activates'], d['activates'])}) | {lat} | {p99} |")
                print(rows[-1], flush=True)
    table = "\n".join(rows)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
