"""Operations run exactly once and environments change atomically, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import sqlalchemy as sa

from bot.runtime import Runtime
from bot.serve import background_worker
from environments.model import OperationState
from environments.registry import operations as ops
from environments.registry import record as rec
from environments.registry.schema import audit_events
from tests.conftest import MovableClock, RecordingNotifier, person

ALICE = person("alice")
LEASE = timedelta(seconds=30)


def test_the_slack_pool_and_the_background_worker_run_each_operation_once(
    runtime: Runtime, notifier: RecordingNotifier
) -> None:
    created = [
        runtime.lifecycle.create(ALICE, f"pr-{n}", env_type="test", release="1.0.0")
        for n in range(3)
    ]
    deployed = [runtime.lifecycle.deploy(ALICE, f"pr-{n}", release="1.1.0") for n in range(3)]
    op_ids = [r.operation_id for r in (*created, *deployed)]
    assert all(op_id is not None for op_id in op_ids)
    stop = threading.Event()
    # serve's background thread and the Slack face's operation pool share one Worker, as in
    # `shipyard serve`; the pool's threads are started on every operation at once.
    sweeper = threading.Thread(target=background_worker, args=(runtime, stop, 0.01))
    sweeper.start()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            finished = list(pool.map(lambda op: runtime.worker.run(op), op_ids * 2))
    finally:
        stop.set()
        sweeper.join(timeout=30)
    assert all(op is not None and op.state is OperationState.SUCCEEDED for op in finished)
    with runtime.database.read() as conn:
        for op_id in op_ids:
            assert op_id is not None
            assert ops.get_operation(conn, op_id).attempts == 1, f"operation #{op_id} ran twice"
        succeeded = conn.execute(
            sa.select(sa.func.count()).where(audit_events.c.action == "deployment.succeed")
        ).scalar_one()
    assert succeeded == len(op_ids)
    assert notifier.kinds().count("ready") == len(op_ids)
    assert not [kind for kind in notifier.kinds() if kind == "failed"]


def test_a_claim_is_won_by_exactly_one_of_many_racing_workers(
    runtime: Runtime, clock: MovableClock
) -> None:
    requested = runtime.lifecycle.create(ALICE, "pr-race", env_type="test", release="1.0.0")
    assert requested.operation_id is not None
    op_id = requested.operation_id
    start = threading.Barrier(8)

    def race(n: int) -> bool:
        start.wait()
        with runtime.database.write() as conn:
            return ops.claim(conn, op_id, owner=f"host:1:{n}", now=clock.now(), lease=LEASE)

    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(race, range(8)))
    assert won.count(True) == 1
    with runtime.database.read() as conn:
        assert ops.get_operation(conn, op_id).attempts == 1


def test_a_running_operation_is_taken_over_only_after_its_lease_runs_out(
    runtime: Runtime, clock: MovableClock
) -> None:
    requested = runtime.lifecycle.create(ALICE, "pr-lease", env_type="test", release="1.0.0")
    assert requested.operation_id is not None
    op_id = requested.operation_id
    now = clock.now
    with runtime.database.write() as conn:
        assert ops.claim(conn, op_id, owner="a:1:x", now=now(), lease=LEASE)
    with runtime.database.write() as conn:
        # Neither another owner nor the same owner name claims a running operation again.
        assert not ops.claim(conn, op_id, owner="b:2:y", now=now(), lease=LEASE)
        assert not ops.claim(conn, op_id, owner="a:1:x", now=now(), lease=LEASE)
    clock.advance(timedelta(seconds=20))
    with runtime.database.write() as conn:
        assert ops.renew(conn, op_id, owner="a:1:x", now=now(), lease=LEASE), "heartbeat"
    clock.advance(timedelta(seconds=20))
    with runtime.database.write() as conn:
        assert not ops.claim(conn, op_id, owner="b:2:y", now=now(), lease=LEASE), "renewed"
    clock.advance(timedelta(seconds=31))
    with runtime.database.write() as conn:
        assert ops.claim(conn, op_id, owner="b:2:y", now=now(), lease=LEASE), "lease ran out"
    with runtime.database.write() as conn:
        assert not ops.renew(conn, op_id, owner="a:1:x", now=now(), lease=LEASE)
        assert not ops.finish(conn, op_id, OperationState.FAILED, now(), "late", owner="a:1:x")
        assert ops.finish(conn, op_id, OperationState.SUCCEEDED, now(), owner="b:2:y")
    with runtime.database.read() as conn:
        op = ops.get_operation(conn, op_id)
    assert (op.state, op.attempts) == (OperationState.SUCCEEDED, 2)


def test_concurrent_extends_are_all_counted(runtime: Runtime, clock: MovableClock) -> None:
    env = runtime.lifecycle.create(ALICE, "pr-ext", env_type="test", release="1.0.0")
    with runtime.database.read() as conn:
        before = rec.get_environment(conn, env.environment).expires_at
    assert before is not None
    start = threading.Barrier(4)

    def extend(_: int) -> None:
        start.wait()
        runtime.lifecycle.extend(ALICE, "pr-ext", by=timedelta(hours=1))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(extend, range(4)))
    with runtime.database.read() as conn:
        after = rec.get_environment(conn, "pr-ext").expires_at
        extends = conn.execute(
            sa.select(sa.func.count()).where(audit_events.c.action == "environment.extend")
        ).scalar_one()
    assert extends == 4
    assert after == before + timedelta(hours=4)
