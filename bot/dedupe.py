"""Slack deliveries in the record before they are acknowledged: each acts once, on any replica.

Slack re-sends a delivery (same body, `X-Slack-Retry-Num` set) when the first was slow, and with
several replicas the retry may reach another one; a replica may also die after acknowledging a
delivery and before its follow-up work ran. So every delivery is written to the record (key +
body, one INSERT … ON CONFLICT DO NOTHING) before Bolt acknowledges it:

- a copy whose key is there already is a retry: acknowledged, nothing else;
- the follow-up work takes the delivery (one conditional UPDATE) before its first effect, so of
  a delivery and its retries exactly one acts;
- a delivery nobody took within `grace` (its replica died after the ack) is replayed by any
  replica through the same Bolt app, so an acknowledged request is never lost.

A delivery is taken at most once: a replica that dies after taking one and before its effect
is written loses that one request (the window is one use-case call, milliseconds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta
from typing import Any, Generic, TypeVar

from slack_bolt import BoltRequest, BoltResponse

from environments.clock import Clock, SystemClock
from environments.registry import Database
from environments.registry import chat as chat_record

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

GRACE = timedelta(seconds=15)  # a live replica takes its deliveries within ~2 s of the ack
REPLAY = "shipyard_replay"  # BoltRequest context key: this dispatch replays a recorded delivery
KEEP = timedelta(days=1)  # Slack's retries come within minutes


def request_key(raw_body: str, body: dict[str, Any]) -> str:
    """A retry carries the very same body as the first delivery, so its digest identifies it.

    Socket Mode hands Bolt the payload as a dict (no raw body): its canonical JSON then.
    """
    text = raw_body or json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def stored_body(body: dict[str, Any]) -> str:
    """What the record keeps of a delivery: its parsed body without the verification token."""
    return json.dumps({k: v for k, v in body.items() if k != "token"}, separators=(",", ":"))


class GroupCommit(Generic[T, R]):
    """Items handed in by many threads, written by one thread in batches; each caller waits
    for the batch that holds its item."""

    def __init__(self, write: Callable[[list[T]], list[R]], limit: int = 200) -> None:
        self._write = write
        self._limit = limit
        self._queue: queue.SimpleQueue[tuple[T, Future[R]]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="shipyard-group-commit", daemon=True).start()

    def wait(self, item: T, timeout: float = 10.0) -> R:
        future: Future[R] = Future()
        self._queue.put((item, future))
        return future.result(timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._limit:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                results = self._write([item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)


class RequestLog:
    """This process's side of the recorded deliveries (one owner name per process)."""

    def __init__(
        self, database: Database, clock: Clock | None = None, *, grace: timedelta = GRACE
    ) -> None:
        self.db = database
        # The wall clock, whatever clock the core uses (tests move theirs by hours).
        self.clock = clock or SystemClock()
        self.grace = grace
        self._pruned = 0.0
        self._arrivals: GroupCommit[chat_record.Arrival, bool] = GroupCommit(self._record_all)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"

    def record(self, key: str, body: dict[str, Any], *, acts_in_ack: bool = False) -> bool:
        """Write the delivery before its ack; False when it was recorded before (a retry).

        `acts_in_ack`: a form's acknowledgement is its effect, so it is taken at once.
        Requests arriving together share one transaction (group commit): under load each ack
        waits for one short write instead of queueing behind every other ack's.
        """
        arrival = chat_record.Arrival(key, stored_body(body), self.owner if acts_in_ack else None)
        return self._arrivals.wait(arrival)

    def _record_all(self, arrivals: list[chat_record.Arrival]) -> list[bool]:
        with self.db.write() as conn:
            new = chat_record.record_deliveries(conn, arrivals, self.clock.now())
        firsts = []
        for arrival in arrivals:
            firsts.append(arrival.key in new)
            new.discard(arrival.key)  # a second copy in the same batch is a retry
        return firsts

    def take(self, key: str) -> bool:
        """Take the delivery right before its first effect; False when another copy took it."""
        with self.db.write() as conn:
            return chat_record.take_delivery(conn, key, owner=self.owner, at=self.clock.now())

    def replay_overdue(self, dispatch: Callable[[BoltRequest], BoltResponse]) -> int:
        """Replay every delivery acknowledged `grace` ago that nobody took; how many."""
        now = self.clock.now()
        with self.db.read() as conn:
            overdue = chat_record.overdue_deliveries(conn, now, self.grace)
        replayed = 0
        for delivery in overdue:
            with self.db.write() as conn:
                if not chat_record.replay_delivery(
                    conn, delivery.key, owner=self.owner, now=now, grace=self.grace
                ):
                    continue  # another replica replays it
            log.warning("replaying Slack delivery %s: its replica did not act", delivery.key[:12])
            # Socket Mode's shape (a parsed body, no signature to check: it was checked when
            # the delivery arrived); the key says which recorded delivery this is.
            dispatch(
                BoltRequest(
                    body=json.loads(delivery.body),
                    mode="socket_mode",
                    context={REPLAY: delivery.key},
                )
            )
            replayed += 1
        if time.monotonic() - self._pruned > 600:
            self._pruned = time.monotonic()
            with self.db.write() as conn:
                chat_record.forget_deliveries(conn, now - KEEP)
        return replayed

    def run(
        self,
        dispatch: Callable[[BoltRequest], BoltResponse],
        stop: threading.Event,
        interval: float = 2.0,
    ) -> None:
        """Replay overdue deliveries until `stop` is set (serve's redelivery thread)."""
        while not stop.is_set():
            try:
                self.replay_overdue(dispatch)
            except Exception:
                log.exception("redelivery pass failed; trying again")
            stop.wait(interval)
