"""An accelerator: DRAM (by preset), on-chip SRAM with a residency policy, compute, DMA, static power,
and how it executes a step (`execution`: dataflow or gpu)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from hwsim.config.dram import CALIBRATION_KEY_PATTERN, MAX_QUEUE_DEPTH, DramCalibration, DramPreset
from hwsim.config.execution import Dataflow, Execution
from hwsim.records import Frozen

StateCategory = Literal["weights", "lm_head", "ssm_state", "conv_state"]


class DramMemory(Frozen):
    """Off-chip memory: `stacks` copies of a DRAM preset, optionally at a lower pin rate."""

    preset: DramPreset
    stacks: PositiveInt = 1
    data_rate_Gbps_per_pin: PositiveFloat | None = Field(
        None, description="override of the preset's pin rate (products often run below the JEDEC maximum)")
    interleave_bytes: PositiveInt = Field(256, description="address interleave granularity across channels")
    source: str = Field(min_length=3)
    calibration: DramCalibration | None = Field(
        None, description="resolved, not written by hand: the fast level's calibration for exactly this "
        "configuration (computed or read from the user cache when the experiment is loaded)")

    @field_validator("calibration", mode="wrap")
    @classmethod
    def _stale_calibration(cls, value, handler):
        """A recorded calibration of another hwsim's layout (a `resolved.yaml` written before its fields
        changed) is stale derived data, as one whose key no longer matches: dropped, so loading measures
        the current one, rather than refusing the file. Anything that is not a calibration record (no
        64-hex `key`) is still an error."""
        try:
            return handler(value)
        except ValidationError:
            key = value.get("key") if isinstance(value, dict) else None
            if isinstance(key, str) and re.fullmatch(CALIBRATION_KEY_PATTERN, key):
                return None
            raise

    @model_validator(mode="after")
    def _interleave(self) -> DramMemory:
        size, burst = self.interleave_bytes, self.preset.organisation.access_bytes
        if size & (size - 1) or size < burst:
            raise ValueError(f"interleave_bytes {size} must be a power of two and at least one burst "
                             f"({burst} bytes)")
        return self

    @property
    def pin_rate_Gbps(self) -> float:
        return self.data_rate_Gbps_per_pin or self.preset.organisation.data_rate_Gbps_per_pin

    @property
    def total_channels(self) -> int:
        """Independent (pseudo-)channels over all stacks: what the interleave spreads a transfer over."""
        return self.stacks * self.preset.organisation.independent_channels

    @property
    def channel_bandwidth_GBps(self) -> float:
        return self.preset.organisation.channel_width_bits * self.pin_rate_Gbps / 8.0

    @property
    def peak_bandwidth_GBps(self) -> float:
        return self.total_channels * self.channel_bandwidth_GBps

    @property
    def capacity_bytes(self) -> int:
        return self.stacks * self.preset.organisation.capacity_bytes


class Residency(Frozen):
    """Which data SRAM keeps. `pinned` fills SRAM in `order`; `lru` lets everything compete."""

    kind: Literal["pinned", "lru"] = "pinned"
    order: tuple[StateCategory, ...] = ("ssm_state", "conv_state", "weights", "lm_head")

    @model_validator(mode="after")
    def _no_repeats(self) -> Residency:
        if len(set(self.order)) != len(self.order):
            raise ValueError(f"order lists a category twice: {list(self.order)}")
        return self


class Sram(Frozen):
    capacity_bytes: PositiveInt
    banks: PositiveInt
    bandwidth_GBps: PositiveFloat
    read_pJ_per_bit: PositiveFloat
    write_pJ_per_bit: PositiveFloat
    residency: Residency = Residency()
    reserved_bytes: NonNegativeInt = Field(
        0, description="capacity kept for buffers the model does not track (instructions, misc)")
    source: str = Field(min_length=3)


class Compute(Frozen):
    """Throughput and energy of the units that run one decode step."""

    matmul_TFLOPS: dict[str, PositiveFloat] = Field(
        description="dense matmul throughput by weight precision key: fp16, int8, int4")
    vector_GFLOPS: PositiveFloat = Field(description="fp32 element-wise throughput for the scan update")
    quantise_Gelem_per_s: PositiveFloat = Field(description="quantise or dequantise throughput")
    mac_pJ: dict[str, PositiveFloat] = Field(description="energy of one multiply-accumulate by precision")
    vector_op_pJ: PositiveFloat = Field(description="one fp32 element-wise operation")
    quantise_pJ_per_element: PositiveFloat
    source: str = Field(min_length=3)


class Dma(Frozen):
    engines: PositiveInt
    bandwidth_GBps_per_engine: PositiveFloat
    queue_depth: PositiveInt = Field(le=MAX_QUEUE_DEPTH, description="DRAM controller entries per channel")
    weight_tile_bytes: PositiveInt = Field(description="size of one double-buffered weight tile")
    source: str = Field(min_length=3)

    @property
    def bandwidth_GBps(self) -> float:
        return self.engines * self.bandwidth_GBps_per_engine


class Hardware(Frozen):
    name: str
    description: str = ""
    source: str = Field(min_length=3)
    dram: DramMemory | None = Field(None, description="absent for an SRAM-only design")
    sram: Sram
    compute: Compute
    dma: Dma | None = Field(None, description="DMA engines of the dataflow design (required there)")
    static_power_W: NonNegativeFloat
    static_power_source: str = Field(min_length=3)
    execution: Execution = Field(Dataflow(), description="dataflow (fused layer pipeline) or gpu (kernels)")

    @model_validator(mode="after")
    def _dataflow_needs_dma(self) -> Hardware:
        if self.execution.kind == "dataflow" and self.dma is None:
            raise ValueError("execution kind dataflow needs a dma section")
        return self
