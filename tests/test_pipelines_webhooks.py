"""Service hooks: authenticated, applied once, recorded; the poll catches what no hook reported."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.runtime import Runtime
from environments.model import DeploymentStatus
from environments.registry import record as rec
from environments.registry.schema import deployments, request_keys
from pipelines.azure_devops import AzureDevOps
from pipelines.webhooks import (
    SECRET_HEADER,
    WebhookAction,
    WebhookHandler,
    WebhookResult,
    reconcile_runs,
)
from tests.fakes.azure_devops import HOOK_SAMPLES, FakeAzureDevOps
from tests.test_pipelines_azure_devops import DEPLOY_PIPELINE, ready, settings_for

SECRET = "s3cret-shared-with-the-service-hook"
PATH = ("test", "staging", "production")


@pytest.fixture
def fake() -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps() as server:
        server.add_pipeline(DEPLOY_PIPELINE, "game-delivery")
        server.add_pipeline(8, "game-ci", environments=("pr-7", "staging"))
        yield server


@pytest.fixture
def ado(fake: FakeAzureDevOps) -> AzureDevOps:
    return AzureDevOps(settings_for(fake, watch=(8,), max_retries=1), fake.pat)


@pytest.fixture
def hook(runtime: Runtime, ado: AzureDevOps) -> WebhookHandler:
    ready(runtime, "pr-7", "test")
    ready(runtime, "staging", "staging")
    return WebhookHandler(
        secret=SECRET,
        database=runtime.database,
        catalog=runtime.catalog,
        source=ado,
        clock=runtime.lifecycle.clock,
    )


def deliver(hook: WebhookHandler, event: dict[str, Any], **headers: str) -> WebhookResult:
    return hook.handle(headers or {SECRET_HEADER: SECRET}, json.dumps(event).encode())


def basic(password: str, user: str = "shipyard") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def pipeline_deployments(rt: Runtime) -> list[Any]:
    with rt.database.read() as conn:
        return list(conn.execute(sa.select(deployments).where(deployments.c.run_url.is_not(None))))


def remembered(rt: Runtime) -> int:
    with rt.database.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(request_keys)).scalar_one())


def finished_run(fake: FakeAzureDevOps, ado: AzureDevOps, environment: str = "pr-7") -> int:
    run = ado.start_run(environment=environment, release="1.1.0", requested_by="bob")
    fake.finish_run(run.id)
    return run.id


def test_a_forged_delivery_is_refused_and_changes_nothing(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps, hook: WebhookHandler
) -> None:
    event = fake.run_state_changed_event(finished_run(fake, ado))
    before = remembered(runtime)

    refusals = [
        deliver(hook, event, **{SECRET_HEADER: "guess"}),
        deliver(hook, event, **{SECRET_HEADER: SECRET[:-1]}),
        deliver(hook, event, Authorization=basic("guess")),
        deliver(hook, event, Authorization="Basic !!not-base64!!"),
        deliver(hook, event, Authorization="Bearer " + SECRET),
        hook.handle({}, json.dumps(event).encode()),
        WebhookHandler(
            secret="", database=runtime.database, catalog=runtime.catalog, source=ado
        ).handle({SECRET_HEADER: ""}, json.dumps(event).encode()),
    ]

    assert {(r.status, r.action) for r in refusals} == {(401, WebhookAction.REFUSED)}
    assert pipeline_deployments(runtime) == []
    assert remembered(runtime) == before
    assert not fake.requests("GET", r"/runs/\d+$")  # nothing was even looked up


def test_a_finished_run_is_recorded_once_however_often_it_is_delivered(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps, hook: WebhookHandler
) -> None:
    run_id = finished_run(fake, ado)
    event = fake.run_state_changed_event(run_id)

    first = deliver(hook, event, Authorization=basic(SECRET))
    again = deliver(hook, event)

    assert (first.status, first.action) == (200, WebhookAction.DEPLOYMENT_RECORDED)
    (recorded,) = first.recorded
    assert (recorded.environment, recorded.release, recorded.status) == (
        "pr-7",
        "1.1.0",
        DeploymentStatus.SUCCEEDED,
    )
    assert recorded.run_url == fake.web_url(run_id)
    assert (again.status, again.action, again.recorded) == (200, WebhookAction.DUPLICATE, ())
    assert len(pipeline_deployments(runtime)) == 1
    with runtime.database.read() as conn:
        assert rec.get_environment(conn, "pr-7").release == "1.1.0"


def test_stage_and_run_events_of_one_run_make_one_deployment_per_environment(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps, hook: WebhookHandler
) -> None:
    ado.sync(runtime.catalog, [])
    run = ado.start_run(environment="ignored", release="1.1.0", requested_by="bob", pipeline_id=8)
    approval = fake.wait_for_approval()  # pr-7 deployed; staging waits at its gate
    pending = deliver(hook, fake.approval_event(approval["id"]))
    ado.approve(approval["id"], "erin")
    fake.finish_run(run.id)

    stage = deliver(hook, fake.stage_state_changed_event(run.id, "pr-7"))
    whole = deliver(hook, fake.run_state_changed_event(run.id))
    completed = deliver(hook, fake.approval_event(approval["id"], completed=True))

    assert pending.action is WebhookAction.APPROVAL_PENDING
    assert pending.approval is not None
    assert (pending.approval.environment, pending.approval.release, pending.approval.run_url) == (
        "staging",
        "1.1.0",
        fake.web_url(run.id),
    )
    assert [r.environment for r in stage.recorded] == ["pr-7"]
    assert [(r.environment, r.new) for r in whole.recorded] == [("pr-7", False), ("staging", True)]
    assert whole.recorded[1].approved_by == ("erin",)
    assert completed.action is WebhookAction.APPROVAL_COMPLETED
    assert completed.approval is not None and completed.approval.status == "approved"
    assert len(pipeline_deployments(runtime)) == 2


def test_a_gate_that_timed_out_or_named_several_people_is_recorded_as_it_ended(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps, hook: WebhookHandler
) -> None:
    ado.sync(runtime.catalog, [])
    timed_out = ado.start_run(environment="staging", release="1.1.0", requested_by="bob")
    fake.time_out(fake.wait_for_approval()["id"])
    fake.finish_run(timed_out.id)
    approved = ado.start_run(environment="staging", release="1.0.0", requested_by="bob")
    waiting = next(a for a in fake.wait_all_approvals(2) if a["status"] == "pending")
    ado.approve(waiting["id"], "dave, erin", comment="Shipyard request #3")
    fake.finish_run(approved.id)

    first = deliver(hook, fake.run_state_changed_event(timed_out.id))
    second = deliver(hook, fake.run_state_changed_event(approved.id))

    (expired,) = first.recorded
    assert (expired.status, expired.approved_by) == (DeploymentStatus.EXPIRED, ())
    (done,) = second.recorded
    assert (done.status, done.approved_by) == (DeploymentStatus.SUCCEEDED, ("dave", "erin"))


def test_a_run_the_hooks_missed_is_caught_by_the_poll_once(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps, hook: WebhookHandler
) -> None:
    run_id = finished_run(fake, ado)
    fake.failing.add("staging")
    failed = finished_run(fake, ado, "staging")

    report = reconcile_runs(ado, runtime.database, runtime.catalog, clock=runtime.lifecycle.clock)
    again = reconcile_runs(ado, runtime.database, runtime.catalog, clock=runtime.lifecycle.clock)
    late = deliver(hook, fake.run_state_changed_event(run_id))

    assert report.runs_checked == 2
    assert {(r.environment, r.status) for r in report.recorded} == {
        ("pr-7", DeploymentStatus.SUCCEEDED),
        ("staging", DeploymentStatus.FAILED),
    }
    assert {r.run_url for r in report.recorded} == {fake.web_url(run_id), fake.web_url(failed)}
    assert again.runs_checked == 0 and again.recorded == ()
    assert [r.new for r in late.recorded] == [False]
    assert len(pipeline_deployments(runtime)) == 2
    with runtime.database.read() as conn:
        assert rec.get_environment(conn, "staging").release is None


def test_when_azure_devops_cannot_be_read_the_delivery_is_retried_later(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps, hook: WebhookHandler
) -> None:
    event = fake.run_state_changed_event(finished_run(fake, ado))
    fake.inject("GET", r"/runs/\d+$", 500, times=10)

    first = deliver(hook, event)
    fake._injected.clear()
    second = deliver(hook, event)

    assert (first.status, first.action) == (503, WebhookAction.RETRY)
    assert (second.status, second.action) == (200, WebhookAction.DEPLOYMENT_RECORDED)
    assert len(pipeline_deployments(runtime)) == 1


def test_deployments_into_environments_the_record_does_not_know_are_skipped(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps, hook: WebhookHandler
) -> None:
    result = deliver(hook, fake.run_state_changed_event(finished_run(fake, ado, "pr-404")))

    assert result.status == 200 and result.recorded == ()
    assert result.skipped == ("pr-404: there is no environment 'pr-404'",)
    assert pipeline_deployments(runtime) == []


def test_the_documented_sample_events_are_understood(hook: WebhookHandler) -> None:
    def sample(name: str) -> dict[str, Any]:
        text = (HOOK_SAMPLES / f"{name}.json").read_text(encoding="utf-8-sig")
        return dict(json.loads(text))

    pending = deliver(hook, sample("ms.vss-pipelinechecks-events.approval-pending"))
    running = sample("ms.vss-pipelines.run-state-changed-event")
    running["resource"]["run"]["state"] = "inProgress"
    progress = deliver(hook, running)
    stage = deliver(hook, sample("ms.vss-pipelines.stage-state-changed-event"))
    other = deliver(hook, {"id": "x-1", "eventType": "git.push", "resource": {}})
    broken = hook.handle({SECRET_HEADER: SECRET}, b"{not json")

    assert pending.action is WebhookAction.APPROVAL_PENDING
    assert pending.approval is not None
    assert pending.approval.id == "0f027b05-0942-4a35-9218-26fa07d8760a"
    assert pending.approval.min_required == 2
    assert progress.action is WebhookAction.RUN_PROGRESS
    assert stage.action is WebhookAction.IGNORED  # "__default" deploys no environment
    assert other.action is WebhookAction.IGNORED
    assert (broken.status, broken.action) == (400, WebhookAction.INVALID)


def test_the_sample_files_are_where_the_fake_reads_them() -> None:
    assert Path(HOOK_SAMPLES, "ms.vss-pipelines.run-state-changed-event.json").is_file()
