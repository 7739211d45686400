"""`shipyard serve` as a process: what the CLI changes reaches Slack through serve's outbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack
from tests.slackbot import CONFIG, SIGNING_SECRET, free_port

SHIPYARD = [sys.executable, "-m", "bot.cli"]


class Serve:
    """One `shipyard serve` process, and the CLI beside it on the same record."""

    def __init__(self, home: Path, database_url: str, slack: FakeSlack) -> None:
        self.env = {
            **os.environ,
            "SHIPYARD_HOME": str(home),
            "SHIPYARD_CONFIG": str(CONFIG),
            "SHIPYARD_DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": DEFAULT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            "SHIPYARD_SESSION_SECRET": "test-session-secret",
        }
        self.processes: list[subprocess.Popen[str]] = []

    def start(self) -> str:
        port = free_port()
        process = subprocess.Popen(
            [*SHIPYARD, "serve", "--port", str(port)],
            env=self.env,
            cwd=ROOT,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.healthz(url)
                return url
            except OSError:
                if process.poll() is not None:
                    raise AssertionError(f"serve exited: {process.stderr.read()}") from None
                time.sleep(0.2)
        raise AssertionError("serve did not answer /healthz")

    @staticmethod
    def healthz(url: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as answer:
            return dict(json.loads(answer.read()))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*SHIPYARD, *args], env=self.env, cwd=ROOT, text=True, capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


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
    # Stop every process the test's environments started.
    for line in json.loads(
        subprocess.run(
            [*SHIPYARD, "env", "list", "--json"],
            env=serve.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
        or "[]"
    ):
        subprocess.run(
            [*SHIPYARD, "--as", "dave", "env", "destroy", line["name"], "--force"],
            env=serve.env,
            cwd=ROOT,
            capture_output=True,
        )


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
