"""The prompt phase: every prompt token of every stream through the parallel form, once.

Prefill is compute-bound where decode is memory-bound: GEMMs over B x L tokens instead of B, the scan
in its parallel (selective scan) or chunked (SSD) form, and the final SSM and conv states written once
at the policy's high precision (the first decode step reads them). The LM head runs on the last
position of each stream only, which yields the first generated token.

`gpu`: the prefill kernels (`hwsim.kernels.prefill_kernels`) timed one by one, launched eagerly (the
reference implementations capture only the decode step in a CUDA graph). `dataflow`: each layer is one
fused pass over the prompt tokens whose time is the larger of its DRAM, matmul, vector and SRAM time;
the residual stream between layers goes through DRAM when it does not fit in the SRAM budget.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hwsim.bounds import roofline
from hwsim.config.experiment import Experiment
from hwsim.energy import add_energy, energy_table
from hwsim.geometry import ModelFootprint
from hwsim.gpu import StepState, kernel_breakdown, time_kernels
from hwsim.kernels import KernelPlan, prefill_kernels
from hwsim.memory.transaction import DramTiming
from hwsim.sizing import state_bytes
from hwsim.traffic import weight_run_bytes
from hwsim.units import flops_per_ns, per_second


def _sums(plan_kernels, attr: str) -> float:
    return float(sum(getattr(k, attr) for k in plan_kernels))


def final_state_bytes(exp: Experiment, fp: ModelFootprint) -> tuple[float, float]:
    """SSM and conv state bytes one layer writes for the whole batch at the end of the prompt."""
    p, batch = exp.policy, exp.workload.batch_size
    ssm = batch * float(state_bytes(fp.layer.ssm_state_elements, p.high_bits, p.group_size, p.scale_bits))
    return ssm, batch * fp.conv_state_bytes_per_stream_layer


def simulate_prefill(exp: Experiment, fp: ModelFootprint, dram: DramTiming | None, budget_bytes: float) -> dict:
    """Time, bytes, energy and roofline bound of the prefill of every stream's prompt."""
    hw, batch = exp.hardware, exp.workload.batch_size
    tokens = exp.workload.total_prompt_tokens
    plan = prefill_kernels(exp.model, fp)
    ssm_write, conv_write = final_state_bytes(exp, fp)
    layers = fp.n_layers
    norm_f, lm_head = plan.tail
    matmul_flops = tokens * layers * _sums(plan.layer, "matmul_flops") + batch * lm_head.matmul_flops
    vector_ops = tokens * (layers * _sums(plan.layer, "vector_ops") + _sums(plan.head, "vector_ops")
                           + norm_f.vector_ops) + batch * lm_head.vector_ops
    if hw.execution.kind == "gpu":
        timed = _gpu(exp, fp, plan, dram, tokens, ssm_write, conv_write)
    else:
        timed = _dataflow(exp, fp, plan, dram, tokens, ssm_write, conv_write, budget_bytes)
    bound = roofline(hw, fp.weight_precision_key, dram_bytes=timed["dram_bytes"], matmul_flops=matmul_flops,
                     vector_ops=vector_ops, prefix="prefill_bound_")
    actions = pd.DataFrame({"dram_read_bits": [8.0 * timed["dram_read_bytes"]],
                            "dram_write_bits": [8.0 * timed["dram_write_bytes"]],
                            "dram_activates": [timed["dram_activates"]],
                            "sram_read_bits": [8.0 * timed["sram_bytes"] / 2], "sram_write_bits": [8.0 * timed["sram_bytes"] / 2],
                            "matmul_macs": [matmul_flops / 2], "vector_ops": [vector_ops], "quantise_elements": [0.0],
                            "latency_ns": [timed["time_ns"]]})
    energy = add_energy(actions, energy_table(hw, fp.weight_precision_key))["energy_pJ_total"].iloc[0]
    out = {"prefill_tokens": tokens, "prefill_time_ns": timed["time_ns"],
           "prefill_tokens_per_s": per_second(tokens, timed["time_ns"]),
           "prefill_dram_bytes": timed["dram_bytes"], "prefill_matmul_flops": matmul_flops,
           "prefill_vector_ops": vector_ops, "prefill_energy_pJ": float(energy),
           "prefill_launches": timed.get("launches", 0), **bound,
           "prefill_over_bound": timed["time_ns"] / bound["prefill_bound_time_ns"]}
    if "kernels" in timed:
        out["prefill_kernels"] = timed["kernels"]
    return out


def _one_step(ssm_write: float, conv_write: float, layers: int) -> StepState:
    one, zero = np.ones(1), np.zeros(1)
    dram = np.ones((1, max(layers, 1)))
    return StepState(ssm_read_bytes=zero, ssm_write_bytes=ssm_write * one, ssm_read_dram_share=dram,
                     ssm_write_dram_share=dram, conv_read_bytes=zero, conv_write_bytes=conv_write * one,
                     conv_dram_share=dram, weights_dram_share=dram, lm_head_dram_share=one,
                     low_state_elements=zero)


def _gpu(exp: Experiment, fp: ModelFootprint, plan: KernelPlan, dram, tokens: int, ssm_write: float,
         conv_write: float) -> dict:
    """The prompt kernels over every token, then the final norm and LM head over the last positions."""
    hw, batch = exp.hardware, exp.workload.batch_size
    norm_f, lm_head = plan.tail   # norm_f runs over every position, the LM head over the last ones
    body = KernelPlan(layer=plan.layer, head=plan.head, tail=(norm_f,), n_layers=plan.n_layers)
    head = KernelPlan(layer=(), head=(), tail=(lm_head,), n_layers=0)
    parts = [time_kernels(body, hw, dram, tokens=tokens, state=_one_step(ssm_write, conv_write, plan.n_layers),
                          cuda_graphs=False),
             time_kernels(head, hw, dram, tokens=batch, state=_one_step(0.0, 0.0, 0), cuda_graphs=False)]
    read = sum(float(p.dram_read_bytes[0]) for p in parts)
    write = sum(float(p.dram_write_bytes[0]) for p in parts)
    sram = sum(float(v[0]) for p in parts for v in p.l2_bytes.values())
    activates = 0.0
    if dram is not None:   # prompt-sized tensors and whole weight matrices: long runs, one layer's weights
        activates = float(dram.activates(read + write, weight_run_bytes(exp, fp)))
    breakdown = kernel_breakdown(parts[0]) + kernel_breakdown(parts[1])
    return {"time_ns": sum(float(p.step_ns[0]) for p in parts), "dram_read_bytes": read,
            "dram_write_bytes": write, "dram_bytes": read + write, "sram_bytes": sram,
            "dram_activates": activates, "launches": sum(len(p.names) for p in parts), "kernels": breakdown}


def _dataflow(exp: Experiment, fp: ModelFootprint, plan: KernelPlan, dram, tokens: int, ssm_write: float,
              conv_write: float, budget_bytes: float) -> dict:
    """One fused pass per layer: max of its DRAM, matmul, vector and SRAM time; layers in sequence."""
    hw, batch, model = exp.hardware, exp.workload.batch_size, exp.model
    act = model.activation_bits / 8.0
    residual = tokens * model.d_model * (act + 4.0)        # layer input and output: hidden + fp32 residual
    spills = residual > budget_bytes
    read = fp.weight_bytes_per_layer + (residual if spills else 0.0)
    write = ssm_write + conv_write + (residual if spills else 0.0)
    on_chip = tokens * (_sums(plan.layer, "act_in_bytes") + _sums(plan.layer, "act_out_bytes"))
    matmul_per_ns = flops_per_ns(hw.compute.matmul_TFLOPS[fp.weight_precision_key])

    def service(nbytes: float, run: float) -> float:
        return float(dram.service_ns(nbytes, run)) if dram is not None and nbytes > 0 else 0.0

    layer_ns = max(service(read, weight_run_bytes(exp, fp)) + service(write, ssm_write / batch if batch else 1.0),
                   tokens * _sums(plan.layer, "matmul_flops") / matmul_per_ns,
                   tokens * _sums(plan.layer, "vector_ops") / hw.compute.vector_GFLOPS,
                   (on_chip + read + write) / hw.sram.bandwidth_GBps)
    lm_ns = max(service(fp.lm_head_bytes, weight_run_bytes(exp, fp)),
                batch * fp.lm_head_flops_per_stream / matmul_per_ns)
    embed = tokens * fp.embedding_bytes_per_token
    layers = fp.n_layers
    dram_read = layers * read + fp.lm_head_bytes + embed
    dram_write = layers * write
    activates = 0.0
    if dram is not None:
        activates = float(dram.activates(dram_read + dram_write, weight_run_bytes(exp, fp)))
    return {"time_ns": layers * layer_ns + lm_ns + service(embed, fp.embedding_bytes_per_token),
            "dram_read_bytes": dram_read, "dram_write_bytes": dram_write, "dram_bytes": dram_read + dram_write,
            "sram_bytes": layers * (on_chip + read + write), "dram_activates": activates}
