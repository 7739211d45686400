"""`reconcile`, `env create|deploy --what-if` and Azure checks in `config check`."""

from __future__ import annotations

import argparse
import dataclasses
import re
from typing import TYPE_CHECKING, Any, TypeGuard

from bot import render
from bot.command import CLI, Command, Outcome
from bot.runtime import Runtime
from environments import inputs, parameters, policy, renderings
from environments.catalog import EnvironmentType
from environments.errors import ConfigError, Conflict, NotFound, ShipyardError
from environments.model import (
    Environment,
    EnvironmentName,
    EnvironmentState,
    Person,
    Release,
    check_environment_name,
    parse_duration,
)
from environments.policy import Actor
from environments.providers import arm_parameters, whatif
from environments.providers import arm_template as arm
from environments.providers.arm_source import arm_source
from environments.registry import record as rec

if TYPE_CHECKING:  # the Azure SDK is imported only when an azure type is used
    from environments.providers.azure import AzureProvider
    from environments.providers.azure_drift import Drift

SYMBOLS = {
    "create": "+",
    "delete": "-",
    "modify": "~",
    "deploy": "!",
    "nochange": "=",
    "ignore": "*",
    "unsupported": "?",
    "noeffect": "=",
    "array": "~",
}
DRIFT_FOUND = 11
RESOURCE_ID = re.compile(r"/resourceGroups/(?P<group>[^/]+)(?:/providers/(?P<rest>.+))?$", re.I)


# --- reconcile ------------------------------------------------------------------------------


def reconcile(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    provider = rt.worker.providers.get("azure")
    if provider is None:
        return Outcome(
            text="no environment type uses provider azure: nothing to reconcile",
            data={"orphans": [], "vanished": []},
        )
    assert _is_azure(provider)
    from bot.health_leader import record_drift

    drift = record_drift(rt, actor.person)  # also what the dashboard's orphans banner shows
    assert drift is not None
    data = {
        "orphans": [dataclasses.asdict(o) for o in drift.orphans],
        "vanished": [
            {"environment": e.name, "type": e.type, "state": e.state.value, "resourceGroup": g}
            for e, g in ((e, provider.resource_group(e)) for e in drift.vanished)
        ],
    }
    # Non-zero on drift, so a scheduled `shipyard reconcile` can alert (README's exit codes).
    return Outcome(
        text=drift_text(drift, provider), data=data, exit_code=0 if drift.clean else DRIFT_FOUND
    )


def drift_text(drift: Drift, provider: AzureProvider) -> str:
    if drift.clean:
        return "no drift: every resource group tagged shipyard-env belongs to a live environment"
    lines = []
    if drift.orphans:
        lines.append(
            f"{len(drift.orphans)} orphaned resource group(s): tagged shipyard-env, unknown to "
            "the record, still costing money"
        )
        rows = [
            [
                o.name,
                o.location,
                o.tags.get("shipyard-env", "-"),
                o.tags.get("shipyard-owner", "-"),
                o.tags.get("shipyard-expires", "-"),
            ]
            for o in drift.orphans
        ]
        table = render.table(
            ["resource group", "location", "environment", "owner", "expires"], rows
        )
        lines += ["  " + line for line in table.splitlines()]
        lines.append("  delete one with: az group delete --name NAME")
    if drift.vanished:
        lines.append(
            f"{len(drift.vanished)} environment(s) whose resource group vanished from Azure"
        )
        rows = [[e.name, e.type, e.state.value, provider.resource_group(e)] for e in drift.vanished]
        table = render.table(["environment", "type", "state", "resource group"], rows)
        lines += ["  " + line for line in table.splitlines()]
        lines.append("  let the record follow with: shipyard env destroy NAME")
    return "\n".join(lines)


# --- what-if --------------------------------------------------------------------------------


def what_if_create(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    """`env create … --what-if`: the same checks as a create, then what it would change."""
    check_environment_name(args.name)
    env_type = rt.catalog.type(args.env_type)
    policy.require(rt.catalog, actor, "create", env_type)
    lifetime = policy.lifetime(env_type, parse_duration(args.ttl) if args.ttl is not None else None)
    overrides = parameters.parse_assignments(args.overrides)
    parameters.check(overrides, "--set")
    inputs.require(
        env_type.inputs,
        overrides,
        type_name=env_type.name,
        preset=[*rt.catalog.parameters, *env_type.parameters],
        creating=True,
    )
    with rt.database.read() as conn:
        release = rec.get_release(conn, args.release)
        _not_live(conn, args.name)
    now = rt.lifecycle.clock.now()
    env = Environment(
        id=0,
        name=EnvironmentName(args.name),
        type=args.env_type,
        state=EnvironmentState.REQUESTED,
        owner=Person(actor.person),
        created_at=now,
        expires_at=now + lifetime if lifetime else None,
        release=None,
        release_since=None,
        release_by=None,
        endpoint=None,
        overrides=overrides,
    )
    return _what_if(rt, env_type, env, release, {}, creating=True)


def what_if_deploy(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    """`env deploy … --what-if`: the same checks as a deploy, then what it would change."""
    one_off = parameters.parse_assignments(args.overrides)
    parameters.check(one_off, "--set")
    with rt.database.read() as conn:
        env = rec.get_environment(conn, args.name)
        release = rec.get_release(conn, args.release)
    env_type = rt.catalog.type(env.type)
    policy.require(rt.catalog, actor, "deploy", env_type)
    inputs.require(env_type.inputs, one_off, type_name=env_type.name, creating=False)
    return _what_if(rt, env_type, env, release, one_off, creating=False)


def _is_azure(provider: object) -> TypeGuard[AzureProvider]:
    return getattr(provider, "name", None) == "azure" and hasattr(provider, "what_if")


def _not_live(conn: Any, name: str) -> None:
    try:
        rec.get_environment(conn, name)
    except NotFound:
        return
    raise Conflict(f"{name} already exists", hint="pick another name, or deploy into it")


def _what_if(
    rt: Runtime,
    env_type: EnvironmentType,
    env: Environment,
    release: Release,
    one_off: dict[str, str],
    *,
    creating: bool,
) -> Outcome:
    given = _parameters(rt, env_type, env, release, one_off)
    provider = rt.worker.providers[env_type.provider]
    if _is_azure(provider):
        result = provider.what_if(env, release.version, given)
        if creating:
            result = dataclasses.replace(
                result,
                notes=(
                    "names with a per-environment suffix will differ: the suffix comes from "
                    "the environment's record, which does not exist yet",
                ),
            )
    else:
        result = _local_what_if(rt, env, release, given, creating=creating)
    return Outcome(text=what_if_text(result), data=result)


def _parameters(
    rt: Runtime,
    env_type: EnvironmentType,
    env: Environment,
    release: Release,
    one_off: dict[str, str],
) -> dict[str, str]:
    """The parameters the worker would hand the provider (see operation_steps.Steps.deploy)."""
    resolved = parameters.resolve(
        rt.catalog,
        env_type,
        env.overrides,
        one_off,
        file_layer=renderings.file_layer(rt.catalog, env_type),
    )
    context = parameters.Context(env.name, env.type, env.owner, env.outputs, release.version)
    return parameters.values(parameters.render(resolved, context))


def _local_what_if(
    rt: Runtime, env: Environment, release: Release, given: dict[str, str], *, creating: bool
) -> whatif.WhatIf:
    app = rt.catalog.application
    count = f"{app.instances} process{'es' if app.instances > 1 else ''}"
    command_line = " ".join(app.command)
    keys = ", ".join(sorted(given)) or "none"
    changes = []
    if creating:
        changes.append(
            whatif.ResourceChange("Create", f"folder {rt.home / 'environments'}/{env.name}-…")
        )
    changes.append(
        whatif.ResourceChange(
            "Create",
            f"{count} of release {release.version} ({command_line}) from {release.artifact}, "
            f"on free ports of 127.0.0.1, health-checked at {app.health}",
        )
    )
    if env.release:
        changes.append(
            whatif.ResourceChange(
                "Delete", f"the processes of release {env.release}, once the new ones are healthy"
            )
        )
    return whatif.WhatIf(
        environment=env.name,
        provider="local",
        summary=f"{'create' if creating else 'deploy into'} {env.name} on this machine",
        changes=tuple(changes),
        notes=(f"parameters passed as environment variables: {keys}",),
    )


def what_if_text(result: whatif.WhatIf) -> str:
    """Readable in a terminal and as Slack text: a line per resource, changed properties below."""
    lines = [f"what-if for {result.environment} ({result.provider}): {result.summary}"]
    counts: dict[str, int] = {}
    for change in result.changes:
        key = change.change.lower()
        counts[key] = counts.get(key, 0) + 1
        lines.append(
            f"  {SYMBOLS.get(key, '?')} {change.change:<9} {_resource(change.resource_id)}"
        )
        for prop in change.properties:
            mark = SYMBOLS.get(prop.change.lower(), "~")
            lines.append(f"      {mark} {prop.path}: {_short(prop.before)} → {_short(prop.after)}")
    if not result.changes:
        lines.append("  (no changes)")
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    lines.append(f"changes: {summary or 'none'}")
    lines += [f"note: {note}" for note in result.notes]
    lines.append("nothing was done and the record is unchanged")
    return "\n".join(lines)


def _resource(resource_id: str) -> str:
    match = RESOURCE_ID.search(resource_id)
    if not match:
        return resource_id
    if not match.group("rest"):
        return f"Microsoft.Resources/resourceGroups {match.group('group')}"
    parts = match.group("rest").split("/")
    kind = "/".join([parts[0], *parts[1::2]])
    return f"{kind} {'/'.join(parts[2::2])}"


def _short(value: Any) -> str:
    text = "-" if value is None else repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- config check ---------------------------------------------------------------------------


def azure_check_lines(rt: Runtime) -> list[str]:
    """`config check`'s lines for azure types: each template checked against its parameters."""
    return [
        line
        for name, env_type in rt.catalog.types.items()
        for line in _azure_check(rt, name, env_type)
    ]


def _azure_check(rt: Runtime, name: str, env_type: EnvironmentType) -> list[str]:
    if env_type.provider != "azure":
        return []
    source = arm_source(rt.catalog, name)
    template = source.template
    try:
        supplied = parameters.values(
            parameters.resolve(
                rt.catalog, env_type, {}, file_layer=renderings.file_layer(rt.catalog, env_type)
            )
        )
    except ShipyardError as exc:
        raise ConfigError(
            f"{rt.catalog.source}: type '{name}': {exc.reason}", hint=exc.hint, hints=exc.hints
        ) from None
    _, problems = arm_parameters.check_parameters(
        template,
        supplied,
        file_values=source.file_values,
        unique=source.unique,
        suffix="0" * arm.SUFFIX_LENGTH,
        fallback_base=name,
        vault_id=lambda ref: ref.vault_id(rt.catalog.azure.subscription_id, "shared"),
    )
    errors = [str(p) for p in problems if not p.missing]
    if errors:
        raise ConfigError(
            f"{rt.catalog.source}: type '{name}': {template.name}: " + "; ".join(errors),
            hint="make types.<type>.parameters match the template's parameters",
        )
    needed = [p.key for p in problems if p.missing]
    needed += [
        i.id for i in env_type.inputs if i.required and i.default is None and i.id not in supplied
    ]
    origin = (
        f" (ADE {env_type.definition.headline()}, runner {env_type.definition.runner})"
        if env_type.definition
        else ""
    )
    return [
        f"  azure {name}: {template.name} ok{origin} ({len(template.parameters)} parameters"
        + (f"; each environment must set {', '.join(needed)}" if needed else "")
        + ")"
    ]


COMMANDS = (
    Command(
        "reconcile",
        None,
        "report drift between Azure and the record (orphaned or vanished resource groups)",
        reconcile,
        description="Resource groups tagged shipyard-env that no live environment owns (they "
        "still cost money), and live azure environments whose resource group is gone.",
        read_only=True,
        json=True,
        surfaces=CLI,
    ),
)
