"""One experiment: hardware x model x policy x workload x run settings."""

from __future__ import annotations

from typing import Annotated, Literal

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
    prompt_tokens: Annotated[int, Field(ge=0, le=1 << 24)] | tuple[Annotated[int, Field(ge=1, le=1 << 24)], ...] = Field(
        0, description="prompt length per stream: one number for every stream, or a list cycled over the "
        "stream slots; 0 = decode only (the states exist already)")
    context_tokens: Annotated[int, Field(ge=0, le=1 << 24)] | tuple[Annotated[int, Field(ge=0, le=1 << 24)], ...] | None = Field(
        None, description="positions in each stream's KV cache at its first simulated decode step (prompt plus "
        "tokens generated so far); a list is cycled over the stream slots (a continuous-batching mix); "
        "default: prompt_tokens. Grows by one per step; only attention layers read it")
    mode: Literal["decode", "prefill", "end_to_end"] | None = Field(
        None, description="what to simulate; default end_to_end when prompt_tokens > 0, else decode. "
        "end_to_end: the prefill yields the first token, then steps - 1 decode steps")

    @model_validator(mode="after")
    def _bounded(self) -> Workload:  # the per-step arrays hold steps x batch cells of 8 bytes each
        if self.steps * self.batch_size > MAX_STEP_CELLS:
            raise ValueError(f"steps x batch_size = {self.steps * self.batch_size:,} exceeds "
                             f"{MAX_STEP_CELLS:,} (the per-step arrays would not fit in memory)")
        return self

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
    def context_tokens_per_stream(self) -> tuple[int, ...]:
        if self.context_tokens is None:
            return self.prompt_tokens_per_stream
        lengths = self.context_tokens if isinstance(self.context_tokens, tuple) else (self.context_tokens,)
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
    name: str = Field("experiment", pattern=SAFE_NAME_PATTERN, description="becomes a folder name")
    description: str = ""
    hardware: Hardware
    model: ModelSpec
    policy: PolicyConfig
    workload: Workload = Workload()
    run: Run = Run()

    @model_validator(mode="after")
    def _execution_supports(self) -> Experiment:
        if self.model.architecture == "hybrid":
            if self.hardware.execution.kind == "gpu":
                raise ValueError(f"model {self.model.name} is a hybrid stack: its decode is modelled on execution "
                                 "kind dataflow only (the gpu kind's kernel lists cover pure Mamba stacks)")
            if self.run.fidelity == "detailed":
                raise ValueError("run.fidelity: detailed models pure Mamba stacks only; use fast for hybrids")
            if self.workload.phase != "decode":
                raise ValueError("workload.mode: the prefill of hybrid stacks is not modelled; decode with "
                                 "workload.context_tokens giving each stream's cached prompt (mode: decode)")
            if self.policy.kind == "speculative" or self.policy.gate_on == "current":
                raise ValueError("policy: speculative rollback and gate_on: current are modelled for pure "
                                 "Mamba stacks only; on hybrids use gate_on: previous")
        if self.hardware.execution.kind == "gpu":
            if self.run.fidelity == "detailed":
                raise ValueError("run.fidelity: detailed runs on execution kind dataflow only (the gpu kind "
                                 "uses the fast DRAM model inside each kernel's time)")
            if self.policy.kind == "speculative" or self.policy.gate_on == "current":
                raise ValueError("policy: speculative rollback and gate_on: current are modelled for "
                                 "execution kind dataflow only; on gpu use gate_on: previous")
        return self
