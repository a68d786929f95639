"""Gating policies: each `kind:` maps to one class that turns entropy into per-step state precisions."""

from hwsim.policies.base import PolicyBase, StatePlan
from hwsim.policies.registry import POLICY_KINDS, PolicyConfig
from hwsim.sizing import state_bytes  # the sizing rule, re-exported for the public API

__all__ = ["POLICY_KINDS", "PolicyBase", "PolicyConfig", "StatePlan", "state_bytes"]
