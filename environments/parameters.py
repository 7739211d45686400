"""Layered application parameters: defaults < type < environment < one-off overrides."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from environments.catalog import Catalog, EnvironmentType
from environments.errors import InvalidInput

KEY_RULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class Layer(StrEnum):
    """Where a parameter's value came from, lowest first."""

    DEFAULTS = "defaults"
    TYPE = "type"
    ENVIRONMENT = "environment"
    OVERRIDE = "override"


@dataclass(frozen=True)
class Parameter:
    key: str
    value: str
    layer: Layer


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`--set KEY=VALUE` arguments → dict; a malformed one is refused with an example."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not KEY_RULE.fullmatch(key):
            raise InvalidInput(
                f"'{item}' is not a parameter assignment",
                hint="write KEY=VALUE with a key of letters, digits and '_' (e.g. GAME_MOTD=hi)",
            )
        result[key] = value
    return result


def resolve(
    catalog: Catalog,
    env_type: EnvironmentType,
    environment: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
) -> dict[str, Parameter]:
    """Merge the layers; the highest layer that sets a key wins."""
    merged: dict[str, Parameter] = {}
    layers: list[tuple[Layer, Mapping[str, object]]] = [
        (Layer.DEFAULTS, catalog.parameters),
        (Layer.TYPE, env_type.parameters),
        (Layer.ENVIRONMENT, environment),
        (Layer.OVERRIDE, overrides or {}),
    ]
    for layer, values in layers:
        for key, value in values.items():
            merged[key] = Parameter(key, _text(value), layer)
    return dict(sorted(merged.items()))


def values(parameters: Mapping[str, Parameter]) -> dict[str, str]:
    return {key: p.value for key, p in parameters.items()}


def fingerprint(parameters: Mapping[str, str]) -> str:
    """A stable short digest of the rendered parameters, kept with each deployment."""
    canonical = json.dumps(dict(sorted(parameters.items())), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
