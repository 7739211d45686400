"""Slack deliveries handled once across replicas sharing a record (SQLite or PostgreSQL)."""

from __future__ import annotations

from bot.dedupe import RequestLog
from environments.clock import SystemClock
from environments.registry import open_database


def test_a_retry_reaching_another_replica_is_recognised(database_url: str) -> None:
    database = open_database(database_url)
    first, second = RequestLog(database, SystemClock()), RequestLog(database, SystemClock())
    try:
        assert first.first_time("body-1", retry=False) is True
        assert first.first_time("body-1", retry=True) is False, "the same replica remembers"
        first.flush()
        assert second.first_time("body-1", retry=True) is False, "the record remembers"
        assert second.first_time("body-2", retry=True) is True, "a retry of an unknown delivery"
        assert second.first_time("body-2", retry=True) is False
    finally:
        first.close()
        second.close()
        database.dispose()
