"""What `hwsim validate` and a sweep check before any work: everything `run` would load or refuse,
short of simulating (config, capacity of the hardware, every trace the workload replays)."""

from __future__ import annotations

from pathlib import Path

from hwsim.errors import HwsimInputError

#: Top-level keys that only a sweep file has (an experiment has hardware, model, policy, ...).
SWEEP_KEYS = {"base", "grid", "zip", "points", "keep_steps", "keep_steps_all_below", "quality",
              "quality_options"}


def is_sweep_document(raw: object) -> bool:
    return isinstance(raw, dict) and bool(SWEEP_KEYS & set(raw)) and not {"hardware", "model"} & set(raw)


def check_traces(exp, *, file: str | Path | None = None, seen: set | None = None) -> None:
    """Load every trace the workload names (validated, as `run` would); errors name workload.traces."""
    from hwsim.traces import DEFAULT_TRACE_SET, load_trace

    names = list(exp.workload.traces) if exp.workload.traces else list(DEFAULT_TRACE_SET)
    for index, name in enumerate(names):
        if seen is not None and name in seen:
            continue
        try:
            load_trace(name)
        except HwsimInputError as error:
            raise HwsimInputError(f"trace {name!r}: {error}", file=file, key=f"workload.traces[{index}]") \
                from None
        if seen is not None:
            seen.add(name)


def check_experiment(exp, *, file: str | Path | None = None, seen_traces: set | None = None) -> None:
    """Capacity (an impossible hardware fails here) and traces."""
    from hwsim.geometry import footprint
    from hwsim.traffic import check_capacity

    check_capacity(exp, footprint(exp.model), file=str(file) if file else None)
    check_traces(exp, file=file, seen=seen_traces)
