"""Schedules on APScheduler's job store in the real record: firing, pausing, leading, misfires."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from bot import scheduler
from bot.runtime import Runtime
from bot.scheduler import SchedulerState, supervise
from environments.config.loadtests import Schedule
from environments.errors import ConfigError, NotFound
from tests.conftest import CONFIG

FIRED: list[tuple[str, int, float]] = []


@scheduler.job("test-tick")
def tick(runtime: Runtime, name: str, schedule: Schedule, triggered_by: str) -> str:
    FIRED.append((name, id(runtime), time.monotonic()))
    return "ticked"


def config_with(tmp_path: Path, schedules: str) -> str:
    path = tmp_path / "shipyard.yaml"
    base = CONFIG.read_text().split("\nschedules:\n")[0]  # the sample's own schedules go
    # The plan's file stays where the sample keeps it (config check refuses a missing one).
    base = base.replace("file: loadtests/", f"file: {CONFIG.parent}/loadtests/")
    path.write_text(base + "\nschedules:\n" + schedules)
    return str(path)


EVERY_SECOND = "  tick:\n    cron: '* * * * * *'\n    job: test-tick\n"
YEARLY = "  slow:\n    cron: '0 0 1 1 *'\n    job: test-tick\n"


@pytest.fixture
def runtime_for(home: Path, tmp_path: Path, database_url: str) -> Iterator[object]:
    made: list[Runtime] = []

    def make(schedules: str) -> Runtime:
        rt = Runtime.open(config_with(tmp_path, schedules), database_url=database_url)
        made.append(rt)
        return rt

    FIRED.clear()
    yield make
    for rt in made:
        rt.close()


def lead(rt: Runtime) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.lead_and_run, args=(rt, stop), kwargs={"retry": 0.2})
    thread.start()
    return stop, thread


def test_a_schedule_fires_on_the_real_record(runtime_for) -> None:  # type: ignore[no-untyped-def]
    rt = runtime_for(EVERY_SECOND)
    stop, thread = lead(rt)
    time.sleep(3.2)
    stop.set()
    thread.join()
    assert 2 <= len(FIRED) <= 4
    from environments.registry import operations as ops

    with rt.database.read() as conn:
        actions = [e.action for e in ops.audit_log(conn, limit=20)]
    assert "schedule.finish" in actions and "schedule.start" in actions


def test_pause_and_resume_persist_in_the_job_store(runtime_for) -> None:  # type: ignore[no-untyped-def]
    rt = runtime_for(YEARLY)
    schedules = scheduler.Schedules(rt).open(run=False)
    schedules.pause("slow")
    schedules.close()
    reopened = scheduler.Schedules(rt).open(run=False)
    (state,) = reopened.states()
    assert state.paused and state.next_run is None
    reopened.resume("slow")
    (state,) = reopened.states()
    assert not state.paused and state.next_run is not None
    with pytest.raises(NotFound, match="no schedule 'nightly'"):
        reopened.pause("nightly")
    reopened.close()


def test_misfires_after_downtime_run_once(runtime_for) -> None:  # type: ignore[no-untyped-def]
    rt = runtime_for(YEARLY)
    schedules = scheduler.Schedules(rt).open(run=False)
    # As if the process had been down for ten minutes: ten runs were missed.
    schedules.scheduler.modify_job("slow", next_run_time=datetime.now(UTC) - timedelta(minutes=10))
    schedules.close()
    stop, thread = lead(rt)
    time.sleep(2.0)
    stop.set()
    thread.join()
    assert len(FIRED) == 1


def test_only_one_process_leads(runtime_for) -> None:  # type: ignore[no-untyped-def]
    first, second = runtime_for(EVERY_SECOND), runtime_for(EVERY_SECOND)
    a = scheduler.Leadership(first)
    b = scheduler.Leadership(second)
    assert a.try_acquire() is True
    assert b.try_acquire() is False
    a.release()
    assert b.try_acquire() is True
    b.release()


def test_two_schedulers_on_one_record_fire_once_per_tick(runtime_for) -> None:  # type: ignore[no-untyped-def]
    first, second = runtime_for(EVERY_SECOND), runtime_for(EVERY_SECOND)
    stops = [lead(first), lead(second)]
    time.sleep(3.5)
    for stop, thread in stops:
        stop.set()
        thread.join()
    assert 2 <= len(FIRED) <= 5
    assert len({runtime for _, runtime, _ in FIRED}) == 1, "only the leader fires"
    moments = sorted(at for _, _, at in FIRED)
    assert all(b - a > 0.5 for a, b in itertools.pairwise(moments)), "no double firing"


@pytest.mark.parametrize("cron", ["61 * * * *", "* * *", "0 2 * * * * *"])
def test_a_bad_cron_is_refused_with_an_example(cron: str) -> None:
    with pytest.raises(ConfigError) as refused:
        scheduler.trigger(Schedule(cron=cron))
    assert cron in refused.value.reason and "'0 2 * * *'" in refused.value.hint


def test_a_scheduler_that_fails_is_started_again_with_backoff() -> None:
    state = SchedulerState()
    stop = threading.Event()
    runs: list[float] = []

    def flaky() -> None:
        runs.append(time.monotonic())
        if len(runs) < 3:
            raise sa.exc.OperationalError("create table", {}, Exception("database is locked"))
        stop.wait()

    thread = threading.Thread(
        target=supervise, args=(flaky, stop), kwargs={"state": state, "first_backoff": 0.1}
    )
    thread.start()
    deadline = time.monotonic() + 5
    while len(runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert state.alive and state.restarts == 2
    assert state.last_error is not None and "database is locked" in state.last_error
    assert runs[2] - runs[1] >= 2 * (runs[1] - runs[0]) * 0.9, "the backoff doubles"
    stop.set()
    thread.join(timeout=5)
    assert not state.alive


def test_the_scheduler_starts_beside_busy_writers_without_touching_the_schema(
    runtime_for,  # type: ignore[no-untyped-def]
) -> None:
    """Serve's original crash: the scheduler thread ran CREATE TABLE for its job store at start
    while the worker wrote, and SQLite answered "database is locked". The table now comes from
    the migrations; starting (again and again, beside a busy writer) runs no DDL at all."""
    rt = runtime_for(YEARLY)
    statements: list[str] = []

    def executed(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    stop = threading.Event()
    failures: list[BaseException] = []

    def busy_worker() -> None:
        while not stop.is_set():
            try:
                with rt.database.write() as conn:
                    conn.execute(sa.text("update operations set step = step where id = -1"))
                    time.sleep(0.005)
            except BaseException as exc:
                failures.append(exc)
                return

    writer = threading.Thread(target=busy_worker)
    sa.event.listen(rt.database.engine, "before_cursor_execute", executed)
    writer.start()
    try:
        if rt.database.is_sqlite:
            # The crash itself, with APScheduler's own store: CREATE TABLE at start, beside the
            # busy writer (serve's worker), answered "database is locked".
            crashed = []
            for n in range(5):
                store = SQLAlchemyJobStore(engine=rt.database.engine, tablename=f"plain_{n}")
                try:
                    store.start(BackgroundScheduler(), "default")
                except sa.exc.OperationalError as exc:
                    crashed.append(str(exc))
            assert crashed and all("database is locked" in e for e in crashed)
            statements.clear()
        for _ in range(5):
            scheduler.Schedules(rt).open(run=False).close()
    finally:
        stop.set()
        writer.join(timeout=10)
        sa.event.remove(rt.database.engine, "before_cursor_execute", executed)
    assert not failures, failures
    assert statements, "the scheduler read its jobs"
    assert not {"CREATE", "ALTER", "DROP"} & set(statements)
    with rt.database.read() as conn:
        assert sa.inspect(conn).has_table(scheduler.JOB_TABLE), "made by the migrations"
