"""Base class for every config record: frozen, unknown keys rejected."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """A validated record that cannot change after construction and rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)
