"""The analytic roofline: no schedule beats bytes over peak bandwidth or operations over peak rate.

One rule for every caller (the run summary, prefill, the sweep table's analytic columns, the compare
figure): matmul FLOPs against the matmul peak at the precision the hardware multiplies in, fp32
element-wise operations against the vector peak, DRAM and SRAM bytes against their peak bandwidths.
"""

from __future__ import annotations

import numpy as np

from hwsim.config.hardware import Hardware
from hwsim.units import flops_per_ns


def matmul_precision(hw: Hardware, weight_key: str) -> str:
    """The matmul peak that applies: a GPU GEMM runs at its activations' precision (fp16) whatever the
    weights' storage width (low-bit weights are dequantised in the kernel); a dataflow design is
    described by the rate of its weight precision."""
    return "fp16" if hw.execution.kind == "gpu" else weight_key


def roofline(hw: Hardware, weight_key: str, *, dram_bytes: float, matmul_flops: float, vector_ops: float,
             sram_bytes: float = 0.0, prefix: str = "bound_") -> dict[str, float]:
    """Time of each resource at its peak, and the largest of them, in ns."""
    peak_matmul_flops_per_ns = flops_per_ns(hw.compute.matmul_TFLOPS[matmul_precision(hw, weight_key)])
    bound = {f"{prefix}dram_time_ns": dram_bytes / hw.dram.peak_bandwidth_GBps if hw.dram else 0.0,
             f"{prefix}matmul_time_ns": matmul_flops / peak_matmul_flops_per_ns,
             f"{prefix}vector_time_ns": vector_ops / hw.compute.vector_GFLOPS,
             f"{prefix}sram_time_ns": sram_bytes / hw.sram.bandwidth_GBps}
    bound[f"{prefix}time_ns"] = max(bound.values())
    return bound



def decode_bytes_per_step(exp, fp, *, context: float) -> dict[str, float]:
    """Closed-form DRAM bytes of one decode step by category, everything streamed from DRAM (no SRAM
    residency), every state at the policy's high precision, every stream at `context` cached positions:
    the analytic figure beside the simulated one. KV: every cached position in each attention layer's
    window read once, one appended per stream; experts: the expected distinct experts of the batch."""
    from hwsim.sizing import kv_position_bytes, state_bytes
    from hwsim.stack import expected_distinct_experts

    stack, policy, model, batch = fp.stack, exp.policy, exp.model, exp.workload.batch_size
    elements = stack.ssm_state_elements + stack.linear_state_elements
    state = 2.0 * batch * float(state_bytes(elements, policy.high_bits, policy.group_size, policy.scale_bits).sum())
    per_position = kv_position_bytes(stack.kv_elements_per_position, model.kv_precision, model.kv_group_size,
                                     model.kv_scale_bits)
    read = np.where(stack.kv_window > 0, np.minimum(context, stack.kv_window), context)
    kv = batch * float((per_position * (read + 1)).sum())
    experts = float((stack.expert_bytes * expected_distinct_experts(stack.experts, stack.experts_per_token,
                                                                    batch)).sum())
    return {"weights": float(stack.weight_bytes.sum() + fp.lm_head_bytes), "experts": experts, "state": state,
            "kv_cache": kv, "conv_state": 2.0 * batch * float(stack.conv_state_bytes_per_stream.sum())}


def kv_crossover_context(exp, fp) -> dict[str, float]:
    """Context (positions per stream, no windows) at which the KV cache read per step equals the state
    read+written and the weights+experts read: state / (B x KV bytes per position), independent of B;
    weights / (B x KV bytes per position). inf without attention layers."""
    from hwsim.sizing import kv_position_bytes

    stack, model, batch = fp.stack, exp.model, exp.workload.batch_size
    per_position = float(kv_position_bytes(stack.kv_elements_per_position, model.kv_precision,
                                           model.kv_group_size, model.kv_scale_bits).sum())
    at_zero = decode_bytes_per_step(exp, fp, context=0.0)
    if per_position == 0:
        return {"kv_over_state_context": float("inf"), "kv_over_weights_context": float("inf")}
    return {"kv_over_state_context": at_zero["state"] / (batch * per_position),
            "kv_over_weights_context": (at_zero["weights"] + at_zero["experts"]) / (batch * per_position)}
