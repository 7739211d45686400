"""The Azure DevOps client (the real azure-devops SDK) against a fake Azure DevOps on 127.0.0.1."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.runtime import Runtime
from environments.config.azure_devops import AzureDevOpsSettings, pipelines_settings
from environments.errors import ConfigError, ShipyardError
from environments.model import DeploymentKind, DeploymentStatus, EnvironmentState
from environments.pipeline_deployments import PipelineDeployment, record_deployment, run_url_of
from environments.registry import record as rec
from pipelines.azure_devops import (
    AzureDevOps,
    PipelineError,
    RunResult,
    environment_of_stage,
    live_environments,
    stage_of_environment,
)
from pipelines.webhooks import record_run
from tests.fakes.azure_devops import PROJECT, SERVICE, FakeAzureDevOps

IDENTITIES = {
    "carol": "0c6b3a8e-0000-4000-8000-00000000ca01",
    "dave": "0c6b3a8e-0000-4000-8000-00000000da02",
    "erin": "0c6b3a8e-0000-4000-8000-00000000e003",
}
DEPLOY_PIPELINE = 7


@pytest.fixture
def fake() -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps() as server:
        server.add_pipeline(DEPLOY_PIPELINE, "game-delivery")
        yield server


def settings_for(fake: FakeAzureDevOps, **changes: object) -> AzureDevOpsSettings:
    values: dict[str, object] = {
        "organization_url": fake.org_url,
        "project": PROJECT,
        "pipeline_id": DEPLOY_PIPELINE,
        "identities": IDENTITIES,
        "approver_identity": SERVICE["id"],
        "poll_interval": 0.02,
        "max_retry_after": 2.0,
        "request_timeout": 5.0,
    }
    values.update(changes)
    return AzureDevOpsSettings.model_validate(values)


@pytest.fixture
def ado(fake: FakeAzureDevOps) -> AzureDevOps:
    return AzureDevOps(settings_for(fake), fake.pat)


def approvals_on(fake: FakeAzureDevOps, environment: str) -> list[dict[str, Any]]:
    return [c for c in fake.checks_on(environment) if c["type"]["name"] == "Approval"]


def ready(rt: Runtime, name: str, env_type: str) -> None:
    """An environment the record knows as ready (as if Shipyard had provisioned it)."""
    now = rt.lifecycle.clock.now()
    with rt.database.write() as conn:
        env_id = rec.insert_environment(
            conn, name=name, env_type=env_type, owner="alice", at=now, expires_at=None, overrides={}
        )
        rec.update_environment(conn, env_id, state=EnvironmentState.READY)


def test_sync_creates_environments_and_approval_checks_that_match_shipyard_yaml(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps
) -> None:
    ready(runtime, "pr-1234", "test")
    with runtime.database.read() as conn:
        live = live_environments(conn)

    changes = ado.sync(runtime.catalog, live)

    assert {c.environment for c in changes if c.action == "created environment"} == {
        "shipyard-pr-1234",
        "shipyard-staging",
        "shipyard-production",
    }
    assert approvals_on(fake, "shipyard-pr-1234") == []
    (staging,) = approvals_on(fake, "shipyard-staging")
    (production,) = approvals_on(fake, "shipyard-production")
    assert staging["type"]["name"] == "Approval"
    assert staging["resource"]["type"] == "environment"
    assert staging["timeout"] == 24 * 60
    assert staging["settings"]["minRequiredApprovers"] == 1
    assert production["settings"]["minRequiredApprovers"] == 1
    assert "2 of carol, dave, erin" in production["settings"]["instructions"]
    for check in (staging, production):
        # Shipyard's account is the one approver: people decide in Slack, Shipyard answers.
        assert [a["id"] for a in check["settings"]["approvers"]] == [SERVICE["id"]]
        # Azure DevOps sees the token's account as every run's requester; Shipyard knows the
        # real one and refuses them itself.
        assert check["settings"]["requesterCannotBeApprover"] is False
    # Every call went to the organization URL with the PAT and an api-version.
    auth = base64.b64encode(f":{fake.pat}".encode()).decode()
    assert all(s.headers["authorization"] == f"Basic {auth}" for s in fake.seen)
    assert fake.requests("OPTIONS", r"^/fabrikam/_apis$")

    again = ado.sync(runtime.catalog, live)

    assert {c.action for c in again} == {"unchanged"}
    assert len(fake.checks) == 2 + 3  # two approval checks, an exclusive lock on each
    assert len(fake.environments) == 3
    assert not fake.requests("PATCH") and len(fake.requests("POST")) == 3 + 2 + 3


def test_sync_corrects_a_changed_check_and_leaves_unmanaged_checks_alone(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps
) -> None:
    ado.sync(runtime.catalog, [])
    (check,) = approvals_on(fake, "shipyard-staging")
    check["settings"]["minRequiredApprovers"] = 3
    check["settings"]["requesterCannotBeApprover"] = True
    staging_id = fake.environment_named("shipyard-staging")["id"]  # type: ignore[index]
    fake.checks[99] = {
        "id": 99,
        "type": {"id": "8c6f20a7-a545-4486-9777-f762fafe0d4d", "name": "Approval"},
        "settings": {"approvers": [{"id": "someone"}], "instructions": "security review"},
        "timeout": 60,
        "resource": {"type": "environment", "id": str(staging_id), "name": "shipyard-staging"},
    }

    changes = ado.sync(runtime.catalog, [])

    staging = {c.action for c in changes if c.environment == "shipyard-staging"}
    assert staging == {"updated approval check", "left alone", "unchanged"}  # (the lock)
    assert fake.checks[check["id"]]["settings"]["minRequiredApprovers"] == 1
    assert fake.checks[check["id"]]["settings"]["requesterCannotBeApprover"] is False
    assert fake.checks[99]["settings"]["instructions"] == "security review"


def test_sync_refuses_a_gate_without_shipyards_azure_devops_identity(
    runtime: Runtime, fake: FakeAzureDevOps
) -> None:
    client = AzureDevOps(settings_for(fake, approver_identity=""), fake.pat)
    with pytest.raises(ConfigError, match="Shipyard's Azure DevOps identity is not set"):
        client.sync(runtime.catalog, [])
    assert fake.checks == {}


def test_a_promotion_run_is_followed_to_completion_and_recorded_with_its_approver(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps
) -> None:
    ready(runtime, "pr-7", "test")
    ready(runtime, "staging", "staging")
    with runtime.database.write() as conn:  # 1.1.0 passed test: the promotion path allows it
        record_deployment(
            conn,
            runtime.catalog,
            PipelineDeployment("pr-7", "1.1.0", DeploymentStatus.SUCCEEDED, "https://x/run/1"),
            at=runtime.lifecycle.clock.now(),
        )
    ado.sync(runtime.catalog, [])

    run = ado.start_run(environment="staging", release="1.1.0", requested_by="bob")
    assert fake.runs[run.id].parameters == {
        "environment": "staging",
        "release": "1.1.0",
        "requestedBy": "bob",
    }
    fake.wait_for_approval()
    (waiting,) = ado.list_approvals()
    assert (waiting.environment, waiting.release, waiting.run_url) == (
        "staging",
        "1.1.0",
        fake.web_url(run.id),
    )
    ado.approve(waiting.id, "carol")
    assert fake.approvals[waiting.id]["steps"][0]["actualApprover"]["id"] == SERVICE["id"]
    seen: list[str] = []
    done = ado.wait_for_run(
        run, timeout=timedelta(seconds=10), on_change=lambda r: seen.append(str(r.state))
    )
    recorded, skipped = record_run(ado, runtime.database, runtime.catalog, done)

    assert done.result is RunResult.SUCCEEDED and "completed" in seen
    assert skipped == []
    (deployment,) = recorded
    assert deployment.run_url == fake.web_url(run.id)
    with runtime.database.read() as conn:
        latest = rec.history(conn, "staging")[0]
        staging = rec.get_environment(conn, "staging")
        assert run_url_of(conn, latest.id) == fake.web_url(run.id)
    assert (latest.release, latest.status, latest.kind) == (
        "1.1.0",
        DeploymentStatus.SUCCEEDED,
        DeploymentKind.PROMOTION,
    )
    assert latest.approved_by == ("carol",)
    assert latest.requested_by == "bob"
    assert staging.release == "1.1.0"


def test_an_approval_is_answered_as_the_tokens_identity_with_a_comment_naming_the_people(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps
) -> None:
    ado.sync(runtime.catalog, [])
    ado.start_run(environment="production", release="1.0.0", requested_by="bob")
    fake.wait_for_approval()

    (waiting,) = ado.list_approvals()
    assert waiting.is_pending and waiting.min_required == 1
    assert waiting.requested_by == "bob"
    assert [s.assigned.id for s in waiting.steps] == [SERVICE["id"]]
    after = ado.approve(waiting.id, "dave, erin", comment="Shipyard request #4")

    (patch,) = fake.requests("PATCH", "pipelines/approvals$")
    assert patch.query["api-version"] == ["7.1-preview.1"]
    # The real body: no way to act for someone else; the token's account decides.
    assert patch.body == [
        {
            "approvalId": waiting.id,
            "status": "approved",
            "comment": "approved in Slack by dave, erin: Shipyard request #4",
        }
    ]
    assert after.status == "approved"
    (step,) = after.steps
    assert (step.status, step.acted_by.id if step.acted_by else None) == ("approved", SERVICE["id"])


def test_the_fake_accepts_decisions_only_from_the_checks_approvers_never_the_requester(
    runtime: Runtime, fake: FakeAzureDevOps, ado: AzureDevOps
) -> None:
    ado.sync(runtime.catalog, [])
    carol_pat = "carols-own-pat"
    fake.add_token(carol_pat, {"id": IDENTITIES["carol"], "displayName": "carol"})
    as_carol = AzureDevOps(settings_for(fake), carol_pat)
    as_carol.start_run(environment="staging", release="1.0.0", requested_by="carol")
    approval = fake.wait_for_approval()

    # Carol is not an approver on the check: her token cannot decide.
    with pytest.raises(ShipyardError, match="carol is not an approver"):
        as_carol.approve(approval["id"], "carol")
    # A check that lets the requester not approve blocks the run's requester (the token that
    # started it) even when it is an approver.
    (check,) = [c for c in fake.checks_on("shipyard-production") if c["type"]["name"] == "Approval"]
    check["settings"]["requesterCannotBeApprover"] = True
    ado.start_run(environment="production", release="1.0.0", requested_by="bob")
    blocked = next(a for a in fake.wait_all_approvals(2) if a["id"] != approval["id"])
    with pytest.raises(ShipyardError, match="requested this run and cannot approve it"):
        ado.approve(blocked["id"], "dave")
    assert fake.approvals[blocked["id"]]["status"] == "pending"


def test_a_run_request_carries_the_build_or_the_tag_and_is_refused_like_the_service(
    fake: FakeAzureDevOps, ado: AzureDevOps
) -> None:
    fake.add_build(4242, "20261130.1")
    run = ado.start_run(
        environment="pr-9", release="1.1.0", requested_by="bob", build=("build", "20261130.1")
    )
    tagged = ado.start_run(
        environment="pr-9", release="1.1.0", requested_by="bob", branch="refs/tags/1.1.0"
    )
    default = ado.start_run(environment="pr-9", release="1.1.0", requested_by="bob")

    assert fake.runs[run.id].pipeline_resources == {"build": "20261130.1"}
    assert fake.runs[run.id].ref_name == "refs/heads/main"
    assert fake.runs[tagged.id].ref_name == "refs/tags/1.1.0"
    assert fake.runs[default.id].ref_name == "refs/heads/main"
    assert fake.runs[run.id].requester["id"] == SERVICE["id"]
    assert ado.build_number(4242) == "20261130.1"
    with pytest.raises(ShipyardError, match="Pipeline resource nope is not defined"):
        ado.start_run(
            environment="pr-9", release="1.1.0", requested_by="bob", build=("nope", "20261130.1")
        )
    # The service resolves a pipeline resource by its run's name: a run id is refused.
    with pytest.raises(ShipyardError, match="Unable to resolve version '4242'"):
        ado.start_run(
            environment="pr-9", release="1.1.0", requested_by="bob", build=("build", "4242")
        )


def test_a_failed_run_gives_the_failing_steps_log(fake: FakeAzureDevOps, ado: AzureDevOps) -> None:
    fake.failing.add("pr-9")
    run = ado.start_run(environment="pr-9", release="1.1.0", requested_by="bob")
    done = ado.wait_for_run(run, timeout=timedelta(seconds=10))

    step = ado.failed_step(done)

    assert done.result is RunResult.FAILED
    assert step is not None and step.name == "Deploy to Service Fabric"
    assert any("HealthCheckRetryTimeout" in line for line in step.lines)
    assert [s.result for s in ado.stages(done)] == ["failed"]


def test_throttling_is_retried_after_the_time_the_service_asks(
    fake: FakeAzureDevOps, ado: AzureDevOps
) -> None:
    run = ado.start_run(environment="pr-9", release="1.1.0", requested_by="bob")
    fake.inject("GET", rf"/runs/{run.id}$", 429, times=2, retry_after=1)
    fake.inject("GET", rf"/runs/{run.id}$", 503, times=1)

    assert ado.get_run(DEPLOY_PIPELINE, run.id).id == run.id

    answers = [s.status for s in fake.requests("GET", rf"/runs/{run.id}$")]
    assert answers == [429, 429, 503, 200]
    assert fake.violations == []


def test_retries_are_bounded_and_a_post_is_not_repeated_after_a_server_error(
    fake: FakeAzureDevOps,
) -> None:
    ado = AzureDevOps(settings_for(fake, max_retries=2), fake.pat)
    fake.inject("GET", "/pipelines/7/runs$", 500, times=10)
    with pytest.raises(PipelineError, match="injected 500"):
        ado.list_runs(DEPLOY_PIPELINE)
    assert len(fake.requests("GET", "/pipelines/7/runs$")) == 3

    fake.inject("POST", "/pipelines/7/runs$", 500, times=1)
    with pytest.raises(PipelineError):
        ado.start_run(environment="pr-9", release="1.1.0", requested_by="bob")
    assert len(fake.requests("POST", "/pipelines/7/runs$")) == 1
    assert fake.runs == {}


def test_a_wrong_pat_is_a_configuration_error(fake: FakeAzureDevOps) -> None:
    client = AzureDevOps(settings_for(fake), "not-the-pat")
    with pytest.raises(ConfigError, match="refused the personal access token"):
        client.list_runs(DEPLOY_PIPELINE)


def test_an_unreachable_organization_is_a_pipeline_error(fake: FakeAzureDevOps) -> None:
    client = AzureDevOps(
        settings_for(fake, organization_url="http://127.0.0.1:9/fabrikam", max_retries=0),
        fake.pat,
    )
    with pytest.raises(PipelineError, match="could not"):
        client.list_runs(DEPLOY_PIPELINE)


def test_settings_come_from_shipyard_yaml_and_the_environment(runtime: Runtime) -> None:
    environ = {
        "AZURE_DEVOPS_ORG_URL": "https://dev.azure.com/fabrikam",
        "AZURE_DEVOPS_PROJECT": "Game",
        "AZURE_DEVOPS_PIPELINE_ID": "12",
    }
    settings = pipelines_settings(runtime.catalog, environ)
    assert (settings.organization_url, settings.project, settings.pipeline_id) == (
        "https://dev.azure.com/fabrikam",
        "Game",
        12,
    )
    with pytest.raises(ConfigError, match="AZURE_DEVOPS_PAT is not set"):
        AzureDevOps.from_environment(runtime.catalog, environ)
    with pytest.raises(ConfigError, match="not configured"):
        AzureDevOps.from_environment(runtime.catalog, {"AZURE_DEVOPS_PAT": "x"})
    with pytest.raises(ConfigError, match="AZURE_DEVOPS_PIPELINE_ID"):
        pipelines_settings(runtime.catalog, {"AZURE_DEVOPS_PIPELINE_ID": "twelve"})


def test_stage_names_carry_the_environment() -> None:
    assert stage_of_environment("pr-1234") == "shipyard_deploy_pr_1234"
    assert environment_of_stage("shipyard_deploy_pr_1234") == "pr-1234"
    assert environment_of_stage("build") is None


def test_one_run_written_two_ways_is_one_deployment(runtime: Runtime) -> None:
    ready(runtime, "pr-8", "test")
    by_id = "https://dev.azure.com/fabrikam/d6b3e0ea/_build/results?buildId=77"
    by_name = "https://dev.azure.com/fabrikam/Shipyard/_build/results?buildId=77"
    other = "https://dev.azure.com/fabrikam/Shipyard/_build/results?buildId=770"
    now = runtime.lifecycle.clock.now()
    with runtime.database.write() as conn:
        first = record_deployment(
            conn,
            runtime.catalog,
            PipelineDeployment("pr-8", "1.1.0", DeploymentStatus.RUNNING, by_id),
            at=now,
        )
        again = record_deployment(
            conn,
            runtime.catalog,
            PipelineDeployment("pr-8", "1.1.0", DeploymentStatus.SUCCEEDED, by_name),
            at=now,
        )
        another = record_deployment(
            conn,
            runtime.catalog,
            PipelineDeployment("pr-8", "1.1.0", DeploymentStatus.SUCCEEDED, other),
            at=now,
        )
    assert again.deployment_id == first.deployment_id and not again.new
    assert again.status is DeploymentStatus.SUCCEEDED
    assert another.new and another.deployment_id != first.deployment_id
