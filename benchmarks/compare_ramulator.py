"""Compare hwsim's detailed DRAM level with Ramulator 2.1 on the same requests; regenerates the tables.

Usage: python benchmarks/compare_ramulator.py --ramulator PATH/ramulator2 [--tech hbm2 hbm3-6400]
           [--requests 200000] [--read-buffer 64] [--queue-depth 64] [--config-dir DIR] [--out FILE.md]

Ramulator 2.1 (github CMU-SAFARI/ramulator2, main) is given by path: its built tree (libramulator.so,
python/ramulator, build/compile_commands.json); build it outside this repository, never vendored. 2.1
has no standalone binary and its trace frontends neither time requests nor report per-request latency
(LoadStoreTrace / ReadWriteTrace offer one request per frontend tick, in order, and stop counting when
the last one is sent), so this script compiles a ~50-line driver against libramulator.so (its documented
`External` frontend) into a temp dir: it offers each request at its issue cycle, in order (a refused
request holds back the rest, as the trace frontends do) and records arrival and departure cycles.
Ramulator configs (YAML) are exported from Ramulator's own Python presets into the temp dir (or read
from --config-dir/TECH.yaml; give them an External frontend); the exported YAML is printed with -v.

Both sides run the same DRAM: hwsim's preset is rebuilt from the Ramulator config's organisation and
timing values (`aligned_dram`); `--timings` prints how hwsim's shipped preset differs. HBM2 is
Ramulator's HBM2_8Gb/HBM2_2000Mbps (pseudo-channel mode, 2 x 64 bit, 32 B accesses, 1 KiB rows); HBM3 is
HBM3_16Gb_8hi/HBM3_6400Mbps with one SID (hwsim has no SID level) and rows doubled to keep 16 GiB.
Mapping: Ramulator RoBaRaCoCh + CacheLineInterleave puts the byte address as Ro Ba Bg Pc Co Ch (Pc:
pseudo-channel, above the column); hwsim's strings have one Ch field for channels and pseudo-channels,
so no hwsim string equals it. Each request is decoded with Ramulator's layout and re-encoded in hwsim's
`RoBaBgCoCh` (32 B interleave): both see the same (channel, pseudo-channel, bank, row, column) stream.

Patterns: sequential 32 B reads and uniformly random 32 B reads over the capacity. Loads: saturated
(all offered at cycle 0) and 25% / 50% of Ramulator's saturated throughput (issue cycles evenly spaced).
Figures: bandwidth (bytes / time to the last completion), activates (Ramulator row misses + conflicts:
each costs one ACT), mean and p99 read latency from the issue cycle. Saturated: hwsim's bandwidth and
activates come from all requests at time 0 (queue --queue-depth per pseudo-channel); its latency from
a replay of Ramulator's acceptance times with a queue deep enough not to push back (latency then counts
from controller acceptance on both sides). Targets: bandwidth and activates within 2%, latency within 5%.
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
// driver CONFIG.yaml IN.bin OUT.bin: IN = int64 (issue cycle, address, is_write) per request;
// OUT = int64 (arrival cycle, departure cycle) per request; stats (YAML) on stdout
int main(int argc, char** argv) {
  if (argc != 4) return 2;
  auto config = Ramulator::Config::parse_config_file(argv[1]);
  auto* frontend = Ramulator::Factory::create_frontend(config);
  auto* memory = Ramulator::Factory::create_memory_system(config);
  frontend->connect_memory_system(memory);
  memory->connect_frontend(frontend);
  std::ifstream f(argv[2], std::ios::binary | std::ios::ate);
  size_t bytes = f.tellg();
  std::vector<int64_t> in(bytes / 8);
  f.seekg(0);
  f.read(reinterpret_cast<char*>(in.data()), bytes);
  const size_t n = in.size() / 3;
  std::vector<int64_t> out(2 * n, -1);
  size_t next = 0, done = 0;
  int64_t clk = 0;
  while (done < n) {
    while (next < n && in[3 * next] <= clk) {  // in order: a refused request holds back the rest
      size_t i = next;
      auto cb = [&out, &done, &clk, i](Ramulator::Request& r) { out[2 * i + 1] = r.type_id == 0 ? r.depart : clk + 1; done++; };
      if (!frontend->receive_external_requests(int(in[3 * i + 2]), in[3 * i + 1], 0, cb, memory->get_tx_bytes())) break;
      out[2 * i] = clk;
      next++;
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
    ramulator_python(root, "import sys, runpy; sys.argv = ['ramulator', 'export', sys.argv[1], '-o', sys.argv[2]];"
                     "runpy.run_module('ramulator', run_name='__main__')", str(script), str(out))
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
    names = ramulator_python(root, "import json, sys, ramulator.dram as d; s = getattr(d, sys.argv[1]);"
                             "print(json.dumps([s.timing_params, s.commands, s.internal_prefetch_size]))", std)
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
    return {"std": dram["impl"], "channels": len(ctrls), "counts": counts, "access": access, "rate": ticks["rate"] / 1000,
            "burst": prefetch, "width": dram["channel_width"], "ns": ns, "cycles": cycles, "tick": tick_ns}


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
    """Ramulator's values (ns) beside hwsim's shipped preset, differences marked."""
    stock = load_preset("dram", tech, DramPreset).timings_ns.model_dump()
    ours = aligned_dram(g, tech).preset.timings_ns.model_dump()
    rows = [f"| {tech}: timing | Ramulator {g['std']} (ns) | hwsim preset (ns) |", "|---|---|---|"]
    for name, value in ours.items():
        mark = "" if abs(stock[name] - value) < 0.02 else " **differs**"
        rows.append(f"| {name} | {value:g} | {stock[name]:g}{mark} |")
    return rows


def ramulator_address(g: dict, f: dict) -> np.ndarray:
    """Byte address of field digits in Ramulator's layout: (Ro Ba Bg Pc Co Ch offset), LSB last."""
    c = g["counts"]
    return ((((f["ro"] * c["ba"] + f["ba"]) * c["bg"] + f["bg"]) * c["pc"] + f["pc"]) * c["co"] + f["co"]) \
        * g["channels"] * g["access"] + f["ch"] * g["access"]


def fields(g: dict, address: np.ndarray) -> dict:
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


def run_ramulator(driver: Path, config: Path, cycle, address, work: Path) -> dict:
    rec = np.stack([cycle, address, np.zeros_like(address)], axis=1).astype(np.int64)
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


def run_hwsim(dram: DramMemory, address, arrival_ns, queue_depth: int) -> dict:
    model = DetailedDram(dram, queue_depth=queue_depth, mapping=MAPPING)
    done = model.submit(address, False, arrival_ns)
    return summary(arrival_ns, done, model.stats().activates, dram.preset.organisation.access_bytes)


def dev(a: float, b: float) -> str:
    return f"{100 * (a / b - 1):+.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ramulator", required=True, type=Path, help="built Ramulator 2.1 tree")
    parser.add_argument("--ramulator-build", type=Path, default=None, help="its CMake build dir (ROOT/build)")
    parser.add_argument("--tech", nargs="+", default=list(TECHS), choices=list(TECHS))
    parser.add_argument("--config-dir", type=Path, default=None, help="TECH.yaml Ramulator configs to use")
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--read-buffer", type=int, default=64, help="Ramulator read buffer per channel")
    parser.add_argument("--queue-depth", type=int, default=64, help="hwsim queue per pseudo-channel")
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
        driver = build_driver(root, args.ramulator_build or root / "build", work)
        for tech in args.tech:
            config = (args.config_dir / f"{tech}.yaml" if args.config_dir
                      else export_config(root, tech, args.read_buffer, work))
            if args.verbose:
                print(config.read_text())
            g = geometry(yaml.safe_load(config.read_text()), root, TECHS[tech][6])
            dram = aligned_dram(g, tech)
            if args.timings:
                extra += [""] + timing_table(g, tech)
            model = DetailedDram(dram, queue_depth=1, mapping=MAPPING)
            n, rng = args.requests, np.random.default_rng(0)
            capacity = dram.capacity_bytes // g["access"]
            cases = {"sequential": np.arange(n, dtype=np.int64) * g["access"],
                     "random": rng.integers(0, capacity, n) * g["access"]}
            for name, ram_addr in cases.items():
                f = fields(g, ram_addr)
                assert np.array_equal(ramulator_address(g, f), ram_addr % (capacity * g["access"]))
                hw_addr = hwsim_address(g, model, f)
                sat_cycles = None
                for load in ("saturated", "50%", "25%"):
                    if load == "saturated":
                        cycle = np.zeros(n, dtype=np.int64)
                    else:  # evenly spaced at a share of Ramulator's saturated throughput
                        cycle = np.floor(np.arange(n) * sat_cycles / (n * float(load[:-1]) / 100)).astype(np.int64)
                    r = run_ramulator(driver, config, cycle, ram_addr, work)
                    tick = g["tick"]
                    d = summary(cycle * tick, r["depart"] * tick, r["activates"], g["access"])
                    if load == "saturated":  # latency from acceptance: Ramulator's, replayed into hwsim
                        sat_cycles = r["depart"].max()
                        h = run_hwsim(dram, hw_addr, np.zeros(n), args.queue_depth)
                        replay = run_hwsim(dram, hw_addr, r["arrive"] * tick, 4096)
                        accepted = summary(r["arrive"] * tick, r["depart"] * tick, 0, 1)
                        d.update(mean=accepted["mean"], p99=accepted["p99"])
                        h.update(mean=replay["mean"], p99=replay["p99"])
                    else:
                        h = run_hwsim(dram, hw_addr, cycle * tick, args.queue_depth)
                    rows.append(f"| {tech} | {name} | {load} | {h['bw']:.1f} / {d['bw']:.1f} ({dev(h['bw'], d['bw'])}) "
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
