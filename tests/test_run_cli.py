"""`hwsim run` end to end on the shipped real traces: outputs written, readable and consistent."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from hwsim.cli import main
from hwsim.config import load_experiment
from hwsim.paths import CONFIGS_DIR


def test_run_writes_summary_steps_and_resolved_config(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", str(CONFIGS_DIR / "experiments" / "default.yaml"), "--out", str(out),
                 "--set", "workload.steps=40", "--set", "run.chunk_steps=16", "--set", "model=mamba2-130m",
                 "--set", "workload.batch_size=16"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "tokens/s" in printed and "analytic bound" in printed
    summary = json.loads((out / "summary.json").read_text())
    steps = pd.read_parquet(out / "steps.parquet")
    assert len(steps) == 40 and steps["step"].tolist() == list(range(40))
    assert summary["tokens"] == 40 * 16
    assert steps["dram_bytes"].sum() == pytest.approx(summary["dram_bytes_total"])
    assert summary["simulated_over_bound"] >= 1.0
    resolved = yaml.safe_load((out / "resolved.yaml").read_text())
    again = load_experiment(raw=resolved)
    assert again.model.name == "mamba2-130m" and again.workload.steps == 40


def test_run_reports_bad_override_without_traceback(capsys):
    assert main(["run", "--set", "policy.low_bits=5"]) == 2
    assert "policy.threshold.low_bits" in capsys.readouterr().err
