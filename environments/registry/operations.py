"""Operation rows, per-environment leases and the audit log: the record's bookkeeping of work."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from environments.model import (
    AuditEvent,
    EnvironmentName,
    Operation,
    OperationKind,
    OperationState,
    Person,
)
from environments.registry.schema import audit_events, environments, operations


def _operation(row: sa.Row[Any]) -> Operation:
    return Operation(
        id=row.id,
        kind=OperationKind(row.kind),
        environment=EnvironmentName(row.environment_name),
        environment_id=row.environment_id,
        deployment_id=row.deployment_id,
        state=OperationState(row.state),
        step=row.step,
        attempts=row.attempts,
        error=row.error,
        created_at=row.created_at,
    )


_op_select = sa.select(operations, environments.c.name.label("environment_name")).join(
    environments, environments.c.id == operations.c.environment_id
)


def enqueue(
    conn: sa.Connection,
    *,
    kind: OperationKind,
    env_id: int,
    at: datetime,
    deployment_id: int | None = None,
    key: str | None = None,
) -> int:
    """Queue an operation; with an idempotency key, a second enqueue returns the first one."""
    if key is not None:
        existing = conn.execute(
            sa.select(operations.c.id).where(operations.c.idempotency_key == key)
        ).scalar()
        if existing is not None:
            return int(existing)
    return int(
        conn.execute(
            operations.insert()
            .values(
                kind=kind.value,
                environment_id=env_id,
                deployment_id=deployment_id,
                state=OperationState.QUEUED.value,
                step="",
                attempts=0,
                idempotency_key=key,
                created_at=at,
                updated_at=at,
            )
            .returning(operations.c.id)
        ).scalar_one()
    )


def get_operation(conn: sa.Connection, op_id: int) -> Operation:
    return _operation(conn.execute(_op_select.where(operations.c.id == op_id)).one())


def runnable(conn: sa.Connection, now: datetime, limit: int = 50) -> list[Operation]:
    """Queued operations, and running ones whose worker stopped renewing its lease."""
    rows = conn.execute(
        _op_select.where(
            sa.or_(
                operations.c.state == OperationState.QUEUED.value,
                sa.and_(
                    operations.c.state == OperationState.RUNNING.value,
                    operations.c.lease_until < now,
                ),
            )
        )
        .order_by(operations.c.id)
        .limit(limit)
    )
    return [_operation(row) for row in rows]


def claim(conn: sa.Connection, op_id: int, *, owner: str, now: datetime, lease: timedelta) -> bool:
    """Take an operation and its environment's lease in one transaction, or neither.

    `owner` names one worker thread (host:pid:thread-id); an operation another owner runs is
    taken over only once its lease has run out, never because the owner's name matches. The
    operation row is locked first (`FOR UPDATE SKIP LOCKED` on PostgreSQL: a row another
    worker is claiming is passed over, not waited for; on SQLite the write transaction holds
    the database's write lock), and every UPDATE re-states its condition, so two workers can
    never both see "claimable" and both win.
    """
    until = now + lease
    claimable = sa.or_(
        operations.c.state == OperationState.QUEUED.value,
        sa.and_(
            operations.c.state == OperationState.RUNNING.value,
            sa.or_(operations.c.lease_until.is_(None), operations.c.lease_until < now),
        ),
    )
    op = conn.execute(
        sa.select(operations.c.environment_id, operations.c.id)
        .where(operations.c.id == op_id, claimable)
        .with_for_update(skip_locked=True)
    ).first()
    if op is None:
        return False
    # Operations on one environment run in the order they were queued.
    earlier = conn.execute(
        sa.select(operations.c.id).where(
            operations.c.environment_id == op.environment_id,
            operations.c.id < op_id,
            operations.c.state.in_([OperationState.QUEUED.value, OperationState.RUNNING.value]),
        )
    ).first()
    if earlier is not None:
        return False
    with conn.begin_nested() as attempt:
        locked = conn.execute(
            environments.update()
            .where(
                environments.c.id == op.environment_id,
                sa.or_(
                    environments.c.lock_operation_id.is_(None),
                    environments.c.lock_operation_id == op_id,
                    environments.c.lock_until < now,
                ),
            )
            .values(lock_operation_id=op_id, lock_until=until)
        )
        taken = conn.execute(
            operations.update()
            .where(operations.c.id == op_id, claimable)
            .values(
                state=OperationState.RUNNING.value,
                owner=owner,
                lease_until=until,
                attempts=operations.c.attempts + 1,
                started_at=now,
                updated_at=now,
            )
        )
        if locked.rowcount != 1 or taken.rowcount != 1:
            attempt.rollback()
            return False
    return True


def renew(conn: sa.Connection, op_id: int, *, owner: str, now: datetime, lease: timedelta) -> bool:
    """Extend the lease while working; False means another worker took the operation over."""
    until = now + lease
    result = conn.execute(
        operations.update()
        .where(
            operations.c.id == op_id,
            operations.c.owner == owner,
            operations.c.state == OperationState.RUNNING.value,
        )
        .values(lease_until=until, updated_at=now)
    )
    if result.rowcount != 1:
        return False
    conn.execute(
        environments.update()
        .where(environments.c.lock_operation_id == op_id)
        .values(lock_until=until)
    )
    return True


def owns(conn: sa.Connection, op_id: int, owner: str) -> bool:
    """Whether `owner` still holds the running operation (nobody took it over)."""
    return (
        conn.execute(
            sa.select(operations.c.id).where(
                operations.c.id == op_id,
                operations.c.owner == owner,
                operations.c.state == OperationState.RUNNING.value,
            )
        ).first()
        is not None
    )


def set_step(conn: sa.Connection, op_id: int, step: str, now: datetime) -> None:
    conn.execute(
        operations.update().where(operations.c.id == op_id).values(step=step, updated_at=now)
    )


def finish(
    conn: sa.Connection,
    op_id: int,
    state: OperationState,
    now: datetime,
    error: str | None = None,
    *,
    owner: str | None = None,
) -> bool:
    """Close an operation and free its environment's lease; with `owner`, only if it still owns
    it (False: another worker took it over after this one's lease ran out)."""
    query = operations.update().where(operations.c.id == op_id)
    if owner is not None:
        query = query.where(
            operations.c.owner == owner, operations.c.state == OperationState.RUNNING.value
        )
    closed = conn.execute(
        query.values(
            state=state.value, error=error, lease_until=None, finished_at=now, updated_at=now
        )
    )
    if closed.rowcount != 1:
        return False
    conn.execute(
        environments.update()
        .where(environments.c.lock_operation_id == op_id)
        .values(lock_operation_id=None, lock_until=None)
    )
    return True


def audit(
    conn: sa.Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    environment: str | None,
    **detail: Any,
) -> None:
    """Append one fact to the audit log (never a secret value: callers pass names, not values)."""
    conn.execute(
        audit_events.insert().values(
            at=at, actor=actor, action=action, environment=environment, detail=detail
        )
    )


def audit_log(
    conn: sa.Connection, *, environment: str | None = None, limit: int = 50
) -> list[AuditEvent]:
    query = sa.select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
    if environment is not None:
        query = query.where(audit_events.c.environment == environment)
    return [
        AuditEvent(
            id=row.id,
            at=row.at,
            actor=Person(row.actor),
            action=row.action,
            environment=row.environment,
            detail=dict(row.detail or {}),
        )
        for row in conn.execute(query)
    ]
