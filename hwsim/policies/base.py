"""What every gating policy shares: bit-widths, group scales, causality, and the plan it produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, PositiveInt, model_validator

from hwsim.records import Frozen

Bits = Literal[2, 3, 4, 6, 8, 16, 32]
@dataclass(frozen=True)
class StatePlan:
    """Per step (rows) and stream slot (columns): what precision each state was read and written in.

    `read_bits` is the precision the state was last written in (a state is read back in the precision it
    was written in). `checkpoint_bits` > 0 marks an extra high-precision checkpoint write;
    `replay_steps` counts steps re-executed at high precision after a rollback.
    """

    read_bits: np.ndarray        # int16 (steps, batch)
    write_bits: np.ndarray       # int16 (steps, batch)
    checkpoint_bits: np.ndarray  # int16 (steps, batch), 0 = none
    replay_steps: np.ndarray     # int32 (steps, batch)
    low_bits: int
    high_bits: int

    @property
    def lossy_upgrades(self) -> int:
        """Reads of a low-precision state whose result is then written at high precision: the lost bits
        stay lost even though the state is stored at full width again."""
        return int(np.sum((self.read_bits < self.high_bits) & (self.write_bits >= self.high_bits)))


class PolicyBase(Frozen):
    """Fields every policy has. `plan` receives the entropy the model produced at each step of each slot
    and a mask of the steps at which a slot starts a fresh stream (its state then comes from prefill,
    written at high precision)."""

    kind: str
    low_bits: Bits = 4
    high_bits: Bits = 16
    group_size: PositiveInt = Field(64, le=1 << 30, description="state elements per quantisation scale")
    scale_bits: Literal[8, 16, 32] = 16
    gate_conv_state: bool = Field(
        False, description="store the conv state at the gated precision too (it is small for Mamba-2, "
        "about a quarter of the SSM state for Mamba-1)")
    gate_states: tuple[Literal["ssm", "linear_attention", "conv"], ...] = Field(
        ("ssm", "linear_attention"), description="the state kinds the gate stores at low precision: Mamba SSM "
        "states, linear-attention (Gated DeltaNet) matrix states, conv states; the others stay at high_bits")
    gate_kv: bool = Field(
        False, description="also store the KV entry appended at a gated (low-entropy) step at "
        "kv_low_precision; it is then read at that precision at every later step")
    kv_low_precision: Literal["fp8", "int8", "int4", "int2"] = Field(
        "int4", description="precision of gated KV entries (group scales as the model's kv_group_size)")
    gate_on: Literal["previous", "current"] = Field(
        "previous", description="previous: precision of the state written at step t is chosen from the "
        "entropy known before step t; current: wait for step t's logits (buffers the new state)")

    @property
    def gated_states(self) -> tuple[str, ...]:
        """gate_states, with conv when the older switch gate_conv_state asks for it."""
        extra = ("conv",) if self.gate_conv_state and "conv" not in self.gate_states else ()
        return (*self.gate_states, *extra)

    def gate_entropy(self, entropy_bits: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        """Entropy the gate may see when it chooses the precision of the state written at each step.
        NaN where nothing is known yet (the first step of a fresh stream under `previous`)."""
        if self.gate_on == "current":
            return entropy_bits
        seen = np.empty_like(entropy_bits, dtype=np.float64)
        seen[0] = np.nan
        seen[1:] = entropy_bits[:-1]
        seen[fresh] = np.nan
        return seen

    def write_bits(self, gate_entropy: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def calibrated(self, traces: list[np.ndarray]) -> PolicyBase:
        """A policy ready to run; policies that learn a threshold from trace prefixes override this."""
        return self

    def plan(self, entropy_bits: np.ndarray, fresh: np.ndarray) -> StatePlan:
        write = self.write_bits(self.gate_entropy(entropy_bits, fresh)).astype(np.int16)
        return _plan_from_writes(write, fresh, self.low_bits, self.high_bits)


class GatedPolicy(PolicyBase):
    """A policy that chooses between two widths: `low_bits` must be below `high_bits`, or the "gate"
    would report a low-precision share of states that are not smaller (and a negative saving)."""

    @model_validator(mode="after")
    def _low_below_high(self) -> GatedPolicy:
        if self.low_bits >= self.high_bits:
            raise ValueError(f"low_bits ({self.low_bits}) must be below high_bits ({self.high_bits})")
        return self


def _plan_from_writes(write: np.ndarray, fresh: np.ndarray, low_bits: int, high_bits: int,
                      checkpoint: np.ndarray | None = None, replay: np.ndarray | None = None) -> StatePlan:
    read = np.empty_like(write)
    read[0] = high_bits
    read[1:] = write[:-1]
    read[fresh] = high_bits  # a fresh stream's state was written by prefill at full precision
    zeros = np.zeros_like(write)
    return StatePlan(read_bits=read, write_bits=write,
                     checkpoint_bits=zeros if checkpoint is None else checkpoint.astype(np.int16),
                     replay_steps=np.zeros(write.shape, np.int32) if replay is None else replay,
                     low_bits=low_bits, high_bits=high_bits)
