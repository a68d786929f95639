"""Fuzzing the inputs: experiment and sweep documents and `--set` values, mutated at random, must make
`validate` and `run` succeed or fail with the one input error (exit 2, one line), never anything else."""

from __future__ import annotations

import contextlib
import copy
import io
import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hwsim.cli import main
from hwsim.config.loading import load_experiment, read_yaml
from hwsim.errors import HwsimInputError
from hwsim.paths import CONFIGS_DIR, WORKLOADS_DIR

DEFAULT = CONFIGS_DIR / "experiments" / "default.yaml"
TRACE = str(WORKLOADS_DIR / "traces" / "prose-pydocs.parquet")
SMALL = {**read_yaml(DEFAULT), "model": "mamba2-130m",
         "workload": {"batch_size": 4, "steps": 16, "traces": [TRACE]}, "run": {"chunk_steps": 8}}

#: Keys a user may touch (and a few that do not exist), to aim the mutations at real sections.
KEYS = ["name", "description", "hardware", "model", "policy", "workload", "run", "policy.kind", "policy.low_bits",
        "policy.high_bits", "policy.threshold_bits", "policy.group_size", "policy.scale_bits", "policy.gate_on",
        "policy.min_dwell_steps", "policy.target_low_share", "policy.calibration_tokens", "policy.bits",
        "policy.checkpoint_interval_steps", "policy.rollback_threshold_bits", "policy.gate_conv_state",
        "workload.batch_size", "workload.steps", "workload.seed", "workload.traces", "run.fidelity",
        "run.chunk_steps", "run.baseline", "model.n_layers", "model.d_model", "model.d_state", "model.ngroups",
        "model.headdim", "model.weight_bits", "model.vocab_size", "model.architecture", "hardware.static_power_W",
        "hardware.sram.capacity_bytes", "hardware.sram.residency.order", "hardware.sram.residency.kind",
        "hardware.dram.stacks", "hardware.dram.interleave_bytes", "hardware.dram.preset",
        "hardware.dma.queue_depth", "hardware.compute.vector_GFLOPS", "nope", "policy.nope", "a.b.c"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([0, 1, 2, 3, 4, 8, 16, 32, 64, 256]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["threshold", "static", "hysteresis", "percentile", "speculative", "mamba1", "mamba2",
                     "hbm3-accel", "lpddr5x-edge", "mamba-130m", "fast", "detailed", "../../x", "/etc", "ssm_state",
                     "weights", "pinned", "lru", "prose-pydocs", TRACE, "current", "previous"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["kind", "bits", "low_bits", "steps", "preset", "x", "order"]), inner, max_size=3),
    max_leaves=6)
mutations = st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=1, max_size=4)


def mutate(document: dict, changes: list[tuple[str, object]]) -> dict:
    document = copy.deepcopy(document)
    for dotted, value in changes:
        node, keys = document, dotted.split(".")
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {} if not isinstance(child, str) else {"preset": child}
            node = child
        node[keys[-1]] = value
    return document


def cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(list(argv))
    return rc, err.getvalue()


def assert_clean(rc: int, err: str) -> None:
    assert rc in (0, 2), err
    assert "Traceback" not in err
    if rc == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("hwsim: error:"), err


FUZZ = settings(max_examples=int(os.environ.get("HWSIM_FUZZ_EXAMPLES", "80")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutations)
def test_validate_of_a_mutated_experiment_is_valid_or_one_error(changes):
    document = mutate(read_yaml(DEFAULT), changes)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "exp.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True))
        assert_clean(*cli("validate", str(path)))


@settings(max_examples=int(os.environ.get("HWSIM_FUZZ_RUNS", "25")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations)
@example([("hardware.dma.queue_depth", 1894510)])  # CI found: a 36 GB controller queue, now refused as input
def test_run_of_a_mutated_experiment_succeeds_or_fails_cleanly(changes):
    document = mutate(SMALL, changes)
    try:
        exp = load_experiment(raw=document)
    except HwsimInputError:
        exp = None
    if exp is not None and (exp.workload.steps * exp.workload.batch_size > 4096 or exp.run.fidelity != "fast"
                            or exp.model.n_layers > 64):
        return  # valid but heavy: `validate` above covers it; keep the suite fast
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "exp.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True))
        rc, err = cli("run", str(path), "--out", str(Path(folder) / "out"))
        assert_clean(rc, err)
        if rc == 0:
            assert (Path(folder) / "out" / "summary.json").is_file()
        if exp is None:  # invalid for load_experiment: run must refuse it too, writing nothing
            assert rc == 2 and not (Path(folder) / "out").exists()


@FUZZ
@given(st.text(max_size=20), st.text(max_size=30))
def test_any_set_value_is_valid_or_one_error(key, value):
    assert_clean(*cli("validate", str(DEFAULT), f"--set={key}={value}"))


@FUZZ
@given(st.sampled_from(KEYS[7:30]), st.text(max_size=30))
def test_set_of_a_real_key_to_any_text_is_valid_or_one_error(key, value):
    assert_clean(*cli("validate", str(DEFAULT), f"--set={key}={value}"))


sweep_axes = st.dictionaries(st.sampled_from(KEYS), st.lists(scalars, min_size=0, max_size=3), max_size=2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweep_axes, sweep_axes, st.lists(st.dictionaries(st.sampled_from(KEYS), scalars, max_size=2), max_size=3),
       st.dictionaries(st.sampled_from(["name", "base", "keep_steps_all_below", "quality", "keep_steps", "x"]),
                       values, max_size=2))
def test_validate_of_a_random_sweep_is_valid_or_one_error(grid, zipped, points, extra):
    document = {"name": "fuzz", "base": "default", "grid": grid, "zip": zipped,
                "points": [{"workload.steps": 8, **p} for p in points] or [{"workload.steps": 8}], **extra}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sweep.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True))
        assert_clean(*cli("validate", str(path)))
