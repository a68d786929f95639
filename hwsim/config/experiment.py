"""One experiment: hardware x model x policy x workload x run settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt

from hwsim.config.hardware import Hardware
from hwsim.config.model import ModelSpec
from hwsim.policies import PolicyConfig
from hwsim.records import Frozen


class Workload(Frozen):
    """Which real traces the streams replay, how many streams decode together, for how long."""

    traces: tuple[str, ...] | None = Field(
        None, description="catalog names or paths; default: the shipped trace set")
    batch_size: PositiveInt = 64
    steps: PositiveInt = Field(2048, description="decode steps simulated (each step: one token per stream)")
    seed: NonNegativeInt = Field(0, description="seeds the offsets at which streams start in their traces")


class Run(Frozen):
    fidelity: Literal["fast", "detailed"] = Field(
        "fast", description="fast: transaction-level DRAM model (closed form, calibrated); detailed: "
        "request-level FR-FCFS controllers per channel (hwsim.memory.detailed), much slower")
    chunk_steps: PositiveInt = Field(512, description="steps per chunk written to steps.parquet")
    baseline: bool = Field(True, description="also simulate static high-precision and report savings")


class Experiment(Frozen):
    name: str = "experiment"
    description: str = ""
    hardware: Hardware
    model: ModelSpec
    policy: PolicyConfig
    workload: Workload = Workload()
    run: Run = Run()
