"""Per-step records -> tidy frames and the run summary, with the analytic bound beside each figure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hwsim.engine import Timeline
from hwsim.traffic import Traffic
from hwsim.units import per_second


def step_frame(traffic: Traffic, timeline: Timeline, first_step: int, batch: int) -> pd.DataFrame:
    """One row per decode step: time, bytes by level/direction/category, actions for the energy table."""
    columns: dict[str, np.ndarray] = {
        "step": np.arange(first_step, first_step + traffic.steps),
        "time_start_ns": timeline.step_start_ns,
        "latency_ns": timeline.step_latency_ns,
        "tokens": np.full(traffic.steps, batch),
        "low_precision_writes": traffic.low_writes,
        "replay_passes": traffic.replay_passes,
        "ssm_state_sram_share": traffic.ssm_sram_share,
    }
    for (level, direction, category), values in sorted(traffic.bytes.items()):
        columns[f"{level}_{direction}_bytes_{category}"] = values
    frame = pd.DataFrame(columns)
    for level in ("dram", "sram"):
        for direction in ("read", "write"):
            cols = [c for c in frame.columns if c.startswith(f"{level}_{direction}_bytes_")]
            frame[f"{level}_{direction}_bytes"] = frame[cols].sum(axis=1) if cols else 0.0
            frame[f"{level}_{direction}_bits"] = frame[f"{level}_{direction}_bytes"] * 8.0
    frame["dram_bytes"] = frame["dram_read_bytes"] + frame["dram_write_bytes"]
    frame["dram_bandwidth_GBps"] = frame["dram_bytes"] / frame["latency_ns"]
    for name, values in traffic.actions.items():
        frame[name] = values
    if "dram_activates" not in frame:
        frame["dram_activates"] = 0.0
    return frame


class SummaryAccumulator:
    """Sums chunk frames so long runs keep only per-step latencies in memory."""

    def __init__(self) -> None:
        self.sums: pd.Series | None = None
        self.latencies: list[np.ndarray] = []
        self.peak_bandwidth_GBps = 0.0
        self.steps = 0

    def add(self, frame: pd.DataFrame) -> None:
        numeric = frame.drop(columns=["step", "time_start_ns", "dram_bandwidth_GBps"]).sum()
        self.sums = numeric if self.sums is None else self.sums + numeric
        self.latencies.append(frame["latency_ns"].to_numpy())
        self.peak_bandwidth_GBps = max(self.peak_bandwidth_GBps, float(frame["dram_bandwidth_GBps"].max()))
        self.steps += len(frame)


def summarise(acc: SummaryAccumulator, *, end_ns: float, bound: dict[str, float], batch: int,
              extra: dict) -> dict:
    s, latency = acc.sums, np.concatenate(acc.latencies)
    tokens = float(s["tokens"])
    out: dict[str, float | int | str] = {
        "steps": acc.steps, "batch_size": batch, "tokens": int(tokens),
        "simulated_time_ns": end_ns, "tokens_per_s": per_second(tokens, end_ns),
        "step_latency_ns_mean": float(latency.mean()),
        "step_latency_ns_p50": float(np.percentile(latency, 50)),
        "step_latency_ns_p95": float(np.percentile(latency, 95)),
        "step_latency_ns_p99": float(np.percentile(latency, 99)),
        "dram_bytes_total": float(s["dram_bytes"]),
        "dram_read_bytes": float(s["dram_read_bytes"]), "dram_write_bytes": float(s["dram_write_bytes"]),
        "sram_bytes_total": float(s["sram_read_bytes"] + s["sram_write_bytes"]),
        "dram_bytes_per_token": float(s["dram_bytes"]) / tokens,
        "sram_bytes_per_token": float(s["sram_read_bytes"] + s["sram_write_bytes"]) / tokens,
        "dram_bandwidth_GBps_avg": float(s["dram_bytes"]) / end_ns,
        "dram_bandwidth_GBps_peak_step": acc.peak_bandwidth_GBps,
        "low_precision_share": float(s["low_precision_writes"]) / tokens,
        "replay_passes": int(s["replay_passes"]),
        "ssm_state_sram_share": float(s["ssm_state_sram_share"]) / acc.steps,
        "dram_activates_per_token": float(s["dram_activates"]) / tokens,
        "matmul_flops_per_token": 2.0 * float(s["matmul_macs"]) / tokens,
        "vector_ops_per_token": float(s["vector_ops"]) / tokens,
    }
    categories = sorted({c.split("_bytes_", 1)[1] for c in s.index if "_bytes_" in c})
    for category in categories:
        dram = sum(float(s.get(f"dram_{d}_bytes_{category}", 0.0)) for d in ("read", "write"))
        sram = sum(float(s.get(f"sram_{d}_bytes_{category}", 0.0)) for d in ("read", "write"))
        out[f"dram_bytes_per_token_{category}"] = dram / tokens
        out[f"sram_bytes_per_token_{category}"] = sram / tokens
    state = sum(out.get(f"dram_bytes_per_token_{c}", 0.0) for c in ("ssm_state", "checkpoint", "replay"))
    out["state_share_of_dram_traffic"] = state / out["dram_bytes_per_token"] if out["dram_bytes_per_token"] else 0.0
    for column in s.index:
        if column.startswith("energy_pJ_"):
            out[column.replace("energy_pJ_", "energy_pJ_per_token_")] = float(s[column]) / tokens
    for column in ("kv_context_tokens_mean", "kv_low_precision_share"):   # attention layers only
        if column in s.index:
            out[column] = float(s[column]) / acc.steps
    out.update(bound)
    out["bound_tokens_per_s"] = per_second(tokens, bound["bound_time_ns"])
    out["simulated_over_bound"] = end_ns / bound["bound_time_ns"]
    out.update(extra)
    return out


SAVING_METRICS = {
    "dram_bytes_per_token": "saving_dram_bytes_per_token_pct",
    "energy_pJ_per_token_total": "saving_energy_per_token_pct",
    "step_latency_ns_mean": "saving_step_latency_pct",
}


def savings(main: dict, baseline: dict) -> dict:
    """Percent saved against the static high-precision baseline (positive = better than baseline)."""
    out = {f"baseline_{k}": baseline[k] for k in (*SAVING_METRICS, "tokens_per_s", "dram_bandwidth_GBps_avg",
                                                   "dram_bytes_per_token_ssm_state",
                                                   "dram_bytes_per_token_kv_cache",
                                                   "state_share_of_dram_traffic")
           if k in baseline}
    for metric, name in SAVING_METRICS.items():
        base = baseline[metric]
        out[name] = 100.0 * (base - main[metric]) / base if base else 0.0
    out["gain_tokens_per_s_pct"] = 100.0 * (main["tokens_per_s"] / baseline["tokens_per_s"] - 1.0)
    return out


def end_to_end(decode: dict | None, prefill: dict, *, batch: int, generated_tokens: int) -> dict:
    """Time to first token (the prefill yields it), time per output token, time to last token and
    end-to-end throughput (batch x generated tokens / total time), each beside its roofline bound."""
    ttft, bound_ttft = prefill["prefill_time_ns"], prefill["prefill_bound_time_ns"]
    out = {"ttft_ns": ttft, "bound_ttft_ns": bound_ttft, "generated_tokens_per_stream": generated_tokens}
    if decode is None:
        return out
    total = ttft + decode["simulated_time_ns"]
    bound_total = bound_ttft + decode["bound_time_ns"]
    out.update({"tpot_ns": decode["step_latency_ns_mean"], "bound_tpot_ns": decode["bound_time_ns"] / decode["steps"],
                "time_to_last_token_ns": total, "bound_time_to_last_token_ns": bound_total,
                "e2e_tokens_per_s": per_second(batch * generated_tokens, total),
                "bound_e2e_tokens_per_s": per_second(batch * generated_tokens, bound_total),
                "e2e_over_bound": total / bound_total})
    return out
