"""Presets load with sources; derived figures match declared ones; bad input names file, key, choices."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from pydantic import ValidationError

from hwsim.cli import main
from hwsim.config import DramPreset, Hardware, ModelSpec, load_experiment, load_preset
from hwsim.config.loading import known_presets
from hwsim.errors import HwsimInputError
from hwsim.geometry import footprint
from hwsim.paths import CONFIGS_DIR

# ../shared/REFERENCE.md, Mamba geometry table: SSM state fp16 per sequence (MiB)
REFERENCE_STATE_MIB = {
    "mamba-130m": 1.13, "mamba-370m": 3.0, "mamba-790m": 4.5, "mamba-1.4b": 6.0, "mamba-2.8b": 10.0,
    "falcon-mamba-7b": 16.0, "mamba2-130m": 9.0, "mamba2-370m": 24, "mamba2-780m": 36, "mamba2-1.3b": 48,
    "mamba2-2.7b": 80, "mamba-codestral-7b": 128,
}


@pytest.mark.parametrize("name", known_presets("model"))
def test_model_preset_params_and_state_match_reference(name):
    model = load_preset("model", name, ModelSpec)
    assert model.source
    fp = footprint(model)
    if model.declared_params is not None:   # None: the card gives only a rounded size ("8B"), said in the file
        assert fp.total_params == pytest.approx(model.declared_params, rel=0.01)
    else:
        assert "declared_params" in (CONFIGS_DIR / "models" / f"{name}.yaml").read_text()
    if name in REFERENCE_STATE_MIB:
        state_mib = model.n_layers * fp.layer.ssm_state_elements * 2 / 2**20
        assert state_mib == pytest.approx(REFERENCE_STATE_MIB[name], rel=0.01)


def test_every_reference_model_is_in_the_catalog():
    assert set(REFERENCE_STATE_MIB) <= set(known_presets("model"))


@pytest.mark.parametrize("name", known_presets("hardware"))
def test_hardware_presets_load_with_sources(name):
    hw = load_preset("hardware", name, Hardware)
    assert hw.source and hw.sram.source and hw.compute.source
    assert hw.dma.source if hw.dma is not None else hw.execution.kind == "gpu"
    if hw.dram is not None:
        assert hw.dram.preset.source and hw.dram.preset.energy.source


@pytest.mark.parametrize("name", known_presets("dram"))
def test_dram_presets_declared_peak_matches_derived(name):
    preset = load_preset("dram", name, DramPreset)
    assert preset.organisation.peak_bandwidth_GBps == pytest.approx(
        preset.organisation.declared_peak_bandwidth_GBps, rel=0.01)


def test_dram_preset_with_wrong_declared_peak_is_rejected():
    raw = yaml.safe_load((CONFIGS_DIR / "dram" / "hbm3-6400.yaml").read_text())
    raw["organisation"]["declared_peak_bandwidth_GBps"] = 1000.0
    with pytest.raises(ValueError, match="derived peak"):
        DramPreset.model_validate(raw)


def test_datasheet_bandwidths():
    # NVIDIA datasheets: H100 SXM 3.35 TB/s, H200 4.8 TB/s; JEDEC LPDDR5X-8533 x 256 bit 273 GB/s
    expected = {"hbm3-accel": 3350, "hbm3e-accel": 4800, "lpddr5x-edge": 273}
    for name, gbps in expected.items():
        assert load_preset("hardware", name, Hardware).dram.peak_bandwidth_GBps == pytest.approx(gbps, rel=0.01)


def write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_key_names_path_and_allowed_keys(tmp_path):
    path = write(tmp_path, "hardware: hbm3-accel\nmodel: mamba2-130m\npolicy: {kind: threshold, "
                           "treshold_bits: 2}\n")
    with pytest.raises(HwsimInputError) as info:
        load_experiment(path)
    text = str(info.value)
    assert str(path) in text and "policy.threshold.treshold_bits" in text and "threshold_bits" in text


def test_unknown_preset_lists_known(tmp_path):
    path = write(tmp_path, "hardware: hbm4x\nmodel: mamba2-130m\npolicy: {kind: static}\n")
    with pytest.raises(HwsimInputError, match="unknown hardware preset 'hbm4x'.*hbm3-accel"):
        load_experiment(path)


def test_unknown_policy_kind_lists_kinds(tmp_path):
    path = write(tmp_path, "hardware: hbm3-accel\nmodel: mamba2-130m\npolicy: {kind: magic}\n")
    with pytest.raises(HwsimInputError, match="static.*threshold.*hysteresis.*percentile.*speculative"):
        load_experiment(path)


def test_yaml_syntax_error_gives_line(tmp_path):
    path = write(tmp_path, "hardware: hbm3-accel\nmodel: [mamba2-130m\npolicy: {kind: static}\n")
    with pytest.raises(HwsimInputError, match="line [34]"):
        load_experiment(path)


def test_override_of_a_named_preset_and_missing_section(tmp_path):
    exp = load_experiment(overrides=["model.weight_bits=4", "hardware.dram.stacks=2"], calibrate=False)
    assert exp.model.weight_bits == 4 and exp.hardware.dram.stacks == 2 and exp.hardware.dram.calibration is None
    path = write(tmp_path, "hardware: hbm3-accel\nmodel: mamba2-130m\n")
    with pytest.raises(HwsimInputError, match="policy: required key is missing"):
        load_experiment(path)


def test_preset_by_file_path(tmp_path):
    (tmp_path / "tiny.yaml").write_text((CONFIGS_DIR / "models" / "mamba-130m.yaml").read_text())
    path = write(tmp_path, "hardware: hbm3-accel\nmodel: tiny.yaml\npolicy: {kind: static}\n")
    assert load_experiment(path).model.name == "mamba-130m"


def test_config_is_frozen():
    exp = load_experiment()
    with pytest.raises(ValidationError, match="frozen"):
        exp.workload.batch_size = 3  # type: ignore[misc]


def test_impossible_hardware_fails_plainly(tmp_path, capsys):
    path = write(tmp_path, "hardware: sram-accel\nmodel: mamba-codestral-7b\npolicy: {kind: static}\n"
                           "workload: {batch_size: 32}\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "hardware" in err and "GiB" in err


def test_sram_smaller_than_one_layer_is_a_config_error(capsys):
    assert main(["validate", str(CONFIGS_DIR / "experiments" / "default.yaml"),
                 "--set", "hardware.sram.capacity_bytes=1000000"]) == 2
    assert "hardware.sram.capacity_bytes" in capsys.readouterr().err


def test_schema_is_json(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert set(schema["properties"]) >= {"hardware", "model", "policy", "workload", "run"}


def test_mamba1_dt_rank_default():
    model = load_preset("model", "mamba-2.8b", ModelSpec)
    assert model.resolved_dt_rank == math.ceil(2560 / 16)


def test_policies_import_on_their_own():
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", "import hwsim.policies"], check=True)
