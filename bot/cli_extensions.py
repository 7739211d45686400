"""The feature modules that add command groups to the one grammar, and their handlers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

AddCommands = Callable[[Any, Any, bool], None]


@functools.cache
def grammars() -> tuple[AddCommands, ...]:
    """Each feature's add_commands(groups, parser, chat); importing a feature module registers
    its handlers with `bot.commands.command(group, verb)`. Imported on first use, so that any
    module (a feature's own included) can be imported first."""
    from bot import (
        cli_azure,
        cli_catalog,
        cli_loadtests,
        cli_params,
        cli_pipelines,
        cli_schedules,
        cli_tokens,
    )

    return tuple(
        module.add_commands
        for module in (
            cli_params,
            cli_azure,
            cli_schedules,
            cli_loadtests,
            cli_pipelines,
            cli_tokens,
            cli_catalog,
        )
    )
