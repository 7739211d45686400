"""Load-test runs in the record: started, finished with a verdict, found as baselines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from environments.errors import NotFound
from environments.registry.schema import loadtest_runs, releases


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
            f"there is no load-test run #{run_id}", hint="see 'shipyard loadtest history'"
        )
    return _run(row)


def history(conn: sa.Connection, *, release: str | None = None, limit: int = 50) -> list[RunRecord]:
    query = sa.select(loadtest_runs).order_by(loadtest_runs.c.id.desc()).limit(limit)
    if release is not None:
        query = query.where(loadtest_runs.c.release == release)
    return [_run(row) for row in conn.execute(query)]


def baseline(conn: sa.Connection, *, release: str, plan: str, env_type: str) -> RunRecord | None:
    """The latest passing run of the newest earlier release, same plan, same environment type."""
    this = sa.select(releases.c.id).where(releases.c.version == release).scalar_subquery()
    row = conn.execute(
        sa.select(loadtest_runs)
        .join(releases, releases.c.version == loadtest_runs.c.release)
        .where(
            releases.c.id < this,
            loadtest_runs.c.plan == plan,
            loadtest_runs.c.environment_type == env_type,
            loadtest_runs.c.outcome == "passed",
        )
        .order_by(releases.c.id.desc(), loadtest_runs.c.id.desc())
        .limit(1)
    ).first()
    return _run(row) if row else None


def last_verdict(conn: sa.Connection, release: str) -> RunRecord | None:
    """The newest finished run of a release, whatever its plan or environment."""
    row = conn.execute(
        sa.select(loadtest_runs)
        .where(loadtest_runs.c.release == release, loadtest_runs.c.outcome.is_not(None))
        .order_by(loadtest_runs.c.id.desc())
        .limit(1)
    ).first()
    return _run(row) if row else None
