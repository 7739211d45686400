"""Slack deliveries handled once across replicas sharing a record (SQLite or PostgreSQL)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from bot.dedupe import RequestLog
from environments.clock import SystemClock
from environments.registry import open_database


def test_a_retry_reaching_another_replica_is_recognised(database_url: str) -> None:
    database = open_database(database_url)
    first, second = RequestLog(database, SystemClock()), RequestLog(database, SystemClock())
    try:
        assert first.first_time("body-1", retry=False) is True
        assert first.first_time("body-1", retry=True) is False, "the same replica remembers"
        # At once, with nothing flushed or waited for: the key was in the record before the
        # first delivery went on to have any effect.
        assert second.first_time("body-1", retry=True) is False, "the record remembers"
        assert second.first_time("body-2", retry=False) is True
        assert first.first_time("body-2", retry=False) is False, "a first delivery after its retry"
    finally:
        database.dispose()


def test_a_delivery_and_its_retries_racing_on_replicas_act_once(database_url: str) -> None:
    database = open_database(database_url)
    replicas = [RequestLog(database, SystemClock()) for _ in range(3)]
    start = threading.Barrier(6)

    def deliver(n: int) -> bool:
        start.wait()
        return replicas[n % 3].first_time("body-race", retry=n > 0)

    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            acted = list(pool.map(deliver, range(6)))
        assert acted.count(True) == 1
    finally:
        database.dispose()
