"""Build the argparse grammar of a surface from the command table; parse with it.

The table itself is assembled in `bot/table.py`; this module only knows the Command shape.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

from bot.command import Command
from environments.errors import InvalidInput


class Parser(argparse.ArgumentParser):
    """argparse that raises a one-line InvalidInput with the usage instead of exiting.

    Abbreviated options are off: `--a` must never stand for `--as`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.verbs: dict[tuple[str, str], argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        raise InvalidInput(f"I couldn't parse that: {message}", hint=one_line_usage(self))


def one_line_usage(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_usage().split())


def _common(
    parser: argparse.ArgumentParser, *, json_output: bool = False, chat: bool = False
) -> None:
    """The options every command line verb takes; chat has none of them."""
    if chat:
        return
    parser.add_argument(
        "--as",
        dest="person",
        default=argparse.SUPPRESS,
        metavar="USER",
        help="act as this person (default: $SHIPYARD_USER, else the OS user)",
    )
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="shipyard.yaml to use (default: $SHIPYARD_CONFIG or ./shipyard.yaml)",
    )
    if json_output:
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _waits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="queue the work for `shipyard worker` and return at once",
    )


def build_parser(
    commands: Iterable[Command],
    group_help: Mapping[str, str],
    prog: str = "shipyard",
    *,
    chat: bool = False,
    group_epilog: Mapping[str, str] | None = None,
) -> Parser:
    """The grammar of these commands; chat=True for `/env …` (env verbs without their group,
    no --as, --config, --json or -h)."""
    parser = Parser(
        prog=prog,
        description="Shipyard: on-demand environments, deployments, approvals and promotions.",
        add_help=not chat,
    )
    parser.set_defaults(person=None, config=None, json=False, no_wait=False)
    if not chat:
        parser.add_argument(
            "--as",
            dest="person",
            default=None,
            metavar="USER",
            help="act as this person (default: $SHIPYARD_USER, else the OS user)",
        )
        parser.add_argument(
            "--config",
            default=None,
            metavar="PATH",
            help="shipyard.yaml to use (default: $SHIPYARD_CONFIG or ./shipyard.yaml)",
        )
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", parser_class=Parser)
    groups.required = True
    verb_parsers: dict[str, Any] = {}
    for command in commands:
        if command.verb is None:
            sub = groups.add_parser(
                command.group,
                help=command.help,
                description=command.description or command.help,
                add_help=not chat,
            )
            sub.set_defaults(verb="")
        else:
            if command.group not in verb_parsers:
                group = groups.add_parser(
                    command.group,
                    help=group_help.get(command.group, command.group),
                    prog=prog if chat and command.group == "env" else None,
                    add_help=not chat,
                    epilog=(group_epilog or {}).get(command.group),
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                )
                verbs = group.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
                verbs.required = True
                verb_parsers[command.group] = verbs
            sub = verb_parsers[command.group].add_parser(
                command.verb,
                help=command.help,
                description=command.description or command.help,
                add_help=not chat,
            )
        if command.common_options:
            _common(sub, json_output=command.json, chat=chat)
        command.arguments(sub, chat)
        if command.waits:
            _waits(sub)
        parser.verbs[command.key] = sub
    return parser


def parse(parser: Parser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse one command; a mistake names the usage of the verb it was made in."""
    namespace, extras = parser.parse_known_args(list(argv))
    if extras:
        where = parser.verbs.get((namespace.group, getattr(namespace, "verb", "") or ""), parser)
        raise InvalidInput(
            f"I couldn't parse that: unrecognized arguments: {' '.join(extras)}",
            hint=one_line_usage(where),
        )
    return namespace


def chat_words(
    text: str,
    chat_groups: frozenset[str],
    verbs: Mapping[tuple[str, str], object] | None = None,
) -> list[str]:
    """Slack's `/env TEXT` split like a shell would: `/env params show X` reaches the params
    group; everything else is an `env` verb."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InvalidInput(f"I couldn't parse that: {exc}", hint="check your quotes") from None
    if any(word.split("=")[0] in ("--a", "--as") for word in words):
        raise InvalidInput("--as is not available in chat", hint="you always act as yourself")
    if not words or words[0] not in chat_groups:
        return ["env", *words]
    # `loadtest` is both a group (`loadtest history`) and an env verb (`loadtest ENV`, as
    # `/env help` lists it): the word after it decides.
    follows = words[1] if len(words) > 1 else ""
    if (
        verbs is not None
        and ("env", words[0]) in verbs
        and follows
        and not follows.startswith("-")
        and (words[0], follows) not in verbs
    ):
        return ["env", *words]
    return words


def as_dict(namespace: argparse.Namespace) -> dict[str, Any]:
    return dict(vars(namespace))
