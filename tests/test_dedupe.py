"""Slack deliveries recorded before the ack: each acts once across replicas sharing a record
(SQLite or PostgreSQL), and one a dead replica acknowledged is replayed by another."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from slack_bolt import BoltRequest, BoltResponse

from bot.dedupe import REPLAY, RequestLog, request_key
from environments.registry import open_database
from tests.conftest import MovableClock

COMMAND = {"token": "verification-token", "command": "/env", "text": "list", "user_id": "U0BOB"}


def test_a_retry_reaching_another_replica_is_recognised(database_url: str) -> None:
    database = open_database(database_url)
    first, second = RequestLog(database), RequestLog(database)
    try:
        assert first.record("body-1", COMMAND) is True
        assert first.record("body-1", COMMAND) is False, "the same replica's record"
        # At once, with nothing flushed or waited for: the key was in the record before the
        # first delivery was acknowledged.
        assert second.record("body-1", COMMAND) is False, "the record remembers"
        assert second.record("body-2", COMMAND) is True
        assert first.record("body-2", COMMAND) is False, "a first delivery after its retry"
        with database.read() as conn:
            stored = conn.exec_driver_sql("select body from slack_deliveries").scalars().all()
        assert stored and all("verification-token" not in body for body in stored)
    finally:
        database.dispose()


def test_a_delivery_and_its_retries_racing_on_replicas_act_once(database_url: str) -> None:
    database = open_database(database_url)
    replicas = [RequestLog(database) for _ in range(3)]
    start = threading.Barrier(6)

    def deliver(n: int) -> bool:
        start.wait()
        replica = replicas[n % 3]
        replica.record("body-race", COMMAND)
        return replica.take("body-race")

    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            acted = list(pool.map(deliver, range(6)))
        assert acted.count(True) == 1
    finally:
        database.dispose()


def test_a_delivery_its_replica_never_took_is_replayed_once_by_another(
    database_url: str,
) -> None:
    database = open_database(database_url)
    clock = MovableClock()
    dead, *alive = [RequestLog(database, clock) for _ in range(3)]
    replayed: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()

    def dispatch(replica: RequestLog) -> Any:
        def bolt(req: BoltRequest) -> BoltResponse:
            # What Bolt's lazy listener does first: take the delivery.
            if replica.take(req.context[REPLAY]):
                with lock:
                    replayed.append((replica.owner, req.body))
            return BoltResponse(status=200)

        return bolt

    try:
        assert dead.record("body-acked", COMMAND)  # acked, then the replica died
        assert dead.record("form", {"type": "view_submission"}, acts_in_ack=True)
        assert alive[0].replay_overdue(dispatch(alive[0])) == 0, "not overdue yet"
        clock.advance(timedelta(seconds=16))
        start = threading.Barrier(2)

        def sweep(replica: RequestLog) -> int:
            start.wait()
            return replica.replay_overdue(dispatch(replica))

        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = list(pool.map(sweep, alive))
        assert sorted(counts) == [0, 1]
        assert [body for _, body in replayed] == [
            {k: v for k, v in COMMAND.items() if k != "token"}
        ]
        assert dead.take("body-acked") is False, "a copy left in the dead replica's pool"
        clock.advance(timedelta(minutes=5))
        assert alive[0].replay_overdue(dispatch(alive[0])) == 0, "taken: never again"
    finally:
        database.dispose()


def test_a_replayer_that_dies_before_taking_leaves_it_to_the_next(database_url: str) -> None:
    database = open_database(database_url)
    clock = MovableClock()
    first, second = RequestLog(database, clock), RequestLog(database, clock)
    taken: list[str] = []
    try:
        first.record("body-x", COMMAND)
        clock.advance(timedelta(seconds=16))
        # The first replayer claims it and dies before its follow-up work takes it.
        assert first.replay_overdue(lambda req: BoltResponse(status=200)) == 1
        assert second.replay_overdue(lambda req: BoltResponse(status=200)) == 0, "claimed"
        clock.advance(timedelta(seconds=16))

        def bolt(req: BoltRequest) -> BoltResponse:
            if second.take(req.context[REPLAY]):
                taken.append(req.context[REPLAY])
            return BoltResponse(status=200)

        assert second.replay_overdue(bolt) == 1
        assert taken == ["body-x"]
    finally:
        database.dispose()


def test_socket_mode_deliveries_have_keys_of_their_own() -> None:
    assert request_key("", {"a": 1}) != request_key("", {"a": 2})
    assert request_key("", {"a": 1, "b": 2}) == request_key("", {"b": 2, "a": 1})
    assert request_key("raw", {"a": 1}) == request_key("raw", {"a": 2})
