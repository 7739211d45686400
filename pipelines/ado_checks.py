"""Check sync: Azure DevOps environments and their checks made to match shipyard.yaml.

Each Shipyard environment has a twin `shipyard-<env>` in Azure DevOps with an Exclusive Lock
check (one deployment at a time; the templates ask for it with `lockBehavior: sequential`) and,
when its type has an `approval:`, Shipyard's approval check. `sync` first reads what is there,
works out each difference, and then writes them, unless it is a dry run, which only reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from environments.catalog import Catalog
from environments.errors import ConfigError
from environments.registry import record as rec
from pipelines.ado_model import (
    APPROVAL_CHECK_TYPE,
    EXCLUSIVE_LOCK_CHECK_TYPE,
    MANAGED,
    SyncChange,
)
from pipelines.ado_transport import Transport

# How long a run waits for the lock on an environment another run holds.
LOCK_TIMEOUT_MINUTES = 24 * 60
# What the templates' steps read from the variable group (the token as a secret).
GROUP_VARIABLES = ("SHIPYARD_URL", "SHIPYARD_TOKEN")


class CheckSync(Transport):
    """Environments and Shipyard's checks in Azure DevOps."""

    def find_environment(self, name: str) -> int | None:
        """The id of the Azure DevOps environment `name`, or None when there is none."""
        client = self._client("environments")
        with self._translated(f"read environment {name}"):
            found = [e for e in client.get_environments(self.project, name=name) if e.name == name]
        return int(found[0].id) if found else None

    def ensure_environment(self, name: str, *, description: str = "") -> tuple[int, bool]:
        """The Azure DevOps environment `name`, created if missing: (id, created)."""
        found = self.find_environment(name)
        if found is not None:
            return found, False
        return self._create_environment(name, description), True

    def _create_environment(self, name: str, description: str) -> int:
        from azure.devops.v7_1.task_agent.models import EnvironmentCreateParameter

        client = self._client("environments")
        with self._translated(f"create environment {name}"):
            made = client.add_environment(
                EnvironmentCreateParameter(name=name, description=description), self.project
            )
        return int(made.id)

    def checks_of(self, environment_id: int) -> list[dict[str, Any]]:
        """Every check on an environment, with its settings (raw JSON)."""
        with self._translated(f"read the checks of environment {environment_id}"):
            body = self._checks(
                "GET",
                {},
                {
                    "resourceType": "environment",
                    "resourceId": environment_id,
                    "$expand": "settings",
                },
            )
        return list((body or {}).get("value", []))

    def approval_checks(self, environment_id: int) -> list[dict[str, Any]]:
        """The approval checks on an environment, with their settings (raw JSON)."""
        return [c for c in self.checks_of(environment_id) if _is(c, APPROVAL_CHECK_TYPE)]

    def sync(
        self,
        catalog: Catalog,
        environments: Sequence[tuple[str, str]],
        *,
        dry_run: bool = False,
    ) -> list[SyncChange]:
        """Make each environment's Azure DevOps twin exist with the checks its type says.

        `environments` are the record's live (name, type) pairs. Only checks Shipyard manages
        are changed or removed (approval checks whose instructions start with "Managed by
        Shipyard"; an existing Exclusive Lock check is kept as it is); others are reported and
        left alone. With `dry_run` nothing is written: the changes say what would be, field by
        field.
        """
        changes: list[SyncChange] = []
        for environment, type_name in self._targets(catalog, environments):
            env_type = catalog.type(type_name)
            name = self.settings.environment_name(environment)
            wanted = self._wanted_check(catalog, type_name) if env_type.approval else None
            env_id = self.find_environment(name)
            existing = self.checks_of(env_id) if env_id is not None else []
            if env_id is None:
                changes.append(SyncChange(name, _verb("create", dry_run) + " environment"))
                if not dry_run:
                    env_id = self._create_environment(
                        name, f"Shipyard environment {environment} (type {type_name})"
                    )
            plan = _approval_plan(name, existing, wanted) + _lock_plan(name, existing)
            for step in plan:
                changes.append(step.change(dry_run))
                if not dry_run and env_id is not None and step.write is not None:
                    self._write(step, name, env_id)
        changes.append(self.variable_group_state())
        return changes

    def variable_group_state(self) -> SyncChange:
        """Whether the variable group the templates read holds SHIPYARD_URL and a secret
        SHIPYARD_TOKEN. Only read: the token is the team's to put there, never Shipyard's."""
        name = self.settings.variable_group
        client = self._client("environments")
        with self._translated(f"read variable group {name}"):
            found = [
                g for g in client.get_variable_groups(self.project, group_name=name) or []
                if g.name == name
            ]  # fmt: skip
        what = f"variable group {name}"
        todo = "Pipelines → Library: SHIPYARD_URL, and SHIPYARD_TOKEN as a secret (from "
        todo += "'shipyard tokens create --scope pipeline')"
        if not found:
            return SyncChange(what, "missing", f"the steps cannot reach Shipyard; {todo}")
        variables = found[0].variables or {}
        wrong = [f"{v} is missing" for v in GROUP_VARIABLES if v not in variables]
        token = variables.get("SHIPYARD_TOKEN")
        if token is not None and not token.is_secret:
            wrong.append("SHIPYARD_TOKEN is not secret")
        if wrong:
            return SyncChange(what, "incomplete", f"{'; '.join(wrong)}; {todo}")
        return SyncChange(what, "unchanged", "SHIPYARD_URL, SHIPYARD_TOKEN (secret)")

    def _write(self, step: _Step, name: str, env_id: int) -> None:
        assert step.write is not None
        method, route, body = step.write
        if body is not None:
            body = {**body, "resource": {"type": "environment", "id": str(env_id), "name": name}}
        with self._translated(f"{step.action} on {name}"):
            self._checks(method, route, body=body)

    def _targets(
        self, catalog: Catalog, environments: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Live environments, plus one named after each gated type.

        Azure DevOps creates an environment a pipeline names on first use, with no checks; the
        twin named after a gated type exists beforehand so its first deployment is gated too.
        """
        targets = dict(environments)
        for type_name, env_type in catalog.types.items():
            if env_type.approval is not None:
                targets.setdefault(type_name, type_name)
        return [(name, type_name) for name, type_name in targets.items()]

    def _wanted_check(self, catalog: Catalog, type_name: str) -> dict[str, Any]:
        """Shipyard's gate: its own account is the one approver; people decide in Slack.

        The check passes what Shipyard decided (N of M under the type's policy, never the
        requester, who Shipyard knows and Azure DevOps does not: runs Shipyard starts are
        requested by the token's account, so the check cannot block "the requester" itself).
        """
        env_type = catalog.type(type_name)
        assert env_type.approval is not None
        people = sorted(catalog.members(env_type.approval.approvers))
        identity = self.settings.approver_identity.strip()
        if not identity:
            raise ConfigError(
                f"type '{type_name}' is gated, but Shipyard's Azure DevOps identity is not set",
                hint="set azure_devops.approver_identity in shipyard.yaml to the identity id of "
                "the account whose PAT Shipyard uses (it becomes the approver of the check)",
            )
        return {
            "approvers": [{"id": identity, "displayName": "Shipyard"}],
            "minRequiredApprovers": 1,
            "requesterCannotBeApprover": False,
            "executionOrder": "anyOrder",
            "blockedApprovers": [],
            "instructions": f"{MANAGED} from shipyard.yaml (type '{type_name}'): decided in "
            f"Slack by {env_type.approval.required} of {', '.join(people)}, never the requester; "
            "Shipyard answers here.",
            "timeout": max(1, int(env_type.approval.timeout.total_seconds() // 60)),
        }


class _Step:
    """One difference between a twin's checks and shipyard.yaml, and how to remove it."""

    def __init__(
        self,
        name: str,
        action: str,
        detail: str = "",
        changes: tuple[str, ...] = (),
        *,
        write: tuple[str, dict[str, str], dict[str, Any] | None] | None = None,
    ) -> None:
        self.name, self.action, self.detail, self.changes = name, action, detail, changes
        # (method, route values, body with a "resource" to fill in) or None: nothing to write.
        self.write = write

    def change(self, dry_run: bool) -> SyncChange:
        action = self.action
        if self.write is not None:
            verb, _, rest = action.partition(" ")
            action = f"{_verb(verb, dry_run)} {rest}"
        return SyncChange(self.name, action, self.detail, self.changes)


def _approval_plan(
    name: str, existing: list[dict[str, Any]], wanted: dict[str, Any] | None
) -> list[_Step]:
    approvals = [c for c in existing if _is(c, APPROVAL_CHECK_TYPE)]
    ours = [c for c in approvals if _instructions(c).startswith(MANAGED)]
    plan = [
        _Step(name, "left alone", f"approval check #{c['id']} is not managed by Shipyard")
        for c in approvals
        if c not in ours
    ]
    for extra in ours[1 if wanted else 0 :]:
        plan.append(
            _Step(
                name,
                "remove approval check",
                f"#{extra['id']}",
                write=("DELETE", {"id": str(extra["id"])}, None),
            )
        )
    if wanted is None:
        return plan or [_Step(name, "unchanged", "no approval")]
    settings = {k: v for k, v in wanted.items() if k != "timeout"}
    body = {"type": APPROVAL_CHECK_TYPE, "settings": settings, "timeout": wanted["timeout"]}
    if not ours:
        plan.append(
            _Step(name, "create approval check", _describe(wanted), write=("POST", {}, body))
        )
        return plan
    differences = _differences(ours[0], wanted)
    check_id = ours[0]["id"]
    if not differences:
        plan.append(_Step(name, "unchanged", f"approval check #{check_id}: {_describe(wanted)}"))
    else:
        plan.append(
            _Step(
                name,
                "update approval check",
                f"#{check_id}: {_describe(wanted)}",
                tuple(differences),
                write=("PATCH", {"id": str(check_id)}, {**body, "id": check_id}),
            )
        )
    return plan


def _lock_plan(name: str, existing: list[dict[str, Any]]) -> list[_Step]:
    locks = [c for c in existing if _is(c, EXCLUSIVE_LOCK_CHECK_TYPE)]
    if locks:
        return [_Step(name, "unchanged", f"exclusive lock #{locks[0]['id']}")]
    body = {"type": EXCLUSIVE_LOCK_CHECK_TYPE, "settings": {}, "timeout": LOCK_TIMEOUT_MINUTES}
    detail = f"one deployment at a time, a run waits up to {LOCK_TIMEOUT_MINUTES} min"
    return [_Step(name, "create exclusive lock", detail, write=("POST", {}, body))]


def _verb(verb: str, dry_run: bool) -> str:
    """'create' → 'created', or 'would create' in a dry run."""
    if dry_run:
        return f"would {verb}"
    return verb + ("d" if verb.endswith("e") else "ed")


def _is(check: Mapping[str, Any], kind: Mapping[str, str]) -> bool:
    return str(check.get("type", {}).get("id", "")).lower() == kind["id"]


def _instructions(check: Mapping[str, Any]) -> str:
    return str((check.get("settings") or {}).get("instructions") or "")


def _differences(check: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """What an update of the approval check changes, one field a line ("field: old → new")."""
    settings = check.get("settings") or {}
    found: list[str] = []
    have = {str(a.get("id", "")).lower(): a for a in settings.get("approvers", [])}
    want = {str(a["id"]).lower(): a for a in wanted["approvers"]}
    if set(have) != set(want):
        added = [want[i]["displayName"] for i in sorted(set(want) - set(have))]
        removed = [str(have[i].get("displayName") or i) for i in sorted(set(have) - set(want))]
        said = [f"+{p}" for p in added] + [f"-{p}" for p in removed]
        found.append(f"approvers: {' '.join(said)}")
    for field in ("minRequiredApprovers", "requesterCannotBeApprover", "instructions"):
        if settings.get(field) != wanted[field]:
            found.append(f"{field}: {settings.get(field)!r} → {wanted[field]!r}")
    if check.get("timeout") != wanted["timeout"]:
        found.append(f"timeout: {check.get('timeout')!r} → {wanted['timeout']!r} min")
    return found


def _describe(wanted: Mapping[str, Any] | None) -> str:
    if wanted is None:
        return "no approval"
    return f"{wanted['instructions']} (timeout {wanted['timeout']} min)"


def live_environments(conn: sa.Connection) -> list[tuple[str, str]]:
    """The record's live environments as (name, type): what `sync` mirrors."""
    return [(e.name, e.type) for e in rec.list_environments(conn)]
