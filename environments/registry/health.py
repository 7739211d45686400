"""Reads and writes of health probes: the history per environment and the latest on its row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from environments.model import HealthStatus
from environments.registry.schema import environments, health_checks


@dataclass(frozen=True)
class HealthCheck:
    """One probe's outcome for one environment."""

    environment_id: int
    at: datetime
    status: HealthStatus
    reason: str


def record_health(conn: sa.Connection, check: HealthCheck) -> HealthStatus | None:
    """Make the probe the environment's latest; returns the status it replaces.

    History keeps changes only (a new status or reason): an unchanged probe moves the latest
    probe's time forward, so a probe every minute does not grow the record by a row a minute.
    """
    previous = conn.execute(
        sa.select(environments.c.health_status, environments.c.health_reason).where(
            environments.c.id == check.environment_id
        )
    ).first()
    status = HealthStatus(previous.health_status) if previous and previous.health_status else None
    reason = previous.health_reason if previous else None
    if (status, reason) != (check.status, check.reason):
        conn.execute(
            health_checks.insert().values(
                environment_id=check.environment_id,
                at=check.at,
                status=check.status.value,
                reason=check.reason,
            )
        )
    conn.execute(
        environments.update()
        .where(environments.c.id == check.environment_id)
        .values(health_status=check.status.value, health_reason=check.reason, health_at=check.at)
    )
    return status


def health_history(conn: sa.Connection, env_name: str, limit: int = 20) -> list[HealthCheck]:
    """Newest first, across every environment that ever had this name."""
    env_ids = sa.select(environments.c.id).where(environments.c.name == env_name)
    rows = conn.execute(
        sa.select(health_checks)
        .where(health_checks.c.environment_id.in_(env_ids))
        .order_by(health_checks.c.id.desc())
        .limit(limit)
    )
    return [
        HealthCheck(row.environment_id, row.at, HealthStatus(row.status), row.reason)
        for row in rows
    ]
