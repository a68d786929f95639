"""Geometry of a language model and the precision its weights and KV cache are stored in.

`architecture: mamba1 | mamba2` is a homogeneous stack described by the flat fields (d_state, headdim,
...); `hybrid` is a stack of named layer kinds placed by a pattern (`hwsim.config.layers`). Every model
is a stack: `stack` gives each layer's sublayer kinds, a pure Mamba model one Mamba sublayer per layer.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from hwsim.config.layers import LayerKind, Mamba1Layer, Mamba2Layer, Pattern, role
from hwsim.records import Frozen
from hwsim.sizing import KV_PRECISION_BITS

KvPrecision = Literal["fp16", "fp8", "int8", "int4", "int2"]


class ModelSpec(Frozen):
    name: str
    architecture: Literal["mamba1", "mamba2", "hybrid"]
    source: str = Field(min_length=3)
    n_layers: PositiveInt
    d_model: PositiveInt
    expand: PositiveInt = 2
    d_state: PositiveInt | None = Field(None, description="Mamba-1/-2 only (hybrids: per layer kind)")
    d_conv: PositiveInt = 4
    headdim: PositiveInt | None = Field(None, description="Mamba-2 only")
    ngroups: PositiveInt | None = Field(None, description="Mamba-2 only")
    dt_rank: PositiveInt | None = Field(None, description="Mamba-1 only; default ceil(d_model / 16)")
    vocab_size: PositiveInt
    tie_embeddings: bool = True
    declared_params: PositiveInt | None = None
    weight_bits: Literal[16, 8, 4] = Field(16, description="storage precision of the weights")
    weight_group_size: PositiveInt = Field(128, description="elements per scale for int8/int4 weights")
    weight_scale_bits: Literal[16, 32] = 16
    activation_bits: Literal[16, 32] = 16
    layer_kinds: dict[str, LayerKind] | None = Field(None, description="hybrid only: name -> layer kind")
    pattern: Pattern | None = Field(None, description="hybrid only: which kinds each layer holds")
    kv_precision: KvPrecision = Field("fp16", description="storage of the KV cache (attention layers)")
    kv_group_size: PositiveInt = Field(64, description="KV elements per scale for int KV precisions")
    kv_scale_bits: Literal[16, 32] = 16

    @model_validator(mode="after")
    def _architecture_fields(self) -> ModelSpec:
        if self.architecture == "hybrid":
            if self.layer_kinds is None or self.pattern is None:
                raise ValueError("hybrid models need layer_kinds and pattern")
            flat = [k for k in ("d_state", "headdim", "ngroups", "dt_rank") if getattr(self, k) is not None]
            if flat:
                raise ValueError(f"{', '.join(flat)}: hybrid models declare these per layer kind")
            names = set(self.layer_kinds)
            used = set(self.pattern.default or ()) | set(self.pattern.indices) | {
                k for kinds in self.pattern.symbols.values() for k in kinds}
            unknown = sorted(used - names)
            if unknown:
                raise ValueError(f"pattern names kinds {unknown} that layer_kinds does not define; "
                                 f"defined: {sorted(names)}")
            for i, layer in enumerate(self.stack_names):
                if not layer:
                    raise ValueError(f"pattern: layer {i} holds no kind")
                if len(set(layer)) != len(layer):
                    raise ValueError(f"pattern: layer {i} holds {list(layer)}: a kind twice")
                for single in ("attention", "moe", "mlp"):
                    if sum(self.layer_kinds[k].kind == single for k in layer) > 1:
                        raise ValueError(f"pattern: layer {i} holds {list(layer)}: at most one {single} per layer")
            return self
        if self.layer_kinds is not None or self.pattern is not None:
            raise ValueError("layer_kinds and pattern describe hybrid stacks; set architecture: hybrid")
        if self.d_state is None:
            raise ValueError(f"{self.architecture} models need d_state")
        if self.architecture == "mamba2":
            if self.headdim is None or self.ngroups is None:
                raise ValueError("mamba2 models need headdim and ngroups")
            if self.d_inner % self.headdim:
                raise ValueError(f"d_inner {self.d_inner} is not a multiple of headdim {self.headdim}")
            if self.n_heads % self.ngroups:
                raise ValueError(f"ngroups {self.ngroups} does not divide the {self.n_heads} heads")
        elif self.headdim is not None or self.ngroups is not None:
            raise ValueError("headdim and ngroups are Mamba-2 fields; this model is mamba1")
        return self

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def n_heads(self) -> int:
        return self.d_inner // self.headdim if self.architecture == "mamba2" else 0

    @property
    def resolved_dt_rank(self) -> int:
        return self.dt_rank or math.ceil(self.d_model / 16)

    @property
    def stack_names(self) -> tuple[tuple[str, ...], ...]:
        """Kind names of every layer's sublayers, in order."""
        if self.architecture != "hybrid":
            return (("mamba",),) * self.n_layers
        roles = {name: role(kind.kind) for name, kind in self.layer_kinds.items()}
        return self.pattern.layers(self.n_layers, roles)

    @property
    def kinds(self) -> dict:
        """Name -> layer kind; a pure Mamba model has one kind, `mamba`, made of its flat fields."""
        if self.architecture == "hybrid":
            return dict(self.layer_kinds)
        if self.architecture == "mamba2":
            return {"mamba": Mamba2Layer(d_state=self.d_state, d_conv=self.d_conv, expand=self.expand,
                                         headdim=self.headdim, ngroups=self.ngroups)}
        return {"mamba": Mamba1Layer(d_state=self.d_state, d_conv=self.d_conv, expand=self.expand,
                                     dt_rank=self.dt_rank)}

    @property
    def kv_bits(self) -> int:
        return KV_PRECISION_BITS[self.kv_precision]
