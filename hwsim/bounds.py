"""The analytic roofline: no schedule beats bytes over peak bandwidth or operations over peak rate.

One rule for every caller (the run summary, prefill, the sweep table's analytic columns, the compare
figure): matmul FLOPs against the matmul peak at the precision the hardware multiplies in, fp32
element-wise operations against the vector peak, DRAM and SRAM bytes against their peak bandwidths.
"""

from __future__ import annotations

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

