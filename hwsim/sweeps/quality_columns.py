"""`quality: true` in a sweep file: add the quality columns of each point's policy to the results.

The quality model's own entropies differ from the traces' (another, smaller model), so the same
threshold writes a different share of states low there. With `match_share` (the default) each gated
point is measured at ITS low-precision share: the quality model is gated by its own entropy with the
threshold that gives that share (a percentile policy, calibrated on the reference run), at the point's
widths and scales; the measured share is reported beside it (`quality_low_share`). With `trace_gate`
(the default) the same share is also measured gated by the shipped traces' entropies for the same
tokens (`quality_trace_*`; exact alignment when the quality model shares the traces' tokenizer). Quality depends on
the policy and the tokens, not on the hardware, so each distinct (widths, share rounded to
`share_step`) is evaluated once (self- and trace-gated evaluations spread over a process pool) and
cached on disk. Needs the [traces] extra (torch).
"""

from __future__ import annotations

import json

import pandas as pd
from pydantic import Field, PositiveInt

from hwsim.records import Frozen


class QualityOptions(Frozen):
    """How the quality of each policy is measured (see `hwsim quality`)."""

    tokens: PositiveInt = Field(256, description="tokens per stream")
    streams: PositiveInt = Field(4, description="token streams of the shipped texts")
    seeds: PositiveInt = Field(3, description="seeds of the random-gating control")
    model: str | None = Field(None, description="local Mamba checkpoint dir; default the shipped model")
    match_share: bool = Field(True, description="measure each gated point at its own low-precision share "
                              "(the quality model gated by a percentile threshold); false: the point's "
                              "own policy on the quality model's entropy")
    share_step: float = Field(0.05, gt=0.0, le=0.5, description="shares are rounded to this step")
    only: dict[str, object] = Field(default_factory=dict, description="evaluate only the points whose "
                                    "swept or resolved values match these (e.g. {workload.traces: null})")
    trace_gate: bool = Field(True, description="also gate the quality model by the shipped traces' entropies "
                             "for the same tokens (exact when it shares the traces' tokenizer), at the same "
                             "share: `quality_trace_*` columns")


#: Columns of the trace-gated evaluation kept beside the self-gated ones.
TRACE_COLUMNS = ("kl_bits_mean", "kl_bits_p99", "top1_agreement", "ppl_change_pct", "low_share",
                 "entropy_vs_random", "random_kl_bits_mean_mean")


def trace_columns(traced: dict) -> list[str]:
    """TRACE_COLUMNS, the spread over streams and each domain's figures of a trace-gated evaluation."""
    per_domain = [name for d in traced["quality_domains"].split(",")
                  for name in (f"{d}_kl_bits_mean", f"{d}_top1_agreement", f"{d}_ppl_change_pct",
                               f"random_{d}_kl_bits_mean")]
    return [*TRACE_COLUMNS, "kl_bits_mean_stream_std", *per_domain]


def quality_policy(point, row: pd.Series, options: QualityOptions):
    """The policy to measure for a point: its own, or (match_share) a percentile policy at its share."""
    from hwsim.policies import POLICY_KINDS

    policy = point.experiment.policy
    share = row.get("low_precision_share")
    if (not options.match_share or policy.kind == "static" or share is None or not pd.notna(share)
            or share <= 0.0 or share >= 1.0):
        return policy
    target = min(max(round(float(share) / options.share_step) * options.share_step, options.share_step),
                 1.0 - options.share_step)
    fields = {k: getattr(policy, k) for k in ("low_bits", "high_bits", "group_size", "scale_bits",
                                              "gate_conv_state", "gate_on")}
    return POLICY_KINDS["percentile"](kind="percentile", target_low_share=round(target, 6), **fields)


def _evaluate(task: tuple) -> dict:
    """One evaluation (a pool task): (policy as JSON, options as JSON, gate, cache folder or None)."""
    from hwsim.quality import evaluate_policy

    policy, options, gate, cache = task
    options = QualityOptions.model_validate(options)
    return evaluate_policy(policy, model_dir=options.model, tokens=options.tokens,
                           streams=options.streams, seeds=options.seeds, gate=gate, cache_dir=cache)


def _evaluate_all(tasks: list[tuple], workers: int) -> list[dict]:
    """Every evaluation, in a process pool when there are several (each is one torch thread; the
    evaluations of different policies share nothing but the on-disk cache, written atomically)."""
    import multiprocessing
    import os
    import sys
    from concurrent.futures import ProcessPoolExecutor

    if workers <= 1 or len(tasks) <= 1:
        results = []
        for index, task in enumerate(tasks):
            print(f"quality: evaluation {index + 1}/{len(tasks)}", file=sys.stderr)
            results.append(_evaluate(task))
        return results
    from hwsim.sweeps.execute import _watch_parent

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context(method),
                             initializer=_watch_parent, initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(_evaluate, task) for task in tasks]
        results = []
        try:
            for index, future in enumerate(futures):
                results.append(future.result())
                print(f"quality: evaluation {index + 1}/{len(tasks)} ({workers} processes)", file=sys.stderr)
        except BaseException:  # Ctrl-C or a failed evaluation: no queued evaluation starts after it
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        return results


def add_quality_columns(table: pd.DataFrame, points: list, options: QualityOptions,
                        workers: int | None = None, cache: str | None = "user") -> pd.DataFrame:
    """Join `quality_*` columns onto the rows of finished points, one evaluation per distinct policy
    (and gate), spread over `workers` processes (default: all cores). `cache`: "user" = the user
    cache folder (resolved here, so workers need not inherit the setting), a folder, or None."""
    import os
    import sys

    from hwsim.cache import cache_dir
    from hwsim.sweeps.spec import _matches, flatten

    by_hash = {p.point_hash: p for p in points}
    rows = table.set_index("point_hash")
    keys, chosen = {}, {}
    for point_hash in table.loc[table["status"] == "ok", "point_hash"]:
        point = by_hash[point_hash]
        if options.only and not _matches(point.params, flatten(point.resolved), options.only):
            continue
        chosen[point_hash] = quality_policy(point, rows.loc[point_hash], options)
        keys[point_hash] = json.dumps(chosen[point_hash].model_dump(mode="json"), sort_keys=True)
    distinct = {key: chosen[h] for h, key in keys.items()}
    if not distinct:
        return table
    print(f"quality: {len(distinct)} distinct policies on the quality model (PyTorch on the CPU; cached per "
          "policy)", file=sys.stderr)
    option_json = options.model_dump(mode="json")
    folder = str(cache_dir("quality")) if cache == "user" else cache
    tasks = [(policy.model_dump(mode="json"), option_json, gate, folder) for policy in distinct.values()
             for gate in (("self", "trace") if options.trace_gate and policy.kind != "static" else ("self",))]
    evaluated = dict(zip([(json.dumps(t[0], sort_keys=True), t[2]) for t in tasks],
                         _evaluate_all(tasks, max(1, workers or os.cpu_count() or 1))))
    results = {}
    for key in distinct:
        results[key] = evaluated[(key, "self")]
        traced = evaluated.get((key, "trace"))
        if traced is not None:
            results[key] |= {f"quality_trace_{name}": traced[f"quality_{name}"] for name in trace_columns(traced)}
    quality = pd.DataFrame([{"point_hash": h, **results[k],
                             "quality_target_low_share": getattr(chosen[h], "target_low_share", float("nan"))}
                            for h, k in keys.items()])
    return table.merge(quality, on="point_hash", how="left")
