"""The `/env` and `shipyard env …` commands: parsed arguments → lifecycle calls → an outcome."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot import render
from bot.runtime import Runtime
from environments import parameters
from environments.errors import InvalidInput
from environments.lifecycle import Requested
from environments.model import format_duration, parse_duration
from environments.policy import Actor
from environments.registry import record as rec


@dataclass(frozen=True)
class Outcome:
    """What a command did: text for people, data for --json, and an operation to follow."""

    text: str
    data: Any = None
    operation: int | None = None
    follow: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exit_code: int = 0


Handler = Callable[[Runtime, Actor, argparse.Namespace], Outcome]
HANDLERS: dict[tuple[str, str], Handler] = {}


def command(group: str, verb: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[(group, verb)] = handler
        return handler

    return register


def execute(runtime: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    from bot.cli_extensions import grammars

    grammars()  # the feature modules' handlers are registered when they are imported
    return HANDLERS[(args.group, args.verb)](runtime, actor, args)


def _requested(requested: Requested, what: str) -> Outcome:
    if requested.approval is not None:
        a = requested.approval
        text = (
            f"{what}: waiting for approval (request #{a.id}, {a.required} of "
            f"{', '.join(a.approvers)})\n  approve with: shipyard env approve {a.id}"
        )
    else:
        text = f"{what}: queued as operation #{requested.operation_id}"
    return Outcome(text=text, data=requested, operation=requested.operation_id)


@command("env", "create")
def env_create(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    if getattr(args, "what_if", False):
        from bot import cli_azure

        return cli_azure.what_if_create(rt, actor, args)
    requested = rt.lifecycle.create(
        actor,
        args.name,
        env_type=args.env_type,
        release=args.release,
        ttl=parse_duration(args.ttl) if args.ttl is not None else None,
        overrides=parameters.parse_assignments(args.overrides),
    )
    return _requested(requested, f"{args.name} ({args.env_type}) with {args.release}")


@command("env", "deploy")
def env_deploy(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    if getattr(args, "what_if", False):
        from bot import cli_azure

        return cli_azure.what_if_deploy(rt, actor, args)
    requested = rt.lifecycle.deploy(
        actor,
        args.name,
        release=args.release,
        overrides=parameters.parse_assignments(args.overrides),
    )
    return _requested(requested, f"deploy {args.release} into {args.name}")


@command("env", "promote")
def env_promote(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    requested = rt.lifecycle.promote(
        actor,
        args.target,
        release=args.release,
        source=args.source,
        override_reason=args.override_reason,
    )
    return _requested(requested, f"promote {requested.release} into {requested.environment}")


@command("env", "approve")
def env_approve(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    approval, op_id = rt.lifecycle.approve(actor, args.ref, comment=args.comment)
    text = f"approved by {actor.person}: {render.approval_line(approval)}"
    if op_id is not None:
        text += f"\n  approvals complete: deploying as operation #{op_id}"
    return Outcome(text=text, data=approval, operation=op_id)


@command("env", "reject")
def env_reject(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    approval = rt.lifecycle.reject(actor, args.ref, reason=args.reason)
    return Outcome(
        text=f"rejected by {actor.person}: {render.approval_line(approval)} — not promoted",
        data=approval,
    )


@command("env", "approvals")
def env_approvals(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        waiting = rec.list_approvals(conn)
    text = "\n".join(render.approval_line(a) for a in waiting) or "nothing waits for approval"
    return Outcome(text=text, data=waiting)


@command("env", "list")
def env_list(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        envs = rec.list_environments(
            conn, env_type=args.env_type, owner=actor.person if args.mine else None
        )
    return Outcome(text=render.environments_table(envs), data=envs)


@command("env", "show")
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


@command("env", "where")
def env_where(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        rows = rec.matrix(conn, release=args.release)
    text = render.matrix_table(rows) if rows else f"{args.release} runs nowhere now"
    return Outcome(text=text, data=rows)


@command("env", "matrix")
def env_matrix(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        rows = rec.matrix(conn, env_type=args.env_type)
    order = {name: index for index, name in enumerate(rt.catalog.promotion)}
    rows.sort(key=lambda r: (order.get(r.type, len(order)), r.type, r.environment))
    return Outcome(text=render.matrix_table(rows), data=rows)


@command("env", "history")
def env_history(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        rows = rec.history(conn, args.name, limit=max(1, min(args.limit, 500)))
        if not rows:
            rec.get_environment(conn, args.name)
            return Outcome(text=f"nothing was ever deployed into {args.name}", data=[])
    return Outcome(text=render.history_table(rows), data=rows)


@command("env", "extend")
def env_extend(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    env = rt.lifecycle.extend(actor, args.name, by=parse_duration(args.by))
    return Outcome(text=f"{env.name} now expires {render.when(env.expires_at)}", data=env)


@command("env", "destroy")
def env_destroy(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    op_id = rt.lifecycle.destroy(actor, args.name, force=args.force)
    return Outcome(text=f"destroy {args.name}: queued as operation #{op_id}", operation=op_id)


@command("env", "loadtest")
def env_loadtest(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    if args.users is not None and not 1 <= args.users <= 10_000:
        raise InvalidInput(f"--users {args.users} is out of range", hint="use 1 to 10000")
    summary = rt.loadtesting.run(
        actor,
        args.name,
        plan=args.plan,
        users=args.users,
        duration=parse_duration(args.duration) if args.duration else None,
    )
    # A failed or regressed run exits non-zero, so a pipeline step can stop on it.
    return Outcome(
        text=summary.text(), data=summary, exit_code=9 if summary.outcome.blocks_promotion else 0
    )


@command("env", "expire")
def env_expire(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    report = rt.lifecycle.expire()
    parts = [
        f"warned: {', '.join(report.warned) or 'none'}",
        f"expired: {', '.join(report.expired) or 'none'}",
        f"approvals expired: {', '.join('#' + str(i) for i in report.approvals_expired) or 'none'}",
    ]
    return Outcome(text="; ".join(parts), data=report, follow=list(report.operations))


@command("release", "add")
def release_add(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    release = rt.lifecycle.add_release(
        actor, args.version, args.artifact, build_id=args.build_id, commit=args.commit
    )
    return Outcome(text=f"release {release.version} added ({release.artifact})", data=release)


@command("release", "list")
def release_list(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        rows = rec.list_releases(conn)
    return Outcome(text=render.releases_table(rows), data=rows)


@command("config", "check")
def config_check(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    c = rt.catalog
    lines = [f"{c.source}: ok"]
    for name, kind in c.types.items():
        gate = (
            f"{kind.approval.required} of {', '.join(kind.approval.approvers)}"
            if kind.approval
            else "no approval"
        )
        life = (
            f"ttl {format_duration(kind.ttl.default)} (max {format_duration(kind.ttl.max)})"
            if kind.ttl
            else "no expiry"
        )
        lines.append(
            f"  type {name}: {kind.provider}, {life}, {gate}"
            + (", protected" if kind.protected else "")
        )
    lines.append(f"  promotion: {' → '.join(c.promotion) or '(none)'}")
    data = {"ok": True, "problems": [], "source": c.source, **c.model_dump(mode="json")}
    return Outcome(text="\n".join(lines), data=data)
