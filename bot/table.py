"""The composition root of commands: every command of every surface, in one table.

Feature modules declare their commands as values (`COMMANDS`); this module collects them, and
every surface (the `shipyard` command line, `/env` in Slack and its help, pipeline steps) is
generated from the one table. Nothing registers itself by being imported.
"""

from __future__ import annotations

import argparse
import functools
import math
import re
from collections.abc import Sequence

from bot import (
    cli_approvals,
    cli_azure,
    cli_catalog,
    cli_env,
    cli_loadtests,
    cli_params,
    cli_pipelines,
    cli_queries,
    cli_releases,
    cli_schedules,
    cli_tokens,
)
from bot.command import CLI, Command, Hint, Outcome, Surface
from bot.grammar import Parser, build_parser, chat_words, one_line_usage
from bot.grammar import parse as parse_with
from bot.runtime import Runtime
from environments import policy
from environments.errors import InvalidInput, clip
from environments.model import parse_duration
from environments.policy import Actor

# Actions whose use case in environments/ calls policy.authorize itself: Slack's buttons and
# forms reach those use cases without the table, so the check lives where they all meet.
CHECKED_BY_USE_CASE = frozenset(
    {"create", "deploy", "promote", "approve", "reject", "destroy", "extend", "params_set"}
)


def _port(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text.strip()) or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"'{clip(text)}' is not a port (1-65535)")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or value > 86400:
        raise argparse.ArgumentTypeError(f"'{clip(text)}' is not a number of seconds (0-86400)")
    return value


def _serve_args(p: argparse.ArgumentParser, chat: bool) -> None:
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--port", type=_port, help="serve HTTP on this port (/slack/events, /healthz)"
    )
    mode.add_argument(
        "--socket-mode",
        action="store_true",
        help="connect to Slack over Socket Mode (needs SLACK_APP_TOKEN)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")


def _worker_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("--once", action="store_true", help="run what is runnable now, then exit")
    p.add_argument("--interval", type=_seconds, default=2.0, help="seconds between polls")


def _demo_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("--keep", action="store_true", help="keep the demo's folder afterwards")


PROCESSES = (
    Command(
        "worker",
        None,
        "run queued operations (and resume interrupted ones)",
        arguments=_worker_args,
        surfaces=CLI,
    ),
    Command(
        "serve",
        None,
        "run the Slack app (HTTP or Socket Mode) and the worker",
        arguments=_serve_args,
        surfaces=CLI,
    ),
    Command(
        "demo",
        None,
        "tell the whole story on embedded defaults, for real",
        arguments=_demo_args,
        surfaces=CLI,
        common_options=False,
    ),
)

TABLE: tuple[Command, ...] = (
    *cli_env.COMMANDS,
    *cli_approvals.COMMANDS,
    *cli_queries.COMMANDS,
    *cli_releases.COMMANDS,
    cli_tokens.HEALTH,
    *PROCESSES,
    *cli_params.COMMANDS,
    *cli_azure.COMMANDS,
    *cli_schedules.COMMANDS,
    *cli_loadtests.COMMANDS,
    *cli_pipelines.COMMANDS,
    *cli_tokens.COMMANDS,
    *cli_catalog.COMMANDS,
)

GROUP_HELP = {
    "env": "environments: create, deploy, promote, approve, …",
    "release": "releases: add, list",
    "config": "configuration: check",
    "params": "parameters: show, diff, set",
    "schedule": "schedules: list, pause, resume, run",
    "loadtest": "load tests: report, history, compare",
    "tokens": "API tokens for scripts and pipelines",
    "catalog": "Azure Deployment Environments catalogs: list, import",
    **cli_pipelines.GROUP_HELP,
}

BY_KEY = {command.key: command for command in TABLE}


def offered(surface: Surface) -> tuple[Command, ...]:
    """The commands a surface accepts (the command line runs pipeline steps too)."""
    wanted = {surface, Surface.PIPELINE} if surface is Surface.CLI else {surface}
    return tuple(c for c in TABLE if wanted & c.surfaces)


CHAT_GROUPS = frozenset(c.group for c in offered(Surface.SLACK) if c.group != "env")


@functools.lru_cache(maxsize=4)
def parser(surface: Surface = Surface.CLI, prog: str = "") -> Parser:
    # Building the grammar costs milliseconds (argparse + gettext); parsing with it does not
    # change it, so one parser serves every request.
    chat = surface is Surface.SLACK
    return build_parser(
        offered(surface),
        GROUP_HELP,
        prog or ("/env" if chat else "shipyard"),
        chat=chat,
        group_epilog={} if chat else {"pipeline": pipeline_help()},
    )


def pipeline_help() -> str:
    """What a pipeline step may call (`shipyard pipeline --help` ends with it): exactly the
    commands offered on the pipeline surface."""
    lines = ["commands a pipeline step may call:"]
    lines += [f"  shipyard {c.name:<28} {c.help}" for c in offered(Surface.PIPELINE)]
    return "\n".join(lines)


def parse(argv: Sequence[str], prog: str = "shipyard") -> argparse.Namespace:
    """A command line: `shipyard GROUP VERB …`."""
    return parse_with(parser(Surface.CLI, prog), argv)


def parse_text(text: str) -> argparse.Namespace:
    """Slack's `/env TEXT`: the chat grammar, split like a shell would."""
    # Every command of every surface: `/env loadtest report` is the CLI-only verb, refused as
    # such, not a load test of an environment called "report".
    return parse_with(parser(Surface.SLACK), chat_words(text, CHAT_GROUPS, BY_KEY))


def command_of(args: argparse.Namespace) -> Command:
    return BY_KEY[(args.group, getattr(args, "verb", "") or "")]


def execute(runtime: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    """Run a parsed command's handler as this person."""
    command = command_of(args)
    if command.handler is None:
        raise InvalidInput(
            f"'{command.name}' starts a process", hints=Hint("start it", command.name)
        )
    authorize(runtime, actor, command, args)
    return command.handler(runtime, actor, args)


def authorize(runtime: Runtime, actor: Actor, command: Command, args: argparse.Namespace) -> None:
    """The permission check of a command whose use case does not make it itself."""
    if command.action is None or command.action in CHECKED_BY_USE_CASE:
        return
    target = command.target(runtime, args) if command.target else None
    duration = getattr(args, "duration", None)
    policy.authorize(
        runtime.catalog,
        actor,
        command.action,
        target,
        users=getattr(args, "users", None),
        duration=parse_duration(duration) if isinstance(duration, str) else None,
    )


@functools.cache
def chat_help() -> str:
    """`/env help`: exactly the commands chat accepts, in chat's own words."""
    grammar = parser(Surface.SLACK)
    lines = ["*Shipyard* — `/env VERB …`:"]
    for command in offered(Surface.SLACK):
        usage = one_line_usage(grammar.verbs[command.key]).removeprefix("usage: ")
        lines.append(f"• `{usage}` — {command.help}")
    lines.append("`/env create` with no arguments opens a form.")
    return "\n".join(lines)
