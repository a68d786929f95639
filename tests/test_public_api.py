"""Pins the public API: a change here is a change users see, so it must be deliberate."""

from __future__ import annotations

import hwsim.config
import hwsim.policies
import hwsim.quality
import hwsim.traces
from hwsim.cli import build_parser


def test_package_exports():
    assert sorted(hwsim.config.__all__) == ["DramPreset", "Experiment", "Hardware", "ModelSpec",
                                           "load_experiment", "load_preset"]
    assert sorted(hwsim.policies.__all__) == ["POLICY_KINDS", "PolicyBase", "PolicyConfig", "StatePlan",
                                             "state_bytes"]
    assert sorted(hwsim.policies.POLICY_KINDS) == ["hysteresis", "percentile", "speculative", "static",
                                                  "threshold"]
    assert sorted(hwsim.traces.__all__) == ["DEFAULT_TRACE_SET", "Trace", "catalog_names", "load_trace",
                                           "load_traces"]
    assert hwsim.quality.__all__ == ["evaluate_policy"]


def test_command_line():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    assert sorted(commands) == ["compare", "dram", "export-trace", "gate-signals", "hybrids", "presets", "quality", "report", "run", "schema",
                                "sweep", "trace", "validate", "validate-hw"]
