"""Three `shipyard serve` replicas on one PostgreSQL behind a round-robin proxy."""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import EXAMPLES, ROOT
from tests.fakes.proxy import RoundRobin
from tests.fakes.slack import FakeSlack
from tests.replicas import Serve
from tests.slackbot import Bot

NAMES = [f"pr-{n}" for n in range(1, 7)]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.grant_manifest_scopes(ROOT / "manifest.yml")
        yield fake


@pytest.fixture
def replicas(home: Path, postgres_url: str, slack: FakeSlack) -> Iterator[Serve]:
    serve = Serve(home, postgres_url, slack)
    yield serve
    serve.stop()
    serve.destroy_all()


def eventually(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def rows(url: str, query: str) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(query)))
    finally:
        engine.dispose()


def test_replicas_share_the_work_act_once_and_fail_over(
    replicas: Serve, slack: FakeSlack, postgres_url: str
) -> None:
    urls = [replicas.start() for _ in range(3)]
    proxy = RoundRobin(replicas.ports).start()
    try:
        replicas.cli("release", "add", "1.0.0", "--artifact", str(EXAMPLES / "game/releases/1.0.0"))
        bot = Bot(proxy.url, slack, None)  # type: ignore[arg-type]
        retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        for name in NAMES:
            body = bot.command_body("alice", f"create {name} --type test --release 1.0.0")
            assert bot.post(body).status == 200
            # Slack's retry of the same delivery: the proxy sends it to the next replica.
            assert bot.post(body, headers=retry).status == 200
        assert len(set(proxy.sent)) == 3, "requests reached every replica"

        ready = "select name from environments where state = 'ready'"
        eventually(lambda: len(rows(postgres_url, ready)) == len(NAMES))
        operations = rows(postgres_url, "select id, attempts, owner from operations")
        assert len(operations) == len(NAMES), "a retry on another replica did not act again"
        assert all(op.attempts == 1 for op in operations), "every operation ran once"
        pids = {op.owner.split(":")[1] for op in operations}
        assert len(pids) >= 2, f"operations ran on several replicas: {pids}"

        # Every event went to Slack once: one message per operation, no outbox id twice.
        eventually(
            lambda: not rows(postgres_url, "select id from outbox where delivered_at is null")
        )
        posted = [
            c.params["metadata"]["event_payload"]["outbox_id"]
            for c in slack.calls("chat.postMessage")
            if c.status == 200 and isinstance(c.params.get("metadata"), dict)
        ]
        duplicates = [k for k, n in collections.Counter(posted).items() if n > 1]
        assert duplicates == []
        tops = [m["text"] for m in slack.messages("C0DEPLOYS") if "thread_ts" not in m]
        assert sorted(tops) == sorted(f"create {name} with 1.0.0" for name in NAMES)

        # Exactly one replica leads the schedules; kill it and another takes over.
        leaders = [i for i, url in enumerate(urls) if replicas.healthz(url)["scheduler"]["leader"]]
        assert len(leaders) == 1
        killed = time.monotonic()
        replicas.kill(leaders[0])
        alive = [url for i, url in enumerate(urls) if i != leaders[0]]
        eventually(
            lambda: [u for u in alive if replicas.healthz(u)["scheduler"]["leader"]], timeout=20
        )
        assert time.monotonic() - killed < 15, "within the leader's retry period"
        assert len([u for u in alive if replicas.healthz(u)["scheduler"]["leader"]]) == 1
        health = replicas.healthz(proxy.url)
        assert health["outbox"]["flowing"] is True, json.dumps(health)
    finally:
        proxy.stop()
