"""Run one experiment end to end: traces -> policy plan -> traffic -> simpy engine -> frames -> outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from hwsim import __version__
from hwsim.config.experiment import Experiment
from hwsim.energy import add_energy, energy_table
from hwsim.engine import DecodeEngine
from hwsim.files import write_atomic, write_text_atomic
from hwsim.geometry import footprint
from hwsim.memory.transaction import DramTiming
from hwsim.policies.kinds import StaticPolicy
from hwsim.results import SummaryAccumulator, savings, step_frame, summarise
from hwsim.traffic import build_traffic, check_capacity
from hwsim.workload import deal


@dataclass(frozen=True)
class RunResult:
    experiment: Experiment
    summary: dict
    steps: pd.DataFrame | None   # kept only when asked (long runs stream to steps.parquet instead)


def workload_entropies(exp: Experiment) -> list[np.ndarray]:
    from hwsim.traces import DEFAULT_TRACE_SET, load_traces

    names = list(exp.workload.traces) if exp.workload.traces else list(DEFAULT_TRACE_SET)
    return [trace.entropy_bits for trace in load_traces(names)]


def baseline_of(exp: Experiment) -> Experiment:
    """Same everything, every state at the policy's high precision."""
    p = exp.policy
    static = StaticPolicy(bits=p.high_bits, low_bits=p.low_bits, high_bits=p.high_bits,
                          group_size=p.group_size, scale_bits=p.scale_bits)
    return exp.model_copy(update={"policy": static})


def analytic_bound(exp: Experiment, acc: SummaryAccumulator, weight_key: str) -> dict[str, float]:
    """Roofline: no schedule beats bytes / peak bandwidth or operations / peak throughput."""
    s, hw = acc.sums, exp.hardware
    dram_ns = float(s["dram_bytes"]) / hw.dram.peak_bandwidth_GBps if hw.dram else 0.0
    matmul_ns = 2.0 * float(s["matmul_macs"]) / (hw.compute.matmul_TFLOPS[weight_key] * 1e3)
    vector_ns = float(s["vector_ops"]) / hw.compute.vector_GFLOPS
    sram_ns = float(s["sram_read_bytes"] + s["sram_write_bytes"]) / hw.sram.bandwidth_GBps
    bound = {"bound_dram_time_ns": dram_ns, "bound_matmul_time_ns": matmul_ns,
             "bound_vector_time_ns": vector_ns, "bound_sram_time_ns": sram_ns}
    bound["bound_time_ns"] = max(bound.values())
    return bound


def detailed_queue(exp: Experiment, fp):
    """`run.fidelity: detailed`: a factory for the request-level DRAM queue (None for the fast level)."""
    if exp.run.fidelity != "detailed" or exp.hardware.dram is None:
        return None
    from hwsim.memory.detailed import DetailedDram
    from hwsim.memory.detailed_queue import DetailedDramQueue

    controller = DetailedDram(exp.hardware.dram, queue_depth=exp.hardware.dma.queue_depth)
    return lambda env: DetailedDramQueue(env, controller)


def transfer_requests(exp: Experiment, fp, policy, plan, traffic, first_step: int):
    from hwsim.memory.detailed_queue import TransferRequests
    from hwsim.memory.layout import AddressLayout

    layout = AddressLayout.build(fp, batch=exp.workload.batch_size, vocab=exp.model.vocab_size,
                                 high_bits=policy.high_bits, group_size=policy.group_size,
                                 scale_bits=policy.scale_bits,
                                 access_bytes=exp.hardware.dram.preset.organisation.access_bytes,
                                 seed=exp.workload.seed)
    return TransferRequests(layout, fp=fp, plan=plan, traffic=traffic, policy=policy,
                            batch=exp.workload.batch_size, first_step=first_step)


def simulate_experiment(exp: Experiment, entropies: list[np.ndarray], *, steps_path: Path | None = None,
                        keep_steps: bool = False) -> tuple[dict, pd.DataFrame | None]:
    fp = footprint(exp.model)
    budget = check_capacity(exp, fp)
    policy = exp.policy.calibrated(entropies)
    dealt = deal(entropies, exp.workload.batch_size, exp.workload.steps, exp.workload.seed)
    plan = policy.plan(dealt.entropy_bits, dealt.fresh)
    dram = DramTiming.from_config(exp.hardware.dram) if exp.hardware.dram else None
    table = energy_table(exp.hardware, fp.weight_precision_key)
    acc, kept, writer, engine = SummaryAccumulator(), [], None, None
    served_bytes = 0.0  # what the DRAM queue served, to check against what the accelerator asked
    chunk = exp.run.chunk_steps
    try:
        for first in range(0, exp.workload.steps, chunk):
            rows = slice(first, min(first + chunk, exp.workload.steps))
            sub = type(plan)(read_bits=plan.read_bits[rows], write_bits=plan.write_bits[rows],
                             checkpoint_bits=plan.checkpoint_bits[rows], replay_steps=plan.replay_steps[rows],
                             low_bits=plan.low_bits, high_bits=plan.high_bits)
            traffic = build_traffic(exp, fp, sub, dram, budget)
            engine = engine or DecodeEngine.for_traffic(traffic, detailed_queue(exp, fp))
            if exp.run.fidelity == "detailed" and exp.hardware.dram is not None:
                engine.dram.bind(transfer_requests(exp, fp, policy, sub, traffic, first))
            timeline = engine.run(traffic, gate_on_current=policy.gate_on == "current")
            frame = add_energy(step_frame(traffic, timeline, first, exp.workload.batch_size), table)
            frame["entropy_bits_mean"] = dealt.entropy_bits[rows].mean(axis=1)
            frame["stream0_entropy_bits"] = dealt.entropy_bits[rows, 0]
            frame["stream0_write_bits"] = plan.write_bits[rows, 0]
            served_bytes += sum(timeline.dram_served_bytes.values())
            acc.add(frame)
            if steps_path is not None:
                table_chunk = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or pq.ParquetWriter(steps_path, table_chunk.schema, compression="zstd")
                writer.write_table(table_chunk)
            if keep_steps:
                kept.append(frame)
        end_ns = timeline.end_ns
    finally:
        if writer is not None:
            writer.close()
    # the last write-backs drain after the final step: their time counts, at static power too
    drain_ns = end_ns - float(acc.sums["latency_ns"])
    acc.sums["energy_pJ_static"] += drain_ns * table["static"][1]
    acc.sums["energy_pJ_total"] += drain_ns * table["static"][1]
    extra = {"lossy_upgrades": plan.lossy_upgrades, "streams_started": dealt.streams_started,
             "dram_served_bytes": served_bytes,
             "dram_peak_bandwidth_GBps": exp.hardware.dram.peak_bandwidth_GBps if exp.hardware.dram else 0.0,
             "threshold_bits_used": float(getattr(policy, "threshold_bits", float("nan")))}
    summary = summarise(acc, end_ns=end_ns, bound=analytic_bound(exp, acc, fp.weight_precision_key),
                        batch=exp.workload.batch_size, extra=extra)
    return summary, (pd.concat(kept, ignore_index=True) if keep_steps else None)


def run_experiment(exp: Experiment, out_dir: str | Path | None = None, *,
                   entropies: list[np.ndarray] | None = None, keep_steps: bool = False) -> RunResult:
    entropies = workload_entropies(exp) if entropies is None else entropies
    out = Path(out_dir) if out_dir is not None else None
    if out is None:
        summary, steps = simulate_experiment(exp, entropies, keep_steps=keep_steps)
    else:  # every output lands under its final name whole or not at all (hwsim.files)
        summary, steps = write_atomic(out / "steps.parquet", lambda tmp: simulate_experiment(
            exp, entropies, steps_path=tmp, keep_steps=keep_steps), returns=True)
    summary = {"experiment": exp.name, "model": exp.model.name, "hardware": exp.hardware.name,
               "policy": exp.policy.kind, **summary}
    if exp.run.baseline:
        baseline, _ = simulate_experiment(baseline_of(exp), entropies)
        summary.update(savings(summary, baseline))
    summary["hwsim_version"] = __version__
    if out is not None:
        write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True))
        write_text_atomic(out / "resolved.yaml", yaml.safe_dump(exp.model_dump(mode="json"), sort_keys=False))
    return RunResult(experiment=exp, summary=summary, steps=steps)
