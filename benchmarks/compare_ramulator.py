"""Compare hwsim's detailed DRAM level with Ramulator 2.1 on the same requests; regenerates the tables.

Usage: python benchmarks/compare_ramulator.py --ramulator PATH/ramulator2 [--tech hbm2 hbm3-6400]
           [--requests 200000] [--read-buffer 256] [--queue-release column|completion] [--queue-depth N]
           [--enqueue-ticks 1] [--in-order] [--config-dir DIR]
           [--timings] [-v] [--out FILE.md]

Ramulator 2.1 (CMU-SAFARI/ramulator2 main; built outside this repository, never vendored) is given by
path: its built tree (libramulator.so, python/ramulator, build/compile_commands.json). It has no
standalone binary, and its trace frontends (LoadStoreTrace, ReadWriteTrace) neither time requests nor
give per-request latency: one request per frontend tick, in order, stopping once the last is *sent*.
So a small driver (DRIVER below) is compiled against libramulator.so's `External` frontend in a temp
dir: it offers each request at its issue cycle, in order per channel as hwsim admits them (--in-order:
one order, a full channel holding back all, as the trace frontends do) and records arrival/departure.
Configs are exported (YAML, into the temp dir; shown with -v) from Ramulator's own Python presets, or
read from --config-dir/TECH.yaml (External frontend). hwsim's preset is rebuilt from that config's
organisation and timings (`aligned_dram`; --timings lists how the shipped preset differs): HBM2_8Gb /
HBM2_2000Mbps (2 pseudo-channels x 64 bit, 32 B, 1 KiB rows) and HBM3_16Gb_8hi / HBM3_6400Mbps with one
SID (hwsim has none) and rows doubled (16 GiB).
Mapping: Ramulator's RoBaRaCoCh + CacheLineInterleave is Ro Ba Bg Pc Co Ch (pseudo-channel above the
column), which no hwsim string (one Ch field for both) spells, so each request is decoded in that layout
and re-encoded in hwsim's RoBaBgCoCh (32 B interleave): both see the same (channel, pseudo-channel,
bank, row, column) stream.

Patterns: sequential and uniformly random 32 B reads. Loads: saturated (all offered at cycle 0) and
25% / 50% of Ramulator's saturated throughput (evenly spaced). Figures: bandwidth (bytes / time to the
last completion), activates (Ramulator: row misses + conflicts), mean and p99 read latency from issue,
or, saturated, from acceptance into the controller (Ramulator's `arrive`; hwsim's queue admission,
`DetailedDram(admission_ns=...)`), where buffering sets it (Little's law): by default both buffer alike
per pseudo-channel: Ramulator --read-buffer 256 per 2-pseudo-channel controller, a request leaving it for
the active buffer (one per bank) at its activate and for the pending queue at its column command; hwsim
256/2 entries with `queue_release="column"`, which frees them the same way (`--queue-release completion
--queue-depth 144`: the entries held to completion, 256/2 + one per bank, as before). Neither's bandwidth
grows with more.
Ramulator's controller schedules a request from the tick after it is sent (`send` at cycle c, commands
from c + 1: its latency is exactly hwsim's + 1 tick for 99% of light-load requests), so by default hwsim
sees each request one tick after its arrival (`--enqueue-ticks`; latency still from the arrival).
Targets: bandwidth and activates within 2%, latency within 5%.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

from hwsim.config import DramPreset, load_preset
from hwsim.config.hardware import DramMemory
from hwsim.memory.detailed import DetailedDram

MAPPING = "RoBaBgCoCh"
# tech: (standard, org preset, timing preset, controller, channels, overrides, tick ns)
TECHS = {"hbm2": ("HBM2", "HBM2_8Gb", "HBM2_2000Mbps", "HBM12", 8, "", 1.0),
         "hbm3-6400": ("HBM3", "HBM3_16Gb_8hi", "HBM3_6400Mbps", "HBM34", 16,
                       ", sid=1, row=1 << 15, nRFC=560", 0.3125)}  # nRFC 350 ns: the 8 Gb channel's
CONFIG_PY = """import ramulator
dram = ramulator.dram.{std}(org_preset="{org}", timing_preset="{timing}"{overrides})
ctrl = ramulator.controller.{ctrl}(dram=dram, read_buffer_size={rb}, scheduler=ramulator.scheduler.FRFCFS(),
    refresh_manager=ramulator.refresh_manager.AllBank(), row_policy=ramulator.row_policy.Open(),
    addr_mapper=ramulator.addr_mapper.RoBaRaCoCh())
mem = ramulator.memory_system.GenericDRAM(clock_ratio=1, controllers=[ctrl] * {channels},
    channel_mapper=ramulator.channel_mapper.CacheLineInterleave())
sim = ramulator.Simulation(ramulator.frontend.External(clock_ratio=1), mem)
"""
DRIVER = r"""#include <cstdint>
#include <fstream>
#include <iostream>
#include <vector>
#include "ramulator/base/config.h"
#include "ramulator/base/factory.h"
#include "ramulator/base/request.h"
#include "ramulator/frontend/i_frontend.h"
#include "ramulator/memory_system/i_memory_system.h"
// driver CONFIG.yaml IN.bin OUT.bin: IN = int64 (issue cycle, address, is_write, queue) per request;
// OUT = int64 (arrival cycle, departure cycle) per request; stats (YAML) on stdout. Requests of one
// queue are offered in order at or after their issue cycle: a refused one holds back its queue only.
int main(int argc, char** argv) {
  if (argc != 4) return 2;
  auto config = Ramulator::Config::parse_config_file(argv[1]);
  auto* frontend = Ramulator::Factory::create_frontend(config);
  auto* memory = Ramulator::Factory::create_memory_system(config);
  frontend->connect_memory_system(memory);
  memory->connect_frontend(frontend);
  std::ifstream f(argv[2], std::ios::binary | std::ios::ate);
  std::vector<int64_t> in(size_t(f.tellg()) / 8);
  f.seekg(0).read(reinterpret_cast<char*>(in.data()), in.size() * 8);
  const size_t n = in.size() / 4;
  std::vector<int64_t> out(2 * n, -1);
  std::vector<std::vector<size_t>> queues;
  for (size_t i = 0; i < n; i++) {
    if (size_t(in[4 * i + 3]) >= queues.size()) queues.resize(in[4 * i + 3] + 1);
    queues[in[4 * i + 3]].push_back(i);
  }
  std::vector<size_t> head(queues.size(), 0);
  size_t done = 0;
  int64_t clk = 0;
  while (done < n) {
    for (size_t q = 0; q < queues.size(); q++) {
      for (; head[q] < queues[q].size() && in[4 * queues[q][head[q]]] <= clk; head[q]++) {
        size_t i = queues[q][head[q]];
        auto cb = [&out, &done, i](Ramulator::Request& r) { out[2 * i + 1] = r.depart; done++; };
        int tx = memory->get_tx_bytes();  // reads only: a write's callback (at issue) has no departure
        if (!frontend->receive_external_requests(int(in[4 * i + 2]), in[4 * i + 1], 0, cb, tx)) break;
        out[2 * i] = clk;
      }
    }
    memory->tick();
    if (++clk > (int64_t)1 << 40) return 1;
  }
  frontend->finalize();
  memory->finalize();
  memory->update_stats_recursive();
  memory->print_stats(std::cout);
  std::ofstream(argv[3], std::ios::binary).write(reinterpret_cast<const char*>(out.data()), out.size() * 8);
  return 0;
}
"""


def ramulator_python(root: Path, code: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(root / "python"))
    return subprocess.run([sys.executable, "-c", code, *args], env=env, check=True, capture_output=True,
                          text=True).stdout


def export_config(root: Path, tech: str, read_buffer: int, work: Path) -> Path:
    std, org, timing, ctrl, channels, overrides, _ = TECHS[tech]
    script = work / f"{tech}.py"
    script.write_text(CONFIG_PY.format(std=std, org=org, timing=timing, ctrl=ctrl, rb=read_buffer,
                                       channels=channels, overrides=overrides))
    out = work / f"{tech}.yaml"
    ramulator_python(root, "import sys, runpy; sys.argv = ['ramulator', 'export', *sys.argv[1:]];"
                     "runpy.run_module('ramulator', run_name='__main__')", str(script), "-o", str(out))
    return out


def build_driver(root: Path, build: Path, work: Path) -> Path:
    """Compile the driver with the include flags Ramulator's own build used (compile_commands.json)."""
    commands = json.loads((build / "compile_commands.json").read_text())
    flags = next(c["command"] for c in commands if "/src/ramulator/" in c["file"]).split()
    includes = [f for f in flags if f.startswith("-I")]
    (work / "driver.cpp").write_text(DRIVER)
    exe = work / "driver"
    subprocess.run(["g++", "-O2", "-std=c++20", *includes, str(work / "driver.cpp"), "-o", str(exe),
                    f"-L{root}", "-lramulator", f"-Wl,-rpath,{root}"], check=True)
    return exe


def spec_tables(root: Path, std: str) -> tuple[list[str], list[str], int]:
    """Timing names, command names and internal prefetch of a standard, from Ramulator's Python spec."""
    names = ramulator_python(root, "import json, sys, ramulator.dram as d; s = getattr(d, sys.argv[1]); print("
                             "json.dumps([s.timing_params, s.commands, s.internal_prefetch_size]))", std)
    return tuple(json.loads(names))


def geometry(cfg: dict, root: Path, tick_ns: float) -> dict:
    """Organisation and timings (ns) of a Ramulator config, and its address layout (LSB first)."""
    ctrls = cfg["memory_system"]["controllers"]
    dram = ctrls[0]["dram"]
    params, commands, prefetch = spec_tables(root, dram["impl"])
    ticks = dict(zip(params, dram["timing"]))
    cycles = dict(zip(commands, dram["command_cycles"]))
    counts = dict(zip(["pc", "sid", "bg", "ba", "ro", "co"] if len(dram["org"]["count"]) == 7
                      else ["pc", "bg", "ba", "ro", "co"], dram["org"]["count"][1:]))
    if counts.get("sid", 1) != 1:
        raise SystemExit("hwsim has no SID level: give the Ramulator config sid=1")
    access = dram["channel_width"] * prefetch // 8  # Ramulator's transaction: one burst
    counts["co"] //= prefetch
    ns = {k: v * tick_ns for k, v in ticks.items() if k not in ("rate", "tCK_ps")}
    return {"std": dram["impl"], "channels": len(ctrls), "counts": counts, "access": access,
            "rate": ticks["rate"] / 1000, "burst": prefetch, "width": dram["channel_width"], "ns": ns,
            "cycles": cycles, "tick": tick_ns}


def aligned_dram(g: dict, tech: str) -> DramMemory:
    """hwsim's preset for `tech` with the Ramulator config's organisation and timing values."""
    stock = load_preset("dram", tech, DramPreset)
    c, t, k = g["counts"], g["ns"], g["tick"]
    org = dict(stock.organisation.model_dump(), channels=g["channels"], pseudo_channels_per_channel=c["pc"],
               channel_width_bits=g["width"], data_rate_Gbps_per_pin=g["rate"], burst_length=g["burst"],
               access_bytes=g["access"], row_bytes=c["co"] * g["access"], bank_groups=c["bg"],
               banks_per_group=c["ba"], command_bus_shared_by=c["pc"],
               capacity_bytes=g["channels"] * c["pc"] * c["bg"] * c["ba"] * c["ro"] * c["co"] * g["access"],
               declared_peak_bandwidth_GBps=g["channels"] * c["pc"] * g["width"] * g["rate"] / 8)
    names = {"tCL": "nCL", "tCWL": "nCWL", "tRCD": "nRCDRD", "tRP": "nRP", "tRAS": "nRAS", "tRC": "nRC",
             "tRRD_S": "nRRDS", "tRRD_L": "nRRDL", "tFAW": "nFAW", "tCCD_S": "nCCDS", "tCCD_L": "nCCDL",
             "tWR": "nWR", "tWTR_S": "nWTRS", "tWTR_L": "nWTRL", "tRTP": "nRTPL" if "nRTPL" in t else "nRTP",
             "tREFI": "nREFI", "tRFC": "nRFC"}
    timings = {h: t[r] for h, r in names.items()}
    timings.update(tCK=k, row_command=(g["cycles"]["ACT"] + g["cycles"]["PREpb"]) * k,
                   column_command=g["cycles"]["RD"] * k)
    preset = DramPreset.model_validate(dict(stock.model_dump(), name=f"{tech}-as-ramulator",
                                            organisation=org, timings_ns=timings))
    return DramMemory(preset=preset, interleave_bytes=g["access"], source=f"compare_ramulator: {g['std']}")


def timing_table(g: dict, tech: str) -> list[str]:
    """Ramulator's organisation and timing values (ns) beside hwsim's shipped preset."""
    stock = load_preset("dram", tech, DramPreset)
    ours = aligned_dram(g, tech).preset
    rows = [f"| {tech} | Ramulator {g['std']} | hwsim preset |", "|---|---|---|"]
    pairs = [(k, getattr(ours.organisation, k), getattr(stock.organisation, k)) for k in (
        "channels", "pseudo_channels_per_channel", "channel_width_bits", "access_bytes", "row_bytes",
        "bank_groups", "banks_per_group", "capacity_bytes", "command_bus_shared_by")]
    stock_t = stock.timings_ns.model_dump()
    pairs += [(f"{k} (ns)", v, stock_t[k]) for k, v in ours.timings_ns.model_dump().items()]
    for name, value, theirs in pairs:
        mark = "" if abs(theirs - value) <= 0.01 * abs(value) else " **differs**"
        mark = " (rounded)" if not mark and theirs != value else mark
        show = (lambda v: f"{v:,}") if isinstance(value, int) else (lambda v: f"{v:g}")
        rows.append(f"| {name} | {show(value)} | {show(theirs)}{mark} |")
    return rows


def fields(g: dict, address: np.ndarray) -> dict:
    """Field digits of Ramulator byte addresses: Ro Ba Bg Pc Co Ch offset (most significant first)."""
    c, rest, out = g["counts"], address // g["access"], {}
    for name, size in (("ch", g["channels"]), ("co", c["co"]), ("pc", c["pc"]), ("bg", c["bg"]),
                       ("ba", c["ba"]), ("ro", c["ro"])):
        out[name], rest = rest % size, rest // size
    return out


def hwsim_address(g: dict, model: DetailedDram, f: dict) -> np.ndarray:
    """The same request in hwsim's RoBaBgCoCh: channel digit = channel x pseudo-channels + pc."""
    s = model.mapping.sizes
    address = ((((f["ro"] * s["Ba"] + f["ba"]) * s["Bg"] + f["bg"]) * s["Co"] + f["co"]) * s["Ch"]
               + f["ch"] * g["counts"]["pc"] + f["pc"]) * g["access"]
    ch, bank, _, row = model.mapping.locate(address)
    assert np.array_equal(ch, f["ch"] * g["counts"]["pc"] + f["pc"]) and np.array_equal(row, f["ro"])
    assert np.array_equal(bank, f["bg"] * s["Ba"] + f["ba"])
    return address


def run_ramulator(driver: Path, config: Path, cycle, address, queue, work: Path) -> dict:
    queue = np.broadcast_to(queue, address.shape)
    rec = np.stack([cycle, address, np.zeros_like(address), queue], axis=1).astype(np.int64)
    rec.tofile(work / "in.bin")
    run = subprocess.run([str(driver), str(config), str(work / "in.bin"), str(work / "out.bin")],
                         check=True, capture_output=True, text=True)
    out = np.fromfile(work / "out.bin", dtype=np.int64).reshape(-1, 2)
    stats = yaml.safe_load(run.stdout)["memory_system"]["controller"]
    return {"arrive": out[:, 0], "depart": out[:, 1],
            "activates": sum(c["row_misses"] + c["row_conflicts"] for c in stats)}


def summary(issue_ns, done_ns, activates, access) -> dict:
    lat = done_ns - issue_ns
    return {"bw": len(done_ns) * access / (done_ns.max() - issue_ns.min()), "act": activates,
            "mean": float(lat.mean()), "p99": float(np.percentile(lat, 99))}


def run_hwsim(dram: DramMemory, address, arrival_ns, queue_depth: int, queue_release: str,
              from_admission: bool = False, enqueue_ns: float = 0.0) -> dict:
    """hwsim on the requests; `from_admission` (all arriving at once): latency from when each request got
    a queue entry, as Ramulator counts from `arrive`. `enqueue_ns`: the requests reach the scheduler this
    long after they arrive (Ramulator: a request sent at cycle c is first scheduled at c + 1); latency
    still counts from the arrival."""
    model = DetailedDram(dram, queue_depth=queue_depth, mapping=MAPPING, queue_release=queue_release)
    admitted = np.empty(len(address))
    arrival = np.broadcast_to(np.asarray(arrival_ns, dtype=np.float64), (len(address),))
    done = model.submit(address, False, arrival + enqueue_ns, admission_ns=admitted)
    start = admitted - enqueue_ns if from_admission else arrival
    return summary(start, done, model.stats().activates, dram.preset.organisation.access_bytes)


def dev(a: float, b: float) -> str:
    return f"{100 * (a / b - 1):+.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ramulator", required=True, type=Path, help="built Ramulator 2.1 tree")
    parser.add_argument("--tech", nargs="+", default=list(TECHS), choices=list(TECHS))
    parser.add_argument("--config-dir", type=Path, default=None, help="TECH.yaml Ramulator configs to use")
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--read-buffer", type=int, default=256, help="Ramulator read buffer per channel")
    parser.add_argument("--queue-release", choices=("column", "completion"), default="column",
                        help="hwsim's queue: entries freed at the column command, an activated request in its "
                        "bank's slot, as Ramulator's read and active buffers (default), or held to completion")
    parser.add_argument("--enqueue-ticks", type=int, default=1, help="hwsim sees each request this many "
                        "Ramulator ticks after it arrives, as Ramulator's controller schedules a request one tick "
                        "after it is sent (default 1; 0: none)")
    parser.add_argument("--queue-depth", type=int, default=None, help="hwsim queue per pseudo-channel "
                        "(default: Ramulator's read buffer share; held to completion, plus one per bank)")
    parser.add_argument("--in-order", action="store_true", help="offer Ramulator's requests in one order "
                        "(as its trace frontends do: a full channel holds back all) instead of per channel")
    parser.add_argument("--timings", action="store_true", help="also print the timing-value comparison")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the Ramulator YAML used")
    parser.add_argument("--out", default=None, help="also write the table(s) (markdown) here")
    args = parser.parse_args()
    root = args.ramulator.resolve()
    rows = ["| tech | pattern | load | GB/s hwsim / Ramulator | activates | mean latency ns | p99 latency ns |",
            "|---|---|---|---|---|---|---|"]
    extra: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        driver = build_driver(root, root / "build", work)
        for tech in args.tech:
            config = (args.config_dir / f"{tech}.yaml" if args.config_dir
                      else export_config(root, tech, args.read_buffer, work))
            if args.verbose:
                print(config.read_text())
            g = geometry(yaml.safe_load(config.read_text()), root, TECHS[tech][6])
            dram = aligned_dram(g, tech)
            c = g["counts"]
            buffer = yaml.safe_load(config.read_text())["memory_system"]["controllers"][0]["read_buffer_size"]
            active = c["bg"] * c["ba"] if args.queue_release == "completion" else 0  # Ramulator's active buffer
            depth = args.queue_depth or buffer // c["pc"] + active
            if args.timings:
                extra += [""] + timing_table(g, tech)
            model = DetailedDram(dram, queue_depth=1, mapping=MAPPING)
            n, rng = args.requests, np.random.default_rng(0)
            capacity = dram.capacity_bytes // g["access"]
            cases = {"sequential": np.arange(n, dtype=np.int64) * g["access"],
                     "random": rng.integers(0, capacity, n) * g["access"]}
            for name, ram_addr in cases.items():
                f = fields(g, ram_addr)
                hw_addr = hwsim_address(g, model, f)
                sat_cycles = None
                for load in ("saturated", "50%", "25%"):
                    if load == "saturated":
                        cycle = np.zeros(n, dtype=np.int64)
                    else:  # evenly spaced at a share of Ramulator's saturated throughput
                        share = float(load[:-1]) / 100
                        cycle = np.floor(np.arange(n) * sat_cycles / (n * share)).astype(np.int64)
                    r = run_ramulator(driver, config, cycle, ram_addr, 0 if args.in_order else f["ch"], work)
                    tick = g["tick"]
                    d = summary(cycle * tick, r["depart"] * tick, r["activates"], g["access"])
                    if load == "saturated":  # latency from acceptance into the controller, both sides
                        sat_cycles = r["depart"].max()
                        accepted = summary(r["arrive"] * tick, r["depart"] * tick, 0, 1)
                        d.update(mean=accepted["mean"], p99=accepted["p99"])
                    h = run_hwsim(dram, hw_addr, cycle * tick, depth, args.queue_release,
                                  from_admission=load == "saturated", enqueue_ns=args.enqueue_ticks * tick)
                    rows.append(f"| {tech} | {name} | {load} "
                                f"| {h['bw']:.1f} / {d['bw']:.1f} ({dev(h['bw'], d['bw'])}) "
                                f"| {h['act']:,} / {d['act']:,} ({dev(h['act'], max(d['act'], 1))}) "
                                f"| {h['mean']:.1f} / {d['mean']:.1f} ({dev(h['mean'], d['mean'])}) "
                                f"| {h['p99']:.1f} / {d['p99']:.1f} ({dev(h['p99'], d['p99'])}) |")
                    print(rows[-1], flush=True)
    table = "\n".join(rows + extra)
    if extra:
        print("\n".join(extra))
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
