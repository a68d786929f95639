"""YAML -> validated Experiment. Presets resolve by name (configs/<kind>/<name>.yaml) or by path;
`--set a.b=value` overrides; every error names the file, the key path and what is allowed."""

from __future__ import annotations

import copy
import difflib
import math
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hwsim.errors import HwsimInputError
from hwsim.paths import CONFIGS_DIR

#: Sections whose value may be a preset name, and the folder under configs/ that holds those presets.
PRESET_DIRS = {"hardware": "hardware", "model": "models", "dram": "dram"}
DEFAULT_EXPERIMENT = CONFIGS_DIR / "experiments" / "default.yaml"


#: libyaml's parser where PyYAML was built with it (5-10x faster; same safe constructor)
_SAFE_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UniqueKeyLoader(_SAFE_BASE):
    """safe_load that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: let the base class report it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, *, file: Path | str | None, what: str = "YAML") -> Any:
    """Parse YAML text (safe, duplicate keys refused); every failure is one HwsimInputError."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # a (C)SafeLoader subclass: safe
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise HwsimInputError(f"{what} syntax error: {where}{problem}", file=file) from None
    except (ValueError, TypeError, RecursionError, OverflowError) as error:
        raise HwsimInputError(f"{what} not understood: {type(error).__name__}: {error}", file=file) from None


_PARSED: dict[tuple[str, int, int], Any] = {}


def read_yaml(path: Path) -> Any:
    """safe_load a file; syntax errors name the line, duplicate keys and binary content are refused.
    A file already parsed (same path, size and modification time) is served from memory as a copy:
    a sweep resolves the same presets for every point."""
    try:
        stat = Path(path).stat()
        key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        key = None
    if key is not None and key in _PARSED:
        return copy.deepcopy(_PARSED[key])
    value = _read_yaml_uncached(path)
    if key is not None:
        _PARSED[key] = copy.deepcopy(value)
    return value


def _read_yaml_uncached(path: Path) -> Any:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise HwsimInputError(f"cannot read: {error.strerror or error}", file=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise HwsimInputError("not a text (UTF-8) YAML file", file=path) from None
    if "\x00" in text:
        raise HwsimInputError("not a text YAML file (holds NUL bytes)", file=path)
    return parse_yaml(text, file=path)


def known_presets(kind: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS_DIR / PRESET_DIRS[kind]).glob("*.yaml"))


def preset_path(kind: str, ref: str, *, base_dir: Path, file: Path | None, key: str) -> Path:
    """A preset reference is a file path (relative to the referring file) or a name under configs/."""
    if not isinstance(ref, str) or not ref:
        raise HwsimInputError(f"a {kind} preset is a name or a .yaml path, not {ref!r}", file=file, key=key,
                              allowed=", ".join(known_presets(kind)) + " (or a path to a .yaml file)")
    for candidate in (base_dir / ref, Path(ref)):
        if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
            return candidate
    if Path(ref).suffix in (".yaml", ".yml") or "/" in ref or "\\" in ref:
        raise HwsimInputError(f"{kind} file {ref!r} not found (looked in {base_dir} and {Path.cwd()})",
                              file=file, key=key)
    named = CONFIGS_DIR / PRESET_DIRS[kind] / f"{ref}.yaml"
    if not named.is_file():   # preset names use hyphens; the older underscore spellings still resolve
        named = CONFIGS_DIR / PRESET_DIRS[kind] / f"{ref.replace('_', '-')}.yaml"
    if named.is_file():
        return named
    raise HwsimInputError(f"unknown {kind} preset {ref!r}", file=file, key=key,
                          allowed=", ".join(known_presets(kind)) + " (or a path to a .yaml file)")


def resolve_section(kind: str, value: Any, *, base_dir: Path, file: Path | None, key: str,
                    sources: dict[str, str]) -> Any:
    """Expand `name` or `{preset: name, **overrides}` into a plain mapping. Overrides may only touch
    keys the preset has or the schema allows; validation catches the rest."""
    if isinstance(value, str):
        value = {"preset": value}
    if not isinstance(value, dict) or "preset" not in value:
        return value
    path = preset_path(kind, value["preset"], base_dir=base_dir, file=file, key=key)
    sources[key] = str(path)
    loaded = read_yaml(path)
    if not isinstance(loaded, dict):
        raise HwsimInputError("a preset file must hold a mapping", file=path)
    overrides = {k: v for k, v in value.items() if k != "preset"}
    return deep_merge(loaded, overrides)


def deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def apply_overrides(raw: dict, assignments: list[str] | tuple[str, ...], *, file: Path | None) -> dict:
    """Apply `dotted.key=value` strings; the value is parsed as YAML (so 4 is an int, [a, b] a list)."""
    raw = copy.deepcopy(raw)
    for assignment in assignments:
        dotted, value = parse_assignment(assignment, file=file)
        set_dotted(raw, dotted, value, file=file)
    return raw


def parse_assignment(assignment: str, *, file: Path | None = None) -> tuple[str, Any]:
    """`dotted.key=value` -> (key, YAML value); a missing key, an empty path part or bad YAML is an error."""
    if "=" not in assignment:
        raise HwsimInputError(f"--set {assignment!r}: expected dotted.key=value", file=file)
    dotted, text = assignment.split("=", 1)
    dotted = dotted.strip()
    if not dotted or any(not part.strip() for part in dotted.split(".")):
        raise HwsimInputError(f"--set {assignment!r}: the key before '=' is empty or has an empty part",
                              file=file, allowed="dotted.key=value, e.g. workload.batch_size=16")
    return dotted, parse_yaml(text, file=file, what=f"--set {dotted}: value")


def set_dotted(raw: dict, dotted: str, value: Any, *, file: Path | None = None) -> None:
    if not isinstance(dotted, str) or not dotted or any(not k for k in dotted.split(".")):
        raise HwsimInputError(f"{dotted!r} is not a dotted key", file=file, allowed="e.g. policy.low_bits")
    keys = dotted.split(".")
    node = raw
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if isinstance(child, str) and key in PRESET_DIRS:
            child = node[key] = {"preset": child}  # override one key of a named preset
        elif child is None:
            child = node[key] = {}
        elif not isinstance(child, dict):
            raise HwsimInputError(f"cannot set {dotted}: {'.'.join(keys[:depth + 1])} is not a mapping",
                                  file=file, key=dotted)
        node = child
    node[keys[-1]] = value


def _resolve_presets(raw: dict, *, base_dir: Path, file: Path | None, sources: dict[str, str]) -> dict:
    raw = dict(raw)
    for section in ("hardware", "model"):
        if section in raw:
            raw[section] = resolve_section(section, raw[section], base_dir=base_dir, file=file,
                                           key=section, sources=sources)
    if isinstance(raw.get("policy"), str):   # policies have no presets: a policy is written out
        from hwsim.policies import POLICY_KINDS

        raise HwsimInputError(f"{raw['policy']!r} is not a policy: a policy is a mapping with a kind",
                              file=file, key="policy", allowed="{kind: " + " | ".join(sorted(POLICY_KINDS)) + ", ...}")
    hardware = raw.get("hardware")
    if isinstance(hardware, dict) and isinstance(hardware.get("dram"), dict):
        dram = dict(hardware["dram"])
        if "preset" in dram:
            dram["preset"] = resolve_section("dram", dram["preset"], base_dir=base_dir, file=file,
                                             key="hardware.dram.preset", sources=sources)
        hardware = {**hardware, "dram": dram}
        raw["hardware"] = hardware
    return raw


def validate(model_cls: type[BaseModel], raw: Any, *, file: Path | None,
             sources: dict[str, str] | None = None, prefix: str = "") -> Any:
    """Validate and turn pydantic's errors into one HwsimInputError naming every bad key."""
    try:
        return model_cls.model_validate(raw)
    except ValidationError as error:
        raise _input_error(error, model_cls, file=file, sources=sources or {}, prefix=prefix) from None


def _input_error(error: ValidationError, model_cls: type[BaseModel], *, file: Path | None,
                 sources: dict[str, str], prefix: str) -> HwsimInputError:
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        key = ".".join(([prefix] if prefix else []) + loc) or "(top level)"
        origin = next((src for sec, src in sorted(sources.items(), key=lambda kv: -len(kv[0]))
                       if key.startswith(sec)), None)
        text = f"{key}: {item['msg'].removeprefix('Value error, ')}"
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(model_cls, item["loc"][:-1])
            hint = difflib.get_close_matches(str(item["loc"][-1]), allowed, n=1)
            if hint:
                text += f" (did you mean {hint[0]!r}?)"
            if allowed:
                text += f"; allowed keys: {', '.join(allowed)}"
        elif item["type"] == "missing":
            text = f"{key}: required key is missing"
        elif item["type"] == "string_pattern_mismatch":
            text = f"{key}: {item.get('input')!r} is not a safe name; allowed: letters, digits, _ . - " \
                "(starting with a letter or digit)"
        elif _is_nan(item.get("input")):
            text = f"{key}: NaN is not a number here; give a finite value"
        if origin:
            text += f" (from preset {origin})"
        lines.append(text)
    return HwsimInputError("; ".join(lines), file=file)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _allowed_keys(model_cls: Any, loc: tuple) -> list[str]:
    """Field names of the model found by walking `loc` through nested pydantic models."""
    current = model_cls
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            # a discriminated union puts the tag in the path: look it up among the union's members
            current = next((m for m in _members(current) if getattr(m, "model_fields", {}).get("kind")
                            and m.model_fields["kind"].default == part), None)
            continue
        current = _first_model(fields[part].annotation)
    return sorted(getattr(current, "model_fields", {}) or {})


def _members(annotation: Any) -> list:
    args = typing.get_args(annotation)
    if not args:
        return [annotation]
    return [m for arg in args for m in _members(arg)]


def _first_model(annotation: Any) -> Any:
    members = [m for m in _members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(members) == 1:
        return members[0]
    return annotation if members else None


def load_preset(kind: str, ref: str, model_cls: type[BaseModel]) -> Any:
    """Load one named preset (e.g. `load_preset('model', 'mamba2-2.7b', ModelSpec)`)."""
    path = preset_path(kind, ref, base_dir=Path.cwd(), file=None, key=kind)
    raw = read_yaml(path)
    sources: dict[str, str] = {}
    if kind == "hardware":
        raw = _resolve_presets({"hardware": raw}, base_dir=path.parent, file=path, sources=sources)["hardware"]
    return validate(model_cls, raw, file=path)


def resolve_raw(raw: Any, *, file: Path | None, overrides: tuple[str, ...] | list[str] = (),
                sources: dict[str, str] | None = None) -> dict:
    """The plain mapping an experiment stands for: overrides applied, presets inlined. `sources` (if
    given) collects which preset file each section came from, for error messages."""
    raw = apply_overrides(raw, overrides, file=file) if isinstance(raw, dict) else raw
    if not isinstance(raw, dict):
        raise HwsimInputError("an experiment file must hold a mapping with sections hardware, model, "
                              "policy, workload, run", file=file)
    base_dir = Path(file).parent if file else Path.cwd()
    return _resolve_presets(raw, base_dir=base_dir, file=file, sources={} if sources is None else sources)


def named_file(ref: str | Path, folder: str, what: str) -> Path:
    """A file reference as the command line takes it: a path, or a name under configs/<folder>/."""
    path = Path(ref)
    if path.is_file() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path
    named = CONFIGS_DIR / folder / f"{ref}.yaml"
    if named.is_file():
        return named
    known = sorted(p.stem for p in (CONFIGS_DIR / folder).glob("*.yaml"))
    hint = difflib.get_close_matches(str(ref), known, n=1)
    raise HwsimInputError(f"no {what} file or preset named {str(ref)!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""),
                          allowed=", ".join(known) + " (or a path to a .yaml file)")


def load_experiment(path: str | Path | None = None, overrides: tuple[str, ...] | list[str] = (),
                    raw: dict | None = None, *, calibrate: bool = True):
    """Read, resolve and validate an experiment (default: configs/experiments/default.yaml). Resolving
    includes the DRAM's fast-level calibration (computed once per configuration, then read from the user
    cache), so it is recorded in the experiment, resolved.yaml and a sweep point's hash. `calibrate=False`
    stops short of it, for checks that need no timing (capacity, traces: a cold calibration takes tens of
    seconds, an impossible configuration should fail at once); `resolve_calibration` finishes the job."""
    from hwsim.config.experiment import Experiment
    from hwsim.memory.calibration import resolve_calibration

    file = named_file(path, "experiments", "experiment") if path is not None else (
        None if raw is not None else DEFAULT_EXPERIMENT)
    sources: dict[str, str] = {}
    resolved = resolve_raw(read_yaml(file) if raw is None else raw, file=file, overrides=overrides,
                           sources=sources)
    exp = validate(Experiment, resolved, file=file, sources=sources)
    return resolve_calibration(exp) if calibrate else exp
