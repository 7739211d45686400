"""Commands on releases and the configuration: release add|list, config check."""

from __future__ import annotations

import argparse

from bot import cli_azure, render
from bot.command import CLI, CLI_PIPELINE, Command, Outcome
from bot.runtime import Runtime
from environments.model import format_duration
from environments.policy import Actor
from environments.registry import record as rec


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


def _release_add_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("version")
    p.add_argument("--artifact", required=True, help="folder holding the release's files")
    p.add_argument("--build-id", default="")
    p.add_argument("--commit", default="")
    p.add_argument("--build-run", type=int, metavar="ID", help="the Azure DevOps run that built it")
    p.add_argument("--ref", default="", help="the git ref it was built from (refs/tags/…)")


def config_check(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    c = rt.catalog
    lines = [f"{c.source}: ok"]
    for name, env_type in c.types.items():
        gate = (
            f"{env_type.approval.required} of {', '.join(env_type.approval.approvers)}"
            if env_type.approval
            else "no approval"
        )
        life = (
            f"ttl {format_duration(env_type.ttl.default)} (max {format_duration(env_type.ttl.max)})"
            if env_type.ttl
            else "no expiry"
        )
        lines.append(
            f"  type {name}: {env_type.provider}, {life}, {gate}"
            + (", protected" if env_type.protected else "")
        )
    lines.append(f"  promotion: {' → '.join(c.promotion) or '(none)'}")
    # Every azure type's template checked against its parameters.
    lines += cli_azure.azure_check_lines(rt)
    data = {"ok": True, "problems": [], "source": c.source, **c.model_dump(mode="json")}
    return Outcome(text="\n".join(lines), data=data)


COMMANDS = (
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
