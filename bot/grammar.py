"""The one grammar of Shipyard's commands, shared by the `shipyard` CLI and Slack's `/env`."""

from __future__ import annotations

import argparse
import functools
import math
import re
import shlex
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from environments.errors import InvalidInput, clip

# `/env params show X` reaches the params group; everything else is an `env` verb.
CHAT_GROUPS = frozenset({"params", "loadtest", "schedule"})


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


def _common(
    parser: argparse.ArgumentParser, *, json_output: bool = False, chat: bool = False
) -> None:
    if not chat:
        parser.add_argument(
            "--as",
            dest="person",
            default=argparse.SUPPRESS,
            metavar="USER",
            help="act as this person (default: the OS user)",
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


def build_parser(prog: str = "shipyard", *, chat: bool = False) -> Parser:
    """The whole grammar; with chat=True, `/env VERB …` without the options chat must not have."""
    parser = Parser(
        prog=prog,
        description="Shipyard: on-demand environments, deployments, approvals and promotions.",
    )
    parser.set_defaults(person=None, config=None)
    if not chat:
        parser.add_argument(
            "--as",
            dest="person",
            default=None,
            metavar="USER",
            help="act as this person (default: the OS user)",
        )
        parser.add_argument(
            "--config",
            default=None,
            metavar="PATH",
            help="shipyard.yaml to use (default: $SHIPYARD_CONFIG or ./shipyard.yaml)",
        )
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", parser_class=Parser)
    groups.required = True

    env = groups.add_parser(
        "env",
        help="environments: create, deploy, promote, approve, …",
        prog=prog if chat else f"{prog} env",
    )
    verbs = env.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    verbs.required = True

    def verb(name: str, help_text: str, *, json_output: bool = False) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        _common(sub, json_output=json_output, chat=chat)
        parser.verbs[("env", name)] = sub
        return sub

    p = verb("create", "create an environment and deploy a release into it")
    p.add_argument("name", help="3-40 lowercase letters, digits and hyphens (e.g. pr-1234)")
    p.add_argument("--type", dest="env_type", required=True, help="environment type, e.g. test")
    p.add_argument("--release", required=True, help="release version to deploy")
    p.add_argument("--ttl", help="lifetime, e.g. 8h (within the type's maximum)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a one-off parameter override (repeatable)",
    )
    _waits(p)
    p.add_argument(
        "--what-if",
        dest="what_if",
        action="store_true",
        help="show what would change (ARM what-if for azure types) without doing it",
    )

    p = verb("list", "list live environments", json_output=True)
    p.add_argument("--type", dest="env_type", help="only this type")
    p.add_argument("--mine", action="store_true", help="only environments I own")

    p = verb(
        "show",
        "show one environment: state, release, endpoint, expiry, waiting approvals",
        json_output=True,
    )
    p.add_argument("name")

    p = verb("deploy", "deploy a release into an environment")
    p.add_argument("name")
    p.add_argument("--release", required=True)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter for this deployment only (repeatable)",
    )
    _waits(p)
    p.add_argument(
        "--what-if",
        dest="what_if",
        action="store_true",
        help="show what would change (ARM what-if for azure types) without doing it",
    )

    p = verb(
        "promote",
        "deploy into TARGET the release that passed the step before it on the promotion path",
    )
    p.add_argument("target", help="an environment name, or a type with one environment")
    p.add_argument(
        "--release", help="which release (default: the newest that passed the previous step)"
    )
    p.add_argument("--from", dest="source", metavar="ENV", help="promote what runs in ENV")
    p.add_argument(
        "--override-reason",
        metavar="WHY",
        help="promote although the release's last load test failed or regressed",
    )
    _waits(p)

    p = verb("approve", "approve a waiting deployment or promotion")
    p.add_argument("ref", help="request number (#12) or the environment it waits on")
    p.add_argument("--comment", default="")
    _waits(p)

    p = verb("reject", "reject a waiting deployment or promotion")
    p.add_argument("ref", help="request number (#12) or the environment it waits on")
    p.add_argument("--reason", required=True, help="why not (shown to the requester)")

    verb("approvals", "list requests waiting for approval", json_output=True)

    p = verb("extend", "push an environment's expiry further out")
    p.add_argument("name")
    p.add_argument("--by", default="4h", help="how much longer (default 4h)")

    p = verb("destroy", "destroy an environment")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="admins only: destroy a protected one")
    _waits(p)

    p = verb("where", "which environments run a release", json_output=True)
    p.add_argument("release")

    p = verb("matrix", "which release runs where, since when, by whom", json_output=True)
    p.add_argument("--type", dest="env_type", help="only this type")

    p = verb("history", "what was deployed into an environment, newest first", json_output=True)
    p.add_argument("name")
    p.add_argument("--limit", type=int, default=20)

    p = verb("health", "an environment's latest health probes, newest first", json_output=True)
    p.add_argument("name")
    p.add_argument("--limit", type=int, default=20)

    verb("expire", "warn owners of environments about to expire; destroy expired ones")

    p = verb("loadtest", "load-test an environment and judge the release against its baseline")
    p.add_argument("name")
    p.add_argument("--plan", help="a plan under loadtests: in shipyard.yaml (default: the type's)")
    p.add_argument("--users", type=int, help="simulated users (default: the plan's)")
    p.add_argument("--duration", help="how long, e.g. 30s or 2m (default: the plan's)")

    release = groups.add_parser("release", help="releases: add, list")
    rverbs = release.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    rverbs.required = True
    p = rverbs.add_parser("add", help="add a release to the record")
    parser.verbs[("release", "add")] = p
    _common(p)
    p.add_argument("version")
    p.add_argument("--artifact", required=True, help="folder holding the release's files")
    p.add_argument("--build-id", default="")
    p.add_argument("--commit", default="")
    p = rverbs.add_parser("list", help="list releases, newest first")
    parser.verbs[("release", "list")] = p
    _common(p, json_output=True)

    config = groups.add_parser("config", help="configuration: check")
    cverbs = config.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    cverbs.required = True
    _common(
        cverbs.add_parser("check", help="validate shipyard.yaml and say what it declares"),
        json_output=True,
    )

    p = groups.add_parser("worker", help="run queued operations (and resume interrupted ones)")
    _common(p)
    p.add_argument("--once", action="store_true", help="run what is runnable now, then exit")
    p.add_argument("--interval", type=_seconds, default=2.0, help="seconds between polls")

    p = groups.add_parser("serve", help="run the Slack app (HTTP or Socket Mode) and the worker")
    _common(p)
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

    p = groups.add_parser("demo", help="tell the whole story on embedded defaults, for real")
    p.add_argument("--keep", action="store_true", help="keep the demo's folder afterwards")
    for add_commands in _extensions():
        add_commands(groups, parser, chat)
    return parser


def _extensions() -> list[Callable[[Any, Parser, bool], None]]:
    """Feature modules that add their own command groups (params, loadtest, reconcile, …)."""
    from bot import cli_extensions

    return list(cli_extensions.grammars())


@functools.lru_cache(maxsize=8)
def _parser(prog: str, chat: bool) -> Parser:
    # Building the grammar costs milliseconds (argparse + gettext); parsing with it does not
    # change it, so one parser serves every request.
    return build_parser(prog, chat=chat)


def parse(argv: Sequence[str], prog: str = "shipyard", *, chat: bool = False) -> argparse.Namespace:
    """Parse one command; a mistake names the usage of the verb it was made in."""
    parser = _parser(prog, chat)
    namespace, extras = parser.parse_known_args(list(argv))
    if extras:
        where = parser.verbs.get((namespace.group, getattr(namespace, "verb", "")), parser)
        raise InvalidInput(
            f"I couldn't parse that: unrecognized arguments: {' '.join(extras)}",
            hint=one_line_usage(where),
        )
    return namespace


def parse_text(text: str, prog: str = "/env") -> argparse.Namespace:
    """Slack's `/env TEXT`: the same grammar as `shipyard env …`, split like a shell would."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InvalidInput(f"I couldn't parse that: {exc}", hint="check your quotes") from None
    if any(word.split("=")[0] in ("--a", "--as") for word in words):
        raise InvalidInput("--as is not available in chat", hint="you always act as yourself")
    argv = words if words and words[0] in CHAT_GROUPS else ["env", *words]
    return parse(argv, prog=prog, chat=True)


def as_dict(namespace: argparse.Namespace) -> dict[str, Any]:
    return dict(vars(namespace))
