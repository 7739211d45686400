"""The feature modules that add command groups to the one grammar, and their handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Each entry: add_commands(groups, parser, chat) adds subparsers to `groups` (argparse's
# subparsers action of the top-level parser) and registers verbs in `parser.verbs`; its module
# registers handlers with `bot.commands.command(group, verb)`.
GRAMMARS: list[Callable[[Any, Any, bool], None]] = []

from bot import cli_params  # noqa: E402

GRAMMARS.append(cli_params.add_commands)

from bot import cli_azure  # noqa: E402

GRAMMARS.append(cli_azure.add_commands)

from bot import cli_schedules  # noqa: E402

GRAMMARS.append(cli_schedules.add_commands)

from bot import cli_loadtests  # noqa: E402

GRAMMARS.append(cli_loadtests.add_commands)

from bot import cli_pipelines  # noqa: E402

GRAMMARS.append(cli_pipelines.add_commands)
