"""Step a Mamba model over token streams, storing every state through the gating policy between steps.

A batch row is one (variant, stream). After each step's forward pass the new SSM state of every layer
(and the conv state, if the policy gates it) is replaced in the cache by what a store at that row's
`write_bits` would read back, so the next step reads it in the precision it was written in. The gate
chooses `write_bits[t]` with the policy's own `plan`, from the entropy history it may see.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from hwsim.policies import StatePlan
from hwsim.policies.kinds import SpeculativePolicy, StaticPolicy, ThresholdPolicy
from hwsim.quality.mamba2_step import decode_step
from hwsim.quality.model import LoadedModel, layer_states
from hwsim.quality.quantise import StateFormat, relative_error, store

LN2 = math.log(2.0)


@dataclass
class Reference:
    """The full-precision run of a batch of streams (cached on disk per stream)."""

    logprobs: np.ndarray        # float32 [streams, steps, vocab]
    entropy_bits: np.ndarray    # float64 [streams, steps]
    nll_nats: np.ndarray        # float64 [streams, steps - 1]: next token's NLL at each step
    snapshot_steps: np.ndarray  # int [k]
    states: np.ndarray          # float32 [streams, k, layers, elements]: SSM state after those steps
    update_norm: np.ndarray | None = None  # [streams, steps]: ||h_t - h_{t-1}|| / ||h_t||, mean over layers


class Gate:
    """Chooses the bits each stream's state is written in at step t: [streams] (every layer alike),
    [streams, layers] or [streams, layers, heads] (Mamba-2 heads; conv states take a layer's widest)."""

    def write_bits(self, t: int, own_entropy: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass
class FixedGate(Gate):
    """Precisions decided beforehand (all-high, all-low, random controls): write_bits [steps, streams]."""

    bits: np.ndarray  # [steps, streams, ...]

    def write_bits(self, t: int, own_entropy: np.ndarray) -> np.ndarray:
        return self.bits[t]


@dataclass
class PolicyGate(Gate):
    """The policy's own plan over the entropy seen so far. `entropy_bits` [steps, streams] is an
    external source (the reference run or a trace); None = the gated run's own entropy (self-gating)."""

    policy: object
    entropy_bits: np.ndarray | None = None
    _fresh: np.ndarray | None = field(default=None, repr=False)

    def write_bits(self, t: int, own_entropy: np.ndarray) -> np.ndarray:
        entropy = own_entropy if self.entropy_bits is None else self.entropy_bits[: t + 1]
        if self._fresh is None or len(self._fresh) < t + 1:
            self._fresh = np.zeros((max(t + 1, 2 * len(entropy)), entropy.shape[1]), dtype=bool)
            self._fresh[0] = True
        # threshold and static rules are row-wise: two rows give row t exactly; others see the prefix
        start = max(0, t - 1) if type(self.policy) in (ThresholdPolicy, StaticPolicy) else 0
        plan: StatePlan = self.policy.plan(entropy[start: t + 1], self._fresh[start: t + 1])
        self.checkpoint, self.replay = plan.checkpoint_bits[-1], plan.replay_steps[-1]
        return plan.write_bits[-1]

    @property
    def speculative(self) -> bool:
        return isinstance(self.policy, SpeculativePolicy)


@dataclass
class RunResult:
    """Per row (variant-major: row = variant * streams + stream) and step."""

    kl_bits: np.ndarray          # [rows, steps]
    top1_agree: np.ndarray       # bool [rows, steps]
    nll_nats: np.ndarray         # [rows, steps - 1]
    entropy_bits: np.ndarray     # [rows, steps]
    write_bits: np.ndarray       # int [rows, steps]
    state_rel_error: np.ndarray  # [rows, k] mean over layers, at the reference's snapshot steps
    seconds: float


def _step(loaded: LoadedModel, ids: torch.Tensor, cache):
    """Log-probabilities [batch, vocab] after one token; the first step builds transformers' cache."""
    if cache is not None and loaded.model.config.model_type == "mamba2":
        return torch.log_softmax(decode_step(loaded.model, ids, cache), dim=-1), cache  # same bits, fewer passes
    out = loaded.model(ids[:, None], cache=cache, use_cache=True)
    return torch.log_softmax(out.logits[:, -1].float(), dim=-1), out.cache


@torch.no_grad()
def reference_run(loaded: LoadedModel, tokens: np.ndarray, snapshot_every: int) -> Reference:
    """Full precision (the checkpoint's fp32, no state rounding) over tokens [streams, steps]."""
    streams, steps = tokens.shape
    ids = torch.as_tensor(tokens)
    snapshot_steps = np.arange(snapshot_every - 1, steps, snapshot_every)
    logprobs = np.empty((streams, steps, loaded.model.config.vocab_size), dtype=np.float32)
    snaps, cache, previous = [], None, None
    update = np.zeros((streams, steps))
    for t in range(steps):
        lp, cache = _step(loaded, ids[:, t], cache)
        logprobs[:, t] = lp.numpy()
        current = [s.reshape(streams, -1).clone() for s in layer_states(cache, loaded.n_layers, conv=False)]
        if previous is not None:
            update[:, t] = np.mean([((c - p).norm(dim=1) / c.norm(dim=1).clamp_min(1e-30)).numpy()
                                    for c, p in zip(current, previous)], axis=0)
        else:
            update[:, t] = 1.0  # from the zero state: the whole state is new
        previous = current
        if t in set(snapshot_steps.tolist()):
            snaps.append(torch.stack([s.reshape(streams, -1) for s in layer_states(cache, loaded.n_layers,
                                                                                    conv=False)], 1))
    lp_all = torch.from_numpy(logprobs)
    entropy = (-(lp_all.exp() * lp_all).sum(-1) / LN2).double().numpy()
    nll = -np.take_along_axis(logprobs[:, :-1], tokens[:, 1:, None], axis=2)[..., 0].astype(np.float64)
    states = torch.stack(snaps, 1).numpy() if snaps else np.zeros((streams, 0, loaded.n_layers, 0), np.float32)
    return Reference(logprobs, entropy, nll, snapshot_steps, states, update)


def _store_rows(state: torch.Tensor, bits: np.ndarray, layer: int, *, conv: bool, fmt: StateFormat,
                generator) -> torch.Tensor:
    """One layer's state [rows, ...] stored at bits [rows], [rows, layers] or [rows, layers, heads]."""
    if bits.ndim == 1:
        return store(state, torch.as_tensor(bits.astype(np.int64)), fmt, generator)
    per_layer = bits[:, layer]
    if per_layer.ndim == 1 or conv:
        rows_bits = per_layer if per_layer.ndim == 1 else per_layer.max(1)
        return store(state, torch.as_tensor(rows_bits.astype(np.int64)), fmt, generator)
    rows, heads = per_layer.shape
    by_head = state.reshape(rows * heads, -1)  # Mamba-2 states are [rows, heads, head_dim, d_state]
    stored = store(by_head, torch.as_tensor(per_layer.reshape(-1).astype(np.int64)), fmt, generator)
    return stored.view(state.shape)


@torch.no_grad()
def gated_run(loaded: LoadedModel, tokens: np.ndarray, reference: Reference, gates: list[Gate],
              fmt: StateFormat, *, gate_conv_state: bool = False, seed: int = 0) -> RunResult:
    """Run every gate over every stream in one batch and compare with the reference step by step.

    A speculative policy gets one shadow row per stream: the high-precision re-execution from its last
    checkpoint over the same tokens. A rollback at step t takes the shadow's state and output (what the
    replay computes), and both periodic checkpoints and rollbacks restart the shadow from the new
    checkpoint, so the functional run matches the plan whose extra traffic the hardware model charges.
    """
    streams, steps = tokens.shape
    n_rows = len(gates) * streams
    speculative = [i for i, g in enumerate(gates) if getattr(g, "speculative", False)]
    shadow_of = {i: n_rows + k * streams + np.arange(streams) for k, i in enumerate(speculative)}
    ids = torch.as_tensor(np.tile(tokens, (len(gates) + len(speculative), 1)))
    generator = torch.Generator().manual_seed(seed)
    snap_index = {int(s): i for i, s in enumerate(reference.snapshot_steps)}
    ref_states = torch.from_numpy(np.tile(reference.states, (len(gates), 1, 1, 1)))
    kl = np.empty((n_rows, steps))
    agree = np.empty((n_rows, steps), dtype=bool)
    entropy = np.empty((steps, n_rows))
    write = np.empty((n_rows, steps), dtype=np.int16)
    chosen = np.empty((n_rows, steps - 1))
    rel = np.zeros((n_rows, len(snap_index)))
    ref_top1 = torch.from_numpy(reference.logprobs.argmax(-1))  # [streams, steps]
    started, cache = time.perf_counter(), None
    for t in range(steps):
        lp_all, cache = _step(loaded, ids[:, t], cache)
        lp = lp_all[:n_rows].clone()
        entropy[t] = (-(lp.exp() * lp).sum(-1) / LN2).numpy()
        bits = np.concatenate([g.write_bits(t, entropy[: t + 1, i * streams:(i + 1) * streams])
                               for i, g in enumerate(gates)])
        if speculative:
            everything = layer_states(cache, loaded.n_layers, conv=True)
            for i in speculative:
                main, shadow = i * streams + np.arange(streams), shadow_of[i]
                rolled, periodic = gates[i].replay > 0, gates[i].checkpoint > 0
                lp[main[rolled]] = lp_all[shadow[rolled]]  # the replay's output replaces this step's
                for state in everything:
                    state[main[rolled]] = state[shadow[rolled]]
                    state[shadow[periodic]] = state[main[periodic]]  # checkpoint before the low store
                    keep = torch.full((len(shadow),), gates[i].policy.high_bits)
                    state[shadow] = store(state[shadow], keep, fmt, generator)
        ref = torch.from_numpy(reference.logprobs[:, t])  # [streams, V], broadcast over the variants
        by_variant = lp.view(len(gates), streams, -1)
        kl[:, t] = ((ref.exp() * (ref - by_variant)).sum(-1) / LN2).clamp_min(0).reshape(-1).numpy()
        agree[:, t] = (by_variant.argmax(-1) == ref_top1[:, t]).reshape(-1).numpy()
        if t + 1 < steps:
            chosen[:, t] = -lp.gather(1, ids[:n_rows, t + 1, None])[:, 0].numpy()
        write[:, t] = bits if bits.ndim == 1 else bits.reshape(n_rows, -1).max(1)
        for index, state in enumerate(layer_states(cache, loaded.n_layers, conv=gate_conv_state)):
            state[:n_rows] = _store_rows(state[:n_rows], bits, index % loaded.n_layers,
                                         conv=index >= loaded.n_layers, fmt=fmt, generator=generator)
        if t in snap_index:
            ssm = layer_states(cache, loaded.n_layers, conv=False)
            errors = [relative_error(s[:n_rows].reshape(n_rows, -1), ref_states[:, snap_index[t], layer])
                      for layer, s in enumerate(ssm)]
            rel[:, snap_index[t]] = torch.stack(errors, 1).mean(1).numpy()
    return RunResult(kl, agree, chosen, entropy.T.copy(), write, rel, time.perf_counter() - started)
