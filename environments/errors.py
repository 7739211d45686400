"""The one exception tree of Shipyard's core; every refusal says what to do next.

    ShipyardError                  base: a reason plus what to do instead
    ├── ConfigError                shipyard.yaml is missing or malformed (carries file:line)
    ├── InvalidInput               a name, duration, option or value is not acceptable
    ├── NotFound                   an environment, type, release or approval does not exist
    ├── PolicyRefused              the person may not do this here (policy says no)
    ├── Conflict                   the record's state does not allow it now
    ├── NotAuthenticated           no usable credential: an unknown, revoked or expired API token
    ├── Unreachable                Shipyard's API did not answer (a step that talks to serve)
    ├── ProviderError              the provider failed for a technical reason (errored, not refused)
    └── NotPromoted                an approval gate was rejected or timed out: an outcome, no fault

Business refusals (everything but ProviderError) change nothing in the record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from environments.outcome import Hint


def _label(hint: Hint) -> str:
    return hint.label


class ShipyardError(Exception):
    """A refusal or failure with a one-line reason and what to do instead.

    `hint` says it in words; `hints` are next steps as commands (`Hint`), which each surface
    says in its own language (`advice(say)`): the core never writes a command line.
    """

    exit_code = 1

    def __init__(self, reason: str, *, hint: str = "", hints: Hint | Sequence[Hint] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint
        self.hints: tuple[Hint, ...] = (hints,) if isinstance(hints, Hint) else tuple(hints)

    def advice(self, say: Callable[[Hint], str] = _label) -> str:
        """What to do instead: the words, then each next step as `say` renders it."""
        return ", or ".join([*([self.hint] if self.hint else []), *map(say, self.hints)])

    def one_line(self, say: Callable[[Hint], str] = _label) -> str:
        advice = self.advice(say)
        return f"{self.reason} — {advice}" if advice else self.reason


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in the configuration: where (file:line), what, and what to do instead."""

    where: str
    message: str
    hint: str = ""

    @property
    def file(self) -> str:
        return self.where.rsplit(":", 1)[0] if self.where[-1:].isdigit() else self.where

    @property
    def line(self) -> int | None:
        tail = self.where.rsplit(":", 1)[-1]
        return int(tail) if ":" in self.where and tail.isdigit() else None

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} — {self.hint}" if self.hint else text


class ConfigError(ShipyardError):
    """shipyard.yaml cannot be used: the reason names the file and line.

    Raised with `problems` when a check found several: all of them, each with its place.
    """

    exit_code = 3

    def __init__(
        self,
        reason: str,
        *,
        hint: str = "",
        hints: Hint | Sequence[Hint] = (),
        problems: tuple[ConfigProblem, ...] = (),
    ) -> None:
        super().__init__(reason, hint=hint, hints=hints)
        self.problems = problems

    @classmethod
    def of(cls, source: str, problems: list[ConfigProblem]) -> ConfigError:
        if len(problems) == 1:
            only = problems[0]
            where = f"{only.where}: " if only.where else ""
            return cls(f"{where}{only.message}", hint=only.hint, problems=tuple(problems))
        return cls(
            f"{source}: {len(problems)} problems: " + "; ".join(map(str, problems)),
            hints=Hint("fix them, then check again", "config check"),
            problems=tuple(problems),
        )


class InvalidInput(ShipyardError):
    """An argument the person gave is not acceptable."""

    exit_code = 2


class NotFound(ShipyardError):
    """Something named does not exist in the catalog or the record."""

    exit_code = 4


class PolicyRefused(ShipyardError):
    """Policy does not allow this person to do this here."""

    exit_code = 5


class Conflict(ShipyardError):
    """The current state of the record does not allow this now."""

    exit_code = 6


class NotAuthenticated(ShipyardError):
    """The API token is unknown, revoked or expired: who is asking is not established."""

    exit_code = 14


class Unreachable(ShipyardError):
    """Shipyard's API could not be reached or answered with a server error."""

    exit_code = 15


class ProviderError(ShipyardError):
    """The provider failed for a technical reason."""

    exit_code = 7


class NotPromoted(ShipyardError):
    """A pipeline's approval gate was rejected or timed out: the release did not move.

    Not a failure: the environment keeps serving what it had; the deployment is `rejected`
    (or `expired` when `timed_out`).
    """

    exit_code = 12

    def __init__(self, reason: str, *, hint: str = "", timed_out: bool = False) -> None:
        super().__init__(reason, hint=hint)
        self.timed_out = timed_out


def clip(text: str, limit: int = 60) -> str:
    """Input quoted back to a person, cut short: a 5,000-character name is not echoed whole."""
    text = str(text)
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text):,} characters)"
