"""A wheel carries the presets and the shipped traces as package data (hwsim.presets, hwsim.shipped),
so an install outside the checkout runs the default experiment."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from hwsim.paths import CONFIGS_DIR, WORKLOADS_DIR


@pytest.mark.slow
def test_wheel_holds_every_preset_and_shipped_trace(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(CONFIGS_DIR.parent)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("hwsim-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    presets = {f"hwsim/presets/{p.relative_to(CONFIGS_DIR)}" for p in CONFIGS_DIR.rglob("*.yaml")}
    traces = {f"hwsim/shipped/{p.relative_to(WORKLOADS_DIR)}" for p in (WORKLOADS_DIR / "traces").glob("*.parquet")}
    assert presets and traces
    assert presets <= names and traces <= names
    assert "hwsim/shipped/catalog.yaml" in names
