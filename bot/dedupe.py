"""Which Slack deliveries were handled already: each key is in the record before any effect."""

from __future__ import annotations

import threading
from collections import OrderedDict

from environments.clock import Clock
from environments.registry import Database
from environments.registry import chat as chat_record


class RequestLog:
    """Slack re-sends a delivery (same body, `X-Slack-Retry-Num` set) when the first was slow,
    and with several replicas the retry may reach another one.

    Every delivery's key goes into the record (INSERT … ON CONFLICT DO NOTHING, one statement)
    right before the delivery's first effect (its lazy work, or the ack of a form that acts), so
    whichever replica a retry reaches, exactly one copy acts. Acknowledging needs no database:
    a small in-memory set answers same-replica repeats.
    """

    def __init__(self, database: Database, clock: Clock, *, recent: int = 10_000) -> None:
        self.db = database
        self.clock = clock
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._limit = recent
        self._lock = threading.Lock()

    def seen(self, key: str) -> bool:
        """Whether this replica already handled `key` (memory only: no database on the ack)."""
        with self._lock:
            if key in self._recent:
                return True
            self._recent[key] = None
            if len(self._recent) > self._limit:
                self._recent.popitem(last=False)
            return False

    def first_time(self, key: str, *, retry: bool = False) -> bool:
        """Remember `key` in the record; False when it was handled before (here or elsewhere).

        Called right before the delivery's first effect. `retry` (Slack's header) is only for
        the log: a first delivery may even arrive after its own retry.
        """
        with self.db.write() as conn:
            return chat_record.first_time(conn, key, self.clock.now())
