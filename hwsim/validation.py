"""Predictions held against published GPU measurements (`configs/validation/gpu-measurements.yaml`).

Every entry names a hardware and a model preset, the batch, prompt and generated tokens, CUDA graphs
and framework of the published run, and the figure it reported. hwsim simulates the same run (state at
16 bits, no gating) and the table gives predicted / published per entry; where a source sweeps the
batch, the time added per extra sequence (least-squares slope of total time over batch) is compared
too. No constant is set from these figures: they are all held out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field, PositiveFloat, PositiveInt

from hwsim.config.loading import load_experiment, read_yaml, validate
from hwsim.paths import CONFIGS_DIR
from hwsim.records import Frozen
from hwsim.units import NS_PER_MS

VALIDATION_FILE = CONFIGS_DIR / "validation" / "gpu-measurements.yaml"
#: summary key and scale to the published unit, per metric
MS = 1.0 / NS_PER_MS
METRICS = {"e2e_tokens_per_s": ("e2e_tokens_per_s", 1.0), "tpot_ms": ("tpot_ns", MS),
           "ttft_ms": ("ttft_ns", MS), "total_latency_ms": ("time_to_last_token_ns", MS)}


class Measurement(Frozen):
    id: str
    source: str = Field(min_length=3)
    measured_on: str
    hardware: str
    model: str
    precision: str
    batch_size: PositiveInt
    prompt_tokens: PositiveInt
    generated_tokens: PositiveInt
    cuda_graphs: bool
    framework: str
    metric: str = Field(pattern="^(" + "|".join(METRICS) + ")$")
    value: PositiveFloat
    unit: str
    reading: str
    notes: str = ""


class ValidationSet(Frozen):
    entries: tuple[Measurement, ...]


def load_validation_set(path: str | Path = VALIDATION_FILE) -> ValidationSet:
    return validate(ValidationSet, read_yaml(Path(path)), file=Path(path))


def experiment_for(entry: Measurement):
    """The published run as an hwsim experiment: fp16 weights and state, every state at 16 bits."""
    overrides = [f"hardware={entry.hardware}", f"model={entry.model}",
                 "policy={kind: static, bits: 16, low_bits: 4, high_bits: 16}",
                 f"workload.batch_size={entry.batch_size}", f"workload.prompt_tokens={entry.prompt_tokens}",
                 f"workload.steps={entry.generated_tokens}", "run.baseline=false",
                 f"hardware.execution.cuda_graphs={str(entry.cuda_graphs).lower()}",
                 f"hardware.execution.framework={entry.framework}", f"name=validate-{entry.id}"]
    return load_experiment(None, overrides)


def run_validation(validation: ValidationSet, entropies: list[np.ndarray] | None = None) -> pd.DataFrame:
    """One row per entry: published and predicted value, their ratio, and the roofline bound."""
    from hwsim.runner import run_experiment, workload_entropies

    rows = []
    for entry in validation.entries:
        exp = experiment_for(entry)
        entropies = entropies if entropies is not None else workload_entropies(exp)
        summary = run_experiment(exp, entropies=entropies).summary
        key, scale = METRICS[entry.metric]
        bound_key = "bound_" + key
        predicted = summary[key] * scale
        rows.append({"id": entry.id, "hardware": entry.hardware, "model": entry.model,
                     "batch_size": entry.batch_size, "prompt_tokens": entry.prompt_tokens,
                     "generated_tokens": entry.generated_tokens, "cuda_graphs": entry.cuda_graphs,
                     "metric": entry.metric, "published": entry.value, "predicted": predicted,
                     "ratio": predicted / entry.value, "bound": summary[bound_key] * scale,
                     "total_time_ms": summary["time_to_last_token_ns"] * MS,
                     "ttft_ms": summary["ttft_ns"] * MS, "tpot_ms": summary["tpot_ns"] * MS})
    return pd.DataFrame(rows)


def batch_slopes(table: pd.DataFrame) -> pd.DataFrame:
    """Time added per extra sequence where an e2e source sweeps the batch (same hardware, model, lengths)."""
    rows = []
    sweeps = table[table.metric == "e2e_tokens_per_s"]
    for key, group in sweeps.groupby(["hardware", "model", "prompt_tokens", "generated_tokens"]):
        if group.batch_size.nunique() < 3:
            continue
        batch = group.batch_size.to_numpy(float)
        published_ms = 1e3 * batch * group.generated_tokens / group.published   # tokens / (tokens/s) in ms
        predicted_ms = 1e3 * batch * group.generated_tokens / group.predicted
        slope_pub = np.polyfit(batch, published_ms, 1)[0]
        slope_pred = np.polyfit(batch, predicted_ms, 1)[0]
        rows.append({"hardware": key[0], "model": key[1], "prompt_tokens": key[2], "generated_tokens": key[3],
                     "batches": ",".join(str(int(b)) for b in batch),
                     "published_ms_per_sequence": slope_pub, "predicted_ms_per_sequence": slope_pred,
                     "ratio": slope_pred / slope_pub})
    return pd.DataFrame(rows)


def figure(table: pd.DataFrame, path: Path) -> None:
    """Predicted vs published per entry, y = x and a +-15% band, log axes; one marker per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 6))
    for metric, group in table.groupby("metric"):
        ax.scatter(group.published, group.predicted, label=metric, s=28)
    lo = min(table.published.min(), table.predicted.min()) * 0.7
    hi = max(table.published.max(), table.predicted.max()) * 1.4
    line = np.geomspace(lo, hi, 50)
    ax.plot(line, line, color="black", lw=1, label="y = x")
    ax.fill_between(line, line * 0.85, line * 1.15, color="grey", alpha=0.2, label="+-15%")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("published (unit of each metric)")
    ax.set_ylabel("hwsim predicted (same unit)")
    ax.set_title("hwsim gpu execution vs published measurements")
    ax.legend(fontsize=8)
    fig.tight_layout()
    from hwsim.files import write_atomic

    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def markdown(table: pd.DataFrame, slopes: pd.DataFrame) -> str:
    lines = ["| entry | hardware | model | batch | prompt | gen | graphs | metric | published | predicted | ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.id} | {r.hardware} | {r.model} | {r.batch_size} | {r.prompt_tokens} | "
                     f"{r.generated_tokens} | {'yes' if r.cuda_graphs else 'no'} | {r.metric} | "
                     f"{r.published:,.4g} | {r.predicted:,.4g} | {r.ratio:.2f} |")
    within = float(np.mean(np.abs(table.ratio - 1) <= 0.25))
    lines.append("")
    lines.append(f"{len(table)} entries; within 25%: {within:.0%}; ratio median {table.ratio.median():.2f}, "
                 f"range {table.ratio.min():.2f}-{table.ratio.max():.2f}.")
    if len(slopes):
        lines += ["", "| batch sweep | published ms / extra sequence | predicted | ratio |", "|---|---|---|---|"]
        for r in slopes.itertuples():
            lines.append(f"| {r.hardware} {r.model} {r.prompt_tokens}+{r.generated_tokens} (batch {r.batches}) | "
                         f"{r.published_ms_per_sequence:.2f} | {r.predicted_ms_per_sequence:.2f} | {r.ratio:.2f} |")
    return "\n".join(lines) + "\n"
