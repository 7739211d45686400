"""Each surface speaks its own language: the core's hints said as a command line or in chat.

The core hands out next steps as `Hint`s (a command of the table and its arguments); this
module spells them from the table's own grammar: `shipyard env approve 12` on the command line,
`/env approve 12` in Slack, and plain words where chat has no such command or argument.
"""

from __future__ import annotations

import argparse
import shlex

from bot.command import Surface
from bot.table import BY_KEY, parser
from environments.errors import ShipyardError
from environments.outcome import Argument, Hint


def _spelled(sub: argparse.ArgumentParser, arguments: dict[str, Argument]) -> list[str] | None:
    """The hint's arguments as this grammar writes them, in the grammar's order (None: it has
    an argument this grammar does not know)."""
    by_dest = {action.dest: action for action in sub._actions if action.dest != "help"}
    if not set(arguments) <= set(by_dest):
        return None
    words: list[str] = []
    for dest, action in by_dest.items():
        if dest not in arguments:
            continue
        value = arguments[dest]
        named = max(action.option_strings, key=len).lstrip("-") if action.option_strings else dest
        blank = action.metavar if isinstance(action.metavar, str) else named.upper()
        if action.option_strings:
            words.append(max(action.option_strings, key=len))
            if action.nargs != 0:
                words.append(blank if value is None else shlex.quote(str(value)))
        else:
            words.append(blank if value is None else shlex.quote(str(value)))
    return words


def command_text(hint: Hint, surface: Surface) -> str | None:
    """The hint as a command this surface accepts, or None where it has none."""
    command = BY_KEY.get((hint.group, hint.verb))
    wanted = {Surface.CLI, Surface.PIPELINE} if surface is Surface.CLI else {surface}
    if command is None or not wanted & command.surfaces:
        return None
    sub = parser(surface).verbs.get(command.key)
    words = _spelled(sub, dict(hint.arguments)) if sub is not None else None
    if words is None:
        return None
    if surface is Surface.SLACK:
        head = [command.verb] if command.group == "env" else command.name.split()
        return " ".join(["/env", *[w for w in head if w], *words])
    return " ".join(["shipyard", *command.name.split(), *words])


def on_cli(hint: Hint) -> str:
    """'see waiting requests with `shipyard env approvals`'."""
    text = command_text(hint, Surface.CLI)
    return f"{hint.label} with '{text}'" if text else hint.label


def in_chat(hint: Hint) -> str:
    """'see waiting requests with `/env approvals`', or the words where chat cannot do it."""
    text = command_text(hint, Surface.SLACK)
    if text:
        return f"{hint.label} with `{text}`"
    return f"{hint.label} (from the command line or a pipeline, not in chat)"


def for_cli(exc: ShipyardError) -> str:
    """A refusal as the command line says it."""
    return exc.one_line(on_cli)


def for_chat(exc: ShipyardError) -> str:
    """A refusal as Slack says it."""
    return exc.one_line(in_chat)
