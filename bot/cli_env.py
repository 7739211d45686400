"""Commands that change environments: create, deploy, promote, extend, destroy, expire."""

from __future__ import annotations

import argparse

from bot import cli_azure, render
from bot.command import EVERYWHERE, Command, Hint, Outcome
from bot.runtime import Runtime
from environments import parameters
from environments.catalog import EnvironmentType
from environments.lifecycle import Requested
from environments.model import parse_duration
from environments.policy import Actor
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
        hints = (Hint("approve", "env approve", {"ref": a.id}),)
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


def env_extend(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    env = rt.lifecycle.extend(actor, args.name, by=parse_duration(args.by))
    return Outcome(text=f"{env.name} now expires {render.when(env.expires_at)}", data=env)


def env_destroy(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    op_id = rt.lifecycle.destroy(actor, args.name, force=args.force)
    return Outcome(text=f"destroy {args.name}: queued as operation #{op_id}", operation=op_id)


def env_expire(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    report = rt.lifecycle.expire()
    parts = [
        f"warned: {', '.join(report.warned) or 'none'}",
        f"expired: {', '.join(report.expired) or 'none'}",
        f"approvals expired: {', '.join('#' + str(i) for i in report.approvals_expired) or 'none'}",
    ]
    return Outcome(text="; ".join(parts), data=report, follow=list(report.operations))


def type_of_environment(rt: Runtime, args: argparse.Namespace) -> EnvironmentType:
    with rt.database.read() as conn:
        env = rec.get_environment(conn, args.name)
    return rt.catalog.type(env.type)


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


def _extend_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")
    p.add_argument("--by", default="4h", help="how much longer (default 4h)")


def _destroy_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="admins only: destroy a protected one")


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
        "expire",
        "warn owners of environments about to expire; destroy expired ones",
        env_expire,
        action="expire",
    ),
)
