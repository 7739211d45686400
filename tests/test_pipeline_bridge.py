"""An Azure DevOps approval gate answered in Slack: webhook in, Shipyard's policy, PATCH out."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.pipeline_bridge import APPROVE, PipelineBridge
from bot.runtime import Runtime
from pipelines.azure_devops import AzureDevOps
from pipelines.webhooks import SECRET_HEADER, WebhookHandler
from tests.conftest import MovableClock, destroy_everything
from tests.fakes.azure_devops import FakeAzureDevOps
from tests.fakes.slack import FakeSlack
from tests.slackbot import CONFIG, Bot, running_bot
from tests.test_pipelines_azure_devops import DEPLOY_PIPELINE, ready, settings_for

SECRET = "hook-secret-for-the-bridge"


@pytest.fixture
def fake() -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps() as server:
        server.add_pipeline(DEPLOY_PIPELINE, "game-delivery")
        yield server


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        server.usergroups["S0RELMGR"] = ["U0DAVE", "U0ERIN"]
        yield server


@pytest.fixture
def bot(
    home: Path, tmp_path: Path, clock: MovableClock, slack: FakeSlack, fake: FakeAzureDevOps
) -> Iterator[tuple[Bot, AzureDevOps]]:
    made: list[Runtime] = []
    ado = AzureDevOps(settings_for(fake, max_retries=1), fake.pat)

    def runtime_factory(directory: Any) -> Runtime:
        rt = Runtime.open(
            str(CONFIG),
            database_url=f"sqlite:///{tmp_path / 'b.db'}",
            clock=clock,
            directory=directory,
        )
        made.append(rt)
        return rt

    def bridge_factory(rt: Runtime, client: Any) -> PipelineBridge:
        hook = WebhookHandler(
            secret=SECRET,
            database=rt.database,
            catalog=rt.catalog,
            source=ado,
            clock=rt.lifecycle.clock,
        )
        return PipelineBridge(rt, client, ado, hook)

    with running_bot(runtime_factory, slack, bridge_factory) as running:
        yield running, ado
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


def wait(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_pipeline_approval_is_posted_and_answered_in_slack_under_shipyards_policy(
    bot: tuple[Bot, AzureDevOps], fake: FakeAzureDevOps, slack: FakeSlack
) -> None:
    running, ado = bot
    ready(running.runtime, "staging", "staging")
    ado.sync(running.runtime.catalog, [("staging", "staging")])
    ado.start_run(environment="staging", release="1.1.0", requested_by="carol")
    approval = fake.wait_for_approval()

    assert post_hook(running, fake.approval_event(approval["id"]), secret="forged") == 401
    assert slack.calls("chat.postMessage") == []
    assert post_hook(running, fake.approval_event(approval["id"])) == 200
    (posted,) = wait(lambda: slack.calls("chat.postMessage"))
    assert posted.params["channel"] == "C0RELEASES"
    assert "1.1.0" in posted.params["text"] and "staging" in posted.params["text"]
    ts = slack.messages("C0RELEASES")[0]["ts"]

    running.click("bob", APPROVE, approval["id"], message=("C0RELEASES", ts))
    refusal = wait(lambda: slack.calls("chat.postEphemeral"))
    assert "bob is not an approver for staging" in refusal[0].params["text"]
    assert not fake.requests("PATCH")

    running.click("dave", APPROVE, approval["id"], message=("C0RELEASES", ts))
    patched = wait(lambda: fake.requests("PATCH"))
    assert "approved in Slack by dave" in json.dumps(patched[0].body)
    wait(lambda: "approved" in slack.message("C0RELEASES", ts)["text"])


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
