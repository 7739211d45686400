"""Load tests in Slack: `/env loadtest` from chat, live figures, the verdict and the chart in the
environment's thread through files upload v2, and the verdict still arriving when Slack refuses
the upload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import web_client
from bot.runtime import Runtime
from bot.slack_notifier import SlackNotifier
from bot.table import chat_help
from environments.loadtests.summary import LoadTestSummary
from environments.loadtests.verdicts import Outcome
from environments.model import EnvironmentState
from environments.registry import chat as chat_record
from environments.registry import outbox
from tests.conftest import EXAMPLES, MovableClock, destroy_everything, person
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack
from tests.slackbot import CONFIG, Bot, running_bot
from tests.test_slack_bot import env_state, eventually

PNG = b"\x89PNG\r\n\x1a\n"
MANIFEST = Path(__file__).resolve().parents[1] / "manifest.yml"
THREAD = "1700000000.000100"


def bot_with(slack: FakeSlack, home: Path, tmp_path: Path, clock: MovableClock) -> Any:
    made: list[Runtime] = []

    def factory(directory: Any) -> Runtime:
        rt = Runtime.open(
            str(CONFIG),
            database_url=f"sqlite:///{tmp_path / 'bot.db'}",
            clock=clock,
            directory=directory,
        )
        rt.lifecycle.add_release(person("ci"), "1.0.0", str(EXAMPLES / "game/releases/1.0.0"))
        made.append(rt)
        return rt

    return made, running_bot(factory, slack)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def bot(home: Path, tmp_path: Path, clock: MovableClock, slack: FakeSlack) -> Iterator[Bot]:
    made, running = bot_with(slack, home, tmp_path, clock)
    with running as started:
        yield started
    for rt in made:
        destroy_everything(rt)
        rt.close()


def test_help_lists_loadtest_as_chat_runs_it() -> None:
    line = next(x for x in chat_help().splitlines() if "load-test an environment" in x)
    for option in ("/env loadtest", "--plan", "--users", "--duration"):
        assert option in line


def test_env_loadtest_from_chat_shows_live_figures_then_verdict_and_chart_in_the_thread(
    bot: Bot, slack: FakeSlack
) -> None:
    assert bot.command("alice", "create pr-1 --type test --release 1.0.0").status == 200
    eventually(lambda: env_state(bot, "pr-1").state is EnvironmentState.READY)

    def thread_of_pr_1() -> tuple[str, str] | None:
        with bot.runtime.database.read() as conn:
            return chat_record.message(conn, "environment:pr-1")

    channel, thread = eventually(thread_of_pr_1)
    answer = bot.command("alice", "loadtest pr-1 --plan login --users 3 --duration 7s")
    assert answer.status == 200 and answer.seconds < 1.0

    done = eventually(lambda: slack.calls("files.completeUploadExternal"), timeout=60)
    (complete,) = done
    assert complete.params["channel_id"] == channel and complete.params["thread_ts"] == thread
    file_id = complete.params["files"][0]["id"]
    assert slack.uploaded(file_id)["content"][:8] == PNG
    assert "load test #1" in complete.params["files"][0]["title"]

    in_thread = [m for m in slack.messages(channel) if m.get("thread_ts") == thread]
    texts = json.dumps([m["text"] for m in in_thread], ensure_ascii=False)
    assert "load test #1 of 1.0.0 on pr-1 (login): PASSED" in texts
    assert any(m.get("files") for m in in_thread), "the chart is in the thread"
    live = [m for m in in_thread if m["text"].startswith("⏳ load test of pr-1")]
    assert len(live) == 1, "one progress message, updated in place"
    updates = [
        c.params["text"] for c in slack.calls("chat.update") if c.params["ts"] == live[0]["ts"]
    ]
    assert any("users," in u and "req/s" in u and "p95" in u and "errors" in u for u in updates)
    assert updates[-1].endswith("done: the verdict follows in this thread")


def summary_with_chart(tmp_path: Path) -> LoadTestSummary:
    chart = tmp_path / "chart.png"
    chart.write_bytes(PNG + b"rest of a chart")
    return LoadTestSummary(
        run_id=4,
        environment="pr-1",
        release="1.1.0",
        plan="login",
        outcome=Outcome.REGRESSED,
        total={"samples": 534},
        criteria=(),
        baseline_release="1.0.0",
        regressions=("LoginDeviceId p95 1,700 ms vs 11 ms (×155)",),
        chart=chart,
        folder=tmp_path,
        verdict="regressed: LoginDeviceId p95 1,700 ms vs 11 ms (×155), 95% CI ×120–×190",
        baseline_runs=(2, 3),
    )


def notify(slack: FakeSlack, tmp_path: Path, runtime: Runtime) -> None:
    """The run's outbox event, as LoadTesting.run writes it, delivered by the Slack notifier."""
    client = web_client(DEFAULT_TOKEN, slack.base_url)
    notifier = SlackNotifier(client, runtime.catalog, runtime.database, runtime.lifecycle.clock)
    summary = summary_with_chart(tmp_path)
    now = runtime.lifecycle.clock.now()
    with runtime.database.write() as conn:
        chat_record.remember_message(conn, "environment:pr-1", "C0DEPLOYS", THREAD, now)
        outbox.add(
            conn,
            outbox.Event.LOADTEST_FINISHED,
            at=now,
            environment="pr-1",
            run=summary.run_id,
            outcome=summary.outcome.value,
            text=summary.text(with_chart_path=False),
            chart=str(summary.chart),
            verdict=summary.verdict,
            release=summary.release,
        )
    assert notifier.deliver_pending() == 1


@pytest.fixture
def runtime_for_slack(home: Path, tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime.open(str(CONFIG), database_url=f"sqlite:///{tmp_path / 'n.db'}")
    yield rt
    rt.close()


def test_the_chart_goes_up_by_files_upload_v2_in_the_thread(
    runtime_for_slack: Runtime, tmp_path: Path
) -> None:
    with FakeSlack() as slack:
        notify(slack, tmp_path, runtime_for_slack)
        methods = [c.method for c in slack.calls()]
    assert methods == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "file_upload",
        "files.completeUploadExternal",
    ], "text first, then the three steps of upload v2 (no files.info: no files:read scope)"
    (posted,) = slack.calls("chat.postMessage")
    assert posted.params["thread_ts"] == THREAD
    assert "regressed: LoginDeviceId p95 1,700 ms vs 11 ms (×155)" in posted.params["text"]
    assert "baseline: 1.0.0 #2, #3" in posted.params["text"]


def test_a_refused_upload_still_delivers_the_verdict(
    runtime_for_slack: Runtime, tmp_path: Path
) -> None:
    with FakeSlack() as slack:
        slack.grant_manifest_scopes(MANIFEST)
        assert slack.scopes is not None
        slack.scopes.discard("files:write")
        notify(slack, tmp_path, runtime_for_slack)
        (refused,) = slack.calls("files.getUploadURLExternal")
        posted = slack.calls("chat.postMessage")
        complete = slack.calls("files.completeUploadExternal")
    assert complete == [] and posted, "the verdict arrived, the chart did not"
    assert "📉" in posted[0].params["text"] and "REGRESSED" in posted[0].params["text"]
    assert refused.status == 200


def test_the_fake_enforces_the_manifest_scopes_and_the_upload_steps() -> None:
    with FakeSlack() as slack:
        slack.grant_manifest_scopes(MANIFEST)
        assert slack.scopes is not None
        assert "files:write" in slack.scopes, "the manifest asks for what the chart upload needs"
        client = web_client(DEFAULT_TOKEN, slack.base_url)
        from slack_sdk.errors import SlackApiError

        with pytest.raises(SlackApiError, match="missing_scope"):
            client.files_info(file="F1")
        with pytest.raises(SlackApiError, match="file_not_found"):
            client.files_completeUploadExternal(files=[{"id": "F404", "title": "never uploaded"}])
