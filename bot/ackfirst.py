"""Acknowledgements first: lazy work waits while Slack requests are being acknowledged."""

from __future__ import annotations

import queue
import threading
import time
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


class AckFirstExecutor(Executor):
    """Bolt's listener_executor (process_before_response=True: lazy listeners only).

    One thread runs the work in order; each task starts when acknowledgements are quiet, or at
    the latest `max_delay` seconds after it was submitted (response_url stays valid 30 minutes).
    """

    def __init__(self, gate: AckGate, *, max_delay: float = 2.0, quiet: float = 0.02) -> None:
        self.gate = gate
        self.max_delay = max_delay
        self.quiet = quiet
        self._tasks: queue.SimpleQueue[tuple[float, Future[Any], Callable[[], Any]]] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._run, name="shipyard-lazy", daemon=True).start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._tasks.put((time.monotonic() + self.max_delay, future, lambda: fn(*args, **kwargs)))
        return future

    def _run(self) -> None:
        while True:
            deadline, future, call = self._tasks.get()
            self.gate.wait_quiet(deadline, self.quiet)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:
                future.set_exception(exc)
