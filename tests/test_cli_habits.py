"""The command line fits users' habits: names wherever paths go, presets listed, --version, bare
hwsim prints help, did-you-mean on a misspelt key, sweep --dry-run, --json, output within 100 columns."""

from __future__ import annotations

import json

import pytest

from hwsim.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_names_work_where_paths_do(capsys):
    assert run(capsys, "validate", "default")[0] == 0
    assert run(capsys, "validate", "models-hardware")[0] == 0
    code, _, err = run(capsys, "validate", "defualt")
    assert code == 2 and "did you mean 'default'" in err


def test_misspelt_key_suggests_the_right_one(capsys):
    code, _, err = run(capsys, "validate", "default", "--set", "policy.treshold_bits=2")
    assert code == 2 and "did you mean 'threshold_bits'" in err


def test_bare_hwsim_prints_help_and_version(capsys):
    code, out, _ = run(capsys)
    assert code == 0 and "usage: hwsim" in out and "examples:" in out
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("hwsim ")


def test_presets_lists_every_kind_within_100_columns(capsys):
    code, out, _ = run(capsys, "presets")
    assert code == 0
    for needle in ("hardware:", "h100-sxm", "models:", "nvidia-mamba2-8b", "dram:", "gddr6", "experiments:",
                   "sweeps:", "traces:", "code-stdlib"):
        assert needle in out
    assert max(len(line) for line in out.splitlines()) <= 100


@pytest.mark.parametrize("argv", [("trace", "list"), ("trace", "stats", "prose-pydocs", "generated-greedy-code")])
def test_trace_tables_fit_100_columns(capsys, argv):
    code, out, _ = run(capsys, *argv)
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 100


def test_sweep_dry_run_lists_points_and_runs_nothing(capsys, tmp_path):
    # the default and edge hardware (calibrated by other tests of the tier; a third preset costs ~45 s cold)
    sweep = tmp_path / "two.yaml"
    sweep.write_text("name: two\nbase: default\ngrid:\n  hardware: [hbm3-accel, lpddr5x-edge]\n"
                     "  policy.threshold_bits: [1.0, 2.0, 4.0]\npoints:\n  - {workload.steps: 32}\n")
    code, out, _ = run(capsys, "sweep", str(sweep), "--dry-run", "--out", str(tmp_path / "s"))
    assert code == 0 and "6 points" in out and "estimated" in out and "hardware (2)" in out
    assert not (tmp_path / "s").exists()


def test_run_json_and_one_sign_convention(capsys, tmp_path):
    code, out, _ = run(capsys, "run", "default", "--set", "workload.steps=64", "--out", str(tmp_path), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["saving_dram_bytes_per_token_pct"] > 0
    code, out, _ = run(capsys, "run", "default", "--set", "workload.steps=64", "--out", str(tmp_path))
    rows = {line[:30].strip(): line.split()[-1] for line in out.splitlines()[1:8]}
    # change = gated / baseline - 1 for every row: traffic fell (-), throughput rose (+)
    assert rows["tokens/s"].startswith("+") and rows["DRAM bytes per token (MB)"].startswith("-")


def test_one_naming_style_for_presets(capsys):
    """Every preset name uses hyphens (hbm3-6400, not hbm3_6400); the old spelling still resolves."""
    from hwsim.config.loading import known_presets

    for kind in ("hardware", "model", "dram"):
        assert all("_" not in name for name in known_presets(kind)), kind
    assert run(capsys, "validate", "default", "--set", "hardware.dram.preset=hbm3_6400")[0] == 0
    code, out, _ = run(capsys, "dram", "presets")
    assert code == 0 and "hbm3-6400" in out and max(len(line) for line in out.splitlines()) <= 100
