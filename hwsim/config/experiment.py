"""One experiment: hardware x model x policy x workload x run settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

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
    prompt_tokens: NonNegativeInt | tuple[PositiveInt, ...] = Field(
        0, description="prompt length per stream: one number for every stream, or a list cycled over the "
        "stream slots; 0 = decode only (the states exist already)")
    mode: Literal["decode", "prefill", "end_to_end"] | None = Field(
        None, description="what to simulate; default end_to_end when prompt_tokens > 0, else decode. "
        "end_to_end: the prefill yields the first token, then steps - 1 decode steps")

    @model_validator(mode="after")
    def _mode_fits(self) -> Workload:
        if self.phase != "decode" and self.total_prompt_tokens == 0:
            raise ValueError(f"mode {self.phase} needs prompt_tokens > 0")
        if self.phase == "end_to_end" and self.steps < 2:
            raise ValueError("end_to_end needs steps >= 2 (the prefill yields the first token)")
        return self

    @property
    def phase(self) -> str:
        if self.mode is not None:
            return self.mode
        return "end_to_end" if self.total_prompt_tokens > 0 else "decode"

    @property
    def prompt_tokens_per_stream(self) -> tuple[int, ...]:
        lengths = self.prompt_tokens if isinstance(self.prompt_tokens, tuple) else (self.prompt_tokens,)
        return tuple(lengths[b % len(lengths)] for b in range(self.batch_size))

    @property
    def total_prompt_tokens(self) -> int:
        return sum(self.prompt_tokens_per_stream)

    @property
    def decode_steps(self) -> int:
        return self.steps - 1 if self.phase == "end_to_end" else self.steps


class Run(Frozen):
    fidelity: Literal["fast", "detailed"] = Field(
        "fast", description="fast: transaction-level DRAM model (closed form, calibrated); detailed: "
        "request-level FR-FCFS controllers per channel (hwsim.memory.detailed), much slower")
    chunk_steps: PositiveInt = Field(512, description="steps per chunk written to steps.parquet")
    baseline: bool = Field(True, description="also simulate static high-precision and report savings")
    engine: Literal["compiled", "simpy"] = Field(
        "compiled", description="dataflow kind, fast fidelity: the decode recurrence compiled with numba "
        "(identical results) or the simpy process it reproduces; the detailed level always uses simpy")


class Experiment(Frozen):
    name: str = "experiment"
    description: str = ""
    hardware: Hardware
    model: ModelSpec
    policy: PolicyConfig
    workload: Workload = Workload()
    run: Run = Run()

    @model_validator(mode="after")
    def _execution_supports(self) -> Experiment:
        if self.hardware.execution.kind == "gpu":
            if self.run.fidelity == "detailed":
                raise ValueError("run.fidelity: detailed runs on execution kind dataflow only (the gpu kind "
                                 "uses the fast DRAM model inside each kernel's time)")
            if self.policy.kind == "speculative" or self.policy.gate_on == "current":
                raise ValueError("policy: speculative rollback and gate_on: current are modelled for "
                                 "execution kind dataflow only; on gpu use gate_on: previous")
        return self
