"""What a use case answers: text, data, operations to follow, and hints each surface renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Hint:
    """A next step as an action and its arguments; the CLI renders a command, Slack `/env …`."""

    label: str
    group: str
    verb: str
    arguments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What a command did: text for people, data for --json, operations to follow, next steps."""

    text: str
    data: Any = None
    operation: int | None = None
    follow: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exit_code: int = 0
    hints: tuple[Hint, ...] = ()
