"""Paged, indexed reads for the dashboard and the HTTP API: one query per table page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from environments.registry.record.deployments import approvers_of
from environments.registry.record.environments import LIVE
from environments.registry.schema import (
    audit_events,
    deployments,
    environments,
    loadtest_runs,
    releases,
)

SORTS = {
    "name": environments.c.name,
    "type": environments.c.type,
    "state": environments.c.state,
    "release": environments.c.release_id,  # release ids follow the order releases were added
    "since": environments.c.release_since,
    "owner": environments.c.owner,
    "health": environments.c.health_status,
    "expires": environments.c.expires_at,
    "created": environments.c.created_at,
}
MAX_PAGE = 200


@dataclass(frozen=True)
class EnvironmentFilter:
    """What the table shows: exact matches, a name prefix, the order and the page."""

    type: str | None = None
    state: str | None = None
    owner: str | None = None
    health: str | None = None
    release: str | None = None
    name: str | None = None  # prefix
    sort: str = "name"
    descending: bool = False
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True)
class EnvironmentRow:
    """One environment as the table shows it."""

    name: str
    type: str
    state: str
    release: str | None
    since: datetime | None
    by: str | None
    approved_by: tuple[str, ...]
    health: str | None
    health_reason: str | None
    health_at: datetime | None
    owner: str
    created_at: datetime
    expires_at: datetime | None
    endpoint: str | None


@dataclass(frozen=True)
class Page:
    rows: list[EnvironmentRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def environments_page(conn: sa.Connection, wanted: EnvironmentFilter) -> Page:
    """Live environments matching `wanted`, one page of them, and how many match in all.

    The filter, count and sort read the environments table alone (a release is matched by its
    id); the page is sorted and cut on (id, sort key) only, then its rows are read by id, so a
    deep page never drags wide rows through the sort.
    """
    per_page = max(1, min(wanted.per_page, MAX_PAGE))
    page = max(1, wanted.page)
    conditions: list[Any] = [LIVE]
    for column, value in (
        (environments.c.type, wanted.type),
        (environments.c.state, wanted.state),
        (environments.c.owner, wanted.owner),
        (environments.c.health_status, wanted.health),
    ):
        if value:
            conditions.append(column == value)
    if wanted.release:
        conditions.append(
            environments.c.release_id
            == sa.select(releases.c.id)
            .where(releases.c.version == wanted.release)
            .scalar_subquery()
        )
    if wanted.name:
        escaped = wanted.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(environments.c.name.like(escaped + "%", escape="\\"))
    order = SORTS.get(wanted.sort, environments.c.name)
    ordered = order.desc().nulls_last() if wanted.descending else order.asc().nulls_last()
    total = _count(conn, conditions)
    ids = list(
        conn.execute(
            sa.select(environments.c.id)
            .where(*conditions)
            .order_by(ordered, environments.c.name)
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).scalars()
    )
    position = {env_id: index for index, env_id in enumerate(ids)}
    rows = sorted(
        conn.execute(
            sa.select(
                environments.c.id,
                environments.c.name,
                environments.c.type,
                environments.c.state,
                environments.c.release_since,
                environments.c.release_by,
                environments.c.release_deployment_id,
                environments.c.health_status,
                environments.c.health_reason,
                environments.c.health_at,
                environments.c.owner,
                environments.c.created_at,
                environments.c.expires_at,
                environments.c.endpoint,
                releases.c.version,
            )
            .select_from(
                environments.outerjoin(releases, releases.c.id == environments.c.release_id)
            )
            .where(environments.c.id.in_(ids))
        ).all(),
        key=lambda row: position[row.id],
    )
    current = [r.release_deployment_id for r in rows if r.release_deployment_id]
    approved = approvers_of(conn, current)
    return Page(
        rows=[
            EnvironmentRow(
                name=r.name,
                type=r.type,
                state=r.state,
                release=r.version,
                since=r.release_since,
                by=r.release_by,
                approved_by=tuple(approved.get(r.release_deployment_id, ())),
                health=r.health_status,
                health_reason=r.health_reason,
                health_at=r.health_at,
                owner=r.owner,
                created_at=r.created_at,
                expires_at=r.expires_at,
                endpoint=r.endpoint,
            )
            for r in rows
        ],
        total=total,
        page=page,
        per_page=per_page,
    )


def _count(conn: sa.Connection, conditions: list[Any]) -> int:
    """How many live environments match (the table's total and page count)."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(environments).where(*conditions)
        ).scalar_one()
    )


def run_urls(conn: sa.Connection, deployment_ids: list[int]) -> dict[int, str]:
    """The pipeline run of each deployment that one carried out."""
    if not deployment_ids:
        return {}
    return {
        row.id: row.run_url
        for row in conn.execute(
            sa.select(deployments.c.id, deployments.c.run_url).where(
                deployments.c.id.in_(deployment_ids), deployments.c.run_url.is_not(None)
            )
        )
    }


@dataclass(frozen=True)
class TrendPoint:
    """One finished load-test run of a plan: its release, when, TOTAL p95 and error rate."""

    run_id: int
    release: str
    environment: str
    environment_type: str
    started_at: datetime
    outcome: str
    p95: float | None
    error_percent: float | None
    has_chart: bool


_RUN_COLUMNS = (
    loadtest_runs.c.id,
    loadtest_runs.c.release,
    loadtest_runs.c.environment,
    loadtest_runs.c.environment_type,
    loadtest_runs.c.started_at,
    loadtest_runs.c.outcome,
    loadtest_runs.c.report,
    loadtest_runs.c.folder,
)


def loadtest_trends(conn: sa.Connection, *, limit: int = 50) -> dict[str, list[TrendPoint]]:
    """Per plan, its last `limit` finished runs, oldest first (regressions have that outcome)."""
    plans = [row[0] for row in conn.execute(sa.select(loadtest_runs.c.plan).distinct())]
    trends: dict[str, list[TrendPoint]] = {}
    for plan in sorted(plans):
        rows = conn.execute(
            sa.select(*_RUN_COLUMNS)
            .where(loadtest_runs.c.plan == plan, loadtest_runs.c.outcome.is_not(None))
            .order_by(loadtest_runs.c.id.desc())
            .limit(limit)
        ).all()
        trends[plan] = [_point(row) for row in reversed(rows)]
    return trends


def environment_runs(conn: sa.Connection, name: str, *, limit: int = 20) -> list[TrendPoint]:
    """The load-test runs of an environment name, newest first."""
    rows = conn.execute(
        sa.select(*_RUN_COLUMNS)
        .where(loadtest_runs.c.environment == name)
        .order_by(loadtest_runs.c.id.desc())
        .limit(limit)
    ).all()
    return [_point(row) for row in rows]


def _point(row: Any) -> TrendPoint:
    total = (row.report or {}).get("TOTAL") or {}
    return TrendPoint(
        run_id=row.id,
        release=row.release,
        environment=row.environment,
        environment_type=row.environment_type,
        started_at=row.started_at,
        outcome=row.outcome or "running",
        p95=total.get("p95"),
        error_percent=total.get("error_percent"),
        has_chart=bool(row.folder),
    )


def chart_folder(conn: sa.Connection, run_id: int) -> str | None:
    return conn.execute(
        sa.select(loadtest_runs.c.folder).where(loadtest_runs.c.id == run_id)
    ).scalar()


@dataclass(frozen=True)
class Drift:
    """What the newest reconcile found: resource groups Shipyard tagged that nobody owns."""

    at: datetime
    orphans: list[dict[str, Any]]


def latest_drift(conn: sa.Connection) -> Drift | None:
    row = conn.execute(
        sa.select(audit_events.c.at, audit_events.c.detail)
        .where(audit_events.c.action == "reconcile.drift")
        .order_by(audit_events.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return Drift(row.at, list((row.detail or {}).get("orphans", [])))
