"""The nightly load test: a fresh environment, the newest release, the plan, a verdict, teardown.

The run is recorded before anything else, so whatever happens next leaves a verdict: a deploy
that fails is an `errored` run with its reason, SIGTERM/SIGINT tear the environment down and
mark the run `errored`, and a run left unfinished by a crash is closed (and its environment
destroyed) by the next nightly start (`recover`).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType

from environments.config.loadtests import Schedule
from environments.errors import ShipyardError
from environments.lifecycle import SYSTEM, Lifecycle
from environments.loadtests.service import LoadTesting
from environments.model import EnvironmentState, OperationState
from environments.policy import Actor
from environments.registry import loadtests as runs
from environments.registry import record as rec
from environments.worker import Worker

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=15)
"""An unfinished run older than its load duration plus this is taken as interrupted."""


@dataclass(frozen=True)
class NightlyResult:
    """How a nightly run ended: its verdict word, one line with the figures, the record's run."""

    outcome: str
    line: str
    run_id: int | None = None
    chart: Path | None = None

    def __str__(self) -> str:
        return self.line


def environment_name(schedule: str, lifecycle: Lifecycle) -> str:
    """Unique per schedule and run: two schedules firing in the same minute never collide."""
    # 32 random bits: two runs of one schedule in one minute collide once in ~4 billion.
    stamp = f"{lifecycle.clock.now():%m%d-%H%M}-{secrets.token_hex(4)}"
    head = "".join(c if c.isalnum() else "-" for c in schedule.lower()).strip("-") or "nightly"
    if not head[0].isalpha():
        head = f"n-{head}"
    head = head[: 40 - len(stamp) - 1].rstrip("-")
    return f"{head}-{stamp}"


@contextmanager
def _signals_end_the_run() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C does, so `finally` still tears the environment down."""
    if threading.current_thread() is not threading.main_thread():
        yield  # a scheduler thread: the process's own shutdown applies; `recover` is the net
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_nightly(
    lifecycle: Lifecycle,
    worker: Worker,
    loadtesting: LoadTesting,
    schedule: Schedule,
    *,
    name: str = "nightly",
    triggered_by: str = "schedule",
) -> NightlyResult:
    """Returns how the run ended; the environment is destroyed whatever happens."""
    recover(lifecycle, worker, loadtesting)
    with lifecycle.db.read() as conn:
        newest = rec.list_releases(conn, limit=1)
    if not newest:
        return NightlyResult("skipped", "skipped: there is no release yet")
    release = newest[0].version
    env_name = environment_name(name, lifecycle)
    actor = Actor(person=triggered_by, channel=SYSTEM.channel)
    try:
        run_id = loadtesting.begin(
            actor,
            environment=env_name,
            env_type=schedule.type,
            release=release,
            plan=schedule.plan,
            schedule=name,
        )
    except ShipyardError as exc:  # no plan to run: nothing was started, nothing to record
        return NightlyResult("errored", f"errored: {exc.one_line()}")
    folder = loadtesting.folder(run_id)
    created = False
    try:
        with _signals_end_the_run():
            requested = lifecycle.create(SYSTEM, env_name, env_type=schedule.type, release=release)
            created = True
            if requested.operation_id is None:
                reason = f"{schedule.type} environments need approval, so no nightly run"
                loadtesting.errored(run_id, reason)
                return NightlyResult("errored", f"errored: {reason}", run_id)
            op = worker.run(requested.operation_id)
            if op is None or op.state is not OperationState.SUCCEEDED:
                kept = _keep_logs(lifecycle, env_name, folder)
                reason = f"{env_name} with {release} did not come up: {op.error if op else '?'}" + (
                    f" (logs kept in {kept})" if kept else ""
                )
                loadtesting.errored(run_id, reason, folder)
                return NightlyResult("errored", f"errored: {reason}", run_id)
            summary = loadtesting.run(
                actor, env_name, plan=schedule.plan, run_id=run_id, channel=schedule.channel
            )
            return NightlyResult(
                summary.outcome.value,
                f"{summary.outcome}: {release} on {env_name} (load test #{run_id}); "
                + summary.verdict.removeprefix(f"{summary.outcome.value}: "),
                run_id,
                summary.chart,
            )
    except ShipyardError as exc:
        _close(loadtesting, run_id, exc.one_line(), folder)
        return NightlyResult("errored", f"errored: {exc.one_line()}", run_id)
    except BaseException:
        _close(loadtesting, run_id, "interrupted (the process running it was stopped)", folder)
        raise
    finally:
        if created:
            _keep_logs(lifecycle, env_name, folder)
            _destroy(lifecycle, worker, env_name)


def _close(loadtesting: LoadTesting, run_id: int, reason: str, folder: Path) -> None:
    """Errored, unless the load test already recorded its own verdict (or its own error)."""
    with loadtesting.db.read() as conn:
        done = runs.get(conn, run_id).outcome is not None
    if not done:
        loadtesting.errored(run_id, reason, folder)


def _destroy(lifecycle: Lifecycle, worker: Worker, env_name: str) -> None:
    try:
        worker.run(lifecycle.destroy(SYSTEM, env_name, force=True))
    except ShipyardError as exc:
        log.error("could not destroy %s after the nightly run: %s", env_name, exc.one_line())


def _keep_logs(lifecycle: Lifecycle, env_name: str, folder: Path) -> Path | None:
    """Copy the environment's logs into the run's folder: they outlive the environment."""
    with lifecycle.db.read() as conn:
        env = rec.find_environment(conn, env_name)
    source = Path(str(env.outputs.get("folder"))) if env and env.outputs.get("folder") else None
    if source is None or not source.is_dir():
        return None
    target = folder / "environment-logs"
    for log_file in source.rglob("*.log"):
        destination = target / log_file.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(log_file, destination)
    return target if target.exists() else None


def recover(lifecycle: Lifecycle, worker: Worker, loadtesting: LoadTesting) -> list[int]:
    """Close runs a crash left unfinished (errored) and destroy their nightly environments."""
    now = lifecycle.clock.now()
    with lifecycle.db.read() as conn:
        unfinished = runs.unfinished(conn)
    closed = []
    for run in unfinished:
        budget = timedelta(seconds=float(run.load.get("duration_s") or 0)) + STALE_AFTER
        if run.started_at + budget > now:
            continue  # possibly still running on another replica
        loadtesting.errored(run.id, "interrupted: the process running it stopped before the end")
        closed.append(run.id)
        if run.schedule is None:
            continue
        with lifecycle.db.read() as conn:
            env = rec.find_environment(conn, run.environment)
        if env is not None and env.state not in (
            EnvironmentState.DESTROYED,
            EnvironmentState.DESTROYING,
        ):
            _destroy(lifecycle, worker, env.name)
    return closed
