"""Quality figures: traffic saving against quality cost with the random-gating control beside it, and
quality against bit-width and group size. Inputs are tidy frames with named columns, never positions."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

LABELS = {"quality_kl_bits_mean": "KL divergence, mean (bits)",
          "quality_ppl_change_pct": "perplexity change (%)",
          "saving_dram_bytes_per_token_pct": "DRAM traffic saving per token (%)",
          "quality_low_share": "share of low-precision state writes",
          "quality_state_bytes_saving_pct": "SSM-state bytes saved, incl. scales (%)"}


def _random_column(quality: str, stat: str) -> str:
    return f"quality_random_{quality.removeprefix('quality_')}_{stat}"


def pareto_figure(frame: pd.DataFrame, path: str | Path, *, saving: str = "saving_dram_bytes_per_token_pct",
                  quality: str = "quality_kl_bits_mean") -> Path:
    """Saving (x) against quality cost (y) for entropy gating, random gating at the same share beside it
    (mean ± std over seeds, same x), and the Pareto front of the entropy-gated points."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    x, y = frame[saving].to_numpy(float), frame[quality].to_numpy(float)
    mean, std = frame[_random_column(quality, "mean")], frame[_random_column(quality, "std")].fillna(0.0)
    ax.errorbar(x, mean, yerr=std, fmt="s", color="tab:gray", alpha=0.8, capsize=3,
                label="random gating, same share (mean ± std)")
    ax.scatter(x, y, color="tab:blue", zorder=3, label="entropy gating")
    order = np.argsort(-x)
    front, best = [], np.inf
    for i in order:  # highest saving first; keep points that lower the cost
        if y[i] < best:
            front.append(i)
            best = y[i]
    if front:
        ax.plot(x[front], y[front], color="tab:blue", lw=1, label="Pareto front (entropy gating)")
    ax.set_xlabel(LABELS.get(saving, saving))
    ax.set_ylabel(LABELS.get(quality, quality))
    return _finish(fig, ax, path, log_y=quality == "quality_kl_bits_mean" and bool((y > 0).all()))


def share_figure(frame: pd.DataFrame, path: str | Path, *, quality: str = "quality_kl_bits_mean") -> Path:
    """Without a hardware run: the state bytes saved (share x width, scales counted as the hardware
    model counts them) stand in for the traffic saving."""
    return pareto_figure(frame, path, saving="quality_state_bytes_saving_pct", quality=quality)


def bits_group_figure(frame: pd.DataFrame, path: str | Path, *, quality: str = "quality_ppl_change_pct",
                      bits: str = "quality_low_bits", group: str = "quality_group_size") -> Path:
    """Quality of the all-low control (every state at the low width) against bit-width, one line per
    group size: what a width costs before any gating."""
    column = quality.replace("quality_", "quality_all_low_", 1)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for size, part in frame.groupby(group):
        part = part.groupby(bits, as_index=False)[column].mean().sort_values(bits)
        ax.plot(part[bits], part[column], marker="o", label=f"group {size}")
    ax.set_xlabel("state bits (all-low)")
    ax.set_ylabel(LABELS.get(quality, quality))
    return _finish(fig, ax, path, log_y=bool((frame[column] > 0).all()))


def _finish(fig, ax, path: str | Path, *, log_y: bool) -> Path:
    """Shared styling and saving of the quality figures (the format follows the file suffix)."""
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from hwsim.files import write_atomic

    path = Path(path)
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png"))
    finally:
        plt.close(fig)
    return path
