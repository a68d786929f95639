"""How the hardware executes a step: a fused dataflow pipeline, or a GPU running kernels one by one.

`dataflow` is hwsim's idealised accelerator (per layer, the next layer's weights and states stream in
while the current one computes; `hwsim.engine`). `gpu` runs the kernels the reference implementations
launch, in order and without overlap between dependent kernels (`hwsim.gpu`, `hwsim.kernels`): each
kernel takes the larger of its memory and compute time at *achieved* efficiency, plus launch costs.
Every achieved figure is hardware data with a source, never fitted to the validation set.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from hwsim.records import Frozen

Fraction = Annotated[float, Field(gt=0.0, le=1.0)]


class Dataflow(Frozen):
    kind: Literal["dataflow"] = "dataflow"


class Gpu(Frozen):
    """Achieved efficiencies and launch costs of one GPU (and the host that drives it)."""

    kind: Literal["gpu"]
    cuda_graphs: bool = Field(True, description="decode step captured in a CUDA graph (one host launch "
                              "per step) or launched kernel by kernel from PyTorch (eager)")
    framework: Literal["mamba_ssm", "transformers"] = Field(
        "mamba_ssm", description="whose decode path runs: mamba_ssm's fused kernels (MambaLMHeadModel."
        "generate) or Hugging Face transformers' Mamba/Mamba2ForCausalLM with the CUDA kernels")
    kernel_gap_ns: NonNegativeFloat = Field(
        description="device-side time between the end of one kernel and the start of the next dependent one")
    host_launch_ns: NonNegativeFloat = Field(
        description="host time to issue one PyTorch operation's kernel eagerly (dispatcher + CUDA launch)")
    triton_launch_ns: NonNegativeFloat = Field(
        description="host time to launch one Triton JIT kernel from Python (Triton's argument binder); "
        "depends on the Triton version more than on the GPU")
    graph_launch_ns: NonNegativeFloat = Field(description="host time to launch one captured CUDA graph")
    step_host_ns: NonNegativeFloat = Field(
        0.0, description="host work per decode step outside kernel launches (Python loop, a device sync)")
    dram_efficiency: Fraction = Field(description="achieved share of peak DRAM bandwidth, streaming kernel")
    dram_latency_ns: PositiveFloat = Field(description="global-memory load latency (pointer chase)")
    l2_latency_ns: PositiveFloat = Field(description="L2 hit latency (pointer chase)")
    matmul_efficiency: Fraction = Field(description="achieved share of dense tensor-core peak, large GEMM")
    vector_efficiency: Fraction = Field(description="achieved share of fp32 peak for element-wise / scan work")
    gemm_m_tile: PositiveInt = Field(
        64, description="rows of the activation matrix one GEMM thread block covers: low-bit weights are "
        "dequantised once per tile of rows")
    source: str = Field(min_length=3)


Execution = Annotated[Dataflow | Gpu, Field(discriminator="kind")]
