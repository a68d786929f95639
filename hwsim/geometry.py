"""What one decode step of a Mamba model moves and computes, per layer and per stream.

Follows mamba_ssm's `selective_state_update` layout: the SSM state (d_inner x d_state per layer and
stream) is the only tensor that scales with batch x d_inner x d_state; weights are read once per step
for the whole batch; the LM head once per step. Element counts here; bytes follow from precisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.config.model import ModelSpec
from hwsim.sizing import quantised_bytes

#: fp32 element-wise operations per SSM state element in one update. Mamba-1 computes dA = exp(dt * A)
#: per element (2 ops) before h = dA*h + dt*B*x (4 ops) and y = C.h (2 ops); Mamba-2's A is a scalar
#: per head, so the exp is per head and drops out of the per-element count.
SCAN_OPS_PER_STATE_ELEMENT = {"mamba1": 8, "mamba2": 6}


@dataclass(frozen=True)
class LayerGeometry:
    """Per-layer counts for one decode step. `*_params` are weights, `*_elements` per stream."""

    matmul_params: int          # quantisable projection weights (in/out, x/dt proj)
    other_params_fp16: int      # conv1d, norms, D, dt_bias: kept at 16 bit
    other_params_fp32: int      # A (Mamba-1: d_inner x d_state, read in fp32 by the kernel)
    ssm_state_elements: int
    conv_state_elements: int
    activation_elements: int    # written and read once each on chip per stream
    scan_ops: int               # fp32 element-wise ops per stream
    conv_ops: int


def layer_geometry(model: ModelSpec) -> LayerGeometry:
    """Counts of one layer of a pure Mamba model (every layer alike)."""
    return mamba_geometry(model.kinds["mamba"], model.d_model)


def mamba_geometry(kind, d_model: int) -> LayerGeometry:
    """One Mamba-1 or Mamba-2 mixer with its pre-norm."""
    d_inner = getattr(kind, "d_inner", None) or kind.expand * d_model
    d_state, d_conv = kind.d_state, kind.d_conv
    if kind.kind == "mamba2":
        heads, groups = d_inner // kind.headdim, kind.ngroups
        conv_channels = d_inner + 2 * groups * d_state
        in_proj_out = 2 * d_inner + 2 * groups * d_state + heads
        matmul = d_model * in_proj_out + d_inner * d_model
        other16 = conv_channels * d_conv + conv_channels + 3 * heads + d_inner + d_model  # dt_bias, D, A_log
        other32 = 0
        activations = in_proj_out + conv_channels + d_inner + 2 * d_model
    else:
        rank = kind.dt_rank or math.ceil(d_model / 16)
        conv_channels = d_inner
        matmul = d_model * 2 * d_inner + d_inner * (rank + 2 * d_state) + rank * d_inner + d_inner * d_model
        other16 = d_inner * d_conv + d_inner + d_inner + d_inner + d_model  # conv w+b, dt_proj bias, D, norm
        other32 = d_inner * d_state
        activations = 2 * d_inner + conv_channels + (rank + 2 * d_state) + d_inner + 2 * d_model
    return LayerGeometry(
        matmul_params=matmul, other_params_fp16=other16, other_params_fp32=other32,
        ssm_state_elements=d_inner * d_state, conv_state_elements=conv_channels * d_conv,
        activation_elements=activations,
        scan_ops=SCAN_OPS_PER_STATE_ELEMENT[kind.kind] * d_inner * d_state,
        conv_ops=2 * conv_channels * d_conv)


@dataclass(frozen=True)
class ModelFootprint:
    """Bytes and FLOPs of one decode step, derived from the geometry and the storage precisions.
    `stack` holds the per-layer arrays every model has; the scalar per-layer fields describe a pure
    Mamba model's (identical) layers, and for a hybrid its largest layer (working set, runs)."""

    layer: LayerGeometry | None
    n_layers: int
    weight_bytes_per_layer: float
    lm_head_bytes: float
    embedding_bytes_per_token: float
    conv_state_bytes_per_stream_layer: float
    activation_bytes_per_stream_layer: float
    matmul_flops_per_stream_layer: float
    lm_head_flops_per_stream: float
    total_params: int
    weight_precision_key: str
    stack: object = None            # hwsim.stack.StackArrays
    hybrid: bool = False
    active_params: int = 0

    @property
    def weight_bytes_total(self) -> float:
        """Every weight stored (all experts), the LM head included."""
        if self.hybrid:
            return float(self.stack.weight_bytes.sum() + (self.stack.expert_bytes * self.stack.experts).sum()
                         + self.lm_head_bytes)
        return self.n_layers * self.weight_bytes_per_layer + self.lm_head_bytes


def footprint(model: ModelSpec) -> ModelFootprint:
    from hwsim.stack import stack_arrays

    act_bytes = model.activation_bits / 8.0
    stack = stack_arrays(model, weight_bits=model.weight_bits, group_size=model.weight_group_size,
                         scale_bits=model.weight_scale_bits, act_bytes=act_bytes)
    lm_head_params = model.vocab_size * model.d_model
    lm_head_bytes = quantised_bytes(lm_head_params, model.weight_bits, model.weight_group_size,
                                    model.weight_scale_bits)
    embeddings = lm_head_params * (1 if model.tie_embeddings else 2)
    common = {"n_layers": model.n_layers, "lm_head_bytes": float(lm_head_bytes),
              "embedding_bytes_per_token": model.d_model * act_bytes, "lm_head_flops_per_stream": 2.0 * lm_head_params,
              "weight_precision_key": {16: "fp16", 8: "int8", 4: "int4"}[model.weight_bits], "stack": stack}
    if model.architecture == "hybrid":
        total = stack.stored_params + embeddings + model.d_model
        return ModelFootprint(
            layer=None, weight_bytes_per_layer=float(stack.weight_bytes.max()),
            conv_state_bytes_per_stream_layer=float(stack.conv_state_bytes_per_stream.max()),
            activation_bytes_per_stream_layer=float(stack.activation_bytes_per_stream.max()),
            matmul_flops_per_stream_layer=float(stack.matmul_flops_per_stream.mean()), total_params=int(total),
            hybrid=True, active_params=int(stack.active_params + lm_head_params + model.d_model), **common)
    layer = layer_geometry(model)
    weight_bytes = (quantised_bytes(layer.matmul_params, model.weight_bits, model.weight_group_size,
                                    model.weight_scale_bits)
                    + 2.0 * layer.other_params_fp16 + 4.0 * layer.other_params_fp32)
    total = (model.n_layers * (layer.matmul_params + layer.other_params_fp16 + layer.other_params_fp32)
             + embeddings + model.d_model)
    return ModelFootprint(
        layer=layer, weight_bytes_per_layer=float(weight_bytes),
        conv_state_bytes_per_stream_layer=layer.conv_state_elements * act_bytes,
        activation_bytes_per_stream_layer=2.0 * layer.activation_elements * act_bytes,
        matmul_flops_per_stream_layer=2.0 * layer.matmul_params, total_params=int(total),
        active_params=int(total), **common)
