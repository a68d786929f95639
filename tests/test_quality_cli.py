"""`hwsim quality` on experiment and sweep files, the policy reader, and the figures."""

import numpy as np
import pandas as pd
import pytest
import yaml

import hwsim.quality  # noqa: F401
from hwsim.quality.policies import describe, distinct_policies

EXPERIMENT = {"hardware": "hbm3-accel", "model": "mamba2-2.7b",
              "policy": {"kind": "threshold", "threshold_bits": 5.9, "low_bits": 4, "group_size": 8},
              "workload": {"batch_size": 4, "steps": 64}}


def _files(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(EXPERIMENT))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"base": "exp.yaml", "grid": {"policy.low_bits": [2, 4],
                                                                    "workload.batch_size": [2, 8]},
                                     "points": [{"policy.threshold_bits": 5.9}, {"policy.threshold_bits": 5.8}]}))
    return exp, sweep


def test_distinct_policies_of_a_sweep_ignore_hardware_axes(tmp_path):
    exp, sweep = _files(tmp_path)
    assert len(distinct_policies(exp)) == 1
    policies = distinct_policies(sweep)
    assert [describe(p) for p in policies] == [
        "threshold 5.9 bits, 2/16, group 8, scale 16", "threshold 5.8 bits, 2/16, group 8, scale 16",
        "threshold 5.9 bits, 4/16, group 8, scale 16", "threshold 5.8 bits, 4/16, group 8, scale 16"]


def test_kind_axis_drops_the_other_kinds_fields(tmp_path):
    exp, _ = _files(tmp_path)
    sweep = tmp_path / "kinds.yaml"
    sweep.write_text(yaml.safe_dump({"base": str(exp), "grid": {"policy.kind": ["threshold", "static"]}}))
    assert [p.kind for p in distinct_policies(sweep)] == ["threshold", "static"]


def _frame():
    rng = np.random.default_rng(0)
    rows = []
    for bits in (2, 4, 8):
        for group in (16, 64):
            for share in (0.2, 0.6):
                kl = 10.0 ** -bits * share * group / 16
                rows.append({"quality_low_bits": bits, "quality_group_size": group, "quality_low_share": share,
                             "saving_dram_bytes_per_token_pct": 30 * share * (16 - bits) / 16,
                             "quality_state_bytes_saving_pct": 100 * share * (16 - bits) / 16,
                             "quality_kl_bits_mean": kl, "quality_random_kl_bits_mean_mean": kl * 1.1,
                             "quality_random_kl_bits_mean_std": kl * 0.05,
                             "quality_all_low_ppl_change_pct": 10.0 ** (2 - bits) * group / 16 + rng.random()})
    return pd.DataFrame(rows)


def test_figures_draw(tmp_path):
    from hwsim.quality.figures import bits_group_figure, pareto_figure, share_figure

    frame = _frame()
    for path in (pareto_figure(frame, tmp_path / "p.png"), share_figure(frame, tmp_path / "s.png"),
                 bits_group_figure(frame, tmp_path / "b.png")):
        assert path.stat().st_size > 1000


@pytest.mark.torch
def test_cli_on_a_tiny_checkpoint(tmp_path, capsys):
    pytest.importorskip("transformers")
    from hwsim.cli import main
    from hwsim.quality.model import tiny_model

    model_dir = tmp_path / "tiny"
    tiny_model("mamba").model.save_pretrained(model_dir)
    _, sweep = _files(tmp_path)
    out = tmp_path / "out"
    code = main(["quality", str(sweep), "--model", str(model_dir), "--tokens", "16", "--streams", "2",
                 "--seeds", "2", "--out", str(out), "--cache", str(tmp_path / "cache")])
    assert code == 0
    frame = pd.read_parquet(out / "quality.parquet")
    assert len(frame) == 4 and (out / "quality.csv").is_file() and (out / "quality_vs_share.png").is_file()
    report = (out / "quality_report.md").read_text()
    assert "Entropy gating vs random gating at the same low-precision share" in report
    assert "random gating" in capsys.readouterr().out


@pytest.mark.torch
def test_cli_bad_model_is_an_input_error(tmp_path, capsys):
    pytest.importorskip("torch")
    from hwsim.cli import main

    exp, _ = _files(tmp_path)
    assert main(["quality", str(exp), "--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
    assert "no Hugging Face checkpoint" in capsys.readouterr().err


def test_core_cli_never_imports_torch():
    import subprocess
    import sys

    code = ("import sys; from hwsim.cli import build_parser; build_parser(); import hwsim.quality; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
