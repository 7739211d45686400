"""The outbox: written with the change, delivered to a strict fake Slack once and in order."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot import views
from bot.app import web_client
from bot.directory import SlackDirectory
from bot.runtime import Runtime
from bot.slack_notifier import SlackNotifier
from environments.model import DeploymentStatus
from environments.pipeline_deployments import PipelineDeployment, record_deployment
from environments.registry.schema import outbox as outbox_table
from tests.conftest import EXAMPLES, ROOT, MovableClock, destroy_everything, person
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack
from tests.slackbot import CONFIG
from tests.test_slack_bot import eventually

ALICE, CAROL = person("alice"), person("carol")


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.grant_manifest_scopes(ROOT / "manifest.yml")
        fake.usergroups["S0RELMGR"] = ["U0DAVE", "U0ERIN"]
        yield fake


@pytest.fixture
def rt(home: Path, database_url: str, clock: MovableClock) -> Iterator[Runtime]:
    runtime = Runtime.open(str(CONFIG), database_url=database_url, clock=clock)
    for version in ("1.0.0", "1.1.0"):
        runtime.lifecycle.add_release(
            person("ci"), version, str(EXAMPLES / f"game/releases/{version}")
        )
    yield runtime
    destroy_everything(runtime)
    runtime.close()


def deliverer(rt: Runtime, slack: FakeSlack, **kwargs: object) -> SlackNotifier:
    client = web_client(DEFAULT_TOKEN, slack.base_url)
    kwargs.setdefault("route_grace", 0.0)
    return SlackNotifier(client, rt.catalog, rt.database, rt.clock, **kwargs)  # type: ignore[arg-type]


def undelivered(rt: Runtime) -> list[str]:
    with rt.database.read() as conn:
        return [
            row.event
            for row in conn.execute(
                sa.select(outbox_table.c.event).where(outbox_table.c.delivered_at.is_(None))
            )
        ]


def ready_test_env(rt: Runtime, name: str = "pr-1") -> None:
    requested = rt.lifecycle.create(ALICE, name, env_type="test", release="1.0.0")
    assert requested.operation_id is not None
    rt.worker.run(requested.operation_id)


def test_each_change_writes_its_event_in_the_same_transaction(rt: Runtime) -> None:
    ready_test_env(rt)
    rt.lifecycle.promote(CAROL, "staging")
    with rt.database.read() as conn:
        events = [
            (row.event, row.environment)
            for row in conn.execute(sa.select(outbox_table).order_by(outbox_table.c.id))
        ]
    kinds = [event for event, _ in events]
    assert kinds[0] == "progress" and "ready" in kinds
    assert events[-1] == ("approval_requested", "staging")
    # A refused change writes nothing.
    before = len(events)
    with pytest.raises(Exception, match=r"not an approver|cannot approve"):
        rt.lifecycle.approve(CAROL, "staging")
    with rt.database.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox_table)).scalar() == before


DELIVER_ONCE = """
import sys
from datetime import timedelta
from pathlib import Path
from bot import views
from bot.app import web_client
from bot.directory import SlackDirectory
from bot.slack_notifier import SlackNotifier
from environments.catalog import load_catalog
from environments.clock import SystemClock
from environments.registry import open_database
config, url, base, TOKEN = sys.argv[1:5]
notifier = SlackNotifier(
    web_client(TOKEN, base), load_catalog(Path(config)), open_database(url), SystemClock(),
    lease=timedelta(seconds=1), route_grace=0.0,
)
notifier.deliver_pending()
"""


def test_a_crash_between_post_and_mark_posts_once(
    rt: Runtime, slack: FakeSlack, database_url: str
) -> None:
    ready_test_env(rt)
    deliverer(rt, slack).deliver_pending()
    rt.lifecycle.promote(CAROL, "staging")
    # A deliverer process posts the approval request; Slack takes it, and the process dies
    # before it hears back, so nothing of the post reaches the record.
    slack.stall("chat.postMessage")
    crashing = subprocess.Popen(
        [
            sys.executable,
            "-c",
            DELIVER_ONCE,
            str(CONFIG),
            database_url,
            slack.base_url,
            DEFAULT_TOKEN,
        ],
        cwd=ROOT,
    )
    try:
        eventually(lambda: slack.messages("C0RELEASES"))
    finally:
        crashing.kill()
        crashing.wait(timeout=10)
    slack.unstall()
    assert undelivered(rt) == ["approval_requested"]
    second = deliverer(rt, slack)
    assert second.deliver_pending() == 0, "the dead deliverer's claim holds until its lease ends"
    time.sleep(1.1)
    assert second.deliver_pending() == 1
    posted = [c for c in slack.calls("chat.postMessage") if c.params["channel"] == "C0RELEASES"]
    assert len(posted) == 1, "found in the channel's history, not posted again"
    assert slack.calls("conversations.history"), "the second deliverer looked before posting"
    assert undelivered(rt) == []
    (message,) = slack.messages("C0RELEASES")
    assert second.approval_thread(1) == ("C0RELEASES", message["ts"]), "and it is kept up to date"


def test_a_rate_limited_first_post_is_sent_after_retry_after_and_ends_done(
    rt: Runtime, slack: FakeSlack
) -> None:
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    ready_test_env(rt)
    sent = deliverer(rt, slack).deliver_pending()
    assert sent >= 3 and undelivered(rt) == []
    limited = [c for c in slack.calls("chat.postMessage") if c.limited]
    posts = [c for c in slack.calls("chat.postMessage") if not c.limited]
    assert limited and posts[0].at - limited[0].at >= 1.0
    (message,) = [m for m in slack.messages("C0DEPLOYS") if "thread_ts" not in m]
    shown = json.dumps(message["blocks"], ensure_ascii=False)
    assert "✅" in shown and "⏳" not in shown, "never left waiting"
    replies = [m for m in slack.messages("C0DEPLOYS") if m.get("thread_ts") == message["ts"]]
    assert len(replies) == 1 and "is ready with 1.0.0" in replies[0]["text"]


def test_events_of_one_environment_wait_for_the_earlier_ones(rt: Runtime, slack: FakeSlack) -> None:
    ready_test_env(rt)
    slack.fail("chat.postMessage", times=3, status=503)  # the SDK retries twice, then gives up
    notifier = deliverer(rt, slack, backoff=0.05)
    notifier.deliver_pending()
    waiting = undelivered(rt)
    assert waiting and waiting[0] == "progress", "the first event waits for Slack"
    assert len(waiting) == len([e for e in waiting]), "and every later one waits behind it"
    with rt.database.read() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(outbox_table)).scalar()
    assert len(waiting) == total
    time.sleep(0.3)
    notifier.deliver_pending()
    assert undelivered(rt) == []
    texts = [c.params.get("text", "") for c in slack.calls("chat.update") if c.status == 200]
    assert texts[-1].startswith("create pr-1"), "the last update is the outcome's"


def test_an_operation_started_where_the_bot_cannot_post_answers_by_response_url_then_dm(
    rt: Runtime, slack: FakeSlack
) -> None:
    notifier = deliverer(rt, slack)
    requested = rt.lifecycle.create(ALICE, "pr-2", env_type="test", release="1.0.0")
    assert requested.operation_id is not None
    # A /env command typed in a DM between two people: the bot is not in that conversation.
    notifier.answer_to(
        requested.operation_id,
        user="U0ALICE",
        channel="D0PEOPLE",
        response_url=slack.response_url("dm-command"),
    )
    rt.worker.run(requested.operation_id)
    notifier.deliver_pending()
    answered = [c for c in slack.calls("response_url") if "is ready" in c.params.get("text", "")]
    assert len(answered) == 1 and answered[0].params["response_type"] == "ephemeral"
    assert slack.messages("D0PEOPLE") == [], "the bot is not part of that DM"

    # In a private channel the bot is not in, with the response_url no longer answering.
    slack.private["G0SECRET"] = {"U0ALICE"}
    slack.fail("response_url", times=1, status=404)
    destroy = rt.lifecycle.destroy(ALICE, "pr-2")
    notifier.answer_to(
        destroy, user="U0ALICE", channel="G0SECRET", response_url=slack.response_url("gone")
    )
    rt.worker.run(destroy)
    notifier.deliver_pending()
    dms = [
        c
        for c in slack.calls("chat.postMessage")
        if c.params["channel"] == "DU0ALICE" and "destroyed" in c.params.get("text", "")
    ]
    assert len(dms) == 1
    assert undelivered(rt) == []


def test_a_crash_between_a_response_url_post_and_its_mark_answers_once(
    rt: Runtime, slack: FakeSlack, database_url: str
) -> None:
    requested = rt.lifecycle.create(ALICE, "pr-3", env_type="test", release="1.0.0")
    assert requested.operation_id is not None
    deliverer(rt, slack).answer_to(
        requested.operation_id,
        user="U0ALICE",
        channel="D0PEOPLE",  # a DM between people: only the response_url reaches alice
        response_url=slack.response_url("dm-command"),
    )
    rt.worker.run(requested.operation_id)
    # A deliverer posts the outcome to the response_url; Slack shows it, and the process dies
    # before it hears back. A response_url cannot be read back to find that post.
    slack.stall("response_url")
    command = [sys.executable, "-c", DELIVER_ONCE, str(CONFIG), database_url, slack.base_url]
    crashing = subprocess.Popen([*command, DEFAULT_TOKEN], cwd=ROOT)
    try:
        eventually(lambda: slack.calls("response_url"))
    finally:
        crashing.kill()
        crashing.wait(timeout=10)
    slack.unstall()
    assert undelivered(rt)[0] == "ready"
    time.sleep(1.1)  # the dead deliverer's lease runs out
    assert deliverer(rt, slack).deliver_pending() >= 1
    assert len(slack.calls("response_url")) == 1, "its intent was recorded: not posted again"
    assert not [c for c in slack.calls("chat.postMessage") if "is ready" in c.params["text"]]
    assert undelivered(rt) == []


def dm_config(tmp_path: Path) -> Path:
    """The Slack tests' configuration with staging's approvers reached by direct message."""
    text = CONFIG.read_text().replace("channel: C0RELEASES}", "channel: C0RELEASES, dm: true}")
    path = tmp_path / "shipyard-dm.yaml"
    path.write_text(text.replace("file: ../../examples/", f"file: {EXAMPLES}/"))
    return path


def test_approvers_configured_for_dm_are_each_sent_the_request_once(
    home: Path, tmp_path: Path, database_url: str, clock: MovableClock, slack: FakeSlack
) -> None:
    client = web_client(DEFAULT_TOKEN, slack.base_url)
    rt = Runtime.open(
        str(dm_config(tmp_path)),
        database_url=database_url,
        clock=clock,
        directory=SlackDirectory(client),
    )
    try:
        rt.lifecycle.add_release(person("ci"), "1.0.0", str(EXAMPLES / "game/releases/1.0.0"))
        ready_test_env(rt)
        notifier = deliverer(rt, slack)
        notifier.deliver_pending()
        slack.rate_limit("conversations.open", times=1, retry_after=1)
        rt.lifecycle.promote(CAROL, "staging")
        notifier.deliver_pending()
        assert undelivered(rt) == []
        assert len(slack.messages("C0RELEASES")) == 1, "the approval channel, as before"
        # release-managers: carol (who asked: not her) and the user group S0RELMGR.
        dms = [
            c
            for c in slack.calls("chat.postMessage")
            if c.status == 200 and c.params["channel"].startswith("D")
        ]
        assert sorted(c.params["channel"] for c in dms) == ["DU0DAVE", "DU0ERIN"]
        assert all("staging" in c.params["text"] for c in dms)
        assert all(views.APPROVE in json.dumps(c.params["blocks"]) for c in dms)
        assert [c for c in slack.calls("conversations.open") if c.limited], "a 429 came first"
        assert notifier.deliver_pending() == 0, "nothing is sent twice"
        # Decided: every copy shows it and loses its buttons, the direct messages too.
        rt.lifecycle.approve(person("dave"), "staging")
        notifier.deliver_pending()
        for channel in ("C0RELEASES", "DU0DAVE", "DU0ERIN"):
            (message,) = slack.messages(channel)
            shown = json.dumps(message["blocks"])
            assert views.APPROVE not in shown and "*approved* (1/1)" in shown, (channel, shown)
    finally:
        destroy_everything(rt)
        rt.close()


def test_a_direct_message_to_an_approver_needs_the_scope_slack_requires(
    home: Path, tmp_path: Path, database_url: str, clock: MovableClock, slack: FakeSlack
) -> None:
    slack.scopes = (slack.scopes or set()) - {"im:write"}
    client = web_client(DEFAULT_TOKEN, slack.base_url)
    rt = Runtime.open(
        str(dm_config(tmp_path)),
        database_url=database_url,
        clock=clock,
        directory=SlackDirectory(client),
    )
    try:
        rt.lifecycle.add_release(person("ci"), "1.0.0", str(EXAMPLES / "game/releases/1.0.0"))
        ready_test_env(rt)
        rt.lifecycle.promote(CAROL, "staging")
        deliverer(rt, slack).deliver_pending()
        with rt.database.read() as conn:
            dms = conn.execute(
                sa.select(outbox_table.c.delivered_to, outbox_table.c.error).where(
                    outbox_table.c.event == "approval_dm"
                )
            ).all()
        # Slack refuses conversations.open without im:write: said once per approver, not retried.
        assert [tuple(row) for row in dms] == [("refused", "missing_scope")] * 2
        assert not [c for c in slack.calls("chat.postMessage") if c.params["channel"][0] == "D"]
    finally:
        destroy_everything(rt)
        rt.close()


def test_a_deployment_a_pipeline_reports_is_told_once_with_the_run_to_open(
    rt: Runtime, slack: FakeSlack
) -> None:
    ready_test_env(rt)
    notifier = deliverer(rt, slack)
    notifier.deliver_pending()
    run = "https://dev.azure.com/org/project/_build/results?buildId=42"
    for status in (
        DeploymentStatus.RUNNING,
        DeploymentStatus.SUCCEEDED,
        DeploymentStatus.SUCCEEDED,
    ):
        with rt.database.write() as conn:
            record_deployment(
                conn,
                rt.catalog,
                PipelineDeployment("pr-1", "1.1.0", status, run, requested_by="carol"),
                at=rt.clock.now(),
            )
    assert notifier.deliver_pending() == 2, "first seen, then ended; the repeat says nothing"
    told = [c.params["text"] for c in slack.calls("chat.postMessage") if run in c.params["text"]]
    assert len(told) == 2 and "succeeded" in told[1] and "open the run" in told[1]
    assert all(
        c.params.get("thread_ts")
        for c in slack.calls("chat.postMessage")
        if run in c.params["text"]
    )
