"""Field types shipyard.yaml's sections share: durations, scalar parameter values, strict models."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from environments.errors import ShipyardError
from environments.model import parse_duration


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError("write a duration like 30m, 8h or 2d")
    try:
        return parse_duration(value)
    except ShipyardError as exc:
        raise ValueError(exc.one_line()) from None


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _scalar(value: Any) -> Any:
    if not isinstance(value, str | int | float | bool):
        raise ValueError("must be a text, a number or true/false, not a list or mapping")
    return value


ParameterValue = Annotated[str | int | float | bool, BeforeValidator(_scalar)]


class Strict(BaseModel):
    """A section of shipyard.yaml: unknown keys refused, values frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
