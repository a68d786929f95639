"""Per-layer counts of a model's stack: what each layer stores, reads and computes in one decode step.

Every model is a stack (`ModelSpec.stack_names`); each layer sums its sublayers. Element and
parameter counts here, bytes from the storage precisions. Per-kind rules (per stream and step):

- mamba1 / mamba2: `hwsim.geometry.mamba_geometry` (mamba_ssm's `selective_state_update` layout).
- gated_deltanet: a d_k x d_v matrix state per value head, read and written every step (the gated
  delta rule S <- g S + beta k (v - S^T k)^T, read-out q^T S); conv state over the q, k, v channels.
- attention: the KV cache of every cached position is read once per step and the new token's K and V
  are appended once; with MLA the cache holds one latent (kv_lora_rank + rope dims) per position and
  the projections are absorbed (attention runs over the latent). Scores and the weighted sum grow
  with the positions read; a sliding window caps them.
- mlp: dense weights read once per step for the whole batch.
- moe: the router and shared experts are dense; a routed expert's weights are read once per step if
  any token of the batch routes to it (`expected_distinct_experts`), and computed for k per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.geometry import LayerGeometry, mamba_geometry
from hwsim.sizing import quantised_bytes

#: fp32 operations per matrix-state element in one gated-delta-rule step: decay (1), retrieval S^T k
#: (2), rank-1 update (2), read-out q^T S (2). Op counts of the recurrence, not hardware figures.
DELTA_OPS_PER_STATE_ELEMENT = 7
#: fp32 operations per attention score beside its two dot products: scale, max, exp, sum (softmax).
SOFTMAX_OPS_PER_SCORE = 4


@dataclass(frozen=True)
class Sublayer:
    """One sublayer's counts. `*_params` are weights; `*_elements` per stream; flops per stream."""

    dense_matmul_params: int = 0      # quantisable projections read every step
    other_params_fp16: int = 0        # norms, conv weights, biases, per-head constants
    other_params_fp32: int = 0
    expert_params: int = 0            # one routed expert's projections
    experts: int = 0
    experts_per_token: int = 0
    ssm_state_elements: int = 0
    linear_state_elements: int = 0
    conv_state_elements: int = 0
    kv_elements_per_position: int = 0
    kv_window: int = 0                # 0: every cached position
    kv_segments: int = 0              # contiguous runs per stream and layer (K and V per KV head)
    attention_flops_per_position: int = 0
    attention_heads: int = 0
    activation_elements: int = 0
    vector_ops: int = 0
    shared_weights: bool = False      # dense weights counted once however often the kind is applied...
    unshared_params: int = 0          # ...except these (adapters, per-application projections), part of dense_matmul_params


def _mamba(geo: LayerGeometry) -> Sublayer:
    return Sublayer(dense_matmul_params=geo.matmul_params, other_params_fp16=geo.other_params_fp16,
                    other_params_fp32=geo.other_params_fp32, ssm_state_elements=geo.ssm_state_elements,
                    conv_state_elements=geo.conv_state_elements, activation_elements=geo.activation_elements,
                    vector_ops=geo.scan_ops + geo.conv_ops)


def _gated_deltanet(k, d: int) -> Sublayer:
    key, value = k.key_heads * k.key_head_dim, k.value_heads * k.value_head_dim
    channels = 2 * key + value                       # q, k, v through the short conv
    if k.gate_rank is None:   # Qwen3-Next: in_proj_qkvz (q, k, v, z) and in_proj_ba (beta, decay)
        matmul = d * (2 * key + 2 * value) + d * 2 * k.value_heads + value * d
        per_head = 2 * k.value_heads                 # dt_bias, A_log
        projected = 2 * key + 2 * value + 2 * k.value_heads
    else:                     # Kimi Delta Attention: q, k, v, low-rank decay f and gate g, beta
        r = k.gate_rank
        matmul = d * channels + (d * r + r * key) + (d * r + r * value) + d * k.value_heads + value * d
        per_head = k.value_heads + key               # A_log per head, dt_bias per channel
        projected = channels + 2 * r + key + value + k.value_heads
    state = k.value_heads * k.key_head_dim * k.value_head_dim
    return Sublayer(dense_matmul_params=matmul,
                    other_params_fp16=channels * k.d_conv + per_head + k.value_head_dim + d,  # conv, gated norm, pre-norm
                    linear_state_elements=state, conv_state_elements=channels * k.d_conv,
                    activation_elements=projected + channels + value + 2 * d,
                    vector_ops=DELTA_OPS_PER_STATE_ELEMENT * state + 2 * channels * k.d_conv)


def _attention(k, d: int) -> Sublayer:
    if k.mla is not None:
        m, h = k.mla, k.q_heads
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        q = d * m.q_lora_rank + m.q_lora_rank * h * qk if m.q_lora_rank else d * h * qk
        matmul = q + d * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank * h * (
            m.qk_nope_head_dim + m.v_head_dim) + h * m.v_head_dim * d
        norms = m.kv_lora_rank + (m.q_lora_rank or 0)
        latent = m.kv_lora_rank + m.qk_rope_head_dim
        # absorbed decode: scores over the latent and rope dims, values over the latent
        return Sublayer(dense_matmul_params=matmul, other_params_fp16=norms + d,
                        kv_elements_per_position=latent, kv_window=k.sliding_window or 0, kv_segments=1,
                        attention_flops_per_position=2 * h * latent + 2 * h * m.kv_lora_rank, attention_heads=h,
                        activation_elements=h * qk + latent + h * m.v_head_dim + 2 * d,
                        shared_weights=k.shared_weights)
    hd = k.head_dim or d // k.q_heads
    kv = k.kv_heads or k.q_heads
    q_out = k.q_heads * hd * (2 if k.output_gate else 1)
    d_in = 2 * d if k.concat_embedding else d
    adapters = k.adapter_rank * ((d_in + q_out) + 2 * (d_in + kv * hd)) if k.adapter_rank else 0
    projection = d * d if k.output_projection else 0
    matmul = d_in * q_out + 2 * d_in * kv * hd + k.q_heads * hd * d + adapters + projection
    return Sublayer(dense_matmul_params=matmul, other_params_fp16=(2 * hd if k.qk_norm else 0) + d_in,
                    kv_elements_per_position=2 * kv * hd, kv_window=k.sliding_window or 0, kv_segments=2 * kv,
                    attention_flops_per_position=4 * k.q_heads * hd, attention_heads=k.q_heads,
                    activation_elements=q_out + 2 * kv * hd + k.q_heads * hd + d_in + d,
                    shared_weights=k.shared_weights, unshared_params=adapters + projection)


def _mlp(k, d: int) -> Sublayer:
    mats = 3 if k.gated else 2
    adapters = k.adapter_rank * (d + (mats - 1) * k.hidden) if k.adapter_rank else 0
    return Sublayer(dense_matmul_params=mats * d * k.hidden + adapters, other_params_fp16=d,
                    activation_elements=(mats - 1) * k.hidden + k.hidden + 2 * d,
                    shared_weights=k.shared_weights, unshared_params=adapters)


def _moe(k, d: int) -> Sublayer:
    mats = 3 if k.gated else 2
    shared = k.shared_experts * mats * d * (k.shared_hidden or k.expert_hidden)
    active_hidden = k.experts_per_token * k.expert_hidden + k.shared_experts * (k.shared_hidden or k.expert_hidden)
    return Sublayer(dense_matmul_params=d * k.experts + shared + (d if k.shared_gate else 0), other_params_fp16=d,
                    expert_params=mats * d * k.expert_hidden, experts=k.experts,
                    experts_per_token=k.experts_per_token,
                    activation_elements=k.experts + mats * active_hidden + 2 * d)


def sublayer(kind, d_model: int) -> Sublayer:
    if kind.kind in ("mamba1", "mamba2"):
        return _mamba(mamba_geometry(kind, d_model))
    return {"gated_deltanet": _gated_deltanet, "attention": _attention, "mlp": _mlp, "moe": _moe}[kind.kind](
        kind, d_model)


def expected_distinct_experts(experts: np.ndarray | int, per_token: np.ndarray | int, tokens: int) -> np.ndarray:
    """Expected number of distinct experts `tokens` tokens route to when each picks `per_token` of
    `experts` uniformly without replacement: E (1 - (1 - k/E)^B), the closed form of linearity of
    expectation (an expert is missed by one token with probability 1 - k/E)."""
    e = np.asarray(experts, dtype=np.float64)
    k = np.asarray(per_token, dtype=np.float64)
    miss = np.divide(e - k, e, out=np.ones_like(e), where=e > 0)
    return np.where(e > 0, e * (1.0 - miss ** tokens), 0.0)


@dataclass(frozen=True)
class StackArrays:
    """Per-layer arrays (length n_layers) of the stack: bytes at storage precision, elements per
    stream, FLOPs per stream. Expert bytes are of one routed expert."""

    weight_bytes: np.ndarray
    expert_bytes: np.ndarray
    experts: np.ndarray
    experts_per_token: np.ndarray
    ssm_state_elements: np.ndarray
    linear_state_elements: np.ndarray
    conv_state_elements: np.ndarray
    kv_elements_per_position: np.ndarray
    kv_window: np.ndarray
    kv_segments: np.ndarray
    attention_flops_per_position: np.ndarray
    attention_vector_ops_per_position: np.ndarray
    matmul_flops_per_stream: np.ndarray     # dense projections + k routed experts
    vector_ops_per_stream: np.ndarray       # scans, convs
    activation_bytes_per_stream: np.ndarray
    conv_state_bytes_per_stream: np.ndarray
    stored_params: int                      # every weight once (shared kinds once), embeddings excluded
    active_params: int                      # per token: dense + k routed experts, embeddings excluded

    @property
    def has_kv(self) -> bool:
        return bool(self.kv_elements_per_position.any())

    @property
    def has_experts(self) -> bool:
        return bool(self.experts.any())


def stack_arrays(model, *, weight_bits: int, group_size: int, scale_bits: int, act_bytes: float) -> StackArrays:
    kinds = model.kinds
    subs = {name: sublayer(kind, model.d_model) for name, kind in kinds.items()}
    layers = model.stack_names

    def bytes_of(sub: Sublayer) -> float:
        return (quantised_bytes(sub.dense_matmul_params, weight_bits, group_size, scale_bits)
                + 2.0 * sub.other_params_fp16 + 4.0 * sub.other_params_fp32)

    def per_layer(value) -> np.ndarray:
        return np.array([sum(value(subs[name]) for name in layer) for layer in layers], dtype=np.float64)

    def one(value) -> np.ndarray:   # attributes at most one sublayer per layer carries
        return np.array([max((value(subs[name]) for name in layer), default=0) for layer in layers],
                        dtype=np.float64)

    expert_bytes = one(lambda s: quantised_bytes(s.expert_params, weight_bits, group_size, scale_bits)
                       if s.experts else 0.0)
    seen_shared: set[str] = set()
    stored = active = 0
    for layer in layers:
        for name in layer:
            sub = subs[name]
            params = sub.dense_matmul_params + sub.other_params_fp16 + sub.other_params_fp32
            active += params + sub.experts_per_token * sub.expert_params
            if sub.shared_weights and name in seen_shared:
                stored += sub.unshared_params      # each application owns its adapters / projection
                continue
            seen_shared.add(name)
            stored += params + sub.experts * sub.expert_params
    return StackArrays(
        weight_bytes=per_layer(bytes_of), expert_bytes=expert_bytes,
        experts=one(lambda s: s.experts), experts_per_token=one(lambda s: s.experts_per_token),
        ssm_state_elements=per_layer(lambda s: s.ssm_state_elements),
        linear_state_elements=per_layer(lambda s: s.linear_state_elements),
        conv_state_elements=per_layer(lambda s: s.conv_state_elements),
        kv_elements_per_position=one(lambda s: s.kv_elements_per_position),
        kv_window=one(lambda s: s.kv_window), kv_segments=one(lambda s: s.kv_segments),
        attention_flops_per_position=one(lambda s: s.attention_flops_per_position),
        attention_vector_ops_per_position=one(lambda s: SOFTMAX_OPS_PER_SCORE * s.attention_heads),
        matmul_flops_per_stream=per_layer(lambda s: 2.0 * (s.dense_matmul_params
                                                           + s.experts_per_token * s.expert_params)),
        vector_ops_per_stream=per_layer(lambda s: s.vector_ops),
        activation_bytes_per_stream=per_layer(lambda s: 2.0 * s.activation_elements * act_bytes),
        conv_state_bytes_per_stream=per_layer(lambda s: s.conv_state_elements * act_bytes),
        stored_params=int(stored), active_params=int(active))
