"""`shipyard serve` as a process: what the CLI changes reaches Slack through serve's outbox."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.dedupe import RequestLog, request_key
from environments.registry import open_database
from tests.conftest import EXAMPLES, ROOT, MovableClock
from tests.fakes.slack import FakeSlack
from tests.replicas import Serve
from tests.slackbot import Bot
from tests.test_outbox import dm_config


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.grant_manifest_scopes(ROOT / "manifest.yml")
        fake.usergroups["S0RELMGR"] = ["U0DAVE", "U0ERIN"]
        yield fake


@pytest.fixture
def served(home: Path, database_url: str, slack: FakeSlack) -> Iterator[Serve]:
    serve = Serve(home, database_url, slack)
    yield serve
    serve.stop()
    serve.destroy_all()


def eventually(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_a_promotion_asked_on_the_cli_reaches_approvers_through_serve(
    served: Serve, slack: FakeSlack
) -> None:
    url = served.start()
    served.cli("release", "add", "1.0.0", "--artifact", str(EXAMPLES / "game/releases/1.0.0"))
    served.cli("--as", "alice", "env", "create", "pr-1", "--type", "test", "--release", "1.0.0")
    served.cli("--as", "carol", "env", "promote", "staging")
    request = eventually(
        lambda: [c for c in slack.calls("chat.postMessage") if c.params["channel"] == "C0RELEASES"]
    )
    assert len(request) == 1
    blocks = json.dumps(request[0].params["blocks"])
    assert "1.0.0" in blocks and "<@U0CAROL>" in blocks
    # The CLI's create was told in the team's channel too: one message, the outcome in its thread.
    (progress,) = eventually(
        lambda: [m for m in slack.messages("C0DEPLOYS") if "thread_ts" not in m]
    )
    replies = eventually(
        lambda: [m for m in slack.messages("C0DEPLOYS") if m.get("thread_ts") == progress["ts"]]
    )
    assert "is ready with 1.0.0" in replies[0]["text"]
    sent = json.dumps([c.params for c in slack.calls()])
    assert "shipyard env" not in sent and "127.0.0.1" not in sent
    health = eventually(lambda: (h := served.healthz(url))["outbox"]["waiting"] == 0 and h)
    assert health["outbox"]["flowing"] is True
    assert health["scheduler"] == {
        "leader": True,
        "running": True,
        "restarts": 0,
        "last_error": None,
    }


def test_a_command_a_dead_replica_acknowledged_is_carried_out_by_serve_once(
    served: Serve, slack: FakeSlack, database_url: str
) -> None:
    served.cli("release", "add", "1.0.0", "--artifact", str(EXAMPLES / "game/releases/1.0.0"))
    bot = Bot("http://127.0.0.1:9", slack, None)  # type: ignore[arg-type]
    body = bot.command_body("alice", "create pr-7 --type test --release 1.0.0")
    parsed = dict(urllib.parse.parse_qsl(body))
    # What a replica leaves behind when it dies right after acknowledging: the recorded
    # delivery (written before the ack, as bot/app.py does), nothing else.
    database = open_database(database_url)
    acked = MovableClock()
    acked.advance(timedelta(seconds=-30))
    assert RequestLog(database, acked).record(request_key(body, parsed), parsed)
    url = served.start()
    bot.url = url

    def ready() -> bool:
        listed = json.loads(served.cli("env", "list", "--json").stdout)
        return any(e["name"] == "pr-7" and e["state"] == "ready" for e in listed)

    eventually(ready, timeout=60)
    # Slack's retry of that delivery, arriving late: acknowledged, and nothing happens again.
    assert bot.post(body, headers={"X-Slack-Retry-Num": "1"}).status == 200
    time.sleep(1)
    with database.read() as conn:
        created = conn.execute(
            sa.text("select count(*) from environments where name = 'pr-7'")
        ).scalar()
        taken = conn.execute(sa.text("select state from slack_deliveries")).scalars().all()
    database.dispose()
    assert created == 1 and taken == ["taken"]
    replies = eventually(
        lambda: [m for m in slack.messages("C0DEPLOYS") if "is ready with 1.0.0" in m["text"]]
    )
    assert len(replies) == 1
    assert served.healthz(url)["slack_deliveries"] == {
        "unclaimed": 0,
        "oldest_unclaimed_seconds": None,
    }


def test_a_promotion_asked_on_the_cli_reaches_each_approver_by_dm_through_serve(
    served: Serve, slack: FakeSlack, tmp_path: Path
) -> None:
    served.env["SHIPYARD_CONFIG"] = str(dm_config(tmp_path))
    served.start()
    served.cli("release", "add", "1.0.0", "--artifact", str(EXAMPLES / "game/releases/1.0.0"))
    served.cli("--as", "alice", "env", "create", "pr-1", "--type", "test", "--release", "1.0.0")
    served.cli("--as", "carol", "env", "promote", "staging")
    eventually(lambda: slack.messages("C0RELEASES"))
    for dm in ("DU0DAVE", "DU0ERIN"):
        (message,) = eventually(lambda dm=dm: slack.messages(dm))
        assert "staging" in message["text"]
    assert slack.messages("DU0CAROL") == [], "not the person who asked"
