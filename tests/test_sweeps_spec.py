"""Sweep files: expansion (grid x zip x points), validation of bad axes, point hashes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.config.loading import load_experiment
from hwsim.errors import HwsimInputError
from hwsim.sweeps.spec import SweepSpec, expand, experiment_hash, load_sweep

SMALL = {"model": "mamba2-130m", "workload.steps": 16}


def test_default_sweep_file_is_valid_and_large_enough():
    spec, file = load_sweep()
    points = expand(spec, file)
    assert len(points) >= 48
    assert {p.experiment.hardware.name for p in points} >= {"hbm3-accel", "lpddr5x-edge"}
    assert {p.experiment.model.architecture for p in points} == {"mamba1", "mamba2"}
    batches = {p.experiment.workload.batch_size for p in points}
    assert min(batches) <= 4 and max(batches) >= 64
    assert 1 <= sum(p.keep_steps for p in points) <= 8


def test_grid_zip_points_product_in_documented_order():
    spec = SweepSpec(grid={"policy.low_bits": [4, 8], "workload.batch_size": [1, 2]},
                     zip={"policy.threshold_bits": [1.0, 2.0, 3.0], "workload.seed": [0, 1, 2]},
                     points=[SMALL, {**SMALL, "hardware": "lpddr5x-edge"}])
    points = expand(spec)
    assert len(points) == 2 * 2 * 3 * 2
    first, last = points[0], points[-1]
    assert first.params == {"policy.low_bits": 4, "workload.batch_size": 1, "policy.threshold_bits": 1.0,
                            "workload.seed": 0, **SMALL}
    assert last.experiment.hardware.name == "lpddr5x-edge"
    assert [p.experiment.hardware.name for p in points[:2]] == ["hbm3-accel", "lpddr5x-edge"]  # fastest
    assert points[2].params["policy.threshold_bits"] == 2.0     # then zip rows, paired
    assert points[2].experiment.workload.seed == 1
    assert len({p.point_hash for p in points}) == len(points)


def test_preset_axis_and_override_of_one_of_its_keys_combine():
    spec = SweepSpec(grid={"hardware.sram.capacity_bytes": [16 * 2**20], "hardware": ["lpddr5x-edge"]},
                     points=[SMALL])
    (point,) = expand(spec)
    assert point.experiment.hardware.name == "lpddr5x-edge"
    assert point.experiment.hardware.sram.capacity_bytes == 16 * 2**20


def test_only_points():
    spec = SweepSpec(points=[SMALL, {**SMALL, "workload.batch_size": 3}])
    assert [p.experiment.workload.batch_size for p in expand(spec)] == [64, 3]


def test_unknown_key_path_names_the_key_and_the_point():
    spec = SweepSpec(grid={"policy.threshhold_bits": [1.0]}, points=[SMALL])
    with pytest.raises(HwsimInputError, match=r"point 0 .*policy\.threshhold_bits.*allowed keys"):
        expand(spec)


def test_unknown_preset_on_an_axis_lists_the_known_ones():
    spec = SweepSpec(grid={"hardware": ["hbm3-accel", "hbm9-accel"]}, points=[SMALL])
    with pytest.raises(HwsimInputError, match=r"point 1 .*hbm9-accel.*hbm3e-accel"):
        expand(spec)


def test_zip_lists_of_unequal_length_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("zip:\n  policy.low_bits: [4, 8]\n  policy.threshold_bits: [1, 2, 3]\n")
    with pytest.raises(HwsimInputError, match=r"bad.yaml.*equal length.*policy.low_bits has 2.*has 3"):
        load_sweep(bad)


def test_empty_axis_and_unknown_sweep_key_are_named(tmp_path):
    bad = tmp_path / "empty.yaml"
    bad.write_text("grid:\n  policy.low_bits: []\n")
    with pytest.raises(HwsimInputError, match=r"grid.*empty axis: policy.low_bits"):
        load_sweep(bad)
    bad.write_text("grid: {policy.low_bits: [4]}\nqualty: false\n")
    with pytest.raises(HwsimInputError, match=r"qualty.*allowed keys: .*grid.*quality"):
        load_sweep(bad)


def test_unknown_base_experiment(tmp_path):
    with pytest.raises(HwsimInputError, match=r"base: unknown base experiment 'nope'; allowed: default"):
        expand(SweepSpec(base="nope"))


def test_base_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "exp.yaml").write_text("hardware: sram-accel\nmodel: mamba-130m\npolicy: {kind: threshold}\n"
                                       "workload: {steps: 8}\n")
    (tmp_path / "s.yaml").write_text("base: exp.yaml\ngrid: {workload.batch_size: [1, 2]}\n")
    spec, file = load_sweep(tmp_path / "s.yaml")
    points = expand(spec, file)
    assert [p.experiment.hardware.name for p in points] == ["sram-accel"] * 2


def test_keep_steps_selects_matching_points():
    spec = SweepSpec(grid={"workload.batch_size": [1, 2, 3]}, points=[SMALL], keep_steps_all_below=1,
                     keep_steps={"workload.batch_size": 2, "hardware": "hbm3-accel"})
    assert [p.keep_steps for p in expand(spec)] == [False, True, False]
    small = SweepSpec(grid={"workload.batch_size": [1, 2]}, points=[SMALL])
    assert all(p.keep_steps for p in expand(small))


axis_lengths = st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=4)


@given(lengths=axis_lengths, zip_length=st.integers(min_value=0, max_value=3),
       n_points=st.integers(min_value=0, max_value=3))
def test_point_count_is_the_product_of_the_parts(lengths, zip_length, n_points):
    grid = {f"k{i}": list(range(n)) for i, n in enumerate(lengths)}
    zipped = {"z.a": list(range(zip_length)), "z.b": list(range(zip_length))} if zip_length else {}
    points = [{"p": i} for i in range(n_points)]
    spec = SweepSpec(grid=grid, zip=zipped, points=points)
    expected = math.prod(lengths) * max(zip_length, 1) * max(n_points, 1)
    assignments = spec.assignments()
    assert len(assignments) == expected
    assert len({tuple(sorted(a.items())) for a in assignments}) == expected


@settings(max_examples=15, deadline=None)
@given(order=st.permutations(["model", "workload.batch_size", "policy.low_bits", "workload.steps"]))
def test_hash_is_stable_and_independent_of_key_order(order):
    values = {"model": "mamba-130m", "workload.batch_size": 3, "policy.low_bits": 8, "workload.steps": 16}
    overrides = [f"{k}={values[k]}" for k in order]
    exp = load_experiment(overrides=overrides)
    reference = load_experiment(overrides=[f"{k}={v}" for k, v in values.items()])
    assert experiment_hash(exp) == experiment_hash(reference)
    changed = load_experiment(overrides=[*overrides, "workload.seed=1"])
    assert experiment_hash(changed) != experiment_hash(exp)


def test_hash_survives_the_round_trip_to_a_worker():
    """Workers rebuild the experiment from its JSON dump: same config, same hash."""
    exp = load_experiment(overrides=["model=mamba-130m"])
    again = type(exp).model_validate(exp.model_dump(mode="json"))
    assert again == exp and experiment_hash(again) == experiment_hash(exp)


@pytest.mark.parametrize("name", ["models-hardware"])
def test_shipped_example_sweeps_expand(name):
    from hwsim.sweeps.spec import SWEEPS_DIR

    spec, file = load_sweep(SWEEPS_DIR / f"{name}.yaml")
    points = expand(spec, file)
    assert len(points) == 18
    assert [p.experiment.workload.batch_size for p in points[:3]] == [16, 24, 32]


def test_also_appends_further_sweeps_after_the_main_product():
    from hwsim.sweeps.spec import SweepSpec

    spec = SweepSpec(grid={"workload.batch_size": [2, 4]}, points=[{"workload.steps": 8}],
                     also=[{"points": [{}]}, {"grid": {"workload.seed": [0, 1]}, "points": [{"workload.steps": 4}]}])
    assert spec.assignments() == [
        {"workload.batch_size": 2, "workload.steps": 8}, {"workload.batch_size": 4, "workload.steps": 8}, {},
        {"workload.seed": 0, "workload.steps": 4}, {"workload.seed": 1, "workload.steps": 4}]
    assert spec.swept_keys() == ["workload.batch_size", "workload.steps", "workload.seed"]


def test_the_mamba2_quality_sweep_measures_the_default_point_on_the_mamba2_student():
    """configs/sweeps/quality-mamba2.yaml: the default experiment's model at 4 thresholds x 2 widths, quality
    on the student that shares the traces' tokenizer (so the trace gate is exact), every point measured."""
    from hwsim.sweeps.spec import SWEEPS_DIR

    spec, file = load_sweep(SWEEPS_DIR / "quality-mamba2.yaml")
    points = expand(spec, file)
    assert len(points) == 8 and {p.experiment.model.name for p in points} == {"mamba2-2.7b"}
    assert {(p.experiment.policy.low_bits, p.experiment.policy.threshold_bits) for p in points} == {
        (b, t) for b in (4, 8) for t in (1.0, 2.0, 3.0, 4.0)}
    assert spec.quality and spec.quality_options.model == "mamba2-smol-14m" and not spec.quality_options.only
