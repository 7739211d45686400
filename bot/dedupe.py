"""Which Slack deliveries were handled already: checked on retries, remembered off the ack path."""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict

from environments.clock import Clock
from environments.registry import Database
from environments.registry import chat as chat_record

log = logging.getLogger(__name__)


class RequestLog:
    """Slack re-sends a delivery (same body, `X-Slack-Retry-Num` set) when the first was slow.

    Every request's key is remembered at once in memory and written to the record by a
    background thread (so several replicas share it); only a retry pays for a look-up. Writing
    on every acknowledgement instead would put a database write in front of each ack.
    """

    def __init__(self, database: Database, clock: Clock, *, recent: int = 10_000) -> None:
        self.db = database
        self.clock = clock
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._limit = recent
        self._lock = threading.Lock()
        self._pending: queue.Queue[str | None] = queue.Queue()
        self._writer = threading.Thread(
            target=self._write, name="shipyard-request-log", daemon=True
        )
        self._writer.start()

    def first_time(self, key: str, *, retry: bool) -> bool:
        """Remember `key`; False when it was seen before (only retries are looked up)."""
        with self._lock:
            if key in self._recent:
                return False
            self._recent[key] = None
            if len(self._recent) > self._limit:
                self._recent.popitem(last=False)
        if retry:
            with self.db.write() as conn:
                return chat_record.first_time(conn, key, self.clock.now())
        self._pending.put(key)
        return True

    def flush(self) -> None:
        """Wait until every key handed over so far is in the record."""
        self._pending.join()

    def close(self) -> None:
        self._pending.put(None)
        self._writer.join(timeout=5)

    def _write(self) -> None:
        while True:
            key = self._pending.get()
            if key is None:
                self._pending.task_done()
                return
            batch = [key]
            while not self._pending.empty():
                more = self._pending.get_nowait()
                if more is None:
                    self._pending.put(None)
                    self._pending.task_done()
                    break
                batch.append(more)
            try:
                with self.db.write() as conn:
                    for item in batch:
                        chat_record.first_time(conn, item, self.clock.now())
            except Exception:
                log.exception("could not record %d request keys", len(batch))
            finally:
                for _ in batch:
                    self._pending.task_done()
