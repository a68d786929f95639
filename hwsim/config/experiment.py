"""One experiment: hardware x model x policy x workload x run settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from hwsim.config.hardware import Hardware
from hwsim.config.model import ModelSpec
from hwsim.paths import SAFE_NAME_PATTERN
from hwsim.policies import PolicyConfig
from hwsim.records import Frozen

#: Bound on steps x batch_size (about 1 GB per float64 array of that many cells).
MAX_STEP_CELLS = 1 << 27


class Workload(Frozen):
    """Which real traces the streams replay, how many streams decode together, for how long."""

    traces: tuple[str, ...] | None = Field(
        None, min_length=1, description="catalog names or paths; default (absent): the shipped trace set")
    batch_size: PositiveInt = Field(64, le=1 << 20)
    steps: PositiveInt = Field(2048, le=1 << 30, description="decode steps simulated (one token per stream)")
    seed: NonNegativeInt = Field(0, le=2**63 - 1, description="seeds the offsets where streams start")

    @model_validator(mode="after")
    def _bounded(self) -> Workload:  # the per-step arrays hold steps x batch cells of 8 bytes each
        if self.steps * self.batch_size > MAX_STEP_CELLS:
            raise ValueError(f"steps x batch_size = {self.steps * self.batch_size:,} exceeds "
                             f"{MAX_STEP_CELLS:,} (the per-step arrays would not fit in memory)")
        return self


class Run(Frozen):
    fidelity: Literal["fast", "detailed"] = Field(
        "fast", description="fast: transaction-level DRAM model (closed form, calibrated); detailed: "
        "request-level FR-FCFS controllers per channel (hwsim.memory.detailed), much slower")
    chunk_steps: PositiveInt = Field(512, description="steps per chunk written to steps.parquet")
    baseline: bool = Field(True, description="also simulate static high-precision and report savings")


class Experiment(Frozen):
    name: str = Field("experiment", pattern=SAFE_NAME_PATTERN, description="becomes a folder name")
    description: str = ""
    hardware: Hardware
    model: ModelSpec
    policy: PolicyConfig
    workload: Workload = Workload()
    run: Run = Run()
