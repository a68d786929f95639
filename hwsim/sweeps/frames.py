"""The report's view of a results table: the main set, the default operating point, trace domains.

A sweep may hold more than one workload (the main grid replays the default trace mix; `also:` entries
add single traces, seeds and the exact default experiment). Figures that compare settings use the
*main set* (the most common workload: traces, steps and seed); the workload breakdown uses the rows
that differ only in traces and seed. The default operating point is the sweep's base experiment;
rows with its model, hardware, batch and policy are marked `is_default` whatever their workload.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

MODEL, HW, BATCH = "cfg.model.name", "cfg.hardware.name", "cfg.workload.batch_size"
THRESHOLD, LOW, HIGH = "cfg.policy.threshold_bits", "cfg.policy.low_bits", "cfg.policy.high_bits"
KIND, TRACES, STEPS, SEED = "cfg.policy.kind", "cfg.workload.traces", "cfg.workload.steps", "param.workload.seed"
DOMAIN = "domain"
MIX = "mix (default set)"
DOMAIN_ORDER = ["prose", "code", "generated", MIX]


@dataclass(frozen=True)
class DefaultPoint:
    """The base experiment's settings that identify its operating point in the table."""

    model: str
    hardware: str
    batch: int
    kind: str
    threshold: float | None
    low: int | None
    high: int | None
    steps: int
    name: str

    def label(self) -> str:
        gate = (f"{self.low}-bit state below {self.threshold:g} bit(s) of entropy"
                if self.threshold is not None else f"policy {self.kind}")
        return f"{self.model} on {self.hardware}, batch {self.batch}, {gate}"


def default_point(out: Path) -> DefaultPoint | None:
    """The sweep's base experiment (DIR/base.yaml, else the `base` of DIR/sweep.yaml), or None."""
    from hwsim.config.experiment import Experiment
    from hwsim.config.loading import load_experiment
    from hwsim.sweeps.spec import base_experiment_path

    try:
        resolved = Path(out) / "base.yaml"  # written by run_sweep, resolved against the sweep file
        if resolved.is_file():
            exp = Experiment.model_validate(yaml.safe_load(resolved.read_text()))
        else:
            spec = yaml.safe_load((Path(out) / "sweep.yaml").read_text())
            exp = load_experiment(base_experiment_path(spec.get("base", "default"), None))
    except Exception:  # noqa: BLE001 - no marker is better than no report
        return None
    policy = exp.policy
    return DefaultPoint(model=exp.model.name, hardware=exp.hardware.name, batch=exp.workload.batch_size,
                        kind=policy.kind, threshold=getattr(policy, "threshold_bits", None),
                        low=getattr(policy, "low_bits", None), high=getattr(policy, "high_bits", None),
                        steps=exp.workload.steps, name=exp.name if hasattr(exp, "name") else "default")


def _trace_domains() -> dict[str, str]:
    from hwsim.traces.catalog import read_catalog

    try:
        return {entry.name: entry.domain for entry in read_catalog().traces}
    except Exception:  # noqa: BLE001
        return {}


def domain_of(traces, domains: dict[str, str]) -> str:
    """'prose' / 'code' / 'generated' when every trace of the workload is of one domain, else the mix.
    The default (None) is the shipped set, which mixes all three."""
    if traces is None or (isinstance(traces, float) and pd.isna(traces)):
        return MIX
    names = [Path(t).stem for t in str(traces).split("+")]
    found = {domains.get(n, "other") for n in names}
    return found.pop() if len(found) == 1 else "mixed"


def _equal(series: pd.Series, value) -> pd.Series:
    if value is None:
        return series.isna()
    return series == value


def annotate(ok: pd.DataFrame, default: DefaultPoint | None) -> pd.DataFrame:
    """Adds `domain`, `workload_key`, `is_default` and `is_main` columns."""
    frame = ok.copy()
    domains = _trace_domains()
    traces = frame[TRACES] if TRACES in frame else pd.Series([None] * len(frame), index=frame.index)
    frame[DOMAIN] = [domain_of(t, domains) for t in traces]
    seed = frame[SEED] if SEED in frame else pd.Series([None] * len(frame), index=frame.index)
    steps = frame[STEPS] if STEPS in frame else pd.Series([None] * len(frame), index=frame.index)
    frame["workload_key"] = [f"{t} | {n} | {s}" for t, n, s in zip(traces, steps, seed)]
    frame["is_main"] = frame["workload_key"] == frame["workload_key"].mode().iloc[0] if len(frame) else False
    if default is None or frame.empty:
        frame["is_default"] = False
        return frame
    match = (frame[MODEL] == default.model) & (frame[HW] == default.hardware) & (frame[BATCH] == default.batch)
    match &= frame[KIND] == default.kind
    for column, value in ((THRESHOLD, default.threshold), (LOW, default.low), (HIGH, default.high)):
        if column in frame:
            match &= _equal(frame[column], value)
    frame["is_default"] = match
    return frame


def main_set(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["is_main"]] if "is_main" in frame else frame


def exact_default(frame: pd.DataFrame, default: DefaultPoint | None) -> pd.Series | None:
    """The row of the default experiment as `hwsim run` runs it (default mix, its own steps), else the
    default setting in the main set, else None."""
    if default is None or "is_default" not in frame:
        return None
    rows = frame[frame["is_default"]]
    exact = rows[(rows[DOMAIN] == MIX) & (rows[STEPS] == default.steps)] if STEPS in rows else rows.iloc[0:0]
    if SEED in exact:
        exact = exact[exact[SEED].isna()] if exact[SEED].isna().any() else exact
    if not exact.empty:
        return exact.iloc[0]
    main = rows[rows["is_main"]]
    return main.iloc[0] if not main.empty else None


def domain_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that form a workload breakdown: settings seen with at least two domains (main set aside)."""
    side = frame[~frame["is_main"]] if "is_main" in frame else frame
    if side.empty or side[DOMAIN].nunique() < 2:
        return side.iloc[0:0]
    settings = [c for c in (MODEL, HW, BATCH, KIND, THRESHOLD, LOW, STEPS) if c in side]
    counts = side.groupby(settings, dropna=False)[DOMAIN].transform("nunique")
    return side[counts >= 2]
