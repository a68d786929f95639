"""Entropy statistics and histograms of traces (for `hwsim trace stats`); outside the simulator core."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hwsim.traces.format import Trace

PERCENTILES = (10, 50, 90, 99)
THRESHOLDS_BITS = (0.5, 1.0, 2.0, 4.0)


def entropy_table(traces: list[Trace]) -> pd.DataFrame:
    """One row per trace: token count, mean and percentiles of entropy, share of tokens under thresholds."""
    rows = []
    for trace in traces:
        h = trace.entropy_bits
        row = {"tokens": len(h), "entropy_mean_bits": h.mean()}
        row.update({f"entropy_p{p}_bits": v for p, v in zip(PERCENTILES, np.percentile(h, PERCENTILES))})
        row.update({f"share_under_{t:g}_bits": float((h < t).mean()) for t in THRESHOLDS_BITS})
        rows.append(row)
    return pd.DataFrame(rows, index=pd.Index([t.name for t in traces], name="trace"))


def plot_histograms(traces: list[Trace], out: str | Path) -> Path:
    """One panel per trace: share of tokens per 0.25-bit entropy bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = max(float(t.entropy_bits.max()) for t in traces)
    bins = np.arange(0.0, top + 0.25, 0.25)
    fig, axes = plt.subplots(len(traces), 1, figsize=(7, 1.9 * len(traces) + 0.8), sharex=True, squeeze=False)
    for ax, trace in zip(axes[:, 0], traces):
        h = trace.entropy_bits
        ax.hist(h, bins=bins, weights=np.full(len(h), 100.0 / len(h)))
        ax.set_ylabel("tokens (%)")
        ax.set_title(f"{trace.name}: {len(h)} tokens, mean {h.mean():.2f} bits", fontsize=9)
    axes[-1, 0].set_xlabel("next-token entropy (bits)")
    fig.suptitle("Next-token entropy per trace (share of tokens per 0.25-bit bin)")
    fig.tight_layout()
    from hwsim.files import write_atomic

    out = Path(out)
    fmt = out.suffix.lstrip(".").lower() or "png"
    try:
        write_atomic(out, lambda tmp: fig.savefig(tmp, dpi=110, format=fmt))
    finally:
        plt.close(fig)
    return out
