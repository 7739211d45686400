"""Load-test runs in the record: started, finished with a verdict, found as baselines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from environments.errors import NotFound
from environments.outcome import Hint
from environments.registry.schema import loadtest_runs, loadtest_samples, releases


@dataclass(frozen=True)
class RunRecord:
    """One load-test run as the record keeps it."""

    id: int
    environment: str
    environment_type: str
    release: str
    plan: str
    engine: str
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    load: dict[str, Any]
    outcome: str | None
    report: dict[str, dict[str, Any]] | None
    criteria: list[dict[str, Any]] | None
    baseline_run_id: int | None
    comparison: list[dict[str, Any]] | None
    folder: str | None
    error: str | None
    gate: bool | None = None
    baseline_runs: list[int] | None = None
    verdict: str | None = None
    schedule: str | None = None

    @property
    def report_figures(self) -> dict[str, dict[str, Any]]:
        """Per label and TOTAL, the figures the run was judged by (empty if it has none)."""
        return dict(self.report or {})


def _run(row: sa.Row[Any]) -> RunRecord:
    return RunRecord(**{c.name: getattr(row, c.name) for c in loadtest_runs.columns})


def start(conn: sa.Connection, **values: Any) -> int:
    return int(
        conn.execute(
            loadtest_runs.insert().values(**values).returning(loadtest_runs.c.id)
        ).scalar_one()
    )


def finish(conn: sa.Connection, run_id: int, **values: Any) -> None:
    conn.execute(loadtest_runs.update().where(loadtest_runs.c.id == run_id).values(**values))


def get(conn: sa.Connection, run_id: int) -> RunRecord:
    row = conn.execute(sa.select(loadtest_runs).where(loadtest_runs.c.id == run_id)).first()
    if row is None:
        raise NotFound(
            f"there is no load-test run #{run_id}", hints=Hint("see the runs", "loadtest history")
        )
    return _run(row)


def history(conn: sa.Connection, *, release: str | None = None, limit: int = 50) -> list[RunRecord]:
    query = sa.select(loadtest_runs).order_by(loadtest_runs.c.id.desc()).limit(limit)
    if release is not None:
        query = query.where(loadtest_runs.c.release == release)
    return [_run(row) for row in conn.execute(query)]


def save_samples(conn: sa.Connection, run_id: int, data: bytes) -> None:
    conn.execute(loadtest_samples.insert().values(run_id=run_id, data=data))


def samples(conn: sa.Connection, run_ids: list[int]) -> dict[int, bytes]:
    """The kept samples of these runs (runs recorded without samples are missing)."""
    if not run_ids:
        return {}
    rows = conn.execute(
        sa.select(loadtest_samples.c.run_id, loadtest_samples.c.data).where(
            loadtest_samples.c.run_id.in_(run_ids)
        )
    )
    return {int(r.run_id): bytes(r.data) for r in rows}


def _judged_with_samples(plan: str, env_type: str, outcomes: tuple[str, ...]) -> sa.Select[Any]:
    return (
        sa.select(loadtest_runs)
        .join(loadtest_samples, loadtest_samples.c.run_id == loadtest_runs.c.id)
        .where(
            loadtest_runs.c.plan == plan,
            loadtest_runs.c.environment_type == env_type,
            loadtest_runs.c.outcome.in_(outcomes),
        )
    )


def recent_runs(
    conn: sa.Connection,
    *,
    release: str,
    plan: str,
    env_type: str,
    outcomes: tuple[str, ...],
    limit: int,
    before: int | None = None,
) -> list[RunRecord]:
    """The newest runs of a release with kept samples and one of these outcomes, newest first."""
    query = _judged_with_samples(plan, env_type, outcomes).where(loadtest_runs.c.release == release)
    if before is not None:
        query = query.where(loadtest_runs.c.id < before)
    rows = conn.execute(query.order_by(loadtest_runs.c.id.desc()).limit(limit))
    return [_run(row) for row in rows]


def previous_release(conn: sa.Connection, *, release: str, plan: str, env_type: str) -> str | None:
    """The newest release older than this one with a passing run of the plan (with samples)."""
    this = sa.select(releases.c.id).where(releases.c.version == release).scalar_subquery()
    row = conn.execute(
        _judged_with_samples(plan, env_type, ("passed",))
        .with_only_columns(releases.c.version)
        .join(releases, releases.c.version == loadtest_runs.c.release)
        .where(releases.c.id < this)
        .order_by(releases.c.id.desc())
        .limit(1)
    ).first()
    return str(row[0]) if row else None


def last_verdict(conn: sa.Connection, release: str) -> RunRecord | None:
    """The newest verdict of a release by a gate plan (an errored run decides nothing)."""
    row = conn.execute(
        sa.select(loadtest_runs)
        .where(
            loadtest_runs.c.release == release,
            loadtest_runs.c.outcome.is_not(None),
            loadtest_runs.c.outcome != "errored",
            # Runs recorded before plans were gates (NULL) count, as they always did.
            sa.or_(loadtest_runs.c.gate.is_(None), loadtest_runs.c.gate.is_(True)),
        )
        .order_by(loadtest_runs.c.id.desc())
        .limit(1)
    ).first()
    return _run(row) if row else None


def unfinished(conn: sa.Connection) -> list[RunRecord]:
    """Runs started and never finished (running now, or interrupted by a crash)."""
    rows = conn.execute(
        sa.select(loadtest_runs)
        .where(loadtest_runs.c.outcome.is_(None))
        .order_by(loadtest_runs.c.id)
    )
    return [_run(row) for row in rows]


def latest_of_schedule(conn: sa.Connection, schedule: str) -> RunRecord | None:
    row = conn.execute(
        sa.select(loadtest_runs)
        .where(loadtest_runs.c.schedule == schedule)
        .order_by(loadtest_runs.c.id.desc())
        .limit(1)
    ).first()
    return _run(row) if row else None
