"""Approval requests in the record: opened on a deployment, decisions added, settled once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from environments.errors import NotFound, clip
from environments.model import (
    Approval,
    ApprovalDecision,
    ApprovalState,
    Decision,
    DeploymentKind,
    EnvironmentName,
    Person,
    Version,
)
from environments.outcome import Hint
from environments.registry.record.deployments import SOURCE
from environments.registry.record.environments import LIVE
from environments.registry.schema import (
    approval_decisions,
    approvals,
    deployments,
    environments,
    releases,
)

_approval_select = sa.select(
    approvals,
    deployments.c.kind,
    deployments.c.override_reason,
    environments.c.name.label("environment_name"),
    releases.c.version.label("release_version"),
    SOURCE.c.name.label("source_name"),
).select_from(
    approvals.join(deployments, deployments.c.id == approvals.c.deployment_id)
    .join(environments, environments.c.id == deployments.c.environment_id)
    .join(releases, releases.c.id == deployments.c.release_id)
    .outerjoin(SOURCE, SOURCE.c.id == deployments.c.source_environment_id)
)


def insert_approval(
    conn: sa.Connection,
    *,
    deployment_id: int,
    required: int,
    approvers: Sequence[str],
    requested_by: str,
    at: datetime,
    expires_at: datetime,
) -> int:
    return int(
        conn.execute(
            approvals.insert()
            .values(
                deployment_id=deployment_id,
                state=ApprovalState.PENDING.value,
                required=required,
                approvers=list(approvers),
                requested_by=requested_by,
                requested_at=at,
                expires_at=expires_at,
            )
            .returning(approvals.c.id)
        ).scalar_one()
    )


def _approvals(conn: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[Approval]:
    decisions: dict[int, list[ApprovalDecision]] = defaultdict(list)
    if rows:
        for d in conn.execute(
            sa.select(approval_decisions)
            .where(approval_decisions.c.approval_id.in_([row.id for row in rows]))
            .order_by(approval_decisions.c.id)
        ):
            decisions[d.approval_id].append(
                ApprovalDecision(Person(d.person), Decision(d.decision), d.comment, d.at)
            )
    return [
        Approval(
            id=row.id,
            deployment_id=row.deployment_id,
            environment=EnvironmentName(row.environment_name),
            release=Version(row.release_version),
            kind=DeploymentKind(row.kind),
            source_environment=EnvironmentName(row.source_name) if row.source_name else None,
            state=ApprovalState(row.state),
            required=row.required,
            approvers=tuple(row.approvers),
            requested_by=Person(row.requested_by),
            requested_at=row.requested_at,
            expires_at=row.expires_at,
            decisions=tuple(decisions.get(row.id, [])),
            override_reason=row.override_reason,
        )
        for row in rows
    ]


def get_approval(conn: sa.Connection, approval_id: int) -> Approval:
    rows = conn.execute(_approval_select.where(approvals.c.id == approval_id)).all()
    if not rows:
        raise NotFound(
            f"there is no approval request #{clip(str(approval_id))}",
            hints=Hint("see waiting requests", "env approvals"),
        )
    return _approvals(conn, rows)[0]


def list_approvals(
    conn: sa.Connection,
    *,
    state: ApprovalState | None = ApprovalState.PENDING,
    environment: str | None = None,
) -> list[Approval]:
    query = _approval_select.order_by(approvals.c.id)
    if state is not None:
        query = query.where(approvals.c.state == state.value)
    if environment is not None:
        query = query.where(environments.c.name == environment, LIVE)
    return _approvals(conn, conn.execute(query).all())


def add_decision(conn: sa.Connection, approval_id: int, decision: ApprovalDecision) -> None:
    conn.execute(
        approval_decisions.insert().values(
            approval_id=approval_id,
            person=decision.person,
            decision=decision.decision.value,
            comment=decision.comment,
            at=decision.at,
        )
    )


def set_approval_state(
    conn: sa.Connection, approval_id: int, state: ApprovalState, at: datetime
) -> bool:
    """Move a pending approval to `state`; False when someone else already decided it."""
    result = conn.execute(
        approvals.update()
        .where(approvals.c.id == approval_id, approvals.c.state == ApprovalState.PENDING.value)
        .values(state=state.value, decided_at=at)
    )
    return result.rowcount == 1
