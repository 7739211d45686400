"""The outbox's delivery loop to Slack: claim an event, send it, mark it; found, not resent.

Every event the core wrote (whoever caused it) is sent once: it is claimed under a lease, sent,
and marked. A message posted for an event carries the event's id in its metadata, so when a
deliverer died between posting and marking, the next one finds the message (channel history or
thread replies) instead of posting it again. Slack's 429s are retried by the WebClient's
RetryHandlers after `Retry-After`; whatever still fails is tried again later, in order per
environment. What each event says, and where, is in the modules that subclass `Deliverer`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from environments.catalog import Catalog
from environments.clock import Clock, SystemClock
from environments.registry import Database, outbox
from environments.registry.outbox import Event, Pending

log = logging.getLogger(__name__)
METADATA_TYPE = "shipyard_outbox"


class Later(Exception):
    """Slack is unavailable for now (rate limit after retries, 5xx, no connection)."""


class NotYet(Later):
    """The Slack face may still be recording where its requester waits: look again shortly."""


# A surface records where to answer right after queueing its operation; an operation that
# started meanwhile waits this long for that before its first message goes to the team channel.
ROUTE_GRACE = 1.0  # seconds


@dataclass(frozen=True)
class FollowUp:
    """An event a delivery leads to (e.g. one direct message per approver), written to the
    outbox in the transaction that marks the delivery, so it exists exactly once."""

    event: Event
    environment: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Sent:
    """Where an event went, and the events it leads to."""

    to: str
    then: tuple[FollowUp, ...] = ()


class Deliverer:
    """Claims, sends and marks outbox events; every Slack error is logged or retried, never
    raised."""

    def __init__(
        self,
        client: WebClient,
        catalog: Catalog,
        database: Database,
        clock: Clock,
        *,
        lease: timedelta = timedelta(seconds=60),
        backoff: float = 2.0,
        route_grace: float = ROUTE_GRACE,
    ) -> None:
        self.client = client
        self.catalog = catalog
        self.db = database
        self.clock = clock
        self.lease = lease
        self.backoff = backoff
        self.route_grace = route_grace
        # Leases, retries and delivery times run on the wall clock, whatever clock the core
        # uses (tests move theirs by hours to reach an expiry).
        self.timing = SystemClock()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._first_seen: dict[int, float] = {}
        self.last_pass: datetime | None = None
        self._lock = threading.Lock()

    # --- delivering ---------------------------------------------------------------------------

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Deliver until `stop` is set (serve's delivery thread)."""
        while not stop.is_set():
            try:
                self.deliver_pending()
            except Exception:
                log.exception("outbox delivery pass failed; trying again")
            stop.wait(interval)

    def deliver_pending(self, limit: int = 200) -> int:
        """Deliver every event that may go now (in order per environment); how many went."""
        with self._lock:
            sent = 0
            while True:
                with self.db.read() as conn:
                    rows = outbox.due(conn, self.timing.now(), limit)
                went = sum(self._one(row) for row in rows)
                sent += went
                self.last_pass = self.timing.now()
                if not went:
                    return sent

    def _one(self, row: Pending) -> bool:
        now = self.timing.now()
        with self.db.write() as conn:
            if not outbox.claim(conn, row.id, owner=self.owner, now=now, lease=self.lease):
                return False
        attempt = Pending(**{**row.__dict__, "attempts": row.attempts + 1})
        try:
            sent = self.deliver(attempt)
            note = ""
        except Later as exc:
            log.info("outbox event #%s (%s) waits: %s", row.id, row.event, exc)
            wait = (
                0.2
                if isinstance(exc, NotYet)
                else min(300.0, self.backoff * 2 ** min(attempt.attempts, 8))
            )
            with self.db.write() as conn:
                outbox.retry_later(
                    conn,
                    row.id,
                    owner=self.owner,
                    at=self.timing.now() + timedelta(seconds=wait),
                    error=str(exc),
                )
            return False
        except SlackApiError as exc:
            # Slack refused it for good (bad blocks, unknown user): say so and move on, rather
            # than hold back every later event of the environment.
            sent, note = "refused", str(exc.response.get("error"))
            log.warning("Slack refused outbox event #%s (%s): %s", row.id, row.event, note)
        done = sent if isinstance(sent, Sent) else Sent(sent)
        with self.db.write() as conn:
            marked = outbox.delivered(
                conn, row.id, owner=self.owner, now=self.timing.now(), to=done.to, note=note
            )
            for follow in done.then if marked else ():
                outbox.add(
                    conn,
                    follow.event,
                    at=self.clock.now(),
                    environment=follow.environment,
                    **follow.payload,
                )
        self._first_seen.pop(row.id, None)
        return True

    def deliver(self, row: Pending) -> str | Sent:
        """Send one event; returns where it went. Raises Later to try again later."""
        raise NotImplementedError

    # --- Slack calls --------------------------------------------------------------------------

    def _dm_channel(self, user: str) -> str:
        opened = self._call("conversations_open", users=user)
        channel = opened.get("channel")
        return str(channel["id"]) if isinstance(channel, dict) else user

    def _post_once(
        self, row: Pending, channel: str, *, thread_ts: str | None = None, **message: Any
    ) -> tuple[str, str]:
        """Post the event's one message, unless an earlier attempt already did (found by the
        event id in the message's metadata)."""
        if row.attempts > 1:
            found = self._find_posted(row, channel, thread_ts)
            if found is not None:
                log.info("outbox event #%s was posted before its mark: not posting again", row.id)
                return found
        answer = self._call(
            "chat_postMessage",
            channel=channel,
            thread_ts=thread_ts,
            metadata={"event_type": METADATA_TYPE, "event_payload": {"outbox_id": row.id}},
            **message,
        )
        return str(answer["channel"]), str(answer["ts"])

    def _find_posted(
        self, row: Pending, channel: str, thread_ts: str | None
    ) -> tuple[str, str] | None:
        if thread_ts:
            answer = self._call(
                "conversations_replies",
                channel=channel,
                ts=thread_ts,
                include_all_metadata=True,
                limit=200,
            )
        else:
            answer = self._call(
                "conversations_history",
                channel=channel,
                oldest=f"{self._first_try(row) - 60:.6f}",
                include_all_metadata=True,
                limit=200,
            )
        for message in answer.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == METADATA_TYPE and payload.get("outbox_id") == row.id:
                return channel, str(message["ts"])
        return None

    def _first_try(self, row: Pending) -> float:
        """No earlier than this (epoch seconds) can an attempt have posted the event."""
        return min(row.created_at.timestamp(), self.timing.now().timestamp() - 3600)

    def _call(self, method: str, **arguments: Any) -> dict[str, Any]:
        """One Web API call; SlackApiError for refusals, Later for what may pass with time."""
        try:
            response = getattr(self.client, method)(**arguments)
        except SlackApiError as exc:
            status = exc.response.status_code
            if status == 429 or status >= 500 or exc.response.get("error") == "ratelimited":
                raise Later(f"Slack {method}: HTTP {status}") from None
            raise
        except OSError as exc:
            raise Later(f"Slack {method}: {exc}") from None
        return dict(response.data) if isinstance(response.data, dict) else {}
