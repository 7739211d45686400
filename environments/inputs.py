"""A type's user-facing parameters (from an ADE manifest): what a person may set, and checks."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from environments.errors import InvalidInput

KINDS = ("string", "number", "integer", "boolean", "object", "array")
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class Input:
    """One parameter a person sets when creating an environment of the type.

    `default` is None when there is none; `read_only` ones keep their default and cannot be
    overridden per environment or per deployment.
    """

    id: str
    label: str
    kind: str = "string"
    description: str = ""
    required: bool = False
    allowed: tuple[Any, ...] = ()
    default: Any = None
    read_only: bool = False

    @property
    def default_text(self) -> str | None:
        return None if self.default is None else as_text(self.default)

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(as_text(value) for value in self.allowed)


def as_text(value: Any) -> str:
    """A manifest value as Shipyard's parameter text: true/false, numbers, JSON for the rest."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def value_problem(given: Input, text: str) -> str | None:
    """Why `text` is not a value of this input, or None. References and `{{ … }}` pass."""
    if text.startswith("@") or "{{" in text:
        return None
    kind = given.kind
    if kind == "boolean" and text.strip().lower() not in ("true", "false"):
        return f"{given.id} must be true or false, got '{text}'"
    if kind == "integer" and not INTEGER.fullmatch(text.strip()):
        return f"{given.id} must be a whole number, got '{text}'"
    if kind == "number" and not NUMBER.fullmatch(text.strip()):
        return f"{given.id} must be a number, got '{text}'"
    if kind in ("object", "array"):
        wanted = dict if kind == "object" else list
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, wanted):
            return f"{given.id} must be a JSON {kind}, got '{text}'"
    if given.allowed and text not in given.choices:
        return f"{given.id}: '{text}' is not allowed (allowed: {', '.join(given.choices)})"
    return None


def problems(
    inputs: Iterable[Input],
    given: Mapping[str, str],
    *,
    preset: Iterable[str] = (),
    creating: bool,
) -> list[str]:
    """Every way `given` (a person's values) breaks the inputs: read-only ones overridden, bad
    values, and — when creating — required ones that nothing (`preset`: shipyard.yaml's layers,
    nor a default) provides."""
    found: list[str] = []
    known = set(preset) | set(given)
    for item in inputs:
        if item.id in given:
            if item.read_only:
                found.append(
                    f"{item.id} is read-only (it keeps {item.default_text or 'its value'})"
                )
                continue
            problem = value_problem(item, given[item.id])
            if problem:
                found.append(problem)
        elif creating and item.required and item.default is None and item.id not in known:
            found.append(f"{item.id} ({item.label}) is required")
    return found


def require(
    inputs: Iterable[Input],
    given: Mapping[str, str],
    *,
    type_name: str,
    preset: Iterable[str] = (),
    creating: bool,
) -> None:
    """Refuse, with every problem at once, values a person may not give for this type."""
    items = tuple(inputs)
    if not items:
        return
    found = problems(items, given, preset=preset, creating=creating)
    if found:
        settable = [f"{i.id}" for i in items if not i.read_only]
        raise InvalidInput(
            f"type {type_name}: " + "; ".join(found),
            hint="give the type's parameters as ID=VALUE"
            + (f" (its parameters: {', '.join(settable)})" if settable else ""),
        )
