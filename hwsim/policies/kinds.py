"""The gating rules. Each works on whole (steps, batch) matrices; only stateful rules loop over steps."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveInt, model_validator

from hwsim.policies.base import Bits, GatedPolicy, PolicyBase, StatePlan, _plan_from_writes

#: A threshold in bits of entropy: finite and not negative (NaN would silently never gate).
EntropyBits = Annotated[NonNegativeFloat, Field(allow_inf_nan=False)]


class StaticPolicy(PolicyBase):
    """Every state at one precision: `bits` (the baseline at high_bits, or the all-low bound)."""

    kind: Literal["static"] = "static"
    bits: Bits = 16

    @model_validator(mode="after")
    def _bits_in_range(self) -> StaticPolicy:
        if self.bits > self.high_bits:
            raise ValueError(f"bits ({self.bits}) above high_bits ({self.high_bits})")
        return self

    def write_bits(self, gate_entropy: np.ndarray) -> np.ndarray:
        return np.full(gate_entropy.shape, self.bits, dtype=np.int16)


class ThresholdPolicy(GatedPolicy):
    """Entropy below `threshold_bits` -> `low_bits`, else `high_bits`; unknown entropy -> high."""

    kind: Literal["threshold"] = "threshold"
    threshold_bits: EntropyBits = 1.0

    def write_bits(self, gate_entropy: np.ndarray) -> np.ndarray:
        low = gate_entropy < self.threshold_bits  # NaN compares False: unknown stays high
        return np.where(low, self.low_bits, self.high_bits).astype(np.int16)


class HysteresisPolicy(ThresholdPolicy):
    """Threshold gating that keeps a precision for at least `min_dwell_steps` before switching, so a
    single easy token inside a hard passage does not flip the state."""

    kind: Literal["hysteresis"] = "hysteresis"
    min_dwell_steps: PositiveInt = Field(4, le=1 << 30)

    def plan(self, entropy_bits: np.ndarray, fresh: np.ndarray) -> StatePlan:
        wanted = ThresholdPolicy.write_bits(self, self.gate_entropy(entropy_bits, fresh))
        steps, batch = wanted.shape
        write = np.empty_like(wanted)
        current = np.full(batch, self.high_bits, dtype=np.int16)
        dwell = np.zeros(batch, dtype=np.int64)
        for t in range(steps):  # stateful rule: one numpy step per decode step, vectorised over streams
            current[fresh[t]] = self.high_bits
            dwell[fresh[t]] = 0
            switch = (wanted[t] != current) & (dwell >= self.min_dwell_steps)
            current = np.where(switch, wanted[t], current)
            dwell = np.where(switch, 1, dwell + 1)
            write[t] = current
        return _plan_from_writes(write, fresh, self.low_bits, self.high_bits)


class PercentilePolicy(GatedPolicy):
    """Threshold calibrated on the first `calibration_tokens` of each trace so that about
    `target_low_share` of the states are written at low precision."""

    kind: Literal["percentile"] = "percentile"
    target_low_share: float = Field(0.5, ge=0.0, le=1.0)
    calibration_tokens: PositiveInt = Field(512, le=1_000_000, description="per trace (traces are shorter)")

    def calibrated(self, traces: list[np.ndarray]) -> ThresholdPolicy:
        prefix = np.concatenate([np.asarray(t[: self.calibration_tokens], dtype=np.float64) for t in traces])
        threshold = float(np.quantile(prefix, self.target_low_share)) if self.target_low_share > 0 else 0.0
        if self.target_low_share >= 1.0:
            threshold = float(np.nextafter(prefix.max(), np.inf))
        fields = self.model_dump(exclude={"kind", "target_low_share", "calibration_tokens"})
        return ThresholdPolicy(threshold_bits=max(threshold, 0.0), **fields)

    def write_bits(self, gate_entropy: np.ndarray) -> np.ndarray:
        raise TypeError("percentile policy must be calibrated on traces first (PercentilePolicy.calibrated)")


class SpeculativePolicy(GatedPolicy):
    """State runs at low precision; every `checkpoint_interval_steps` a high-precision checkpoint is
    written too. When a step's entropy exceeds `rollback_threshold_bits` the stream re-executes from its
    checkpoint at high precision and that state becomes the new checkpoint. The rollback looks at the
    step's own logits, so it ignores `gate_on`."""

    kind: Literal["speculative"] = "speculative"
    checkpoint_interval_steps: PositiveInt = Field(16, le=1 << 30)
    rollback_threshold_bits: EntropyBits = 6.0

    def plan(self, entropy_bits: np.ndarray, fresh: np.ndarray) -> StatePlan:
        steps, batch = entropy_bits.shape
        write = np.full((steps, batch), self.low_bits, dtype=np.int16)
        checkpoint = np.zeros((steps, batch), dtype=np.int16)
        replay = np.zeros((steps, batch), dtype=np.int32)
        since = np.zeros(batch, dtype=np.int64)  # steps since the last checkpoint
        rollback = entropy_bits > self.rollback_threshold_bits
        for t in range(steps):
            since[fresh[t]] = 0
            since += 1
            rolled = rollback[t]
            replay[t] = np.where(rolled, since, 0)  # re-run since the checkpoint, this step included
            write[t] = np.where(rolled, self.high_bits, self.low_bits)
            periodic = (~rolled) & (since >= self.checkpoint_interval_steps)
            checkpoint[t] = np.where(periodic, self.high_bits, 0)
            since = np.where(rolled | periodic, 0, since)
        return _plan_from_writes(write, fresh, self.low_bits, self.high_bits, checkpoint, replay)
