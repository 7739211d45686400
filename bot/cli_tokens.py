"""`tokens create|list|revoke` (API tokens for scripts and pipelines) and `env health`."""

from __future__ import annotations

import argparse
import dataclasses

from bot import render
from bot.command import CLI, Command, Outcome
from bot.runtime import Runtime
from environments.model import parse_duration
from environments.policy import Actor
from environments.registry import record as rec
from environments.registry.health import health_history
from environments.tokens import SCOPES, Tokens, expiry_at


def _create_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("--scope", required=True, choices=SCOPES, help="read, or pipeline (+ read)")
    p.add_argument("--type", dest="env_type", help="only environments of this type (pipeline)")
    p.add_argument("--expires", help="lifetime, e.g. 90d (default: never)")
    p.add_argument("--description", default="", help="what it is for")


def _revoke_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("prefix", help="the token's name as 'tokens list' shows it (shy_…)")


def _health_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")
    p.add_argument("--limit", type=int, default=20)


def tokens(rt: Runtime) -> Tokens:
    return Tokens(rt.catalog, rt.database, rt.clock)


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
            + (f", type {token.environment_type}" if token.environment_type else "")
            + f", expires {expires}):\n{plain}\n"
            "  it is shown this once; keep it in a secret variable (SHIPYARD_TOKEN)"
        ),
        data={"token": plain, "prefix": token.prefix, "scope": token.scope},
    )


def tokens_list(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    found = tokens(rt).list(actor)
    now = rt.clock.now()
    rows = [
        [
            t.prefix,
            t.scope,
            t.environment_type or "-",
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
    # `env_type` is the key this JSON had before the vocabulary said environment_type; kept.
    data = [{**dataclasses.asdict(t), "env_type": t.environment_type} for t in found]
    return Outcome(text=render.table(headers, rows), data=data)


def tokens_revoke(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    token = tokens(rt).revoke(actor, args.prefix)
    return Outcome(text=f"token {token.prefix} revoked {render.when(token.revoked_at)}")


def env_health(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        env = rec.get_environment(conn, args.name)
        checks = health_history(conn, args.name, limit=max(1, min(args.limit, 500)))
    if not checks:
        return Outcome(
            text=f"{env.name} has not been probed yet (Shipyard's server probes live ones)",
            data=[],
        )
    head = f"{env.name}: {render.health(env)}" + (
        f": {env.health_reason}" if env.health_reason else ""
    )
    return Outcome(text=head + "\n" + render.health_table(checks), data=checks)


COMMANDS = (
    # Tokens are secrets: never issued or listed in a chat channel.
    Command(
        "tokens",
        "create",
        "issue a token (shown once; only its hash is kept)",
        tokens_create,
        arguments=_create_args,
        action="tokens_manage",
        surfaces=CLI,
        json=True,
    ),
    Command(
        "tokens",
        "list",
        "tokens with scope, expiry and last use (never the token)",
        tokens_list,
        action="tokens_manage",
        read_only=True,
        surfaces=CLI,
        json=True,
    ),
    Command(
        "tokens",
        "revoke",
        "revoke a token at once",
        tokens_revoke,
        arguments=_revoke_args,
        action="tokens_manage",
        surfaces=CLI,
    ),
)

HEALTH = Command(
    "env",
    "health",
    "an environment's latest health probes, newest first",
    env_health,
    arguments=_health_args,
    read_only=True,
    json=True,
)
