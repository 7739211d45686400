"""`params show|diff|set`: an environment's layered parameters, rendered, compared and changed."""

from __future__ import annotations

import argparse

from bot import render
from bot.command import Command, Outcome
from bot.runtime import Runtime
from environments import parameters, renderings
from environments.model import Environment
from environments.parameters import Parameter
from environments.policy import Actor
from environments.registry import record as rec


def _show_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")
    p.add_argument(
        "--format",
        choices=renderings.FORMATS,
        default="table",
        help="table (default), sf-xml, arm-json, dotenv or json",
    )


def _diff_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("first")
    p.add_argument("second")


def _set_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")
    p.add_argument("assignments", nargs="*", metavar="KEY=VALUE")
    p.add_argument("--unset", action="append", default=[], metavar="KEY")


def effective(rt: Runtime, env: Environment) -> dict[str, Parameter]:
    """The parameters the running release got (or would get now), templates filled in."""
    env_type = rt.catalog.type(env.type)
    resolved = parameters.resolve(
        rt.catalog, env_type, env.overrides, file_layer=renderings.file_layer(rt.catalog, env_type)
    )
    context = parameters.Context(env.name, env.type, env.owner, env.outputs, env.release)
    return parameters.render(resolved, context)


def _environment(rt: Runtime, name: str) -> Environment:
    with rt.database.read() as conn:
        return rec.get_environment(conn, name)


def params_show(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    env = _environment(rt, args.name)
    shown = effective(rt, env)
    env_type = rt.catalog.type(env.type)
    if args.format == "sf-xml":
        result = renderings.sf_xml(rt.catalog, env_type, env.name, shown)
        defaults = renderings.manifest_defaults(rt.catalog, env_type)
        notes = [
            f"{key}: not set, the ApplicationManifest's default applies ({defaults[key].value!r})"
            for key in result.defaulted
        ]
        return Outcome(text=result.xml.rstrip("\n"), notes=notes)
    if args.format == "arm-json":
        return Outcome(text=renderings.arm_json(rt.catalog, shown).rstrip("\n"))
    if args.format == "dotenv":
        return Outcome(text=renderings.dotenv(shown).rstrip("\n"))
    if args.format == "json":
        return Outcome(text=renderings.as_json(shown).rstrip("\n"))
    known = {key.lower() for key in shown}
    below = {
        k: p
        for k, p in renderings.arm_file_layer(rt.catalog, env_type).items()
        if k.lower() not in known
    }
    unset = {
        k: p
        for k, p in renderings.manifest_defaults(rt.catalog, env_type).items()
        if k not in shown
    }
    shown = dict(sorted({**shown, **below, **unset}.items()))
    rows = [
        [p.key, p.value, p.layer.value, "reference" if p.secret else ""] for p in shown.values()
    ]
    data = {
        k: {"value": p.value, "layer": p.layer.value, "secret": p.secret} for k, p in shown.items()
    }
    return Outcome(text=render.table(["key", "value", "layer", "secret"], rows), data=data)


def params_diff(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    first = effective(rt, _environment(rt, args.first))
    second = effective(rt, _environment(rt, args.second))
    changes = parameters.diff(first, second)
    rows = [
        [
            c.key,
            f"{c.before} ({c.before_layer})" if c.before is not None else "-",
            f"{c.after} ({c.after_layer})" if c.after is not None else "-",
        ]
        for c in changes
    ]
    text = (
        render.table(["key", args.first, args.second], rows)
        if rows
        else (f"{args.first} and {args.second} have the same parameters")
    )
    return Outcome(text=text, data=changes)


def params_set(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    changes = parameters.parse_assignments(args.assignments)
    requested = rt.lifecycle.set_parameters(actor, args.name, changes, args.unset)
    keys = ", ".join(sorted([*changes, *args.unset]))
    if requested is None:
        return Outcome(text=f"{args.name}: parameters {keys} set; they apply to its first release")
    if requested.approval is not None:
        a = requested.approval
        return Outcome(
            text=f"{args.name}: changing {keys} waits for approval (request #{a.id}, "
            f"{a.required} of {', '.join(a.approvers)})",
            data=requested,
        )
    return Outcome(
        text=f"{args.name}: redeploying {requested.release} with {keys} changed "
        f"(operation #{requested.operation_id})",
        data=requested,
        operation=requested.operation_id,
    )


COMMANDS = (
    Command(
        "params",
        "show",
        "an environment's parameters with the layer of each value",
        params_show,
        arguments=_show_args,
        read_only=True,
        json=True,
    ),
    Command(
        "params",
        "diff",
        "what differs between two environments' parameters",
        params_diff,
        arguments=_diff_args,
        read_only=True,
        json=True,
    ),
    Command(
        "params",
        "set",
        "change an environment's own parameters (redeploys)",
        params_set,
        arguments=_set_args,
        action="params_set",
        waits=True,
    ),
)
