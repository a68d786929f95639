"""`evaluate_policy`: one policy config -> flat `quality_*` columns, with the controls beside it.

Every evaluation runs the policy and its controls on the same token streams: all-high and all-low
(static at the policy's widths), and random gating at the policy's own low-precision share (the same
number of low writes per stream, at random steps, several seeds). Results are cached per variant and
stream (parquet, keyed by a hash of policy, state format, model and tokens); the full-precision
reference run is cached per stream (npz).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import TypeAdapter

from hwsim.errors import HwsimInputError
from hwsim.files import write_atomic
from hwsim.policies import PolicyConfig
from hwsim.policies.kinds import StaticPolicy
from hwsim.quality.model import LoadedModel, load_model
from hwsim.quality.quantise import StateFormat
from hwsim.quality.run import FixedGate, PolicyGate, Reference, gated_run, reference_run
from hwsim.quality.streams import (
    Stream,
    random_streams,
    same_tokenizer_as_traces,
    text_streams,
    trace_streams,
)
from hwsim.sizing import state_bytes

#: Bump when the evaluation changes meaning: cached results with another version are recomputed.
QUALITY_VERSION = 1
#: Bump when the reference arrays change (2: the state-update norm per step).
REFERENCE_VERSION = 2
#: `cache_dir=DEFAULT_CACHE_DIR` means the user cache (`hwsim.cache.cache_dir("quality")`), resolved
#: when called, so HWSIM_CACHE_DIR and `--cache-dir` apply; never a folder of the project.
DEFAULT_CACHE_DIR = "user-cache"
METRICS = ("kl_bits_mean", "kl_bits_p99", "top1_agreement", "ppl_change_pct", "state_rel_error_mean",
           "state_rel_error_final", "low_share")
_MODELS: dict[str, LoadedModel] = {}
_REFERENCES: dict[str, dict] = {}


def as_policy(policy):
    """A PolicyConfig instance from an instance or a plain mapping."""
    if isinstance(policy, dict):
        return TypeAdapter(PolicyConfig).validate_python(policy)
    return policy


def _hash(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _model(model_dir) -> LoadedModel:
    key = str(model_dir)
    if key not in _MODELS:
        _MODELS[key] = load_model(model_dir)
    return _MODELS[key]


def _references(loaded: LoadedModel, streams: list[Stream], snapshot_every: int,
                cache_dir: Path | None) -> tuple[list[dict], float, int]:
    """Reference arrays per stream, from memory, disk, or one batched run of the missing streams."""
    keys = [f"{loaded.model_id}-{s.key}-{snapshot_every}-r{REFERENCE_VERSION}" for s in streams]
    missing = [i for i, k in enumerate(keys) if k not in _REFERENCES]
    for i in list(missing):
        path = cache_dir / "reference" / f"{keys[i]}.npz" if cache_dir else None
        if path is not None and path.is_file():
            try:
                with np.load(path) as data:
                    _REFERENCES[keys[i]] = {name: data[name] for name in data.files}
            except (OSError, ValueError, EOFError):  # a damaged cache entry is recomputed
                continue
            missing.remove(i)
    seconds, tokens = 0.0, 0
    if missing:
        batch = np.stack([streams[i].token_ids for i in missing])
        started = time.perf_counter()
        ref = reference_run(loaded, batch, snapshot_every)
        seconds, tokens = time.perf_counter() - started, batch.size
        for j, i in enumerate(missing):
            arrays = {"logprobs": ref.logprobs[j], "entropy_bits": ref.entropy_bits[j], "nll_nats": ref.nll_nats[j],
                      "snapshot_steps": ref.snapshot_steps, "states": ref.states[j],
                      "update_norm": ref.update_norm[j]}
            _REFERENCES[keys[i]] = arrays
            if cache_dir is not None:
                write_atomic(cache_dir / "reference" / f"{keys[i]}.npz",
                             lambda tmp, arrays=arrays: _savez(tmp, arrays))
    return [_REFERENCES[k] for k in keys], seconds, tokens


def _savez(path: Path, arrays: dict) -> None:
    with open(path, "wb") as handle:  # a handle: np.savez would append .npz to a temporary name
        np.savez(handle, **arrays)


def _stack_reference(refs: list[dict]) -> Reference:
    return Reference(np.stack([r["logprobs"] for r in refs]), np.stack([r["entropy_bits"] for r in refs]),
                     np.stack([r["nll_nats"] for r in refs]), refs[0]["snapshot_steps"],
                     np.stack([r["states"] for r in refs]), np.stack([r["update_norm"] for r in refs]))


def _gate_entropy(gate: str, streams: list[Stream], ref: Reference) -> np.ndarray | None:
    """[steps, streams] entropy an external gate sees; None for self-gating."""
    if gate == "self":
        return None
    if gate == "reference":
        return ref.entropy_bits.T.copy()
    from hwsim.traces import load_trace

    steps = len(streams[0].token_ids)
    columns = []
    for stream in streams:
        name = stream.source if gate == "trace" else gate
        try:
            trace = load_trace(name).entropy_bits
        except HwsimInputError as error:
            raise HwsimInputError(f"gate {gate!r}: {error}", key="--gate",
                                  allowed="self, reference, trace (each stream's own text), a trace name") from None
        position = np.arange(stream.offset_tokens, stream.offset_tokens + steps)
        if stream.text_tokens:  # the trace's tokenizer differs: align by relative position in the text
            position = position * len(trace) // stream.text_tokens
        columns.append(np.take(trace, position, mode="wrap"))
    return np.stack(columns, axis=1).astype(np.float64)


def _frames_from_run(result, n_variants: int, n_streams: int, snapshot_steps: np.ndarray, high_bits: int):
    """Per (variant, stream): a per-step frame (NaN where a column has no value at that step)."""
    steps = result.kl_bits.shape[1]
    out = {}
    for v in range(n_variants):
        for s in range(n_streams):
            row = v * n_streams + s
            nll = np.full(steps, np.nan)
            nll[:-1] = result.nll_nats[row]
            rel = np.full(steps, np.nan)
            rel[snapshot_steps] = result.state_rel_error[row]
            out[v, s] = pd.DataFrame({"step": np.arange(steps), "kl_bits": result.kl_bits[row],
                                      "top1_agree": result.top1_agree[row], "nll_nats": nll,
                                      "entropy_bits": result.entropy_bits[row],
                                      "write_bits": result.write_bits[row],
                                      "low": result.write_bits[row] < high_bits, "state_rel_error": rel})
    return out


def _summarise(frames: list[pd.DataFrame], ref_nll: np.ndarray) -> dict:
    joined = pd.concat(frames, ignore_index=True)
    nll = joined["nll_nats"].dropna().to_numpy()
    rel_final = [f["state_rel_error"].dropna().iloc[-1] for f in frames if f["state_rel_error"].notna().any()]
    return {"kl_bits_mean": float(joined["kl_bits"].mean()),
            "kl_bits_p99": float(np.quantile(joined["kl_bits"], 0.99)),
            "top1_agreement": float(joined["top1_agree"].mean()),
            "ppl": float(math.exp(nll.mean())),
            "ppl_change_pct": float(100.0 * (math.exp(nll.mean() - ref_nll.mean()) - 1.0)),
            "state_rel_error_mean": float(joined["state_rel_error"].mean()),
            "state_rel_error_final": float(np.mean(rel_final)) if rel_final else float("nan"),
            "low_share": float(joined["low"].mean())}


def stream_domain(source: str) -> str:
    """prose / code / generated: the trace catalog's domain of a stream's source, else its name's prefix."""
    from hwsim.traces.catalog import catalog_entry

    try:
        return catalog_entry(source).domain
    except HwsimInputError:  # not a shipped trace: a text or random stream
        return source.split("-")[0]


def domain_columns(frames: dict[str, list[pd.DataFrame]], random_names: list[str], stream_list: list[Stream],
                   ref) -> dict:
    """Spreads and domains: the policy's KL spread over streams (std of per-stream means) and, per
    domain, its KL, top-1 and perplexity change beside the random control's KL (mean over seeds)."""
    per_stream = [float(f["kl_bits"].mean()) for f in frames["policy"]]
    row = {"quality_kl_bits_mean_stream_std": float(np.std(per_stream, ddof=1)) if len(per_stream) > 1
           else float("nan")}
    domains = [stream_domain(s.source) for s in stream_list]
    row["quality_domains"] = ",".join(sorted(set(domains)))
    nll = ref.nll_nats  # (streams, steps)
    for domain in sorted(set(domains)):
        chosen = [i for i, d in enumerate(domains) if d == domain]
        ref_nll = np.asarray(nll)[chosen].ravel()
        mine = _summarise([frames["policy"][i] for i in chosen], ref_nll)
        row[f"quality_{domain}_streams"] = len(chosen)
        for metric in ("kl_bits_mean", "top1_agreement", "ppl_change_pct"):
            row[f"quality_{domain}_{metric}"] = mine[metric]
        randoms = [_summarise([frames[n][i] for i in chosen], ref_nll)["kl_bits_mean"] for n in random_names]
        row[f"quality_random_{domain}_kl_bits_mean"] = float(np.mean(randoms)) if randoms else float("nan")
    return row


def verdict(policy_value: float, random_values: list[float], low_share: float) -> str:
    """'better' / 'worse' than random gating at equal share (lower is better), or 'indistinguishable':
    better only if below every seed and more than two standard deviations under their mean."""
    if not random_values or low_share <= 0.0 or low_share >= 1.0:
        return "n/a"
    values = np.asarray(random_values)
    spread = 2.0 * (values.std(ddof=1) if len(values) > 1 else 0.0)
    if policy_value < values.min() and policy_value < values.mean() - spread:
        return "better"
    if policy_value > values.max() and policy_value > values.mean() + spread:
        return "worse"
    return "indistinguishable"


def default_streams(loaded: LoadedModel, *, tokens: int, streams: int) -> list[Stream]:
    """The shipped traces' own tokens for a model with the traces' tokenizer (exact alignment with
    their entropies; prose, code and generated text), else the shipped texts in the model's tokenizer,
    else random tokens (tiny test models)."""
    if loaded.tokenizer is None:
        return random_streams(loaded.model.config.vocab_size, tokens=tokens, streams=streams)
    if same_tokenizer_as_traces(loaded.tokenizer):
        return trace_streams(tokens=tokens, streams=streams)
    return text_streams(loaded.tokenizer, tokens=tokens, streams=streams)


def evaluate_policy(policy, *, model_dir=None, tokens: int = 256, streams: int = 4, seeds: int = 3,
                    gate: str = "self", rounding: str = "nearest", snapshot_every: int = 16,
                    cache_dir: Path | None = DEFAULT_CACHE_DIR, loaded: LoadedModel | None = None,
                    stream_list: list[Stream] | None = None, threads: int | None = 1) -> dict:
    """Quality of `policy` against the full-precision run on the same tokens, with its controls.

    gate: "self" (the gated run's own next-token entropy, causal), "reference" (the full-precision
    model's entropy), "trace" (the shipped trace of each stream's own text, made by another model and
    aligned by relative position in the text, or exactly when the model shares the traces' tokenizer)
    or one trace catalog name for every stream. Returns flat columns:
    `quality_<metric>` for the policy, `quality_all_high_*`, `quality_all_low_*`,
    `quality_random_<metric>_{mean,std,min,max}` over the seeds, `quality_entropy_vs_random[_ppl]`.
    threads: torch threads for the evaluation (None leaves torch's setting alone).
    """
    policy = as_policy(policy)
    if threads:
        import torch

        torch.set_num_threads(threads)  # several threads on a shared small machine run ~40x slower
    if rounding not in ("nearest", "stochastic"):
        raise HwsimInputError(f"unknown rounding {rounding!r}", key="rounding", allowed="nearest, stochastic")
    loaded = loaded or _model(model_dir)
    if stream_list is None:
        stream_list = default_streams(loaded, tokens=tokens, streams=streams)
    tokens_arr = np.stack([s.token_ids for s in stream_list])
    if isinstance(cache_dir, str) and cache_dir == DEFAULT_CACHE_DIR:
        from hwsim.cache import cache_dir as user_cache

        cache_dir = user_cache("quality")
    cache_dir = Path(cache_dir) if cache_dir is not None else None
    refs, seconds, done = _references(loaded, stream_list, snapshot_every, cache_dir)
    ref = _stack_reference(refs)
    external = _gate_entropy(gate, stream_list, ref)
    # a percentile policy learns its threshold from the entropy it will be gated on
    policy = policy.calibrated([r["entropy_bits"] for r in refs] if external is None or gate == "reference"
                               else list(external.T))
    fmt = StateFormat(policy.group_size, policy.scale_bits, rounding)
    steps = tokens_arr.shape[1]
    common = {"fmt": fmt.__dict__, "model": loaded.model_id, "conv": policy.gate_conv_state,
              "snapshot": snapshot_every, "version": QUALITY_VERSION}
    static = {name: {k: v for k, v in (policy.model_dump() | {"kind": "static", "bits": bits}).items()
                     if k in StaticPolicy.model_fields}
              for name, bits in (("high", policy.high_bits), ("low", policy.low_bits))}
    variants = {"policy": {"policy": policy.model_dump(mode="json"), "gate": gate, **common},
                "all_high": {"policy": static["high"], **common},
                "all_low": {"policy": static["low"], **common}}
    frames: dict[str, list[pd.DataFrame]] = {}
    cached_all = True

    def load_or_run(names: list[str], make_gates) -> None:
        nonlocal seconds, done, cached_all
        paths = {n: [cache_dir / "variants" / f"{_hash(variants[n])}-{s.key}.parquet" for s in stream_list]
                 if cache_dir else None for n in names}
        todo = [n for n in names if paths[n] is None or not all(p.is_file() for p in paths[n])]
        for n in list(names):
            if n not in todo:
                try:
                    frames[n] = [pd.read_parquet(p) for p in paths[n]]
                except (OSError, ValueError):  # a damaged cache entry is recomputed
                    todo.append(n)
        if not todo:
            return
        cached_all = False
        result = gated_run(loaded, tokens_arr, ref, make_gates(todo), fmt, gate_conv_state=policy.gate_conv_state)
        seconds += result.seconds
        done += result.kl_bits.size
        per = _frames_from_run(result, len(todo), len(stream_list), ref.snapshot_steps, policy.high_bits)
        for v, n in enumerate(todo):
            frames[n] = [per[v, s] for s in range(len(stream_list))]
            if paths[n] is not None:
                for frame, path in zip(frames[n], paths[n]):
                    write_atomic(path, lambda tmp, frame=frame: frame.to_parquet(tmp, index=False))

    def first_gates(names):
        table = {"policy": PolicyGate(policy, external),
                 "all_high": FixedGate(np.full((steps, len(stream_list)), policy.high_bits)),
                 "all_low": FixedGate(np.full((steps, len(stream_list)), policy.low_bits))}
        return [table[n] for n in names]

    alias = None  # a static policy at either width is one of its own controls: run it once
    if isinstance(policy, StaticPolicy) and policy.bits in (policy.low_bits, policy.high_bits):
        alias = "all_low" if policy.bits == policy.low_bits else "all_high"
    load_or_run(["all_high", "all_low"] if alias else ["policy", "all_high", "all_low"], first_gates)
    if alias:
        frames["policy"] = frames[alias]
    low_counts = [int(f["low"].sum()) for f in frames["policy"]]
    random_names = [f"random_{seed}" for seed in range(seeds)]
    for seed, name in enumerate(random_names):
        variants[name] = {**variants["policy"], "random_seed": seed, "low_counts": low_counts}

    def random_gates(names):
        gates = []
        for n in names:
            seed = int(n.split("_")[1])
            bits = np.full((steps, len(stream_list)), policy.high_bits, dtype=np.int16)
            for s, (stream, count) in enumerate(zip(stream_list, low_counts)):
                rng = np.random.default_rng([seed, int(stream.key[:8], 16)])
                bits[rng.permutation(steps)[:count], s] = policy.low_bits
            gates.append(FixedGate(bits))
        return gates

    if random_names:
        load_or_run(random_names, random_gates)
    ref_nll = ref.nll_nats.ravel()
    summary = {n: _summarise(frames[n], ref_nll) for n in frames}
    row = {"quality_model": loaded.name, "quality_model_id": loaded.model_id, "quality_gate": gate,
           "quality_rounding": rounding, "quality_tokens": steps, "quality_streams": len(stream_list),
           "quality_seeds": seeds, "quality_reference_ppl": float(math.exp(ref_nll.mean())),
           "quality_low_bits": policy.low_bits, "quality_high_bits": policy.high_bits,
           "quality_group_size": policy.group_size, "quality_scale_bits": policy.scale_bits,
           "quality_threshold_bits": getattr(policy, "threshold_bits", float("nan")),
           "quality_cached": cached_all,
           "quality_eval_tokens_per_s": float(done / seconds) if seconds > 0 else float("nan")}
    for metric, value in summary["policy"].items():
        row[f"quality_{metric}"] = value
    for control in ("all_high", "all_low"):
        for metric, value in summary[control].items():
            row[f"quality_{control}_{metric}"] = value
    for metric in (*METRICS, "ppl"):
        values = [summary[n][metric] for n in random_names]
        row[f"quality_random_{metric}_mean"] = float(np.mean(values)) if values else float("nan")
        row[f"quality_random_{metric}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        row[f"quality_random_{metric}_min"] = float(np.min(values)) if values else float("nan")
        row[f"quality_random_{metric}_max"] = float(np.max(values)) if values else float("nan")
    row.update(domain_columns(frames, random_names, stream_list, ref))
    elements = int(refs[0]["states"].shape[-1])  # one layer's SSM state per stream
    written = np.concatenate([f["write_bits"].to_numpy() for f in frames["policy"]])
    full = float(state_bytes(elements, policy.high_bits, policy.group_size, policy.scale_bits))
    row["quality_state_bytes_saving_pct"] = float(
        100.0 * (1.0 - state_bytes(elements, written, policy.group_size, policy.scale_bits).mean() / full))
    share = summary["policy"]["low_share"]
    row["quality_entropy_vs_random"] = verdict(summary["policy"]["kl_bits_mean"],
                                               [summary[n]["kl_bits_mean"] for n in random_names], share)
    row["quality_entropy_vs_random_ppl"] = verdict(summary["policy"]["ppl_change_pct"],
                                                   [summary[n]["ppl_change_pct"] for n in random_names], share)
    return row
