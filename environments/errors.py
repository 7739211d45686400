"""The one exception tree of Shipyard's core; every refusal says what to do next.

    ShipyardError                  base: a reason plus what to do instead
    ├── ConfigError                shipyard.yaml is missing or malformed (carries file:line)
    ├── InvalidInput               a name, duration, option or value is not acceptable
    ├── NotFound                   an environment, type, release or approval does not exist
    ├── PolicyRefused              the person may not do this here (policy says no)
    ├── Conflict                   the record's state does not allow it now
    └── ProviderError              the provider failed for a technical reason (errored, not refused)

Business refusals (everything but ProviderError) change nothing in the record.
"""

from __future__ import annotations


class ShipyardError(Exception):
    """A refusal or failure with a one-line reason and a hint about what to do instead."""

    exit_code = 1

    def __init__(self, reason: str, *, hint: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.reason} — {self.hint}" if self.hint else self.reason


class ConfigError(ShipyardError):
    """shipyard.yaml cannot be used: the reason names the file and line."""

    exit_code = 3


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


class ProviderError(ShipyardError):
    """The provider failed for a technical reason."""

    exit_code = 7
