"""Schedules from shipyard.yaml on APScheduler's SQLAlchemy job store; one leader runs them."""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.runtime import Runtime
from environments.config.loadtests import Schedule
from environments.errors import ConfigError, NotFound
from environments.registry import operations as ops

log = logging.getLogger(__name__)
JOB_TABLE = "shipyard_schedule_jobs"
LEADER_LOCK = 0x5348_4950  # "SHIP": the advisory lock id every replica competes for

# Job functions are looked up by name when a job fires, so that the job store keeps only the
# schedule's name (a textual reference), never a pickled runtime.
# A job gets the runtime, the schedule's name and entry, and who triggered it.
_JOBS: dict[str, Callable[[Runtime, str, Schedule, str], str]] = {}
_active: Runtime | None = None


def job(name: str) -> Callable[[Callable[[Runtime, str, Schedule, str], str]], Any]:
    """Register the function a schedule's `job:` names."""

    def register(function: Callable[[Runtime, str, Schedule, str], str]) -> Any:
        _JOBS[name] = function
        return function

    return register


def trigger(schedule: Schedule) -> CronTrigger:
    """Five fields as in crontab, or six with seconds first; in the schedule's timezone."""
    fields = schedule.cron.split()
    try:
        if len(fields) == 5:
            return CronTrigger.from_crontab(schedule.cron, timezone=schedule.timezone)
        if len(fields) == 6:
            second, minute, hour, day, month, weekday = fields
            return CronTrigger(
                second=second,
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=weekday,
                timezone=schedule.timezone,
            )
    except (ValueError, LookupError) as exc:
        raise ConfigError(
            f"schedule cron '{schedule.cron}' is not valid: {exc}",
            hint="write five crontab fields, e.g. '0 2 * * *' for 02:00",
        ) from None
    raise ConfigError(
        f"schedule cron '{schedule.cron}' has {len(fields)} fields",
        hint="write five crontab fields, e.g. '0 2 * * *' for 02:00",
    )


def fire(name: str) -> None:
    """What the job store calls: run the named schedule in the process that leads."""
    if _active is None:
        log.warning("schedule %s fired with no runtime", name)
        return
    run_now(_active, name)


def run_now(runtime: Runtime, name: str, *, triggered_by: str = "schedule") -> str:
    """Run one schedule's job now, recording its start and outcome in the audit log."""
    schedule = runtime.catalog.schedules.get(name)
    if schedule is None:
        raise NotFound(
            f"there is no schedule '{name}'",
            hint=f"schedules: {', '.join(runtime.catalog.schedules) or 'none'}",
        )
    function = _JOBS.get(schedule.job)
    if function is None:
        raise ConfigError(
            f"schedule {name} names job '{schedule.job}', which does not exist",
            hint=f"jobs: {', '.join(sorted(_JOBS)) or 'none'}",
        )
    clock = runtime.lifecycle.clock
    with runtime.database.write() as conn:
        ops.audit(
            conn,
            at=clock.now(),
            actor=triggered_by,
            action="schedule.start",
            environment=None,
            schedule=name,
            job=schedule.job,
        )
    try:
        outcome = function(runtime, name, schedule, triggered_by)
    except Exception as exc:
        outcome = f"failed: {exc}"
        log.exception("schedule %s failed", name)
    with runtime.database.write() as conn:
        ops.audit(
            conn,
            at=clock.now(),
            actor=triggered_by,
            action="schedule.finish",
            environment=None,
            schedule=name,
            outcome=outcome,
        )
    return outcome


class MigratedJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's store on the table the record's migrations create (0011_outbox).

    Its own start() runs CREATE TABLE (checkfirst) as the scheduler thread starts: on SQLite,
    beside busy writers, that DDL failed with "database is locked" and the thread died.
    """

    def start(self, scheduler: Any, alias: str) -> None:
        BaseJobStore.start(self, scheduler, alias)


@dataclass(frozen=True)
class ScheduleState:
    name: str
    cron: str
    timezone: str
    job: str
    paused: bool
    next_run: datetime | None


class Schedules:
    """The job store on the record's database, synced with shipyard.yaml."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.running = False
        self.scheduler = BackgroundScheduler(
            jobstores={
                "default": MigratedJobStore(engine=runtime.database.engine, tablename=JOB_TABLE)
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def open(self, *, run: bool) -> Schedules:
        """Start the scheduler (paused unless `run`), then bring jobs in line with the config."""
        self.running = run
        self.scheduler.start(paused=not run)
        wanted = self.runtime.catalog.schedules
        for existing in self.scheduler.get_jobs():
            if existing.id not in wanted:
                existing.remove()
        for name, schedule in wanted.items():
            current = self.scheduler.get_job(name)
            wanted_trigger = trigger(schedule)
            if current is not None and str(current.trigger) == str(wanted_trigger):
                continue  # keep its next run time: a run missed while down still happens once
            paused = current is not None and current.next_run_time is None
            self.scheduler.add_job(
                fire, wanted_trigger, args=[name], id=name, name=name, replace_existing=True
            )
            if paused:
                self.scheduler.pause_job(name)
        return self

    def close(self) -> None:
        if self.scheduler.running:
            if not self.running:
                # Detach the store first: shutting down wakes the loop once more, and a paused
                # scheduler would otherwise consume (and lose) a due run it cannot execute.
                self.scheduler.remove_jobstore("default", shutdown=True)
            self.scheduler.shutdown(wait=False)

    def states(self) -> list[ScheduleState]:
        found = []
        for name, schedule in self.runtime.catalog.schedules.items():
            current = self.scheduler.get_job(name)
            found.append(
                ScheduleState(
                    name,
                    schedule.cron,
                    schedule.timezone,
                    schedule.job,
                    paused=current is None or current.next_run_time is None,
                    next_run=current.next_run_time if current else None,
                )
            )
        return found

    def pause(self, name: str) -> None:
        self._known(name)
        self.scheduler.pause_job(name)

    def resume(self, name: str) -> None:
        self._known(name)
        self.scheduler.resume_job(name)

    def _known(self, name: str) -> None:
        if name not in self.runtime.catalog.schedules:
            raise NotFound(
                f"there is no schedule '{name}'",
                hint=f"schedules: {', '.join(self.runtime.catalog.schedules) or 'none'}",
            )


class Leadership:
    """Exactly one process runs the schedules: a PostgreSQL advisory lock held on a session of
    its own, or on SQLite (one host) an exclusive lock on a file next to the record."""

    def __init__(
        self, runtime: Runtime, *, key: int = LEADER_LOCK, lockfile: str = "scheduler.lock"
    ) -> None:
        self.runtime = runtime
        self.key = key
        self.lockfile = lockfile
        self._conn: sa.Connection | None = None
        self._file: Any = None

    def try_acquire(self) -> bool:
        if self.runtime.database.is_sqlite:
            path = Path(self.runtime.home) / self.lockfile
            handle = path.open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._file = handle
            return True
        conn = self.runtime.database.engine.connect()
        got = bool(
            conn.execute(sa.text("select pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
        )
        conn.commit()
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def wait_to_lead(self, stop: threading.Event, retry: float) -> bool:
        """Try every `retry` seconds until leading (True) or stopped (False)."""
        while not stop.is_set():
            if self.try_acquire():
                return True
            stop.wait(retry)
        return False

    def holds(self) -> bool:
        """Whether the lock is still ours: the session holding it still answers."""
        if self._file is not None:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(sa.text("select 1"))
            self._conn.commit()
        except sa.exc.DBAPIError:
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(sa.text("select pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
            except sa.exc.DBAPIError:
                pass  # the session is gone, and its lock with it
            self._conn.close()
            self._conn = None
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class SchedulerState:
    """What /healthz says about this replica's scheduler thread."""

    leading: bool = False
    alive: bool = False
    restarts: int = 0
    last_error: str | None = None


STATE = SchedulerState()


def lead_and_run(
    runtime: Runtime,
    stop: threading.Event,
    *,
    retry: float = 10.0,
    check: float = 5.0,
    state: SchedulerState = STATE,
) -> None:
    """Keep trying to lead; while leading, run the schedules until `stop` is set.

    A leader checks every `check` seconds that its lock still holds (a PostgreSQL session can
    die under it); when not, it stops leading and raises, so its supervisor starts it again.
    """
    global _active
    leadership = Leadership(runtime)
    if not leadership.wait_to_lead(stop, retry):
        return
    _active = runtime
    try:
        schedules = Schedules(runtime).open(run=True)
    except BaseException:
        _active = None
        leadership.release()
        raise
    state.leading = True
    log.info("leading the schedules: %s", ", ".join(runtime.catalog.schedules) or "none")
    try:
        while not stop.wait(check):
            if not leadership.holds():
                raise ConnectionError("lost the scheduler's leader lock")
    finally:
        state.leading = False
        schedules.close()
        _active = None
        leadership.release()


def supervise(
    target: Callable[[], None],
    stop: threading.Event,
    *,
    state: SchedulerState = STATE,
    first_backoff: float = 1.0,
    max_backoff: float = 60.0,
) -> None:
    """Run `target` until `stop`; when it raises, log it and start it again after a backoff
    (1 s, 2 s, 4 s … up to a minute), so the scheduler cannot silently die."""
    backoff = first_backoff
    while not stop.is_set():
        state.alive = True
        try:
            target()
            backoff = first_backoff
            if not stop.is_set():
                stop.wait(first_backoff)
        except Exception as exc:
            state.restarts += 1
            state.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("the scheduler stopped; starting it again in %.0f s", backoff)
            stop.wait(backoff)
            backoff = min(max_backoff, backoff * 2)
    state.alive = False


@job("nightly-loadtest")
def nightly_loadtest(runtime: Runtime, name: str, schedule: Schedule, triggered_by: str) -> str:
    """DESIGN's nightly run: fresh environment, newest release, the plan, report, destroy."""
    from environments.nightly import run_nightly

    result = run_nightly(
        runtime.lifecycle,
        runtime.worker,
        runtime.loadtesting,
        schedule,
        name=name,
        triggered_by=triggered_by,
    )
    return str(result)
