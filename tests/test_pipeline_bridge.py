"""One approval per promotion: a promotion asked in Slack runs the release's build in Azure
DevOps, whose gate is answered by Shipyard's one approval request (real Bolt app, signed
requests, the real SDK against the fake Azure DevOps)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import render, views
from bot.pipeline_bridge import PipelineBridge
from bot.runtime import Runtime
from environments.model import (
    ApprovalState,
    DeploymentStatus,
    EnvironmentState,
)
from environments.pipeline_deployments import PipelineDeployment, record_deployment
from environments.registry import record as rec
from pipelines.azure_devops import AzureDevOps
from pipelines.webhooks import SECRET_HEADER, WebhookHandler
from tests.conftest import EXAMPLES, MovableClock, destroy_everything, person
from tests.fakes.azure_devops import PROJECT, SERVICE, FakeAzureDevOps
from tests.fakes.slack import FakeSlack
from tests.slackbot import CONFIG, Bot, running_bot
from tests.test_pipelines_azure_devops import ready

SECRET = "hook-secret-for-the-bridge"
DEPLOY_PIPELINE = 7
CI_PIPELINE = 8
BUILD_RUN = 4242
BUILD_NUMBER = "20261130.1"


@pytest.fixture
def fake() -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps() as server:
        server.add_pipeline(DEPLOY_PIPELINE, "game-delivery")
        server.add_pipeline(99, "someone-elses-pipeline")
        server.add_pipeline(CI_PIPELINE, "game-ci", environments=("staging",))
        server.add_build(BUILD_RUN, BUILD_NUMBER)
        yield server


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        server.usergroups["S0RELMGR"] = ["U0DAVE", "U0ERIN"]
        yield server


def config_for(fake: FakeAzureDevOps, folder: Path) -> Path:
    """The Slack tests' shipyard.yaml, its staging type deployed by the Azure DevOps pipeline."""
    text = CONFIG.read_text(encoding="utf-8")
    text = text.replace(
        "    description: release candidate, shared by the team\n",
        "    description: release candidate, shared by the team\n    engine: azure-pipelines\n",
    )
    text = text.replace("../../examples/", f"{EXAMPLES}/")
    text += f"""
azure_devops:
  organization_url: {fake.org_url}
  project: {PROJECT}
  pipeline_id: {DEPLOY_PIPELINE}
  approver_identity: {SERVICE["id"]}
  watch: [{CI_PIPELINE}]
  poll_interval: 0.05
"""
    path = folder / "shipyard.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def bot(
    home: Path,
    tmp_path: Path,
    clock: MovableClock,
    slack: FakeSlack,
    fake: FakeAzureDevOps,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Bot, PipelineBridge]]:
    monkeypatch.setenv("AZURE_DEVOPS_PAT", fake.pat)
    config = config_for(fake, tmp_path)
    made: list[Runtime] = []
    bridges: list[PipelineBridge] = []

    def runtime_factory(directory: Any) -> Runtime:
        rt = Runtime.open(
            str(config),
            database_url=f"sqlite:///{tmp_path / 'b.db'}",
            clock=clock,
            directory=directory,
        )
        rt.lifecycle.add_release(
            person("ci"), "1.0.0", str(EXAMPLES / "game/releases/1.0.0"), build_run=BUILD_RUN
        )
        made.append(rt)
        return rt

    def bridge_factory(rt: Runtime, client: Any) -> PipelineBridge:
        ado = AzureDevOps.from_environment(rt.catalog)
        hook = WebhookHandler(
            secret=SECRET,
            database=rt.database,
            catalog=rt.catalog,
            source=ado,
            clock=rt.lifecycle.clock,
        )
        bridges.append(PipelineBridge(rt, client, ado, hook))
        return bridges[-1]

    with running_bot(runtime_factory, slack, bridge_factory) as running:
        yield running, bridges[0]
    for rt in made:
        destroy_everything(rt)
        rt.close()


def post_hook(bot: Bot, event: dict[str, Any], secret: str = SECRET) -> int:
    request = urllib.request.Request(
        f"{bot.url}/webhooks/azure-devops",
        data=json.dumps(event).encode(),
        method="POST",
        headers={"Content-Type": "application/json", SECRET_HEADER: secret},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except (AssertionError, LookupError, AttributeError):
            found = None
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def serving_staging(rt: Runtime) -> None:
    """1.0.0 passed test (the path allows it into staging); staging serves 0.9.0."""
    ready(rt, "pr-1", "test")
    ready(rt, "staging", "staging")
    with rt.database.write() as conn:
        for env, version in (("pr-1", "1.0.0"), ("staging", "0.9.0")):
            record_deployment(
                conn,
                rt.catalog,
                PipelineDeployment(env, version, DeploymentStatus.SUCCEEDED, f"https://x/{env}"),
                at=rt.lifecycle.clock.now(),
            )


def releases_messages(slack: FakeSlack) -> list[Any]:
    return [c for c in slack.calls("chat.postMessage") if c.params.get("channel") == "C0RELEASES"]


def promote_to_the_gate(
    running: Bot, fake: FakeAzureDevOps, slack: FakeSlack
) -> tuple[int, dict[str, Any], str, str]:
    """carol promotes 1.0.0 into staging in Slack; the run waits at the gate; the hook comes.
    Returns (run id, Azure DevOps approval, Shipyard request id, its message ts)."""
    serving_staging(running.runtime)
    assert running.command("carol", "promote staging --release 1.0.0").status == 200
    approval = fake.wait_for_approval(timeout=15)
    assert post_hook(running, fake.approval_event(approval["id"])) == 200
    (posted,) = eventually(lambda: releases_messages(slack))
    request_id = next(
        e["value"]
        for b in posted.params["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == views.APPROVE
    )
    ts = eventually(lambda: slack.messages("C0RELEASES"))[0]["ts"]
    return approval["_run"], approval, request_id, ts


def history(running: Bot, env: str = "staging") -> list[Any]:
    with running.runtime.database.read() as conn:
        return rec.history(conn, env)


def test_a_promotion_from_slack_runs_the_releases_build_through_one_approval(
    bot: tuple[Bot, PipelineBridge], fake: FakeAzureDevOps, slack: FakeSlack
) -> None:
    running, bridge = bot
    run_id, approval, request_id, ts = promote_to_the_gate(running, fake, slack)

    # One run, on the release's recorded build, asked for by carol (not the token's account).
    (started,) = fake.requests("POST", f"pipelines/{DEPLOY_PIPELINE}/runs$")
    assert started.body["resources"] == {"pipelines": {"build": {"version": BUILD_NUMBER}}}
    assert started.body["templateParameters"] == {
        "environment": "staging",
        "release": "1.0.0",
        "requestedBy": "carol",
    }
    # No approval before the run: the gate's request is the only one, and it names the run.
    with running.runtime.database.read() as conn:
        (request,) = rec.list_approvals(conn, state=None, environment="staging")
    assert str(request.id) == request_id and request.requested_by == "carol"
    blocks = json.dumps(releases_messages(slack)[0].params["blocks"])
    assert fake.web_url(run_id) in blocks

    # The requester is refused although she is an approver; nothing reaches Azure DevOps.
    running.click("carol", views.APPROVE, request_id, message=("C0RELEASES", ts))
    refused = eventually(lambda: slack.calls("chat.postEphemeral"))
    assert "cannot approve your own request" in refused[0].params["text"]
    assert not fake.requests("PATCH")

    running.click("dave", views.APPROVE, request_id, message=("C0RELEASES", ts))
    (patched,) = eventually(lambda: fake.requests("PATCH", "pipelines/approvals$"))
    assert patched.body == [
        {
            "approvalId": approval["id"],
            "status": "approved",
            "comment": f"approved in Slack by dave: Shipyard request #{request_id}",
        }
    ]
    assert fake.approvals[approval["id"]]["steps"][0]["actualApprover"]["id"] == SERVICE["id"]
    eventually(lambda: history(running)[0].status is DeploymentStatus.SUCCEEDED)

    # Hooks and the poll hear of the same run: the one deployment row, nothing added.
    assert post_hook(running, fake.stage_state_changed_event(run_id, "staging")) == 200
    assert post_hook(running, fake.run_state_changed_event(run_id)) == 200
    bridge.poll()
    latest, earlier = history(running)
    assert earlier.release == "0.9.0"
    assert (latest.release, latest.status, latest.requested_by) == (
        "1.0.0",
        DeploymentStatus.SUCCEEDED,
        "carol",
    )
    assert latest.run_url == fake.web_url(run_id) and latest.approved_by == ("dave",)
    assert json.loads(render.to_json(latest))["run_url"] == fake.web_url(run_id)
    with running.runtime.database.read() as conn:
        staging = rec.get_environment(conn, "staging")
    assert (staging.state, staging.release) == (EnvironmentState.READY, "1.0.0")
    assert len(releases_messages(slack)) == 1, "one approval message, one approval"
    ready_text = eventually(
        lambda: [
            c for c in slack.calls("chat.postMessage") if "is ready with 1.0.0" in str(c.params)
        ]
    )
    assert fake.web_url(run_id) in json.dumps(ready_text[0].params)


def test_a_rejected_gate_ends_not_promoted_and_staging_keeps_serving(
    bot: tuple[Bot, PipelineBridge], fake: FakeAzureDevOps, slack: FakeSlack
) -> None:
    running, _ = bot
    run_id, _, request_id, ts = promote_to_the_gate(running, fake, slack)

    running.click("erin", views.REJECT, request_id, message=("C0RELEASES", ts))
    (opened,) = eventually(lambda: slack.calls("views.open"))
    answer = running.submit(
        "erin",
        opened.params["view"],
        {"reason": {"value": {"type": "plain_text_input", "value": "p95 regressed"}}},
    )
    assert answer.status == 200

    (patched,) = eventually(lambda: fake.requests("PATCH", "pipelines/approvals$"))
    assert patched.body[0]["status"] == "rejected"
    assert "erin" in patched.body[0]["comment"]
    eventually(lambda: fake.run(run_id).state == "completed")
    said = eventually(
        lambda: [c for c in slack.calls() if "not promoted into *staging*" in json.dumps(c.params)]
    )
    assert "failed" not in json.dumps(said[-1].params)
    updates = json.dumps(
        [c.params for c in slack.calls("chat.update") if c.params["channel"] == "C0DEPLOYS"],
        ensure_ascii=False,
    )
    assert "⚪ deploy 1.0.0 into staging" in updates, "not promoted is no failure"
    assert "❌" not in updates, updates
    latest = history(running)[0]
    assert latest.status is DeploymentStatus.REJECTED and latest.run_url == fake.web_url(run_id)
    assert len(history(running)) == 2
    with running.runtime.database.read() as conn:
        staging = rec.get_environment(conn, "staging")
    assert (staging.state, staging.release) == (EnvironmentState.READY, "0.9.0")


def test_a_timed_out_gate_ends_not_promoted_and_closes_the_request(
    bot: tuple[Bot, PipelineBridge], fake: FakeAzureDevOps, slack: FakeSlack
) -> None:
    running, _ = bot
    _, approval, request_id, ts = promote_to_the_gate(running, fake, slack)

    fake.time_out(approval["id"])

    eventually(
        lambda: [c for c in slack.calls() if "not promoted into *staging*" in json.dumps(c.params)]
    )
    assert history(running)[0].status is DeploymentStatus.EXPIRED
    with running.runtime.database.read() as conn:
        staging = rec.get_environment(conn, "staging")
        request = rec.get_approval(conn, int(request_id))
    assert (staging.state, staging.release) == (EnvironmentState.READY, "0.9.0")
    assert request.state is ApprovalState.EXPIRED
    eventually(lambda: "not promoted" in slack.message("C0RELEASES", ts)["text"])
    assert not fake.requests("PATCH")


def test_a_decision_azure_devops_missed_is_answered_by_the_poll(
    bot: tuple[Bot, PipelineBridge], fake: FakeAzureDevOps, slack: FakeSlack
) -> None:
    running, bridge = bot
    run_id, approval, request_id, ts = promote_to_the_gate(running, fake, slack)
    fake.inject("PATCH", "pipelines/approvals$", 500, times=1)

    running.click("dave", views.APPROVE, request_id, message=("C0RELEASES", ts))
    eventually(lambda: fake.requests("PATCH", "pipelines/approvals$"))
    time.sleep(0.3)
    assert fake.approvals[approval["id"]]["status"] == "pending"

    bridge.poll()

    assert fake.approvals[approval["id"]]["status"] == "approved"
    eventually(lambda: history(running)[0].status is DeploymentStatus.SUCCEEDED)
    assert history(running)[0].run_url == fake.web_url(run_id)
    assert len(releases_messages(slack)) == 1


def test_a_watched_pipelines_tag_build_is_gated_by_the_same_one_request(
    bot: tuple[Bot, PipelineBridge], fake: FakeAzureDevOps, slack: FakeSlack
) -> None:
    running, _ = bot
    serving_staging(running.runtime)
    AzureDevOps.from_environment(running.runtime.catalog).sync(
        running.runtime.catalog, [("staging", "staging")]
    )
    # A push of tag 1.0.0 runs the team's CI pipeline: no parameters, nobody named.
    run = fake._create_run(
        CI_PIPELINE, {"resources": {"repositories": {"self": {"refName": "refs/tags/1.0.0"}}}}
    )
    approval = fake.wait_for_approval()
    assert post_hook(running, fake.approval_event(approval["id"])) == 200
    (posted,) = eventually(lambda: releases_messages(slack))
    assert "1.0.0" in json.dumps(posted.params["blocks"])
    request_id = next(
        e["value"]
        for b in posted.params["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == views.APPROVE
    )

    running.click("dave", views.APPROVE, request_id)
    eventually(lambda: fake.approvals[approval["id"]]["status"] == "approved")
    fake.finish_run(run.id)
    assert post_hook(running, fake.run_state_changed_event(run.id)) == 200

    latest = history(running)[0]
    assert (latest.release, latest.status, latest.requested_by, latest.approved_by) == (
        "1.0.0",
        DeploymentStatus.SUCCEEDED,
        "azure-devops",
        ("dave",),
    )
    assert latest.run_url == fake.web_url(run.id) and len(history(running)) == 2


def test_approvals_shipyard_does_not_manage_are_left_alone(
    bot: tuple[Bot, PipelineBridge], fake: FakeAzureDevOps, slack: FakeSlack
) -> None:
    running, bridge = bot
    serving_staging(running.runtime)
    ado = AzureDevOps.from_environment(running.runtime.catalog)
    ado.sync(running.runtime.catalog, [("staging", "staging")])
    # Someone else's pipeline deploying into the same Azure DevOps environment.
    ado.start_run(pipeline_id=99, environment="staging", release="1.0.0", requested_by="x")
    foreign = fake.wait_for_approval()

    assert post_hook(running, fake.approval_event(foreign["id"])) == 200
    bridge.poll()

    time.sleep(0.3)
    assert releases_messages(slack) == []
    assert not [c for c in slack.calls("chat.postMessage") if "None" in json.dumps(c.params)]
    with running.runtime.database.read() as conn:
        assert rec.list_approvals(conn, state=None) == []
    assert fake.approvals[foreign["id"]]["status"] == "pending"


def test_buttons_of_the_old_bridge_say_where_to_decide_and_change_nothing(
    bot: tuple[Bot, PipelineBridge], fake: FakeAzureDevOps, slack: FakeSlack
) -> None:
    running, _ = bot
    _, approval, request_id, ts = promote_to_the_gate(running, fake, slack)

    # A message the old bridge posted: its buttons carried the Azure DevOps approval id.
    answer = running.click("dave", "pipeline.approve", approval["id"], message=("C0OLD", ts))
    assert answer.status == 200
    (told,) = eventually(lambda: slack.calls("chat.postEphemeral"))
    assert (told.params["channel"], told.params["user"]) == ("C0OLD", "U0DAVE")
    assert told.params["text"] == (
        "This button no longer decides anything: the gate is now decided through Shipyard's "
        f"approval message (request #{request_id})."
    )
    # An approval Shipyard cannot find (gone, or not one it knows): the same line, no number.
    assert running.click("erin", "pipeline.reject", "not-an-approval-id").status == 200
    told = eventually(lambda: slack.calls("chat.postEphemeral")[1:])[0]
    assert told.params["text"] == (
        "This button no longer decides anything: the gate is now decided through Shipyard's "
        "approval message."
    )

    time.sleep(0.3)
    assert not fake.requests("PATCH")
    assert fake.approvals[approval["id"]]["status"] == "pending"
    with running.runtime.database.read() as conn:
        (request,) = rec.list_approvals(conn, state=None, environment="staging")
    assert request.state is ApprovalState.PENDING and request.decisions == ()


def test_without_azure_devops_configured_there_is_no_bridge(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AZURE_DEVOPS_ORG_URL", "AZURE_DEVOPS_PROJECT", "AZURE_DEVOPS_PAT"):
        monkeypatch.delenv(name, raising=False)
    rt = Runtime.open(str(CONFIG), database_url=f"sqlite:///{tmp_path / 'n.db'}")
    try:
        assert PipelineBridge.from_environment(rt, None) is None  # type: ignore[arg-type]
    finally:
        rt.close()
