"""The distinct gating policies of an experiment file or a sweep file (quality depends on nothing else)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from hwsim.config.loading import load_experiment, read_yaml
from hwsim.errors import HwsimInputError
from hwsim.policies import POLICY_KINDS, PolicyConfig

SWEEP_KEYS = ("grid", "zip", "points")


def is_sweep(raw) -> bool:
    return isinstance(raw, dict) and "base" in raw and any(k in raw for k in SWEEP_KEYS)


def _assignments(raw: dict) -> list[dict]:
    """grid x zip x points, as the sweep engine documents it (later parts win)."""
    grid = raw.get("grid") or {}
    zipped = raw.get("zip") or {}
    grid_rows = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    zip_rows = [dict(zip(zipped, combo)) for combo in zip(*zipped.values())] if zipped else [{}]
    point_rows = [dict(p) for p in raw.get("points") or []] or [{}]
    return [{**g, **z, **p} for g, z, p in itertools.product(grid_rows, zip_rows, point_rows)]


def _base_path(ref: str, sweep_file: Path) -> Path:
    from hwsim.paths import CONFIGS_DIR

    for candidate in (sweep_file.parent / ref, Path(ref), CONFIGS_DIR / "experiments" / f"{ref}.yaml"):
        if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
            return candidate
    raise HwsimInputError(f"unknown base experiment {ref!r}", file=sweep_file, key="base")


def distinct_policies(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> list:
    """Validated policies, first-seen order, duplicates removed. Sweep axes over `policy.*` (or a whole
    `policy`) are applied to the base experiment's resolved policy; other axes cannot change quality."""
    path = Path(path)
    raw = read_yaml(path)
    if not is_sweep(raw):
        return [load_experiment(path, overrides).policy]
    base = load_experiment(_base_path(str(raw["base"]), path), overrides).policy.model_dump(mode="json")
    adapter = TypeAdapter(PolicyConfig)
    seen: dict[str, object] = {}
    for index, params in enumerate(_assignments(raw)):
        policy = dict(base)
        for key in sorted(params, key=lambda k: k.count(".")):
            if key == "policy" and isinstance(params[key], dict):
                policy = dict(params[key])
            elif key.startswith("policy."):
                policy[key.split(".", 1)[1]] = params[key]
        cls = POLICY_KINDS.get(policy.get("kind"))
        if cls is not None and policy.get("kind") != base.get("kind"):  # a kind axis: drop foreign fields
            policy = {k: v for k, v in policy.items() if k in cls.model_fields or k not in base}
        try:
            validated = adapter.validate_python(policy)
        except ValidationError as error:
            raise HwsimInputError(f"point {index}: policy {policy}: {error.errors()[0]['msg']}", file=path) \
                from None
        seen.setdefault(json.dumps(validated.model_dump(mode="json"), sort_keys=True), validated)
    return list(seen.values())


def describe(policy) -> str:
    """Short label: 'threshold 2 bits, int4/16, group 64, scale 16'."""
    parts = [policy.kind]
    if hasattr(policy, "threshold_bits"):
        parts[0] += f" {policy.threshold_bits:g} bits"
    if hasattr(policy, "target_low_share"):
        parts[0] += f" share {policy.target_low_share:g}"
    if hasattr(policy, "rollback_threshold_bits"):
        parts[0] += f" rollback {policy.rollback_threshold_bits:g} bits every {policy.checkpoint_interval_steps}"
    if policy.kind == "static":
        parts[0] += f" {policy.bits}"
    parts.append(f"{policy.low_bits}/{policy.high_bits}")
    parts.append(f"group {policy.group_size}")
    parts.append(f"scale {policy.scale_bits}")
    if policy.gate_on != "previous":
        parts.append(f"gate_on {policy.gate_on}")
    return ", ".join(parts)
