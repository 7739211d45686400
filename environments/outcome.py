"""What a use case answers: text, data, operations to follow, and hints each surface renders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# An argument's value in a hint: a value to pass, True for a flag, None for one the person fills in.
Argument = str | int | bool | None


@dataclass(frozen=True)
class Hint:
    """A next step: what it does in words, the command (`group verb`) and its arguments.

    `arguments` are keyed by the command's argument names (`{"ref": 12}`). The core never spells
    a command: the command line says `shipyard env approve 12`, Slack `/env approve 12` or a
    button, and where chat has no such command it says the words only.
    """

    label: str
    command: str
    arguments: Mapping[str, Argument] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return self.command.split(" ", 1)[0]

    @property
    def verb(self) -> str:
        return self.command.split(" ", 1)[1] if " " in self.command else ""

    def as_dict(self) -> dict[str, Any]:
        """As JSON for the outbox and the API."""
        return {"label": self.label, "command": self.command, "arguments": dict(self.arguments)}

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Hint:
        return cls(str(data["label"]), str(data["command"]), dict(data.get("arguments") or {}))


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
