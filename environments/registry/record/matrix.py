"""Which release runs where: live environments with their current release, since, by, approvers."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa

from environments.model import (
    Decision,
    EnvironmentName,
    EnvironmentState,
    MatrixRow,
    Person,
    Version,
)
from environments.registry.record.environments import LIVE, RELEASE_VERSION
from environments.registry.record.releases import release_id
from environments.registry.schema import (
    approval_decisions,
    approvals,
    environments,
    releases,
)


def matrix(
    conn: sa.Connection,
    *,
    release: str | None = None,
    env_type: str | None = None,
    limit: int = 500,
) -> list[MatrixRow]:
    """Which release runs where (live environments), since when, by whom, approved by whom.

    Reads only the columns it shows, and finds approvers with a subquery rather than a long
    IN-list, which PostgreSQL misestimates (see docs/benchmarks.md).
    """
    query = (
        sa.select(
            environments.c.name,
            environments.c.type,
            environments.c.state,
            environments.c.release_since,
            environments.c.release_by,
            environments.c.release_deployment_id,
            environments.c.endpoint,
            RELEASE_VERSION,
        )
        .select_from(environments.outerjoin(releases, releases.c.id == environments.c.release_id))
        .where(LIVE)
        .order_by(environments.c.type, environments.c.name)
        .limit(limit)
    )
    if release is not None:
        query = query.where(environments.c.release_id == release_id(conn, release))
    if env_type is not None:
        query = query.where(environments.c.type == env_type)
    rows = conn.execute(query).all()
    approvers: dict[int, list[str]] = defaultdict(list)
    if any(row.release_deployment_id for row in rows):
        shown = sa.select(query.subquery().c.release_deployment_id)
        for found in conn.execute(
            sa.select(approvals.c.deployment_id, approval_decisions.c.person)
            .join(approval_decisions, approval_decisions.c.approval_id == approvals.c.id)
            .where(
                approvals.c.deployment_id.in_(shown),
                approval_decisions.c.decision == Decision.APPROVE.value,
            )
            .order_by(approval_decisions.c.id)
        ):
            approvers[found.deployment_id].append(found.person)
    return [
        MatrixRow(
            environment=EnvironmentName(row.name),
            type=row.type,
            state=EnvironmentState(row.state),
            release=Version(row.release_version) if row.release_version else None,
            since=row.release_since,
            by=Person(row.release_by) if row.release_by else None,
            approved_by=tuple(Person(p) for p in approvers.get(row.release_deployment_id, [])),
            endpoint=row.endpoint,
        )
        for row in rows
    ]
