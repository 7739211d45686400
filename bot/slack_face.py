"""The Slack face's shared ground: who acts, posting, opening views, following operations."""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.command import Outcome
from bot.runtime import Runtime
from bot.slack_notifier import SlackNotifier
from bot.speech import for_chat, in_chat
from environments.errors import ShipyardError
from environments.lifecycle import Requested
from environments.policy import Actor, Channel

log = logging.getLogger(__name__)
T = TypeVar("T")


class Handoff(Generic[T]):
    """Passes what an ack listener decided to the lazy listener Bolt starts beside it."""

    def __init__(self, wait: float = 10.0) -> None:
        self.wait = wait
        self._results: dict[str, T | None] = {}
        self._ready: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def _event(self, key: str) -> threading.Event:
        with self._lock:
            return self._ready.setdefault(key, threading.Event())

    def put(self, key: str, result: T | None) -> None:
        with self._lock:
            self._results[key] = result
        self._event(key).set()

    def take(self, key: str) -> T | None:
        self._event(key).wait(self.wait)
        with self._lock:
            self._ready.pop(key, None)
            return self._results.pop(key, None)


class FaceBase:
    """What every Slack flow needs: the runtime, the notifier, the operation pool, helpers."""

    def __init__(self, runtime: Runtime, notifier: SlackNotifier) -> None:
        self.rt = runtime
        self.notifier = notifier
        self._created: Handoff[Requested] = Handoff()
        # `/env TEXT` is parsed once, by the ack listener; the lazy listener takes the result.
        self._parsed: Handoff[argparse.Namespace] = Handoff()
        # Operations take seconds to minutes: they run here, never in the lazy-listener thread.
        self.operations = ThreadPoolExecutor(max_workers=4, thread_name_prefix="shipyard-op")

    def actor(self, user_id: str) -> Actor:
        return Actor(person=self.rt.catalog.person_for_slack(user_id), channel=Channel.CHAT)

    def _report(
        self,
        respond: Callable[..., Any],
        body: dict[str, Any],
        channel: str,
        outcome: Outcome,
        thread_ts: str | None = None,
    ) -> None:
        """Say where the request waits; or have the operation's progress and outcome come back
        here (serve's outbox delivery posts them, whoever runs the operation)."""
        if outcome.operation is None:
            hints = [in_chat(hint) for hint in outcome.hints]
            respond(text="\n".join([outcome.text, *hints]), response_type="ephemeral")
            return
        user = body.get("user_id") or (body.get("user") or {}).get("id", "")
        self.notifier.answer_to(
            outcome.operation,
            user=user,
            channel=channel,
            thread_ts=thread_ts,
            response_url=body.get("response_url"),
        )
        self.operations.submit(self._run_operation, outcome.operation)

    def _run_operation(self, op_id: int) -> None:
        try:
            self.rt.worker.run(op_id)
        except Exception:
            log.exception("operation #%s could not be run; the worker will retry it", op_id)

    def _explain(self, client: WebClient, body: dict[str, Any], exc: ShipyardError) -> None:
        """A refused click: an ephemeral explanation to the clicker, nothing else changes."""
        channel = (body.get("channel") or {}).get("id")
        user = body["user"]["id"]
        if channel:
            try:
                client.chat_postEphemeral(channel=channel, user=user, text=for_chat(exc))
                return
            except SlackApiError:
                pass
        self._post(client, channel=user, text=for_chat(exc))

    def _post(self, client: WebClient, **arguments: Any) -> tuple[str, str] | None:
        try:
            response = client.chat_postMessage(**arguments)
        except SlackApiError as exc:
            log.warning("chat.postMessage failed: %s", exc.response.get("error"))
            return None
        return str(response["channel"]), str(response["ts"])

    def _open(self, client: WebClient, trigger_id: str, view: dict[str, Any]) -> None:
        try:
            client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            log.warning("views.open failed: %s", exc.response.get("error"))
