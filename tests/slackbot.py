"""Test harness: the real Bolt app served by uvicorn, signed requests, a fake Slack behind it."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from bot.app import build_app, web_client
from bot.directory import SlackDirectory
from bot.runtime import Runtime
from bot.slack_notifier import SlackNotifier
from bot.web import create_web_app
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CONFIG = Path(__file__).parent / "data" / "slack.yaml"
USERS = {
    "alice": "U0ALICE",
    "bob": "U0BOB",
    "carol": "U0CAROL",
    "dave": "U0DAVE",
    "erin": "U0ERIN",
    "mallory": "U0MALLORY",
}


@dataclass
class Answer:
    status: int
    body: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(asgi: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port for the block's duration."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Bot:
    """Sends Slack's requests, signed, to the served app; builds payloads like Slack's."""

    def __init__(self, url: str, slack: FakeSlack, runtime: Runtime) -> None:
        self.url = url
        self.slack = slack
        self.runtime = runtime
        self._counter = 0

    def post(
        self,
        body: str,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        stamp = int(time.time()) if timestamp is None else timestamp
        request = urllib.request.Request(
            f"{self.url}/slack/events",
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": str(stamp),
                "X-Slack-Signature": sign(body, stamp, secret),
                **(headers or {}),
            },
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Answer(response.status, response.read().decode(), time.monotonic() - started)
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read().decode(), time.monotonic() - started)

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def command_body(self, person: str, text: str, channel: str = "C0DEPLOYS") -> str:
        n = self._next()
        return urllib.parse.urlencode(
            {
                "token": "verification_token",
                "team_id": "T0001",
                "team_domain": "test",
                "channel_id": channel,
                "channel_name": "deploys",
                "user_id": USERS[person],
                "user_name": person,
                "command": "/env",
                "text": text,
                "api_app_id": "A0001",
                "response_url": self.slack.response_url(f"cmd-{n}"),
                "trigger_id": f"{n}.{n}.trigger",
            }
        )

    def command(self, person: str, text: str, **kwargs: Any) -> Answer:
        return self.post(self.command_body(person, text), **kwargs)

    def click(
        self, person: str, action_id: str, value: str, *, message: tuple[str, str] | None = None
    ) -> Answer:
        return self.post(self.click_body(person, action_id, value, message=message))

    def click_body(
        self, person: str, action_id: str, value: str, *, message: tuple[str, str] | None = None
    ) -> str:
        n = self._next()
        channel, ts = message or ("C0DEPLOYS", "1.1")
        payload = {
            "type": "block_actions",
            "user": {"id": USERS[person], "username": person, "name": person, "team_id": "T0001"},
            "api_app_id": "A0001",
            "token": "verification_token",
            "container": {"type": "message", "message_ts": ts, "channel_id": channel},
            "trigger_id": f"{n}.{n}.trigger",
            "team": {"id": "T0001", "domain": "test"},
            "channel": {"id": channel, "name": "channel"},
            "message": {"ts": ts, "text": ""},
            "response_url": self.slack.response_url(f"click-{n}"),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "b",
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return urllib.parse.urlencode({"payload": json.dumps(payload)})

    def submit(self, person: str, view: dict[str, Any], values: dict[str, Any]) -> Answer:
        payload = {
            "type": "view_submission",
            "team": {"id": "T0001", "domain": "test"},
            "user": {"id": USERS[person], "username": person, "name": person, "team_id": "T0001"},
            "api_app_id": "A0001",
            "token": "verification_token",
            "trigger_id": "9.9.trigger",
            "view": {**view, "id": view.get("id", f"V{self._next()}"), "state": {"values": values}},
        }
        return self.post(urllib.parse.urlencode({"payload": json.dumps(payload)}))

    def event(
        self, event: dict[str, Any], *, event_id: str = "Ev1", retry: int | None = None
    ) -> Answer:
        body = json.dumps(
            {
                "token": "verification_token",
                "team_id": "T0001",
                "api_app_id": "A0001",
                "event": event,
                "type": "event_callback",
                "event_id": event_id,
                "event_time": int(time.time()),
            }
        )
        headers = (
            {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
            if retry
            else {}
        )
        return self.post(body, content_type="application/json", headers=headers)


@contextmanager
def running_bot(
    runtime_factory: Any, slack: FakeSlack, bridge_factory: Any = None
) -> Iterator[Bot]:
    client = web_client(DEFAULT_TOKEN, slack.base_url)
    runtime: Runtime = runtime_factory(SlackDirectory(client))
    notifier = SlackNotifier(client, runtime.catalog, runtime.database, runtime.lifecycle.clock)
    bridge = bridge_factory(runtime, client) if bridge_factory else None
    app, _ = build_app(
        runtime,
        client,
        signing_secret=SIGNING_SECRET,
        notifier=notifier,
        extra=bridge.register if bridge else None,
    )
    # As in `shipyard serve`: the outbox is delivered to Slack by a thread of its own.
    stop = threading.Event()
    delivery = threading.Thread(target=notifier.run, args=(stop, 0.05), daemon=True)
    delivery.start()
    try:
        with serving(create_web_app(app, [bridge.route()] if bridge else [])) as url:
            yield Bot(url, slack, runtime)
    finally:
        stop.set()
        delivery.join(timeout=10)
