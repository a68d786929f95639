"""`kind:` -> policy class. An unknown kind is rejected by pydantic with the list of known kinds."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from hwsim.policies.kinds import (
                                  HysteresisPolicy,
                                  PercentilePolicy,
                                  SpeculativePolicy,
                                  StaticPolicy,
                                  ThresholdPolicy,
)

POLICY_KINDS = {cls.model_fields["kind"].default: cls for cls in
                (StaticPolicy, ThresholdPolicy, HysteresisPolicy, PercentilePolicy, SpeculativePolicy)}

PolicyConfig = Annotated[Union[tuple(POLICY_KINDS.values())], Field(discriminator="kind")]  # noqa: UP007
