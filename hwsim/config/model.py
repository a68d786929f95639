"""Geometry of a Mamba-1 or Mamba-2 language model and the precision its weights are stored in."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from hwsim.records import Frozen


class ModelSpec(Frozen):
    name: str
    architecture: Literal["mamba1", "mamba2"]
    source: str = Field(min_length=3)
    n_layers: PositiveInt
    d_model: PositiveInt
    expand: PositiveInt = 2
    d_state: PositiveInt
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

    @model_validator(mode="after")
    def _architecture_fields(self) -> ModelSpec:
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
