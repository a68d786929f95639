"""Base class for every config record: frozen, unknown keys rejected, true/false never a number."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _accepts_bool(annotation: Any) -> bool:
    """Whether a field's type admits a bool (pydantic's lax mode would read `true` as 1 for an int)."""
    if annotation is bool or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return any(isinstance(v, bool) for v in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _accepts_bool(typing.get_args(annotation)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_accepts_bool(arg) for arg in typing.get_args(annotation))
    if annotation is type(None):   # Optional[int]: None admits no bool
        return False
    return isinstance(annotation, type) and not issubclass(annotation, (int, float)) \
        and annotation is not str and not issubclass(annotation, BaseModel) and origin is None


class Frozen(BaseModel):
    """A validated record that cannot change after construction and rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_as_number(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name) if isinstance(name, str) else None
                if isinstance(value, bool) and field is not None and not _accepts_bool(field.annotation):
                    raise ValueError(f"{name}: {str(value).lower()} is a boolean, not a value of this key's "
                                     "type")
        return data
