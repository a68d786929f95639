"""Run one experiment end to end: traces -> policy plan -> traffic -> simpy engine -> frames -> outputs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from hwsim import __version__
from hwsim.bounds import roofline
from hwsim.config.experiment import Experiment
from hwsim.energy import add_energy, energy_table
from hwsim.engine import DecodeEngine
from hwsim.files import temporary_sibling, write_atomic, write_text_atomic
from hwsim.geometry import ModelFootprint, footprint
from hwsim.gpu import GpuEngine, kernel_breakdown
from hwsim.kernels import decode_kernels
from hwsim.kv import KvPlan, kv_plan
from hwsim.memory.transaction import DramTiming
from hwsim.policies import StatePlan
from hwsim.policies.kinds import StaticPolicy
from hwsim.prefill import simulate_prefill
from hwsim.results import SummaryAccumulator, end_to_end, savings, step_frame, summarise
from hwsim.traffic import build_traffic, check_capacity
from hwsim.workload import DealtWorkload, deal


@dataclass(frozen=True)
class RunResult:
    experiment: Experiment
    summary: dict
    steps: pd.DataFrame | None   # kept only when asked (long runs stream to steps.parquet instead)
    kernels: pd.DataFrame | None = None   # gpu kind: mean time per step by kernel, decode and prefill


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
    """The roofline of the decode run (`hwsim.bounds`) from its summed bytes and operations."""
    s = acc.sums
    return roofline(exp.hardware, weight_key, dram_bytes=float(s["dram_bytes"]),
                    matmul_flops=2.0 * float(s["matmul_macs"]), vector_ops=float(s["vector_ops"]),
                    sram_bytes=float(s["sram_read_bytes"] + s["sram_write_bytes"]))


def detailed_queue(exp: Experiment, fp):
    """`run.fidelity: detailed`: a factory for the request-level DRAM queue (None for the fast level)."""
    if exp.run.fidelity != "detailed" or exp.hardware.dram is None:
        return None
    from hwsim.detailed_queue import DetailedDramQueue
    from hwsim.memory.detailed import DetailedDram

    controller = DetailedDram(exp.hardware.dram, queue_depth=exp.hardware.dma.queue_depth)
    return lambda env: DetailedDramQueue(env, controller)


def transfer_requests(exp: Experiment, fp, policy, traffic, first_step: int):
    from hwsim.address_layout import AddressLayout
    from hwsim.detailed_queue import TransferRequests

    layout = AddressLayout.build(fp, batch=exp.workload.batch_size, vocab=exp.model.vocab_size,
                                 high_bits=policy.high_bits, group_size=policy.group_size,
                                 scale_bits=policy.scale_bits,
                                 access_bytes=exp.hardware.dram.preset.organisation.access_bytes,
                                 seed=exp.workload.seed, interleave_bytes=exp.hardware.dram.interleave_bytes,
                                 channels=exp.hardware.dram.total_channels)
    return TransferRequests(layout, fp=fp, traffic=traffic, policy=policy,
                            batch=exp.workload.batch_size, first_step=first_step)


def make_engine(exp: Experiment, fp, traffic, dram):
    """The decode engine of the hardware's execution kind."""
    if exp.hardware.execution.kind == "gpu":
        plan = decode_kernels(exp.model, fp, exp.hardware.execution.framework)
        return GpuEngine(exp.hardware, plan, dram, exp.workload.batch_size)
    return DecodeEngine.for_traffic(traffic, detailed_queue(exp, fp), compiled=exp.run.engine == "compiled")


def gpu_bytes(traffic, engine: GpuEngine) -> None:
    """On a GPU the L2 sees what the kernels touch, and activations that do not fit go to DRAM."""
    times = engine.last
    traffic.bytes = {k: v for k, v in traffic.bytes.items() if k[0] != "sram"}
    for (direction, category), values in times.l2_bytes.items():
        traffic.bytes[("sram", direction, category)] = values
    if times.activation_dram_read_bytes.any() or times.activation_dram_write_bytes.any():
        traffic.bytes[("dram", "read", "activations")] = times.activation_dram_read_bytes
        traffic.bytes[("dram", "write", "activations")] = times.activation_dram_write_bytes


@dataclass(frozen=True)
class Prepared:
    """Everything a decode run needs before the first step: what `run` and `export-trace` share."""

    footprint: ModelFootprint
    budget_bytes: float          # SRAM left for residency after one layer's working set
    policy: object               # the policy, calibrated on the traces where it calibrates
    dealt: DealtWorkload
    plan: StatePlan
    dram: DramTiming | None
    steps: int
    kv: KvPlan | None = None     # attention layers: each stream's cached positions per step


def prepare(exp: Experiment, entropies: list[np.ndarray], steps: int | None = None) -> Prepared:
    """Footprint, capacity check, calibrated policy, dealt traces, state plan and DRAM timing."""
    fp = footprint(exp.model)
    budget = check_capacity(exp, fp)
    policy = exp.policy.calibrated(entropies)
    steps = exp.workload.decode_steps if steps is None else steps
    dealt = deal(entropies, exp.workload.batch_size, steps, exp.workload.seed)
    plan = policy.plan(dealt.entropy_bits, dealt.fresh)
    dram = DramTiming.from_config(exp.hardware.dram) if exp.hardware.dram else None
    kv = None
    if fp.stack.has_kv:
        low = (plan.write_bits < policy.high_bits) if policy.gate_kv else np.zeros(plan.write_bits.shape, bool)
        kv = kv_plan(exp.workload.context_tokens_per_stream, dealt.fresh, low,
                     windows=tuple(int(w) for w in np.unique(fp.stack.kv_window)))
    return Prepared(fp, budget, policy, dealt, plan, dram, steps, kv)


def simulate_experiment(exp: Experiment, entropies: list[np.ndarray], *, steps_path: Path | None = None,
                        keep_steps: bool = False) -> tuple[dict, pd.DataFrame | None]:
    """Decode `exp.workload.decode_steps` steps; the summary of the decode phase."""
    ready = prepare(exp, entropies)
    fp, budget, policy, dealt, plan, dram, steps = (ready.footprint, ready.budget_bytes, ready.policy,
                                                    ready.dealt, ready.plan, ready.dram, ready.steps)
    table = energy_table(exp.hardware, fp.weight_precision_key)
    acc, kept, writer, engine = SummaryAccumulator(), [], None, None
    served_bytes = 0.0  # what the DRAM queue served, to check against what the accelerator asked
    chunk = exp.run.chunk_steps
    try:
        for first in range(0, steps, chunk):
            rows = slice(first, min(first + chunk, steps))
            sub = type(plan)(read_bits=plan.read_bits[rows], write_bits=plan.write_bits[rows],
                             checkpoint_bits=plan.checkpoint_bits[rows], replay_steps=plan.replay_steps[rows],
                             low_bits=plan.low_bits, high_bits=plan.high_bits)
            traffic = build_traffic(exp, fp, sub, dram, budget, ready.kv.rows(rows) if ready.kv else None)
            engine = engine or make_engine(exp, fp, traffic, dram)
            if exp.run.fidelity == "detailed" and exp.hardware.dram is not None:
                engine.dram.bind(transfer_requests(exp, fp, policy, traffic, first))
            if isinstance(engine, GpuEngine):
                timeline = engine.run(traffic)
                gpu_bytes(traffic, engine)
            else:
                timeline = engine.run(traffic, gate_on_current=policy.gate_on == "current")
            frame = add_energy(step_frame(traffic, timeline, first, exp.workload.batch_size), table)
            frame["entropy_bits_mean"] = dealt.entropy_bits[rows].mean(axis=1)
            frame["stream0_entropy_bits"] = dealt.entropy_bits[rows, 0]
            frame["stream0_write_bits"] = plan.write_bits[rows, 0]
            if ready.kv is not None:
                frame["kv_context_tokens_mean"] = ready.kv.context[rows].mean(axis=1)
                frame["kv_low_precision_share"] = traffic.kv_low_share
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
             "threshold_bits_used": float(getattr(policy, "threshold_bits", float("nan"))),
             "execution": exp.hardware.execution.kind}
    if isinstance(engine, GpuEngine):
        extra["cuda_graphs"] = exp.hardware.execution.cuda_graphs
        extra["framework"] = exp.hardware.execution.framework
        extra["kernel_launches_per_step"] = engine.plan.launches_per_step
        extra["decode_kernels"] = kernel_breakdown(engine.last)
    summary = summarise(acc, end_ns=end_ns, bound=analytic_bound(exp, acc, fp.weight_precision_key),
                        batch=exp.workload.batch_size, extra=extra)
    if exp.run.fidelity == "detailed" and exp.hardware.dram is not None:
        summary.update(detailed_counts(summary, engine.dram.summary()))
    return summary, (pd.concat(kept, ignore_index=True) if keep_steps else None)


def detailed_counts(summary: dict, counts: dict) -> dict:
    """`run.fidelity: detailed`: the request-level model's own activates, row hits and refreshes and
    their energy replace the closed-form activate count and energy of the fast level."""
    tokens = summary["tokens"]
    activate = counts["energy_pJ_dram_activate"] / tokens
    refresh = counts["energy_pJ_dram_refresh"] / tokens
    total = summary["energy_pJ_per_token_total"] - summary["energy_pJ_per_token_dram_activate"] + activate + refresh
    return {"dram_activates_per_token": counts["dram_activates"] / tokens,
            "dram_row_hit_rate": counts["dram_row_hit_rate"], "dram_refreshes": counts["dram_refreshes"],
            "dram_wasted_activates": counts["dram_wasted_activates"],
            "energy_pJ_per_token_dram_activate": activate, "energy_pJ_per_token_dram_refresh": refresh,
            "energy_pJ_per_token_total": total}


def run_experiment(exp: Experiment, out_dir: str | Path | None = None, *,
                   entropies: list[np.ndarray] | None = None, keep_steps: bool = False) -> RunResult:
    """Prefill and/or decode as `workload.phase` says, the baseline, and the outputs in `out_dir`."""
    out = Path(out_dir) if out_dir is not None else None
    # steps.parquet is written to a hidden temporary and renamed with the other outputs at the end, so
    # a failure leaves the folder as it was (hwsim.files)
    steps_tmp = temporary_sibling(out / "steps.parquet") if out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    try:
        return _run_phases(exp, out, steps_tmp, entropies, keep_steps)
    finally:
        if steps_tmp is not None and steps_tmp.exists():
            steps_tmp.unlink()


def _run_phases(exp: Experiment, out: Path | None, steps_tmp: Path | None, entropies, keep_steps: bool) -> RunResult:
    phase = exp.workload.phase
    ids = {"experiment": exp.name, "model": exp.model.name, "hardware": exp.hardware.name,
           "policy": exp.policy.kind, "phase": phase, "execution": exp.hardware.execution.kind}
    kernels: list[dict] = []
    prefill = None
    if phase != "decode":
        fp = footprint(exp.model)
        dram = DramTiming.from_config(exp.hardware.dram) if exp.hardware.dram else None
        prefill = simulate_prefill(exp, fp, dram, check_capacity(exp, fp))
        kernels += [{"phase": "prefill", **row} for row in prefill.pop("prefill_kernels", [])]
    steps = None
    if phase == "prefill":
        summary = {**ids, **prefill, **end_to_end(None, prefill, batch=exp.workload.batch_size,
                                                  generated_tokens=1)}
    else:
        entropies = workload_entropies(exp) if entropies is None else entropies
        decode, steps = simulate_experiment(exp, entropies, steps_path=steps_tmp, keep_steps=keep_steps)
        kernels += [{"phase": "decode", **row} for row in decode.pop("decode_kernels", [])]
        summary = {**ids, **decode}
        if exp.run.baseline:
            baseline, _ = simulate_experiment(baseline_of(exp), entropies)
            baseline.pop("decode_kernels", None)
            summary.update(savings(summary, baseline))
        if prefill is not None:
            summary.update(prefill)
            summary.update(end_to_end(decode, prefill, batch=exp.workload.batch_size,
                                      generated_tokens=exp.workload.steps))
    summary["hwsim_version"] = __version__
    table = pd.DataFrame(kernels) if kernels else None
    if out is not None:
        if steps_tmp is not None and steps_tmp.exists():
            os.replace(steps_tmp, out / "steps.parquet")
        write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True))
        write_text_atomic(out / "resolved.yaml", yaml.safe_dump(exp.model_dump(mode="json"), sort_keys=False))
        if table is not None:
            write_atomic(out / "kernels.csv", lambda tmp: table.to_csv(tmp, index=False))
    return RunResult(experiment=exp, summary=summary, steps=steps, kernels=table)
