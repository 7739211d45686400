"""`pipelines …` and `pipeline …`: pipelines/cli.py's steps as entries of the command table."""

from __future__ import annotations

from bot.command import CLI, CLI_PIPELINE, Command
from pipelines import cli as pipelines_cli
from pipelines.shipyard_api import configured as api_configured

GROUP_HELP = {
    "pipelines": "Azure DevOps: sync, runs, approvals, reconcile",
    "pipeline": "steps for inside a pipeline: render, record, register, wait",
}


def _command(step: pipelines_cli.Step) -> Command:
    handler = step.handler
    return Command(
        step.group,
        step.verb,
        step.help,
        lambda rt, actor, args: handler(rt, args),
        arguments=step.arguments,
        action=step.action,
        surfaces=CLI_PIPELINE if step.in_pipeline else CLI,
        read_only=step.action is None,
        json=step.json,
        description=step.description,
        remote=step.remote,
    )


__all__ = ["COMMANDS", "GROUP_HELP", "api_configured"]

COMMANDS = tuple(_command(step) for step in pipelines_cli.STEPS)
