"""Slack follow-up work: a bounded pool, in order per environment, never behind someone else's."""

from __future__ import annotations

import threading
import time

from bot import views
from bot.ackfirst import AckFirstExecutor, AckGate, OrderingKey
from bot.app import ordering_key


def submit(pool: AckFirstExecutor, ordering: OrderingKey, key: str | None, fn: object) -> object:
    ordering.key = key  # what the middleware sets on the request's thread
    try:
        return pool.submit(fn)  # type: ignore[arg-type]
    finally:
        ordering.key = None


def test_a_slow_environment_delays_only_itself_and_keeps_its_order() -> None:
    ordering = OrderingKey()
    pool = AckFirstExecutor(AckGate(), workers=4, ordering=ordering, quiet=0.0)
    done: list[tuple[str, float]] = []
    lock = threading.Lock()
    started = time.monotonic()

    def work(name: str, seconds: float) -> None:
        time.sleep(seconds)
        with lock:
            done.append((name, time.monotonic() - started))

    futures = [submit(pool, ordering, "env:slow", lambda: work("slow-1", 1.0))]
    futures.append(submit(pool, ordering, "env:slow", lambda: work("slow-2", 0.0)))
    for n in range(6):
        futures.append(
            submit(
                pool, ordering, f"env:{n}" if n % 2 else None, lambda n=n: work(f"fast-{n}", 0.05)
            )
        )
    for future in futures:
        future.result(timeout=10)  # type: ignore[attr-defined]
    finished = dict(done)
    assert max(finished[f"fast-{n}"] for n in range(6)) < 0.8, "nobody waits for the slow one"
    assert [name for name, _ in done if name.startswith("slow")] == ["slow-1", "slow-2"]
    assert finished["slow-2"] >= 1.0, "the same environment's next task waits its turn"


def test_the_ordering_key_is_the_environment_a_request_is_about() -> None:
    command = {"command": "/env", "text": "deploy pr-1 --release 1.1.0"}
    assert ordering_key(command) == "env:pr-1"
    assert ordering_key({"command": "/env", "text": "params set pr-2 A=1"}) == "env:pr-2"
    assert ordering_key({"command": "/env", "text": "list"}) is None
    destroy = {"actions": [{"action_id": views.DESTROY, "value": "pr-1"}]}
    assert ordering_key(destroy) == "env:pr-1", "a button on pr-1 queues behind pr-1's commands"
