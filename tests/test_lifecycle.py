"""The lifecycle on a real record (SQLite file and PostgreSQL) with real local processes."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bot.runtime import Runtime
from environments.errors import Conflict, InvalidInput, NotFound, PolicyRefused, ShipyardError
from environments.model import (
    ApprovalState,
    DeploymentStatus,
    EnvironmentState,
    OperationState,
)
from environments.policy import Actor, Channel
from environments.registry import record as rec
from environments.registry.schema import metadata
from tests.conftest import MovableClock, RecordingNotifier, person

alice, bob, carol, dave, erin = (person(n) for n in ("alice", "bob", "carol", "dave", "erin"))


def settle(rt: Runtime, op_id: int | None) -> None:
    assert op_id is not None
    op = rt.worker.run(op_id)
    assert op is not None and op.state is OperationState.SUCCEEDED, op.error


def env(rt: Runtime, name: str) -> Any:
    with rt.database.read() as conn:
        return rec.get_environment(conn, name)


def login(endpoint: str, device: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{endpoint}/Login/LoginDeviceId",
        data=json.dumps({"DeviceId": device}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def health(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint}/healthz", timeout=5) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def snapshot(rt: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    with rt.database.read() as conn:
        return {
            table.name: [
                tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key))
            ]
            for table in metadata.sorted_tables
        }


def test_create_brings_up_a_real_process_with_the_environments_parameters(runtime: Runtime) -> None:
    requested = runtime.lifecycle.create(
        alice, "pr-1", env_type="test", release="1.0.0", overrides={"GAME_MOTD": "hello pr-1"}
    )
    assert requested.approval is None
    settle(runtime, requested.operation_id)

    ready = env(runtime, "pr-1")
    assert ready.state is EnvironmentState.READY
    assert ready.release == "1.0.0" and ready.release_by == "alice"
    answer = health(ready.endpoint)
    assert answer["version"] == "1.0.0" and answer["environment"] == "pr-1"
    first = login(ready.endpoint, "device-a")
    assert first["NewlyCreated"] is True and first["Motd"] == "hello pr-1"
    assert login(ready.endpoint, "device-a")["PlayerId"] == first["PlayerId"]
    assert ready.expires_at - ready.created_at == timedelta(hours=8)


def test_promotion_needs_approval_and_refuses_self_approval(
    runtime: Runtime, notifier: RecordingNotifier
) -> None:
    settle(
        runtime,
        runtime.lifecycle.create(alice, "pr-2", env_type="test", release="1.0.0").operation_id,
    )

    requested = runtime.lifecycle.promote(carol, "staging")
    assert requested.operation_id is None and requested.approval is not None
    assert requested.release == "1.0.0"
    assert "approval_requested" in notifier.kinds()

    with pytest.raises(PolicyRefused, match="your own request"):
        runtime.lifecycle.approve(carol, str(requested.approval.id))
    with pytest.raises(PolicyRefused, match="not an approver"):
        runtime.lifecycle.approve(bob, "staging")

    approval, op_id = runtime.lifecycle.approve(dave, "staging", comment="looks good")
    assert approval.state is ApprovalState.APPROVED and approval.approvals == ("dave",)
    settle(runtime, op_id)

    staging = env(runtime, "staging")
    assert staging.state is EnvironmentState.READY and staging.release == "1.0.0"
    assert health(staging.endpoint)["version"] == "1.0.0"
    with runtime.database.read() as conn:
        (row,) = rec.matrix(conn, env_type="staging")
        (deployment,) = rec.history(conn, "staging")
    assert row.by == "carol" and row.approved_by == ("dave",)
    assert deployment.source_environment == "pr-2" and deployment.kind == "promotion"


def test_production_needs_two_distinct_approvers(runtime: Runtime) -> None:
    settle(
        runtime,
        runtime.lifecycle.create(alice, "pr-3", env_type="test", release="1.0.0").operation_id,
    )
    runtime.lifecycle.promote(carol, "staging")
    settle(runtime, runtime.lifecycle.approve(dave, "staging")[1])

    requested = runtime.lifecycle.promote(carol, "production")
    assert requested.approval is not None and requested.approval.required == 2
    first, op_id = runtime.lifecycle.approve(dave, "production")
    assert first.state is ApprovalState.PENDING and op_id is None
    with pytest.raises(Conflict, match="already decided"):
        runtime.lifecycle.approve(dave, "production")
    second, op_id = runtime.lifecycle.approve(erin, "production")
    assert second.state is ApprovalState.APPROVED
    settle(runtime, op_id)

    with runtime.database.read() as conn:
        (row,) = rec.matrix(conn, env_type="production")
    assert row.release == "1.0.0" and set(row.approved_by) == {"dave", "erin"}


def test_a_rejected_promotion_is_not_promoted_and_leaves_no_environment(runtime: Runtime) -> None:
    settle(
        runtime,
        runtime.lifecycle.create(alice, "pr-4", env_type="test", release="1.0.0").operation_id,
    )
    requested = runtime.lifecycle.promote(carol, "staging")
    with pytest.raises(InvalidInput, match="needs a reason"):
        runtime.lifecycle.reject(dave, "staging", reason="  ")
    rejected = runtime.lifecycle.reject(dave, "staging", reason="p95 regressed")
    assert rejected.state is ApprovalState.REJECTED

    with runtime.database.read() as conn:
        assert rec.find_environment(conn, "staging") is None
        deployment = rec.get_deployment(conn, requested.deployment_id)
    assert deployment.status is DeploymentStatus.REJECTED and deployment.reason == "not promoted"
    with pytest.raises(Conflict, match="already rejected"):
        runtime.lifecycle.approve(erin, str(rejected.id))


def test_an_approval_that_waits_past_its_timeout_expires_as_not_promoted(
    runtime: Runtime, clock: MovableClock
) -> None:
    settle(
        runtime,
        runtime.lifecycle.create(alice, "pr-5", env_type="test", release="1.0.0").operation_id,
    )
    requested = runtime.lifecycle.promote(carol, "staging")
    clock.advance(timedelta(hours=25))
    with pytest.raises(Conflict, match="expired"):
        runtime.lifecycle.approve(dave, "staging")

    report = runtime.lifecycle.expire()
    assert report.approvals_expired == (requested.approval.id,)  # type: ignore[union-attr]
    with runtime.database.read() as conn:
        deployment = rec.get_deployment(conn, requested.deployment_id)
    assert deployment.status is DeploymentStatus.EXPIRED and deployment.reason == "not promoted"


def test_expiry_warns_an_hour_ahead_then_destroys(
    runtime: Runtime, clock: MovableClock, notifier: RecordingNotifier
) -> None:
    settle(
        runtime,
        runtime.lifecycle.create(
            alice, "pr-6", env_type="test", release="1.0.0", ttl=timedelta(hours=2)
        ).operation_id,
    )
    endpoint = env(runtime, "pr-6").endpoint

    clock.advance(timedelta(minutes=30))
    assert runtime.lifecycle.expire().warned == ()
    clock.advance(timedelta(minutes=40))
    assert runtime.lifecycle.expire().warned == ("pr-6",)
    assert runtime.lifecycle.expire().warned == (), "the owner is warned once"
    assert notifier.kinds().count("expiry_warning") == 1

    extended = runtime.lifecycle.extend(alice, "pr-6", by=timedelta(hours=4))
    assert extended.expires_at == clock.now() - timedelta(minutes=70) + timedelta(hours=6)
    with pytest.raises(InvalidInput, match="longer than test allows"):
        runtime.lifecycle.extend(alice, "pr-6", by=timedelta(days=3))

    clock.advance(timedelta(hours=5))
    report = runtime.lifecycle.expire()
    assert report.expired == ("pr-6",)
    for op_id in report.operations:
        settle(runtime, op_id)
    with runtime.database.read() as conn:
        assert rec.find_environment(conn, "pr-6") is None
    with pytest.raises(OSError):
        health(endpoint)


def test_a_failed_deploy_keeps_the_old_release_serving(
    runtime: Runtime, notifier: RecordingNotifier
) -> None:
    settle(
        runtime,
        runtime.lifecycle.create(alice, "pr-7", env_type="test", release="1.0.0").operation_id,
    )
    requested = runtime.lifecycle.deploy(alice, "pr-7", release="9.9.9-broken")
    op = runtime.worker.run(requested.operation_id)  # type: ignore[arg-type]
    assert op is not None and op.state is OperationState.FAILED
    assert "GAME_DATABASE is not reachable" in (op.error or "")

    after = env(runtime, "pr-7")
    assert after.state is EnvironmentState.READY and after.release == "1.0.0"
    assert "exited while starting" in (after.reason or "")
    assert health(after.endpoint)["version"] == "1.0.0"
    assert "failed" in notifier.kinds()
    with runtime.database.read() as conn:
        assert rec.history(conn, "pr-7")[0].status is DeploymentStatus.FAILED


def test_protected_environments_are_not_destroyed_from_chat(runtime: Runtime) -> None:
    requested = runtime.lifecycle.create(dave, "prod-eu", env_type="production", release="1.0.0")
    assert requested.approval is not None and requested.operation_id is None
    runtime.lifecycle.approve(carol, "prod-eu")
    settle(runtime, runtime.lifecycle.approve(erin, "prod-eu")[1])
    assert env(runtime, "prod-eu").state is EnvironmentState.READY
    chat = Actor(person="dave", channel=Channel.CHAT)
    with pytest.raises(PolicyRefused, match="cannot be destroyed from chat"):
        runtime.lifecycle.destroy(chat, "prod-eu", force=True)
    with pytest.raises(PolicyRefused, match="protected"):
        runtime.lifecycle.destroy(carol, "prod-eu", force=True)
    settle(runtime, runtime.lifecycle.destroy(dave, "prod-eu", force=True))


REFUSALS: list[tuple[str, Callable[[Runtime], object], type[ShipyardError], str]] = [
    (
        "bad name",
        lambda rt: rt.lifecycle.create(alice, "PR_1", env_type="test", release="1.0.0"),
        InvalidInput,
        "not a valid environment name",
    ),
    (
        "unknown type",
        lambda rt: rt.lifecycle.create(alice, "pr-9", env_type="qa", release="1.0.0"),
        NotFound,
        "no environment type 'qa'",
    ),
    (
        "unknown release",
        lambda rt: rt.lifecycle.create(alice, "pr-9", env_type="test", release="3.0.0"),
        NotFound,
        "no release 3.0.0",
    ),
    (
        "ttl too long",
        lambda rt: rt.lifecycle.create(
            alice, "pr-9", env_type="test", release="1.0.0", ttl=timedelta(days=4)
        ),
        InvalidInput,
        "longer than test allows",
    ),
    (
        "ttl on a lasting type",
        lambda rt: rt.lifecycle.create(
            carol, "stage-2", env_type="staging", release="1.0.0", ttl=timedelta(hours=1)
        ),
        InvalidInput,
        "do not expire",
    ),
    (
        "not allowed to create",
        lambda rt: rt.lifecycle.create(person("mallory"), "pr-9", env_type="test", release="1.0.0"),
        PolicyRefused,
        "may not create",
    ),
    (
        "name taken",
        lambda rt: rt.lifecycle.create(bob, "pr-0", env_type="test", release="1.0.0"),
        Conflict,
        "already exists",
    ),
    (
        "promote out of order",
        lambda rt: rt.lifecycle.promote(carol, "production"),
        Conflict,
        "has been deployed successfully to a staging",
    ),
    (
        "promote from the wrong step",
        lambda rt: rt.lifecycle.promote(carol, "production", source="pr-0"),
        InvalidInput,
        "must follow the path",
    ),
    (
        "promote into the first step",
        lambda rt: rt.lifecycle.promote(carol, "test"),
        InvalidInput,
        "must follow the path",
    ),
    (
        "deploy what already runs",
        lambda rt: rt.lifecycle.deploy(alice, "pr-0", release="1.0.0"),
        Conflict,
        "already runs 1.0.0",
    ),
    (
        "approve nothing",
        lambda rt: rt.lifecycle.approve(dave, "pr-0"),
        NotFound,
        "nothing is waiting",
    ),
    (
        "approve unknown number",
        lambda rt: rt.lifecycle.approve(dave, "#999"),
        NotFound,
        "no approval request #999",
    ),
    (
        "destroy unknown",
        lambda rt: rt.lifecycle.destroy(alice, "pr-404"),
        NotFound,
        "no environment 'pr-404'",
    ),
    (
        "destroy without the right",
        lambda rt: rt.lifecycle.destroy(person("mallory"), "pr-0"),
        PolicyRefused,
        "may not destroy",
    ),
    (
        "extend a lasting one",
        lambda rt: rt.lifecycle.extend(alice, "staging", by=timedelta(hours=1)),
        NotFound,
        "no environment 'staging'",
    ),
    (
        "release twice",
        lambda rt: rt.lifecycle.add_release(alice, "1.0.0", "examples"),
        Conflict,
        "already in the record",
    ),
    (
        "release without artifact",
        lambda rt: rt.lifecycle.add_release(alice, "2.0.0", "/nope"),
        InvalidInput,
        "does not exist",
    ),
]


@pytest.mark.parametrize(
    ("case", "action", "error", "message"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_bad_input_is_refused_with_a_reason_and_changes_nothing(
    runtime: Runtime,
    case: str,
    action: Callable[[Runtime], object],
    error: type[ShipyardError],
    message: str,
) -> None:
    settle(
        runtime,
        runtime.lifecycle.create(alice, "pr-0", env_type="test", release="1.0.0").operation_id,
    )
    before = snapshot(runtime)
    with pytest.raises(error, match=message) as raised:
        action(runtime)
    assert raised.value.advice(), "every refusal says what to do instead"
    assert snapshot(runtime) == before
