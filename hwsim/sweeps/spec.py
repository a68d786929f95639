"""A sweep file and its expansion into points (one validated Experiment each).

Combination rule: the points of a sweep are the product `grid x zip x points`, in that order of
nesting (the last `grid` axis varies fastest, then the zip rows, then the explicit points). A part that
is absent contributes one empty assignment, so a file with only `points:` runs exactly those points.
Within one point, keys are applied shallowest first (`hardware` before `hardware.sram.capacity_bytes`),
so a preset axis and an override of one of its keys combine. When a key appears in more than one part
the later part (zip over grid, points over zip) wins.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from hwsim import __version__
from hwsim.config.loading import load_experiment, read_yaml, set_dotted, validate
from hwsim.errors import HwsimInputError
from hwsim.paths import CONFIGS_DIR, SAFE_NAME_PATTERN
from hwsim.records import Frozen
from hwsim.sweeps.quality_columns import QualityOptions

SWEEPS_DIR = CONFIGS_DIR / "sweeps"
DEFAULT_SWEEP = SWEEPS_DIR / "default.yaml"
EXPERIMENTS_DIR = CONFIGS_DIR / "experiments"


def _product(grid: dict[str, list[Any]], zipped: dict[str, list[Any]], points: list[dict[str, Any]]):
    """grid x zip x points, in that order of nesting (the last grid axis varies fastest)."""
    grid_rows = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    zip_rows = [dict(zip(zipped, combo)) for combo in zip(*zipped.values())] if zipped else [{}]
    point_rows = [dict(p) for p in points] or [{}]
    return [{**g, **z, **p} for g, z, p in itertools.product(grid_rows, zip_rows, point_rows)]


class SubSweep(Frozen):
    """One entry of `also`: a further grid x zip x points over the same base, run beside the main one."""

    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip: dict[str, list[Any]] = Field(default_factory=dict)
    points: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _zip_lengths(self) -> SubSweep:
        if len({len(values) for values in self.zip.values()}) > 1:
            raise ValueError("also: zip lists must have equal length")
        return self


class SweepSpec(Frozen):
    """What a sweep file may hold. Axis keys are dotted experiment keys (`policy.threshold_bits`)."""

    name: str = Field("sweep", pattern=SAFE_NAME_PATTERN)
    description: str = ""
    base: str = Field("default", description="experiment file (relative to the sweep file) or a name "
                      "under configs/experiments")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="cartesian product of lists")
    zip: dict[str, list[Any]] = Field(default_factory=dict, description="lists of equal length, paired")
    points: list[dict[str, Any]] = Field(default_factory=list, description="explicit assignments")
    keep_steps: dict[str, Any] | None = Field(
        None, description="dotted key -> value: keep steps.parquet for the points matching all of them "
        "(default: all points when the sweep has at most `keep_steps_all_below` points, else the first)")
    keep_steps_all_below: int = Field(16, ge=0)
    quality: bool = Field(False, description="add quality_* columns (needs the [traces] extra)")
    quality_options: QualityOptions = QualityOptions()
    also: list[SubSweep] = Field(default_factory=list, description="further sweeps over the same base, "
                                 "appended after the main product (e.g. per-domain runs at one operating point)")

    @field_validator("grid", "zip")
    @classmethod
    def _non_empty_axes(cls, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [key for key, values in axes.items() if len(values) == 0]
        if empty:
            raise ValueError(f"empty axis: {', '.join(empty)} (give at least one value)")
        return axes

    @field_validator("points")
    @classmethod
    def _non_empty_points(cls, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if any(not isinstance(p, dict) for p in points):
            raise ValueError("each point is a mapping of dotted.key: value")
        return points

    @model_validator(mode="after")
    def _zip_lengths(self) -> SweepSpec:
        lengths = {key: len(values) for key, values in self.zip.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
            raise ValueError(f"zip lists must have equal length: {shown}")
        return self

    def assignments(self) -> list[dict[str, Any]]:
        """Every point's dotted assignments, in the documented order (grid x zip x points), then those of
        each `also` entry in turn."""
        rows = _product(self.grid, self.zip, self.points)
        for sub in self.also:
            rows.extend(_product(sub.grid, sub.zip, sub.points))
        return rows

    def swept_keys(self) -> list[str]:
        parts = (self, *self.also)
        keys = [k for part in parts for k in (*part.grid, *part.zip, *(k for p in part.points for k in p))]
        return list(dict.fromkeys(keys))


@dataclass(frozen=True)
class Point:
    """One point of a sweep: the assignments that define it and the experiment they resolve to."""

    index: int
    params: dict[str, Any]
    experiment: Any  # hwsim.config.experiment.Experiment
    point_hash: str
    keep_steps: bool = False
    resolved: dict = field(default_factory=dict, repr=False)


def experiment_hash(experiment) -> str:
    """sha256 of the canonical JSON of the validated experiment plus the hwsim version: two points that
    resolve to the same configuration share a result; a new hwsim version recomputes."""
    dumped = experiment.model_dump(mode="json")
    canonical = json.dumps({"experiment": dumped, "hwsim_version": __version__}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def base_experiment_path(ref: str, sweep_file: Path | None) -> Path:
    if not isinstance(ref, str) or not ref:
        raise HwsimInputError(f"base must be an experiment name or .yaml path, not {ref!r}", file=sweep_file,
                              key="base")
    base_dir = sweep_file.parent if sweep_file else Path.cwd()
    for candidate in (base_dir / ref, Path(ref)):
        if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
            return candidate
    named = EXPERIMENTS_DIR / f"{ref}.yaml"
    if named.is_file():
        return named
    known = ", ".join(sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml")))
    raise HwsimInputError(f"unknown base experiment {ref!r}", file=sweep_file, key="base",
                          allowed=f"{known} (or a .yaml path relative to the sweep file)")


def load_sweep(path: str | Path | None = None, raw: dict | None = None) -> tuple[SweepSpec, Path | None]:
    """Read and validate a sweep file (default: configs/sweeps/default.yaml)."""
    from hwsim.config.loading import named_file

    file = named_file(path, "sweeps", "sweep") if path is not None else (None if raw is not None else DEFAULT_SWEEP)
    if raw is None:
        raw = read_yaml(file)
    if not isinstance(raw, dict):
        raise HwsimInputError("a sweep file must hold a mapping (base, grid, zip, points)", file=file)
    return validate(SweepSpec, raw, file=file), file


def _matches(params: dict, resolved_flat: dict, wanted: dict) -> bool:
    """A swept value, else the resolved one (`hardware` and `model` match the preset's name)."""
    def value(key: str) -> Any:
        if key in params:
            return params[key]
        return resolved_flat.get(key, resolved_flat.get(f"{key}.name"))
    return all(value(k) == v for k, v in wanted.items())


def flatten(mapping: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def expand(spec: SweepSpec, sweep_file: Path | None = None, *, calibrate: bool = True) -> list[Point]:
    """Resolve every point into a validated Experiment. A bad key or value stops the sweep before it
    runs, naming the point and the key (the experiment's own validation error). `calibrate=False`
    (`hwsim validate`) leaves the DRAM calibration out of the points, and so out of their hashes."""
    base_path = base_experiment_path(spec.base, sweep_file)
    base_raw = read_yaml(base_path)
    if not isinstance(base_raw, dict):
        raise HwsimInputError("an experiment file must hold a mapping", file=base_path)
    from hwsim.checks import check_experiment
    from hwsim.memory.calibration import resolve_calibration

    assignments = spec.assignments()
    points, problems, first_of, seen_traces = [], [], {}, set()
    for index, params in enumerate(assignments):
        canonical = json.dumps(params, sort_keys=True, default=str)
        if canonical in first_of:  # the same point twice would be two identical rows
            problems.append(f"point {index} repeats point {first_of[canonical]} ({canonical})")
            continue
        first_of[canonical] = index
        raw = copy.deepcopy(base_raw)
        try:
            for key in sorted(params, key=lambda k: k.count(".")):
                set_dotted(raw, key, params[key], file=sweep_file)
            exp = load_experiment(base_path, raw=raw, calibrate=False)
            check_experiment(exp, file=base_path, seen_traces=seen_traces)  # capacity, traces: up front
        except HwsimInputError as error:
            shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
            problems.append(f"point {index} ({shown}): {error}")
            continue
        points.append((index, params, exp))
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise HwsimInputError("; ".join(problems[:3]) + more, file=sweep_file or "sweep")
    # calibrated once every point is known to be valid (a bad point fails before any cold calibration)
    resolved = []
    for index, params, exp in points:
        if calibrate:
            exp = resolve_calibration(exp)
        resolved.append(Point(index=index, params=params, experiment=exp, point_hash=experiment_hash(exp),
                              resolved=exp.model_dump(mode="json")))
    return _mark_keep_steps(spec, resolved, sweep_file)


def _mark_keep_steps(spec: SweepSpec, points: list[Point], sweep_file: Path | None = None) -> list[Point]:
    """Steps are kept for every point of a small sweep, else for the `keep_steps` matches (or the first
    point), so the report's timeline figure always has one point to draw."""
    if len(points) <= spec.keep_steps_all_below:
        keep = [True] * len(points)
    elif spec.keep_steps:
        keep = [_matches(p.params, flatten(p.resolved), spec.keep_steps) for p in points]
        if not any(keep):
            raise HwsimInputError(f"keep_steps {spec.keep_steps} matches no point", key="keep_steps",
                                  file=sweep_file)
    else:
        keep = [i == 0 for i in range(len(points))]
    return [Point(index=p.index, params=p.params, experiment=p.experiment, point_hash=p.point_hash,
                  keep_steps=k, resolved=p.resolved) for p, k in zip(points, keep)]


def hardware_sweep(hardware: list[str], experiment: str | Path | None, name: str) -> SweepSpec:
    """The sweep behind `hwsim compare`: the same experiment on each hardware (preset name or file)."""
    refs = [str(Path(h).resolve()) if Path(h).suffix in (".yaml", ".yml") else h for h in hardware]
    base = str(Path(experiment).resolve()) if experiment and Path(str(experiment)).suffix in (".yaml", ".yml") \
        else (str(experiment) if experiment else "default")
    try:
        return SweepSpec(name=name, base=base, grid={"hardware": refs})
    except ValidationError as error:  # pragma: no cover - names come from argparse
        raise HwsimInputError(str(error)) from None
