"""Layer kinds of a hybrid stack, and the pattern that places them, declared as data.

A layer of the stack holds one or more sublayers (each with its own pre-norm): a token mixer
(`mamba1`, `mamba2`, `gated_deltanet`, `attention`) and usually a feed-forward block (`mlp`, `moe`).
A model names its kinds (`layer_kinds: {mamba: {kind: mamba1, ...}, attn: {kind: attention, ...}}`)
and a `pattern` says which kinds every layer holds, either as a block string cycled over the layers
(`block: "LLLA"`, `symbols: {L: [gdn, moe], A: [attn, moe]}`) or as a default list plus explicit layer
indices per kind (`default: [mamba, mlp]`, `indices: {attn: [4, 12], moe: [1, 3]}`; a listed kind
replaces the default sublayer of the same role, mixer or feed-forward).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from hwsim.records import Frozen

MIXER_KINDS = ("mamba1", "mamba2", "gated_deltanet", "attention")
FFN_KINDS = ("mlp", "moe")


class Mamba1Layer(Frozen):
    kind: Literal["mamba1"] = "mamba1"
    d_state: PositiveInt
    d_conv: PositiveInt = 4
    expand: PositiveInt = 2
    dt_rank: PositiveInt | None = Field(None, description="default ceil(d_model / 16)")


class Mamba2Layer(Frozen):
    kind: Literal["mamba2"] = "mamba2"
    d_state: PositiveInt
    d_conv: PositiveInt = 4
    expand: PositiveInt = 2
    d_inner: PositiveInt | None = Field(None, description="default expand x d_model (heads x headdim)")
    headdim: PositiveInt
    ngroups: PositiveInt


class GatedDeltaNetLayer(Frozen):
    """A linear-attention recurrent layer: per value head a d_k x d_v matrix state, updated by the gated
    delta rule; short causal convs over q, k, v. `gate_rank` set = Kimi Delta Attention's low-rank
    per-channel decay and output gates (f_a/f_b, g_a/g_b) with separate q, k, v projections; unset =
    Qwen3-Next's Gated DeltaNet (fused in_proj_qkvz and in_proj_ba, one decay per head)."""

    kind: Literal["gated_deltanet"] = "gated_deltanet"
    key_heads: PositiveInt
    value_heads: PositiveInt
    key_head_dim: PositiveInt
    value_head_dim: PositiveInt
    d_conv: PositiveInt = 4
    gate_rank: PositiveInt | None = None

    @model_validator(mode="after")
    def _heads(self) -> GatedDeltaNetLayer:
        if self.value_heads % self.key_heads:
            raise ValueError(f"value_heads {self.value_heads} is not a multiple of key_heads {self.key_heads}")
        return self


class MlaDims(Frozen):
    """Multi-head latent attention (DeepSeek-V2 style): the cache holds one latent per position."""

    kv_lora_rank: PositiveInt
    q_lora_rank: PositiveInt | None = None
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: NonNegativeInt
    v_head_dim: PositiveInt


class AttentionLayer(Frozen):
    kind: Literal["attention"] = "attention"
    q_heads: PositiveInt
    kv_heads: PositiveInt | None = Field(None, description="GQA; default q_heads. Unused with mla")
    head_dim: PositiveInt | None = Field(None, description="default d_model / q_heads. Unused with mla")
    output_gate: bool = Field(False, description="q_proj also yields a sigmoid gate on the output (Qwen3-Next)")
    qk_norm: bool = False
    sliding_window: PositiveInt | None = Field(None, description="positions read per step; default all")
    mla: MlaDims | None = None
    shared_weights: bool = Field(False, description="one set of weights for every application (Zamba2): "
                                 "counted once in the parameters, read at every application")
    concat_embedding: bool = Field(False, description="the input is the hidden state concatenated with the "
                                   "original embedding, 2 d_model wide (Zamba2's shared block): the pre-norm and "
                                   "the q, k, v projections read 2 d_model")
    adapter_rank: PositiveInt | None = Field(None, description="per-application LoRA on q, k and v (Zamba2's "
                                             "use_shared_attention_adapter): owned by each application")
    output_projection: bool = Field(False, description="an unshared d_model x d_model linear after every "
                                    "application (Zamba2's hybrid-layer `linear`)")

    @model_validator(mode="after")
    def _gqa(self) -> AttentionLayer:
        if self.mla is None and self.kv_heads is not None and self.q_heads % self.kv_heads:
            raise ValueError(f"kv_heads {self.kv_heads} does not divide q_heads {self.q_heads}")
        if self.mla is not None and (self.concat_embedding or self.adapter_rank or self.output_projection):
            raise ValueError("concat_embedding, adapter_rank and output_projection are not modelled with mla")
        return self


class MlpLayer(Frozen):
    kind: Literal["mlp"] = "mlp"
    hidden: PositiveInt
    gated: bool = Field(True, description="gate, up and down projections (SwiGLU); false: up and down")
    shared_weights: bool = Field(False, description="one set of weights for every application (Zamba2)")
    adapter_rank: PositiveInt | None = Field(None, description="per-application LoRA on the gate and up "
                                             "projections (Zamba2's use_shared_mlp_adapter): rank x (d_model + "
                                             "2 hidden) parameters owned by each application")


class MoeLayer(Frozen):
    kind: Literal["moe"] = "moe"
    experts: PositiveInt
    experts_per_token: PositiveInt
    expert_hidden: PositiveInt
    shared_experts: NonNegativeInt = 0
    shared_hidden: PositiveInt | None = Field(None, description="default expert_hidden")
    shared_gate: bool = Field(False, description="a d_model -> 1 sigmoid gate on the shared expert (Qwen)")
    gated: bool = True

    @model_validator(mode="after")
    def _k_of_e(self) -> MoeLayer:
        if self.experts_per_token > self.experts:
            raise ValueError(f"experts_per_token {self.experts_per_token} exceeds experts {self.experts}")
        return self


LayerKind = Annotated[Union[Mamba1Layer, Mamba2Layer, GatedDeltaNetLayer, AttentionLayer,  # noqa: UP007
                            MlpLayer, MoeLayer], Field(discriminator="kind")]


class Pattern(Frozen):
    """Where each kind sits. Either `block` (+ `symbols`) or `default` (+ `indices`)."""

    block: str | None = Field(None, min_length=1, description="one symbol per layer, cycled over n_layers")
    symbols: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="symbol -> kind names")
    default: tuple[str, ...] | None = Field(None, description="kind names of every layer not listed")
    indices: dict[str, tuple[NonNegativeInt, ...]] = Field(
        default_factory=dict, description="kind name -> 0-based layer indices where it replaces the default "
        "sublayer of the same role")

    @model_validator(mode="after")
    def _one_form(self) -> Pattern:
        if (self.block is None) == (self.default is None):
            raise ValueError("give either block (with symbols) or default (with indices)")
        if self.block is not None:
            missing = sorted(set(self.block) - set(self.symbols))
            if missing:
                raise ValueError(f"block uses symbols {missing} that symbols does not define")
            if self.indices:
                raise ValueError("indices go with default, not with block")
        elif self.symbols:
            raise ValueError("symbols go with block, not with default")
        return self

    def layers(self, n_layers: int, roles: dict[str, str]) -> tuple[tuple[str, ...], ...]:
        """Kind names of every layer; `roles` maps each kind name to mixer or ffn."""
        if self.block is not None:
            return tuple(self.symbols[self.block[i % len(self.block)]] for i in range(n_layers))
        stack = [list(self.default) for _ in range(n_layers)]
        for name, where in self.indices.items():
            for index in where:
                if index >= n_layers:
                    raise ValueError(f"indices.{name}: layer {index} is beyond the {n_layers} layers")
                layer = [k for k in stack[index] if roles.get(k) != roles.get(name)]
                stack[index] = [*layer, name] if roles.get(name) == "ffn" else [name, *layer]
        return tuple(tuple(layer) for layer in stack)


def role(kind: str) -> str:
    return "mixer" if kind in MIXER_KINDS else "ffn"
