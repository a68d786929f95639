"""`hwsim compare`: one experiment on several hardware presets, side by side."""

from __future__ import annotations

import pandas as pd

from hwsim.cli import main
from hwsim.paths import CONFIGS_DIR, WORKLOADS_DIR

TRACE = str(WORKLOADS_DIR / "traces" / "prose-pydocs.parquet")
SMALL = ["--set", "model=mamba2-130m", "--set", "workload.batch_size=8", "--set", "workload.steps=24",
         "--set", f"workload.traces=[{TRACE}]"]


def test_compare_two_presets(tmp_path, capsys):
    out = tmp_path / "cmp"
    hw_file = str(CONFIGS_DIR / "hardware" / "lpddr5x-edge.yaml")  # a file works as well as a name
    rc = main(["compare", "hbm3-accel", hw_file, "--out", str(out), "--scheduler", "inline", "--no-progress",
               *SMALL])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| metric | hbm3-accel | lpddr5x-edge |" in printed
    table = pd.read_csv(out / "compare.csv", index_col="metric")
    assert list(table.columns) == ["hbm3-accel", "lpddr5x-edge"]
    for row in ("tokens/s (simulated)", "tokens/s (analytic bound)", "step latency p50 (us)",
                "DRAM traffic per token (MB)", "DRAM bandwidth avg (GB/s)", "energy per token (mJ)",
                "DRAM traffic saving from gating (%)", "SSM state held in SRAM (%)"):
        assert row in table.index
    assert table.loc["tokens/s (simulated)", "hbm3-accel"] > table.loc["tokens/s (simulated)", "lpddr5x-edge"]
    assert (table.loc["tokens/s (simulated)"] <= table.loc["tokens/s (analytic bound)"] * 1.0001).all()
    assert (out / "compare.md").read_text().startswith("| metric |")
    for name in ("compare_bars", "compare_roofline"):
        assert (out / "figures" / f"{name}.png").is_file() and (out / "figures" / f"{name}.svg").is_file()
    html = (out / "report.html").read_text()
    assert 'id="compare_roofline"' in html and "Side by side" in html
    results = pd.read_parquet(out / "results.parquet")
    assert list(results["cfg.hardware.name"]) == ["hbm3-accel", "lpddr5x-edge"]


def test_compare_needs_two_configurations(capsys):
    assert main(["compare", "hbm3-accel"]) == 2
    assert "at least two" in capsys.readouterr().err
