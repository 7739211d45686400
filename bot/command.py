"""The typed shape of one command: group, verb, arguments, action, surfaces, handler.

Modules declare their commands as values; only the composition root (`bot/table.py`) collects
them, so nothing registers itself by being imported.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from environments.outcome import Hint, Outcome
from environments.policy import Actor

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from environments.catalog import EnvironmentType

__all__ = ["Command", "Handler", "Hint", "Outcome", "Surface"]


class Surface(StrEnum):
    """Where a command is offered."""

    CLI = "cli"  # `shipyard GROUP VERB …`
    SLACK = "slack"  # `/env …` in chat
    PIPELINE = "pipeline"  # a step inside an Azure DevOps pipeline (`shipyard pipeline …`)


CLI = frozenset({Surface.CLI})
CLI_SLACK = frozenset({Surface.CLI, Surface.SLACK})
CLI_PIPELINE = frozenset({Surface.CLI, Surface.PIPELINE})
EVERYWHERE = frozenset(Surface)

Handler = Callable[["Runtime", Actor, argparse.Namespace], Outcome]
# The environment type a command acts on, for the permission check (None: no one type).
Target = Callable[["Runtime", argparse.Namespace], "EnvironmentType | None"]
Arguments = Callable[[argparse.ArgumentParser, bool], None]


def no_arguments(parser: argparse.ArgumentParser, chat: bool) -> None:
    """A command without arguments of its own."""


@dataclass(frozen=True)
class Command:
    """One entry of the command table.

    `verb` is None for a one-word command (`worker`, `reconcile`). `arguments(parser, chat)`
    adds the command's own arguments (chat=True for the Slack grammar). `action` is what
    `policy.authorize` is asked about before the handler runs, on the type `target` names
    (None: reading, open to everyone; the lifecycle's own actions are checked by the use case,
    because Slack's buttons and forms reach it without the table). `json` adds --json
    on the command line; `waits` adds --no-wait. `slow` commands run off Slack's listener thread.
    """

    group: str
    verb: str | None
    help: str
    # None: the command runs a process (serve, demo, worker) that the command line starts itself.
    handler: Handler | None = None
    arguments: Arguments = no_arguments
    action: str | None = None
    target: Target | None = None
    surfaces: frozenset[Surface] = CLI_SLACK
    read_only: bool = False
    json: bool = False
    waits: bool = False
    slow: bool = False
    description: str = ""
    # The command reads options of the process (--as/--config) itself (e.g. `loadtest report`).
    common_options: bool = True
    # Runs against Shipyard's API instead of the record when SHIPYARD_URL is set (pipeline
    # steps on a build agent: no configuration, no database, a token).
    remote: Callable[[argparse.Namespace], Outcome] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.verb or "")

    @property
    def name(self) -> str:
        return f"{self.group} {self.verb}" if self.verb else self.group

    def offered_on(self, surface: Surface) -> bool:
        return surface in self.surfaces
