"""Acknowledgements first: lazy work waits while Slack requests are being acknowledged."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


class AckGate:
    """Counts requests being acknowledged and when the last one arrived."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        self.last_arrival = 0.0

    def __enter__(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.last_arrival = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.in_flight -= 1

    def wait_quiet(self, deadline: float, quiet: float) -> None:
        """Return once nothing is in flight and nothing arrived for `quiet` s, or at `deadline`."""
        while True:
            now = time.monotonic()
            if now >= deadline or (self.in_flight == 0 and now - self.last_arrival >= quiet):
                return
            time.sleep(min(quiet, deadline - now))


ACKS = AckGate()  # the process's gate: bot.web counts requests, lazy work waits on it


class OrderingKey(threading.local):
    """The request being acknowledged on this thread: set by the Bolt middleware before the
    listeners run, read when Bolt submits lazy work.

    `key` orders lazy work (its environment, if any); `delivery` identifies the delivery, so
    its lazy work acts only if no other replica's copy of it acted (Slack retries).
    """

    key: str | None = None
    delivery: str | None = None
    submitted: bool = False  # whether this dispatch left follow-up work


ORDERING = OrderingKey()


class AckFirstExecutor(Executor):
    """Bolt's listener_executor (process_before_response=True: lazy listeners only).

    A bounded pool of `workers` threads runs the work; tasks with the same ordering key (one
    environment) run one after another in the order they came, tasks of different keys side
    by side, so a slow Azure or Azure DevOps call delays only its own environment. Each task
    starts when acknowledgements are quiet, or at the latest `max_delay` seconds after it was
    submitted (response_url stays valid 30 minutes).

    Hand-written rather than a ThreadPoolExecutor per key: the standard pool has no ordering
    by key, and one pool per environment would not be bounded.
    """

    def __init__(
        self,
        gate: AckGate,
        *,
        workers: int = 8,
        max_delay: float = 2.0,
        quiet: float = 0.02,
        ordering: OrderingKey = ORDERING,
        once: Callable[[str], bool] | None = None,
    ) -> None:
        self.gate = gate
        self.once = once
        self.max_delay = max_delay
        self.quiet = quiet
        self.ordering = ordering
        self._lock = threading.Lock()
        self._waiting: dict[object, deque[tuple[float, Future[Any], Callable[[], Any]]]] = {}
        self._ready: queue.SimpleQueue[object] = queue.SimpleQueue()
        for n in range(max(1, workers)):
            threading.Thread(target=self._run, name=f"shipyard-lazy-{n}", daemon=True).start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        key: object = self.ordering.key or object()  # no key: nothing to keep in order with
        delivery = self.ordering.delivery
        self.ordering.submitted = True

        def call() -> Any:
            # The delivery's key goes into the record before any effect: of a delivery and its
            # retries (on this replica or another), only the first to get here acts.
            if delivery is not None and self.once is not None and not self.once(delivery):
                return None
            return fn(*args, **kwargs)

        task = (time.monotonic() + self.max_delay, future, call)
        with self._lock:
            line = self._waiting.get(key)
            if line is not None:
                line.append(task)  # a task of this key runs now: this one follows it
                return future
            self._waiting[key] = deque([task])
        self._ready.put(key)
        return future

    def _run(self) -> None:
        while True:
            key = self._ready.get()
            with self._lock:
                deadline, future, call = self._waiting[key][0]
            self.gate.wait_quiet(deadline, self.quiet)
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as exc:
                    future.set_exception(exc)
            with self._lock:
                line = self._waiting[key]
                line.popleft()
                if not line:
                    del self._waiting[key]
                    continue
            self._ready.put(key)
