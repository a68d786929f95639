"""Which signal is worth gating on: candidate gate signals compared at equal low-precision share.

Every signal scores each step's state write (lower = safer to store low); at a share s each stream
writes exactly round(s * steps) of its states low, at its lowest-scored steps (a per-stream
percentile threshold, set offline, so every signal is measured at the same share and the comparison
is of the signal, not of a threshold's calibration). What each signal costs the hardware and when it
is known is data (`SIGNALS`), printed beside the results. Signals come from the full-precision run of
the same tokens (a gated run's own signal differs by its own rounding; `hwsim quality` measures that
for the entropy gate).

The state written at the end of step t (after reading token t) is read by step t+1. "Previous"
signals are the previous step's output distribution, known before step t starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from hwsim.quality.model import LoadedModel, layer_states
from hwsim.quality.quantise import StateFormat, store
from hwsim.quality.run import FixedGate, Reference, gated_run
from hwsim.quality.streams import Stream
from hwsim.sizing import state_bytes

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Signal:
    name: str
    label: str
    known: str      # when the value exists, relative to the write of step t's state
    cost: str       # what the accelerator must compute, read or keep for it


SIGNALS = {s.name: s for s in (
    Signal("random", "random (control)", "any time", "a random number per stream and step"),
    Signal("entropy", "entropy of the previous step", "before step t (previous logits)",
           "softmax entropy over the vocabulary per step: V exps and a reduction after the LM head"),
    Signal("top1", "top-1 probability of the previous step", "before step t (previous logits)",
           "max logit and the softmax normaliser (a reduction over V; the sampler has both)"),
    Signal("surprisal", "surprisal of the token just read", "before step t (once token t is chosen)",
           "the chosen token's log-probability: its logit and the normaliser (the sampler has both)"),
    Signal("update_norm", "state-update norm", "at the write (in the scan kernel)",
           "||h_t - h_{t-1}|| / ||h_t|| accumulated while the state is rewritten; no LM head needed"),
    Signal("entropy_keep_layer", "entropy, most sensitive layer always high", "before step t",
           "the entropy gate plus a static per-layer mask (chosen on calibration streams)"),
    Signal("entropy_keep_heads", "entropy, longest-memory quarter of heads always high", "before step t",
           "the entropy gate plus a static per-head mask from the weights (slowest decay dt*|A|)"),
    Signal("oracle", "one-step oracle", "never (needs the next step's exact and perturbed outputs)",
           "the KL at step t+1 caused by storing step t's state low: an upper-bound reference"),
)}


def lowest_share(scores: np.ndarray, share: float) -> np.ndarray:
    """low [streams, steps]: per stream, the round(share * steps) lowest-scored steps (ties by step).
    Steps scored +inf (nothing known yet) are taken only when nothing else is left."""
    streams, steps = scores.shape
    count = round(share * steps)
    order = np.argsort(scores, axis=1, kind="stable")[:, :count]
    low = np.zeros((streams, steps), dtype=bool)
    np.put_along_axis(low, order, True, axis=1)
    return low


def previous(values: np.ndarray) -> np.ndarray:
    """values [streams, steps] shifted one step later; +inf at step 0 (nothing known yet)."""
    out = np.full(values.shape, np.inf)
    out[:, 1:] = values[:, :-1]
    return out


@torch.no_grad()
def one_step_costs(loaded: LoadedModel, tokens: np.ndarray, ref: Reference, low_bits: int,
                   fmt: StateFormat) -> np.ndarray:
    """[streams, steps]: KL (bits) at step t+1 when only step t's SSM states are stored at `low_bits`
    (everything else exact). A second batch half carries the perturbed copy, re-seeded from the exact
    states after every step; the last step's write has no later step here (cost 0)."""
    streams, steps = tokens.shape
    ids = torch.as_tensor(np.concatenate([tokens, tokens]))
    cost = np.zeros((streams, steps))
    cache = None
    generator = torch.Generator().manual_seed(0)
    for t in range(steps):
        out = loaded.model(ids[:, t, None], cache=cache, use_cache=True)
        cache = out.cache
        lp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        exact, perturbed = lp[:streams], lp[streams:]
        if t > 0:
            cost[:, t - 1] = ((exact.exp() * (exact - perturbed)).sum(-1) / LN2).clamp_min(0).numpy()
        for state in layer_states(cache, loaded.n_layers, conv=True):
            state[streams:] = state[:streams]
        bits = torch.full((streams,), low_bits)
        for state in layer_states(cache, loaded.n_layers, conv=False):
            state[streams:] = store(state[:streams], bits, fmt, generator)
    return cost


def head_decay(loaded: LoadedModel) -> np.ndarray | None:
    """[layers, heads]: each Mamba-2 head's mean per-step decay rate softplus(dt_bias) * exp(A_log)
    (from the weights; small = long memory). None for Mamba-1 (no heads)."""
    layers = loaded.model.backbone.layers
    if not hasattr(layers[0].mixer, "num_heads"):
        return None
    rates = [torch.nn.functional.softplus(l.mixer.dt_bias.float()) * torch.exp(l.mixer.A_log.float())
             for l in layers]
    return torch.stack(rates).detach().numpy()


def layer_sensitivity(loaded: LoadedModel, tokens: np.ndarray, ref: Reference, low_bits: int, high_bits: int,
                      fmt: StateFormat) -> np.ndarray:
    """[layers]: mean KL (bits) when only that layer's SSM states are stored low at every step."""
    streams, steps = tokens.shape
    layers = loaded.n_layers
    gates = []
    for layer in range(layers):
        bits = np.full((steps, streams, layers), high_bits, dtype=np.int16)
        bits[:, :, layer] = low_bits
        gates.append(FixedGate(bits))
    result = gated_run(loaded, tokens, ref, gates, fmt)
    return result.kl_bits.reshape(layers, streams, steps).mean(axis=(1, 2))


def layer_states_shape(loaded: LoadedModel) -> tuple[int, ...]:
    """The shape of one layer's SSM state of one stream (from the config)."""
    config = loaded.model.config
    if hasattr(config, "num_heads"):
        return (config.num_heads, config.head_dim, config.state_size)
    return (config.intermediate_size, config.state_size)


def signal_bits(name: str, share: float, *, ref: Reference, oracle_cost: np.ndarray | None,
                keep_layer: int | None, decay: np.ndarray | None, layers: int, low_bits: int,
                high_bits: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """(write bits [steps, streams] or [steps, streams, layers, heads], low share of state units)."""
    streams, steps = ref.entropy_bits.shape
    entropy_prev = previous(ref.entropy_bits)
    if name == "random":
        rng = np.random.default_rng(seed)
        scores = rng.random((streams, steps))
    elif name == "entropy":
        scores = entropy_prev
    elif name == "top1":
        top1 = np.exp(ref.logprobs.max(-1)).astype(np.float64)
        scores = previous(-top1)
    elif name == "surprisal":
        surprisal = np.full((streams, steps), np.inf)
        surprisal[:, 1:] = ref.nll_nats / LN2  # token t's surprisal under step t-1's output
        scores = surprisal
    elif name == "update_norm":
        scores = ref.update_norm
    elif name == "oracle":
        scores = oracle_cost
    elif name == "entropy_keep_layer":
        fraction = 1.0 / layers
        inner = min(1.0, share / (1.0 - fraction))
        low = lowest_share(entropy_prev, inner)
        bits = np.where(low.T[:, :, None], low_bits, high_bits).repeat(layers, axis=2).astype(np.int16)
        bits[:, :, keep_layer] = high_bits
        return bits, float((bits < high_bits).mean())
    elif name == "entropy_keep_heads":
        heads = decay.shape[1]
        kept = decay <= np.quantile(decay, 0.25)  # the slowest-decaying quarter of all heads
        inner = min(1.0, share / (1.0 - kept.mean()))
        low = lowest_share(entropy_prev, inner)
        bits = np.where(low.T[:, :, None, None], low_bits, high_bits)
        bits = np.broadcast_to(bits, (steps, streams, layers, heads)).astype(np.int16).copy()
        bits[:, :, kept] = high_bits
        return bits, float((bits < high_bits).mean())
    else:
        raise KeyError(name)
    low = lowest_share(scores, share)
    return np.where(low.T, low_bits, high_bits).astype(np.int16), float(low.mean())


def _full_shape(bits: np.ndarray, layers: int, decay: np.ndarray | None) -> np.ndarray:
    """Bits as [steps, streams, layers(, heads)], so variants of different granularity share a batch."""
    shape = bits.shape[:2] + (layers,) + ((decay.shape[1],) if decay is not None else ())
    return np.broadcast_to(bits.reshape(bits.shape + (1,) * (len(shape) - bits.ndim)), shape)


def compare_signals(loaded: LoadedModel, streams: list[Stream], calibration: list[Stream], *,
                    shares: list[float], signals: list[str], seeds: int = 3, low_bits: int = 4,
                    high_bits: int = 16, fmt: StateFormat = StateFormat(), domains: dict[str, str] | None = None,
                    reference_run=None, progress: bool = False) -> pd.DataFrame:
    """One row per (signal, share, seed, stream): KL (mean, p99), top-1 agreement, NLL change."""
    from hwsim.quality.run import reference_run as default_reference

    run_reference = reference_run or default_reference
    tokens = np.stack([s.token_ids for s in streams])
    ref = run_reference(loaded, tokens, snapshot_every=10 ** 9)
    layers = loaded.n_layers
    decay = head_decay(loaded)
    keep_layer = None
    if "entropy_keep_layer" in signals:
        cal_tokens = np.stack([s.token_ids for s in calibration])
        cal_ref = run_reference(loaded, cal_tokens, snapshot_every=10 ** 9)
        keep_layer = int(np.argmax(layer_sensitivity(loaded, cal_tokens, cal_ref, low_bits, high_bits, fmt)))
    oracle_cost = one_step_costs(loaded, tokens, ref, low_bits, fmt) if "oracle" in signals else None
    variants = []
    for name in signals:
        if name == "entropy_keep_heads" and decay is None:
            continue
        for share in shares:
            for seed in range(seeds if name == "random" else 1):
                bits, low_share = signal_bits(name, share, ref=ref, oracle_cost=oracle_cost, keep_layer=keep_layer,
                                              decay=decay, layers=layers, low_bits=low_bits,
                                              high_bits=high_bits, seed=seed)
                variants.append((name, share, seed, low_share, _full_shape(bits, layers, decay)))
    rows = []
    batch = max(1, 64 // len(streams))  # variants per gated run: about 64 rows (variants x streams)
    from tqdm import tqdm

    for start in tqdm(range(0, len(variants), batch), desc="gated runs", unit="batch", disable=not progress):
        chunk = variants[start:start + batch]
        result = gated_run(loaded, tokens, ref, [FixedGate(v[4]) for v in chunk], fmt)
        n = len(streams)
        for v, (name, share, seed, low_share, _) in enumerate(chunk):
            for s, stream in enumerate(streams):
                row = v * n + s
                kl = result.kl_bits[row]
                rows.append({"signal": name, "share": share, "seed": seed, "low_share": low_share,
                             "stream": s, "source": stream.source,
                             "domain": (domains or {}).get(stream.source, stream.source),
                             "kl_bits_mean": float(kl.mean()), "kl_bits_p99": float(np.quantile(kl, 0.99)),
                             "top1_agreement": float(result.top1_agree[row].mean()),
                             "nll_change_nats": float(result.nll_nats[row].mean() - ref.nll_nats[s].mean())})
    frame = pd.DataFrame(rows)
    elements = int(np.prod(layer_states_shape(loaded)))  # one layer's state of one stream
    saving = 1.0 - float(state_bytes(elements, low_bits, fmt.group_size, fmt.scale_bits)
                         / state_bytes(elements, high_bits, fmt.group_size, fmt.scale_bits))
    frame["state_saving_pct"] = 100.0 * frame["low_share"] * saving
    frame.attrs["keep_layer"] = keep_layer
    return frame


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (signal, share): means over streams and seeds, spreads over streams, perplexity change."""
    per_run = frame.groupby(["signal", "share", "seed"]).agg(
        low_share=("low_share", "first"), state_saving_pct=("state_saving_pct", "first"),
        kl_bits_mean=("kl_bits_mean", "mean"), kl_bits_p99=("kl_bits_p99", "mean"),
        top1_agreement=("top1_agreement", "mean"), nll_change_nats=("nll_change_nats", "mean"),
        kl_stream_std=("kl_bits_mean", "std")).reset_index()
    out = per_run.groupby(["signal", "share"]).agg(
        low_share=("low_share", "mean"), state_saving_pct=("state_saving_pct", "mean"),
        kl_bits_mean=("kl_bits_mean", "mean"), kl_seed_std=("kl_bits_mean", "std"),
        kl_stream_std=("kl_stream_std", "mean"), kl_bits_p99=("kl_bits_p99", "mean"),
        top1_agreement=("top1_agreement", "mean"), nll_change_nats=("nll_change_nats", "mean")).reset_index()
    out["ppl_change_pct"] = 100.0 * (np.exp(out["nll_change_nats"]) - 1.0)
    return out
