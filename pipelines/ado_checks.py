"""Check sync: Azure DevOps environments and their approval checks made to match shipyard.yaml."""

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from environments.catalog import Catalog
from environments.errors import ConfigError
from environments.registry import record as rec
from pipelines.ado_model import (
    APPROVAL_CHECK_TYPE,
    MANAGED,
    SyncChange,
)
from pipelines.ado_transport import Transport


class CheckSync(Transport):
    """Environments and Shipyard's approval checks in Azure DevOps."""

    def ensure_environment(self, name: str, *, description: str = "") -> tuple[int, bool]:
        """The Azure DevOps environment `name`, created if missing: (id, created)."""
        from azure.devops.v7_1.task_agent.models import EnvironmentCreateParameter

        client = self._client("environments")
        with self._translated(f"read environment {name}"):
            found = [e for e in client.get_environments(self.project, name=name) if e.name == name]
        if found:
            return int(found[0].id), False
        with self._translated(f"create environment {name}"):
            made = client.add_environment(
                EnvironmentCreateParameter(name=name, description=description), self.project
            )
        return int(made.id), True

    def approval_checks(self, environment_id: int) -> list[dict[str, Any]]:
        """The approval checks on an environment, with their settings (raw JSON)."""
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
        return [
            c for c in (body or {}).get("value", []) if c["type"]["id"] == APPROVAL_CHECK_TYPE["id"]
        ]

    def sync(
        self,
        catalog: Catalog,
        environments: Sequence[tuple[str, str]],
        *,
        dry_run: bool = False,
    ) -> list[SyncChange]:
        """Make each environment's Azure DevOps twin exist with the approval check its type says.

        `environments` are the record's live (name, type) pairs.
        Only checks Shipyard manages (their instructions start with "Managed by Shipyard") are
        changed or removed; others are reported and left alone.
        """
        changes: list[SyncChange] = []
        for environment, type_name in self._targets(catalog, environments):
            kind = catalog.type(type_name)
            name = self.settings.environment_name(environment)
            wanted = self._wanted_check(catalog, type_name) if kind.approval else None
            if dry_run:
                changes.append(SyncChange(name, "would sync", _describe(wanted)))
                continue
            env_id, created = self.ensure_environment(
                name, description=f"Shipyard environment {environment} (type {type_name})"
            )
            if created:
                changes.append(SyncChange(name, "created environment"))
            changes.extend(self._sync_check(name, env_id, wanted))
        return changes

    def _targets(
        self, catalog: Catalog, environments: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Live environments, plus one named after each gated type.

        Azure DevOps creates an environment a pipeline names on first use, with no checks; the
        twin named after a gated type exists beforehand so its first deployment is gated too.
        """
        targets = dict(environments)
        for type_name, kind in catalog.types.items():
            if kind.approval is not None:
                targets.setdefault(type_name, type_name)
        return [(name, type_name) for name, type_name in targets.items()]

    def _wanted_check(self, catalog: Catalog, type_name: str) -> dict[str, Any]:
        """Shipyard's gate: its own account is the one approver; people decide in Slack.

        The check passes what Shipyard decided (N of M under the type's policy, never the
        requester, who Shipyard knows and Azure DevOps does not: runs Shipyard starts are
        requested by the token's account, so the check cannot block "the requester" itself).
        """
        kind = catalog.type(type_name)
        assert kind.approval is not None
        people = sorted(catalog.members(kind.approval.approvers))
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
            f"Slack by {kind.approval.required} of {', '.join(people)}, never the requester; "
            "Shipyard answers here.",
            "timeout": max(1, int(kind.approval.timeout.total_seconds() // 60)),
        }

    def _sync_check(
        self, name: str, env_id: int, wanted: dict[str, Any] | None
    ) -> list[SyncChange]:
        existing = self.approval_checks(env_id)
        ours = [c for c in existing if _instructions(c).startswith(MANAGED)]
        changes = [
            SyncChange(name, "left alone", f"approval check #{c['id']} is not managed by Shipyard")
            for c in existing
            if c not in ours
        ]
        resource = {"type": "environment", "id": str(env_id), "name": name}
        for extra in ours[1 if wanted else 0 :]:
            with self._translated(f"remove approval check #{extra['id']} from {name}"):
                self._checks("DELETE", {"id": str(extra["id"])})
            changes.append(SyncChange(name, "removed approval check", f"#{extra['id']}"))
        if wanted is None:
            return changes or [SyncChange(name, "unchanged", "no approval")]
        settings = {k: v for k, v in wanted.items() if k != "timeout"}
        body = {
            "type": APPROVAL_CHECK_TYPE,
            "settings": settings,
            "timeout": wanted["timeout"],
            "resource": resource,
        }
        if not ours:
            with self._translated(f"add the approval check to {name}"):
                made = self._checks("POST", {}, body=body)
            changes.append(
                SyncChange(name, "created approval check", f"#{made['id']}: {_describe(wanted)}")
            )
        elif _same_check(ours[0], wanted):
            changes.append(SyncChange(name, "unchanged", _describe(wanted)))
        else:
            with self._translated(f"update approval check #{ours[0]['id']} on {name}"):
                self._checks(
                    "PATCH", {"id": str(ours[0]["id"])}, body={**body, "id": ours[0]["id"]}
                )
            changes.append(
                SyncChange(name, "updated approval check", f"#{ours[0]['id']}: {_describe(wanted)}")
            )
        return changes

    # --- approvals ------------------------------------------------------------------------


def _instructions(check: Mapping[str, Any]) -> str:
    return str((check.get("settings") or {}).get("instructions") or "")


def _same_check(check: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    settings = check.get("settings") or {}
    have = sorted(str(a.get("id", "")).lower() for a in settings.get("approvers", []))
    want = sorted(str(a["id"]).lower() for a in wanted["approvers"])
    return (
        have == want
        and settings.get("minRequiredApprovers") == wanted["minRequiredApprovers"]
        and bool(settings.get("requesterCannotBeApprover")) == wanted["requesterCannotBeApprover"]
        and settings.get("instructions") == wanted["instructions"]
        and check.get("timeout") == wanted["timeout"]
    )


def _describe(wanted: Mapping[str, Any] | None) -> str:
    if wanted is None:
        return "no approval"
    return f"{wanted['instructions']} (timeout {wanted['timeout']} min)"


def live_environments(conn: sa.Connection) -> list[tuple[str, str]]:
    """The record's live environments as (name, type): what `sync` mirrors."""
    return [(e.name, e.type) for e in rec.list_environments(conn)]
