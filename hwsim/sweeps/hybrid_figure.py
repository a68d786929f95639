"""The crossover figure of the hybrid presets: closed-form decode DRAM bytes per generated token by
category against context length, one panel per model, one line style per batch size, and the contexts
at which a gate storing every recurrent state at 4 bits can still cut a step's bytes by 25% shaded.

Drawn from `hwsim.bounds.decode_bytes_per_step` (the analytic figure the simulated table sits beside:
everything streamed from DRAM, states at the policy's high precision), so it needs no simulation and
spans contexts the simulated points do not.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from hwsim.bounds import decode_bytes_per_step
from hwsim.geometry import footprint
from hwsim.sweeps.figures import Figure, save
from hwsim.sweeps.hybrids import TARGET_SAVING, gate_pays_until_context

#: contexts per stream drawn (positions), log-spaced from 256 to 1M
CONTEXTS = np.geomspace(2**8, 2**20, 49)
#: figure categories: (label, analytic categories summed, colour)
CURVES = (("weights + experts", ("weights", "experts"), "tab:blue"), ("recurrent state", ("state",), "tab:green"),
          ("KV cache", ("kv_cache",), "tab:red"), ("conv state", ("conv_state",), "tab:gray"))
LINESTYLES = ("-", "--", ":", "-.")
SHADES = ("tab:olive", "tab:green", "tab:cyan", "tab:purple")


def crossover_series(points) -> dict[str, dict[int, dict]]:
    """model -> batch -> {curve label: bytes per token at CONTEXTS, "gate_until": context}; the first
    point of each (model, batch) pair stands for it."""
    series: dict[str, dict[int, dict]] = {}
    for point in points:
        exp = point.experiment
        by_batch = series.setdefault(exp.model.name, {})
        batch = exp.workload.batch_size
        if batch in by_batch:
            continue
        fp = footprint(exp.model)
        steps = [decode_bytes_per_step(exp, fp, context=float(c)) for c in CONTEXTS]
        curves = {label: np.array([sum(s[c] for c in cats) for s in steps]) / batch for label, cats, _ in CURVES}
        by_batch[batch] = {**curves, "gate_until": gate_pays_until_context(exp, fp)}
    return series


def crossover_figure(points, folder: Path, name: str = "hybrids_crossover") -> Figure:
    series = crossover_series(points)
    models = list(series)
    cols = min(3, len(models))
    rows = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False, sharex=True,
                             layout="constrained")
    for ax, model in zip(axes.flat, models):
        batches = sorted(series[model].items())
        for i, (batch, data) in enumerate(batches):
            style = LINESTYLES[i % len(LINESTYLES)]
            for label, _, colour in CURVES:
                values = data[label]
                shared = label != CURVES[0][0]          # per-stream categories: per token, batch drops out
                if values.max() > 0 and (i == 0 or not shared):
                    ax.plot(CONTEXTS, values / 2**20, "-" if shared else style, color=colour, lw=1.4,
                            label=f"{label} (any batch)" if shared else f"{label}, batch {batch}")
            until = data["gate_until"]
            if until > CONTEXTS[0]:
                ax.axvspan(CONTEXTS[0], min(until, CONTEXTS[-1]), color=SHADES[i % len(SHADES)], alpha=0.12,
                           label=f"state gate can pay {TARGET_SAVING:.0%}, batch {batch}")
        ax.tick_params(labelbottom=True)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(model, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("context per stream (tokens)")
    for ax in axes[:, 0]:
        ax.set_ylabel("DRAM MiB per generated token")
    for ax in list(axes.flat)[len(models):]:
        ax.set_visible(False)
    handles, labels = {}, []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    fig.legend([handles[lab] for lab in labels], labels, loc="outside lower center", ncol=4, fontsize=7)
    title = "Hybrid presets: decode traffic by category against context"
    caption = ("Closed-form DRAM bytes per generated token (hwsim.bounds.decode_bytes_per_step: no SRAM residency, "
               "states at 16 bits) by category against each stream's context. State, KV and conv bytes are per stream, so "
               "per token they do not depend on the batch; the weights (and expected distinct experts) are shared by "
               "the batch: one line per batch size of the sweep. Where the red KV line crosses the green state line and the blue weights "
               "line is the crossover of the table above. Shaded: contexts at which a gate storing every recurrent "
               f"state at 4 bits still cuts the step's bytes by {TARGET_SAVING:.0%} (no shading: at no context).")
    return save(fig, folder, name, title, caption)
