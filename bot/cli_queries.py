"""Commands that read the record: list, show, where, matrix, history."""

from __future__ import annotations

import argparse

from bot import render
from bot.command import EVERYWHERE, Command, Outcome
from bot.runtime import Runtime
from environments.policy import Actor
from environments.registry import record as rec


def env_list(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        envs = rec.list_environments(
            conn, env_type=args.env_type, owner=actor.person if args.mine else None
        )
    return Outcome(text=render.environments_table(envs), data=envs)


def env_show(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        env = rec.get_environment(conn, args.name)
        waiting = rec.list_approvals(conn, environment=env.name)
        current = rec.current_deployment(conn, env.id)
    provider = rt.worker.provider_for(env.type)
    health = provider.health(env)
    override = current.override_reason if current else None
    about = rt.catalog.types[env.type].summary if env.type in rt.catalog.types else ""
    return Outcome(
        text=render.environment_detail(env, waiting, health, override, about),
        data={"environment": env, "health": health, "waiting": waiting},
    )


def env_where(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        rows = rec.matrix(conn, release=args.release)
    text = render.matrix_table(rows) if rows else f"{args.release} runs nowhere now"
    return Outcome(text=text, data=rows)


def env_matrix(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        rows = rec.matrix(conn, env_type=args.env_type)
    order = {name: index for index, name in enumerate(rt.catalog.promotion)}
    rows.sort(key=lambda r: (order.get(r.type, len(order)), r.type, r.environment))
    return Outcome(text=render.matrix_table(rows), data=rows)


def env_history(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        rows = rec.history(conn, args.name, limit=max(1, min(args.limit, 500)))
        if not rows:
            rec.get_environment(conn, args.name)
            return Outcome(text=f"nothing was ever deployed into {args.name}", data=[])
    return Outcome(text=render.history_table(rows), data=rows)


def _list_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("--type", dest="env_type", help="only this type")
    p.add_argument("--mine", action="store_true", help="only environments I own")


def _name(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")


def _where_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("release")


def _matrix_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("--type", dest="env_type", help="only this type")


def _history_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")
    p.add_argument("--limit", type=int, default=20)


COMMANDS = (
    Command(
        "env",
        "list",
        "list live environments",
        env_list,
        arguments=_list_args,
        read_only=True,
        json=True,
    ),
    Command(
        "env",
        "show",
        "show one environment: state, release, endpoint, expiry, waiting approvals",
        env_show,
        arguments=_name,
        surfaces=EVERYWHERE,
        read_only=True,
        json=True,
    ),
    Command(
        "env",
        "where",
        "which environments run a release",
        env_where,
        arguments=_where_args,
        read_only=True,
        json=True,
    ),
    Command(
        "env",
        "matrix",
        "which release runs where, since when, by whom",
        env_matrix,
        arguments=_matrix_args,
        read_only=True,
        json=True,
    ),
    Command(
        "env",
        "history",
        "what was deployed into an environment, newest first",
        env_history,
        arguments=_history_args,
        read_only=True,
        json=True,
    ),
)
