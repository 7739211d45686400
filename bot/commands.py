"""The `/env` and `shipyard env …` commands: parsed arguments → lifecycle calls → an outcome."""

from __future__ import annotations

import argparse
import sys

from bot import cli_azure, render
from bot.command import CLI, CLI_PIPELINE, EVERYWHERE, Command, Hint, Outcome
from bot.runtime import Runtime
from environments import parameters
from environments.catalog import EnvironmentType
from environments.errors import InvalidInput
from environments.lifecycle import Requested
from environments.model import format_duration, parse_duration
from environments.policy import Actor, Channel
from environments.registry import record as rec


def _requested(requested: Requested, what: str) -> Outcome:
    if requested.opens_at is not None:
        waits = (
            f"waiting for approval (request #{requested.approval.id}), then "
            if requested.approval
            else ""
        )
        text = (
            f"{what}: {waits}queued for when the deploy window opens "
            f"({render.when(requested.opens_at)}); the worker starts it then"
        )
        return Outcome(text=text, data=requested)
    if requested.approval is not None:
        a = requested.approval
        text = (
            f"{what}: waiting for approval (request #{a.id}, {a.required} of "
            f"{', '.join(a.approvers)})"
        )
        hints = (Hint("approve", "env", "approve", (str(a.id),)),)
        return Outcome(text=text, data=requested, operation=requested.operation_id, hints=hints)
    text = f"{what}: queued as operation #{requested.operation_id}"
    return Outcome(text=text, data=requested, operation=requested.operation_id)


def env_create(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    if getattr(args, "what_if", False):
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


def env_deploy(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    if getattr(args, "what_if", False):
        return cli_azure.what_if_deploy(rt, actor, args)
    requested = rt.lifecycle.deploy(
        actor,
        args.name,
        release=args.release,
        overrides=parameters.parse_assignments(args.overrides),
        when_open=args.when_open,
        window_override=args.override_window,
    )
    return _requested(requested, f"deploy {args.release} into {args.name}")


def env_promote(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    requested = rt.lifecycle.promote(
        actor,
        args.target,
        release=args.release,
        source=args.source,
        override_reason=args.override_reason,
        when_open=args.when_open,
        window_override=args.override_window,
    )
    return _requested(requested, f"promote {requested.release} into {requested.environment}")


def env_approve(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    approval, op_id = rt.lifecycle.approve(actor, args.ref, comment=args.comment)
    text = f"approved by {actor.person}: {render.approval_line(approval)}"
    if op_id is not None:
        text += f"\n  approvals complete: deploying as operation #{op_id}"
    return Outcome(text=text, data=approval, operation=op_id)


def env_reject(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    approval = rt.lifecycle.reject(actor, args.ref, reason=args.reason)
    return Outcome(
        text=f"rejected by {actor.person}: {render.approval_line(approval)} — not promoted",
        data=approval,
    )


def env_approvals(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        waiting = rec.list_approvals(conn)
    text = "\n".join(render.approval_line(a) for a in waiting) or "nothing waits for approval"
    return Outcome(text=text, data=waiting)


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


def env_extend(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    env = rt.lifecycle.extend(actor, args.name, by=parse_duration(args.by))
    return Outcome(text=f"{env.name} now expires {render.when(env.expires_at)}", data=env)


def env_destroy(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    op_id = rt.lifecycle.destroy(actor, args.name, force=args.force)
    return Outcome(text=f"destroy {args.name}: queued as operation #{op_id}", operation=op_id)


def _to_stderr(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def env_loadtest(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    if args.users is not None and not 1 <= args.users <= 10_000:
        raise InvalidInput(f"--users {args.users} is out of range", hint="use 1 to 10000")
    # Live figures: the surface may pass where they go (Slack: a message it updates); on the
    # command line they go to standard error, every few seconds.
    progress = getattr(args, "progress", None)
    if progress is None and actor.channel is Channel.CLI:
        progress = _to_stderr
    summary = rt.loadtesting.run(
        actor,
        args.name,
        plan=args.plan,
        users=args.users,
        duration=parse_duration(args.duration) if args.duration else None,
        progress=progress,
    )
    # A failed or regressed run exits non-zero, so a pipeline step can stop on it.
    return Outcome(
        text=summary.text(), data=summary, exit_code=9 if summary.outcome.blocks_promotion else 0
    )


def env_expire(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    report = rt.lifecycle.expire()
    parts = [
        f"warned: {', '.join(report.warned) or 'none'}",
        f"expired: {', '.join(report.expired) or 'none'}",
        f"approvals expired: {', '.join('#' + str(i) for i in report.approvals_expired) or 'none'}",
    ]
    return Outcome(text="; ".join(parts), data=report, follow=list(report.operations))


def release_add(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    release = rt.lifecycle.add_release(
        actor,
        args.version,
        args.artifact,
        build_id=args.build_id,
        commit=args.commit,
        build_run=args.build_run,
        source_ref=args.ref,
    )
    return Outcome(text=f"release {release.version} added ({release.artifact})", data=release)


def release_list(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        rows = rec.list_releases(conn)
    return Outcome(text=render.releases_table(rows), data=rows)


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
    # Every azure type's template checked against its parameters.
    lines += cli_azure.azure_check_lines(rt)
    data = {"ok": True, "problems": [], "source": c.source, **c.model_dump(mode="json")}
    return Outcome(text="\n".join(lines), data=data)


def _type_of_environment(rt: Runtime, args: argparse.Namespace) -> EnvironmentType:
    with rt.database.read() as conn:
        env = rec.get_environment(conn, args.name)
    return rt.catalog.type(env.type)


# --- arguments ------------------------------------------------------------------------------


def _overrides(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help_text,
    )


def _what_if(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--what-if",
        dest="what_if",
        action="store_true",
        help="show what would change (ARM what-if for azure types) without doing it",
    )


def _create_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name", help="3-40 lowercase letters, digits and hyphens (e.g. pr-1234)")
    p.add_argument("--type", dest="env_type", required=True, help="environment type, e.g. test")
    p.add_argument("--release", required=True, help="release version to deploy")
    p.add_argument("--ttl", help="lifetime, e.g. 8h (within the type's maximum)")
    _overrides(p, "a one-off parameter override (repeatable)")
    _what_if(p)


def _list_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("--type", dest="env_type", help="only this type")
    p.add_argument("--mine", action="store_true", help="only environments I own")


def _name(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")


def _windowed(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--when-open",
        dest="when_open",
        action="store_true",
        help="if the type's deploy window is closed, queue it to start when it opens",
    )
    p.add_argument(
        "--override-window",
        dest="override_window",
        metavar="WHY",
        help="admins only: deploy although the window is closed (shown to approvers)",
    )


def _deploy_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")
    p.add_argument("--release", required=True)
    _overrides(p, "a parameter for this deployment only (repeatable)")
    _what_if(p)
    _windowed(p)


def _promote_args(p: argparse.ArgumentParser, chat: bool) -> None:
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
    _windowed(p)


def _approve_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("ref", help="request number (#12) or the environment it waits on")
    p.add_argument("--comment", default="")


def _reject_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("ref", help="request number (#12) or the environment it waits on")
    p.add_argument("--reason", required=True, help="why not (shown to the requester)")


def _extend_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")
    p.add_argument("--by", default="4h", help="how much longer (default 4h)")


def _destroy_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="admins only: destroy a protected one")


def _where_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("release")


def _matrix_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("--type", dest="env_type", help="only this type")


def _history_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")
    p.add_argument("--limit", type=int, default=20)


def _loadtest_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")
    p.add_argument("--plan", help="a plan under loadtests: in shipyard.yaml (default: the type's)")
    p.add_argument("--users", type=int, help="simulated users (default: the plan's)")
    p.add_argument("--duration", help="how long, e.g. 30s or 2m (default: the plan's)")


def _release_add_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("version")
    p.add_argument("--artifact", required=True, help="folder holding the release's files")
    p.add_argument("--build-id", default="")
    p.add_argument("--commit", default="")
    p.add_argument("--build-run", type=int, metavar="ID", help="the Azure DevOps run that built it")
    p.add_argument("--ref", default="", help="the git ref it was built from (refs/tags/…)")


COMMANDS = (
    Command(
        "env",
        "create",
        "create an environment and deploy a release into it",
        env_create,
        arguments=_create_args,
        action="create",
        surfaces=EVERYWHERE,
        waits=True,
    ),
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
        "deploy",
        "deploy a release into an environment",
        env_deploy,
        arguments=_deploy_args,
        action="deploy",
        waits=True,
    ),
    Command(
        "env",
        "promote",
        "deploy into TARGET the release that passed the step before it on the promotion path",
        env_promote,
        arguments=_promote_args,
        action="promote",
        waits=True,
    ),
    Command(
        "env",
        "approve",
        "approve a waiting deployment or promotion",
        env_approve,
        arguments=_approve_args,
        action="approve",
        waits=True,
    ),
    Command(
        "env",
        "reject",
        "reject a waiting deployment or promotion",
        env_reject,
        arguments=_reject_args,
        action="reject",
    ),
    Command(
        "env",
        "approvals",
        "list requests waiting for approval",
        env_approvals,
        read_only=True,
        json=True,
    ),
    Command(
        "env",
        "extend",
        "push an environment's expiry further out",
        env_extend,
        arguments=_extend_args,
        action="extend",
    ),
    Command(
        "env",
        "destroy",
        "destroy an environment",
        env_destroy,
        arguments=_destroy_args,
        action="destroy",
        waits=True,
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
    Command(
        "env",
        "expire",
        "warn owners of environments about to expire; destroy expired ones",
        env_expire,
        action="expire",
    ),
    Command(
        "env",
        "loadtest",
        "load-test an environment and judge the release against its baseline",
        env_loadtest,
        arguments=_loadtest_args,
        action="loadtest",
        target=_type_of_environment,
        surfaces=EVERYWHERE,
        slow=True,
    ),
    Command(
        "release",
        "add",
        "add a release to the record",
        release_add,
        arguments=_release_add_args,
        action="release_add",
        surfaces=CLI_PIPELINE,
    ),
    Command(
        "release",
        "list",
        "list releases, newest first",
        release_list,
        read_only=True,
        json=True,
        surfaces=CLI,
    ),
    Command(
        "config",
        "check",
        "validate shipyard.yaml and say what it declares",
        config_check,
        read_only=True,
        json=True,
        surfaces=CLI,
    ),
)
