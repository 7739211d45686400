"""`tokens create|list|revoke` (API tokens for scripts and pipelines) and `env health`."""

from __future__ import annotations

import argparse
from typing import Any

from bot import render
from bot.commands import Outcome, command
from bot.grammar import Parser, _common
from bot.runtime import Runtime
from environments.model import parse_duration
from environments.policy import Actor
from environments.registry import record as rec
from environments.registry.health import health_history
from environments.tokens import SCOPES, Tokens, expiry_at


def add_commands(groups: Any, parser: Parser, chat: bool) -> None:
    if chat:
        return  # tokens are secrets: never issued or listed in a chat channel
    group = groups.add_parser("tokens", help="API tokens for scripts and pipelines")
    verbs = group.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    verbs.required = True
    p = verbs.add_parser("create", help="issue a token (shown once; only its hash is kept)")
    _common(p, json_output=True)
    p.add_argument("--scope", required=True, choices=SCOPES, help="read, or pipeline (+ read)")
    p.add_argument("--type", dest="env_type", help="only environments of this type (pipeline)")
    p.add_argument("--expires", help="lifetime, e.g. 90d (default: never)")
    p.add_argument("--description", default="", help="what it is for")
    parser.verbs[("tokens", "create")] = p
    p = verbs.add_parser("list", help="tokens with scope, expiry and last use (never the token)")
    _common(p, json_output=True)
    parser.verbs[("tokens", "list")] = p
    p = verbs.add_parser("revoke", help="revoke a token at once")
    _common(p)
    p.add_argument("prefix", help="the token's name as 'tokens list' shows it (shy_…)")
    parser.verbs[("tokens", "revoke")] = p


def tokens(rt: Runtime) -> Tokens:
    return Tokens(rt.catalog, rt.database, rt.clock)


@command("tokens", "create")
def tokens_create(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    plain, token = tokens(rt).create(
        actor,
        scope=args.scope,
        env_type=args.env_type,
        expires_in=parse_duration(args.expires) if args.expires else None,
        description=args.description,
    )
    expires = render.when(token.expires_at) if token.expires_at else "never"
    return Outcome(
        text=(
            f"token {token.prefix} ({token.scope}"
            + (f", type {token.env_type}" if token.env_type else "")
            + f", expires {expires}):\n{plain}\n"
            "  it is shown this once; keep it in a secret variable (SHIPYARD_TOKEN)"
        ),
        data={"token": plain, "prefix": token.prefix, "scope": token.scope},
    )


@command("tokens", "list")
def tokens_list(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    found = tokens(rt).list(actor)
    now = rt.clock.now()
    rows = [
        [
            t.prefix,
            t.scope,
            t.env_type or "-",
            t.created_by,
            render.when(t.created_at),
            render.when(t.expires_at) if t.expires_at else "never",
            expiry_at(t, now),
            render.when(t.last_used_at),
            t.description,
        ]
        for t in found
    ]
    headers = ["token", "scope", "type", "by", "created", "expires", "state", "last used", "for"]
    return Outcome(text=render.table(headers, rows), data=found)


@command("tokens", "revoke")
def tokens_revoke(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    token = tokens(rt).revoke(actor, args.prefix)
    return Outcome(text=f"token {token.prefix} revoked {render.when(token.revoked_at)}")


@command("env", "health")
def env_health(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        env = rec.get_environment(conn, args.name)
        checks = health_history(conn, args.name, limit=max(1, min(args.limit, 500)))
    if not checks:
        return Outcome(
            text=f"{env.name} has not been probed yet ('shipyard serve' probes)", data=[]
        )
    head = f"{env.name}: {render.health(env)}" + (
        f": {env.health_reason}" if env.health_reason else ""
    )
    return Outcome(text=head + "\n" + render.health_table(checks), data=checks)
