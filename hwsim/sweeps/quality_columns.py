"""`quality: true` in a sweep file: add the quality columns of each point's policy to the results.

Quality depends on the policy and the tokens, not on the hardware, so each distinct policy is
evaluated once (and `hwsim.quality` caches it on disk per policy and stream), then joined onto every
point that uses it. Needs the [traces] extra (torch); the core sweep never imports it otherwise.
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


def add_quality_columns(table: pd.DataFrame, points: list, options: QualityOptions) -> pd.DataFrame:
    """Join `quality_*` columns onto the rows of finished points, one evaluation per distinct policy."""
    import sys

    from hwsim.quality import evaluate_policy

    by_hash = {p.point_hash: p for p in points}
    keys, results = {}, {}
    hashes = list(table.loc[table["status"] == "ok", "point_hash"])
    distinct = len({json.dumps(by_hash[h].experiment.policy.model_dump(mode="json"), sort_keys=True) for h in hashes})
    if distinct:
        print(f"quality: {distinct} distinct policies on the quality model (transformers' PyTorch path "
              "on the CPU; cached per policy)", file=sys.stderr)
    for point_hash in hashes:
        policy = by_hash[point_hash].experiment.policy
        key = json.dumps(policy.model_dump(mode="json"), sort_keys=True)
        keys[point_hash] = key
        if key not in results:
            print(f"quality: policy {len(results) + 1}/{distinct}: {policy.kind}", file=sys.stderr)
            results[key] = evaluate_policy(policy, model_dir=options.model, tokens=options.tokens,
                                           streams=options.streams, seeds=options.seeds)
    quality = pd.DataFrame([{"point_hash": h, **results[k]} for h, k in keys.items()])
    if quality.empty:
        return table
    return table.merge(quality, on="point_hash", how="left")
