"""`shipyard pipelines sync [--dry-run]` against the fake Azure DevOps: environments, approval
checks and Exclusive Lock checks made to match shipyard.yaml; a dry run shows each difference,
field by field, and writes nothing."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.runtime import Runtime
from environments.catalog import Catalog
from environments.config.azure_devops import AzureDevOpsSettings
from environments.lifecycle import Lifecycle
from environments.registry import Database
from pipelines import cli as pipelines_cli
from pipelines.azure_devops import AzureDevOps
from tests.fakes.azure_devops import FakeAzureDevOps
from tests.test_pipelines_azure_devops import approvals_on, ready, settings_for

WRITES = ("POST", "PATCH", "PUT", "DELETE")
LOCK = "ExclusiveLock"


@pytest.fixture
def fake() -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps() as server:
        yield server


@pytest.fixture
def ado(fake: FakeAzureDevOps) -> AzureDevOps:
    return AzureDevOps(settings_for(fake), fake.pat)


def writes(fake: FakeAzureDevOps) -> list[str]:
    return [f"{s.method} {s.path}" for s in fake.seen if s.method in WRITES]


def locks_on(fake: FakeAzureDevOps, environment: str) -> list[dict[str, Any]]:
    return [c for c in fake.checks_on(environment) if c["type"]["name"] == LOCK]


def test_every_twin_gets_one_exclusive_lock_and_keeps_it(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps
) -> None:
    ready(runtime, "pr-1234", "test")

    changes = ado.sync(runtime.catalog, [("pr-1234", "test")])
    again = ado.sync(runtime.catalog, [("pr-1234", "test")])

    for name in ("shipyard-pr-1234", "shipyard-staging", "shipyard-production"):
        (lock,) = locks_on(fake, name)
        assert lock["type"]["id"] == "2ef31ad6-baa0-403a-8b45-2cbc9b4e5563"
        assert lock["resource"] == {
            "type": "environment",
            "id": str(fake.environment_named(name)["id"]),  # type: ignore[index]
            "name": name,
        }
        assert lock["settings"] == {} and lock["timeout"] == 24 * 60
    created = [c.environment for c in changes if c.action == "created exclusive lock"]
    assert sorted(created) == ["shipyard-pr-1234", "shipyard-production", "shipyard-staging"]
    assert {c.action for c in again} == {"unchanged"}


def test_a_dry_run_on_an_empty_organization_lists_everything_and_writes_nothing(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps
) -> None:
    changes = ado.sync(runtime.catalog, [("pr-1", "test")], dry_run=True)

    assert writes(fake) == []
    assert fake.environments == {} and fake.checks == {}
    by_environment: dict[str, list[str]] = {}
    for change in changes:
        by_environment.setdefault(change.environment, []).append(change.action)
    assert by_environment == {
        "shipyard-pr-1": ["would create environment", "unchanged", "would create exclusive lock"],
        "shipyard-staging": [
            "would create environment",
            "would create approval check",
            "would create exclusive lock",
        ],
        "shipyard-production": [
            "would create environment",
            "would create approval check",
            "would create exclusive lock",
        ],
        "variable group shipyard": ["unchanged"],
    }
    # What the check will say comes from the type's approval: production's differs from staging's.
    staging, production = [c for c in changes if c.action == "would create approval check"]
    assert staging.detail and production.detail and staging.detail != production.detail


def test_a_dry_run_shows_field_level_differences_and_leaves_the_check_as_it_was(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps
) -> None:
    ado.sync(runtime.catalog, [])
    (check,) = approvals_on(fake, "shipyard-production")
    wanted = {**check["settings"], "timeout": check["timeout"]}
    mallory = {"id": "0c6b3a8e-0000-4000-8000-0000000000ff", "displayName": "mallory"}
    check["settings"]["approvers"] = [*check["settings"]["approvers"], mallory]
    check["settings"]["minRequiredApprovers"] = 9
    check["settings"]["requesterCannotBeApprover"] = not wanted["requesterCannotBeApprover"]
    check["timeout"] = 5
    (lock,) = locks_on(fake, "shipyard-staging")
    del fake.checks[lock["id"]]
    before = len(fake.seen)

    changes = ado.sync(runtime.catalog, [], dry_run=True)

    assert [s for s in fake.seen[before:] if s.method in WRITES] == []
    (update,) = [c for c in changes if c.action == "would update approval check"]
    assert update.environment == "shipyard-production"
    assert update.changes == (
        "approvers: -mallory",
        f"minRequiredApprovers: 9 → {wanted['minRequiredApprovers']}",
        f"requesterCannotBeApprover: {not wanted['requesterCannotBeApprover']} → "
        f"{wanted['requesterCannotBeApprover']}",
        f"timeout: 5 → {wanted['timeout']} min",
    )
    (create,) = [c for c in changes if c.action == "would create exclusive lock"]
    assert create.environment == "shipyard-staging"
    assert check["settings"]["minRequiredApprovers"] == 9  # nothing was written
    assert locks_on(fake, "shipyard-staging") == []

    done = ado.sync(runtime.catalog, [])

    assert {c.action for c in done} == {
        "unchanged",
        "updated approval check",
        "created exclusive lock",
    }
    assert (
        fake.checks[check["id"]]["settings"]["minRequiredApprovers"]
        == (wanted["minRequiredApprovers"])
    )
    assert ado.sync(runtime.catalog, [], dry_run=True)[0].action == "unchanged"


@dataclass
class Context:
    catalog: Catalog
    database: Database
    lifecycle: Lifecycle


def test_the_command_prints_each_difference_and_says_nothing_was_written(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    ado.sync(runtime.catalog, [])
    (check,) = approvals_on(fake, "shipyard-staging")
    wanted = check["settings"]["minRequiredApprovers"]
    check["settings"]["minRequiredApprovers"] = 9
    monkeypatch.setenv("AZURE_DEVOPS_PAT", fake.pat)
    catalog = runtime.catalog.model_copy(update={"azure_devops": settings_for(fake)})
    context = Context(catalog, runtime.database, runtime.lifecycle)
    before = len(fake.seen)

    outcome = pipelines_cli.pipelines_sync(context, argparse.Namespace(dry_run=True))

    assert [s for s in fake.seen[before:] if s.method in WRITES] == []
    lines = outcome.text.splitlines()
    (at,) = [
        i
        for i, line in enumerate(lines)
        if line.startswith(f"shipyard-staging: would update approval check (#{check['id']}: ")
    ]
    assert lines[at + 1] == f"    minRequiredApprovers: 9 → {wanted}"
    assert "shipyard-production: unchanged (exclusive lock #" in outcome.text
    assert lines[-1] == "dry run: nothing was written to Azure DevOps"
    assert fake.checks[check["id"]]["settings"]["minRequiredApprovers"] == 9


def test_the_fake_refuses_a_check_azure_devops_would_refuse(fake: FakeAzureDevOps) -> None:
    env = fake.add_environment("shipyard-x")
    resource = {"type": "environment", "id": str(env["id"]), "name": "shipyard-x"}
    lock = {"id": "2ef31ad6-baa0-403a-8b45-2cbc9b4e5563", "name": "ExclusiveLock"}
    assert fake._check_refused({"type": lock, "resource": resource, "timeout": 60}) is None
    for wrong in (
        {"type": {"id": "nope"}, "resource": resource, "timeout": 60},
        {"type": lock, "resource": {**resource, "id": "999"}, "timeout": 60},
        {"type": lock, "resource": resource},
    ):
        assert fake._check_refused(wrong)


@pytest.mark.parametrize(
    ("variables", "action", "said"),
    [
        (None, "missing", "the steps cannot reach Shipyard; Pipelines → Library"),
        ({"SHIPYARD_URL": ("https://s", False)}, "incomplete", "SHIPYARD_TOKEN is missing;"),
        (
            {"SHIPYARD_URL": ("https://s", False), "SHIPYARD_TOKEN": ("t0k3n", False)},
            "incomplete",
            "SHIPYARD_TOKEN is not secret;",
        ),
    ],
)
def test_sync_says_what_the_templates_variable_group_lacks_and_never_writes_it(
    fake: FakeAzureDevOps,
    ado: AzureDevOps,
    variables: dict[str, tuple[str, bool]] | None,
    action: str,
    said: str,
) -> None:
    fake.variable_groups.clear()
    if variables is not None:
        fake.add_variable_group("shipyard", variables)
    catalog = Catalog.model_validate({"version": 1, "types": {"test": {}}})  # nothing gated

    for dry_run in (True, False):
        (change,) = ado.sync(catalog, [], dry_run=dry_run)
        assert (change.environment, change.action) == ("variable group shipyard", action)
        assert said in change.detail
        assert "t0k3n" not in change.detail
    assert [s.path for s in fake.seen if s.method in WRITES] == []


def test_the_variable_group_sync_looks_at_is_the_one_the_templates_read() -> None:
    from tests.test_pipelines_templates import STAGE, load, parameter

    default = parameter(load(STAGE), "variableGroup")["default"]
    assert AzureDevOpsSettings().variable_group == default
