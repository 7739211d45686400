"""`pipelines …` and `pipeline …` commands: pipelines/cli.py's handlers wired into the grammar."""

from __future__ import annotations

import argparse
from typing import Any

from bot.commands import Outcome, command
from bot.grammar import Parser, _common
from bot.runtime import Runtime
from environments.policy import Actor
from pipelines import cli as pipelines_cli


def add_commands(groups: Any, parser: Parser, chat: bool) -> None:
    for key, sub in pipelines_cli.add_commands(groups, Parser, chat).items():
        _common(sub, chat=chat)
        parser.verbs[key] = sub


def _wrap(handler: pipelines_cli.Handler) -> Any:
    def run(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
        text, data, exit_code = handler(rt, args)
        if exit_code != 0:
            raise pipelines_cli.StepFailed(text, exit_code=exit_code)
        return Outcome(text=text, data=data)

    return run


for (group, verb), handler in pipelines_cli.HANDLERS.items():
    command(group, verb)(_wrap(handler))
