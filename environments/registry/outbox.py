"""The outbox: what people should learn, written with the change that caused it; its delivery.

A use case adds an event in the same transaction as the state change, whoever caused it (CLI,
Slack, pipeline step, webhook, schedule). A deliverer (``shipyard serve``) claims the oldest
undelivered event of each environment under a lease, sends it, and marks it delivered; events
of one environment go out in order, and an event claimed by a deliverer that died is taken
over once its lease has run out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from environments.registry.schema import outbox, reply_routes


class Event(StrEnum):
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_DM = "approval_dm"  # one approver's direct message (written by the deliverer)
    APPROVAL_DECIDED = "approval_decided"
    APPROVAL_EXPIRED = "approval_expired"
    PROGRESS = "progress"
    READY = "ready"
    FAILED = "failed"
    DESTROYED = "destroyed"
    EXPIRY_WARNING = "expiry_warning"
    LOADTEST_FINISHED = "loadtest_finished"
    HEALTH_CHANGED = "health_changed"
    PIPELINE_DEPLOYMENT = "pipeline_deployment"


@dataclass(frozen=True)
class Pending:
    """One undelivered event."""

    id: int
    event: Event
    environment: str | None
    operation: int | None
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    intent: str | None = None


@dataclass(frozen=True)
class Route:
    """Where the person who started an operation from Slack can be answered."""

    user: str
    channel: str | None
    thread_ts: str | None
    response_url: str | None


def add(
    conn: sa.Connection,
    event: Event,
    *,
    at: datetime,
    environment: str | None,
    operation: int | None = None,
    **payload: Any,
) -> int:
    """Write one event in the caller's transaction (never a secret: callers pass names)."""
    return int(
        conn.execute(
            outbox.insert()
            .values(
                event=event.value,
                environment=environment,
                operation_id=operation,
                payload=payload,
                created_at=at,
            )
            .returning(outbox.c.id)
        ).scalar_one()
    )


def _pending(row: sa.Row[Any]) -> Pending:
    return Pending(
        id=row.id,
        event=Event(row.event),
        environment=row.environment,
        operation=row.operation_id,
        payload=dict(row.payload or {}),
        created_at=row.created_at,
        attempts=row.attempts,
        intent=row.intent,
    )


def due(conn: sa.Connection, now: datetime, limit: int = 200) -> list[Pending]:
    """The head event of each environment (and every event of none) that may be sent now.

    A later event of an environment waits while an earlier one is undelivered, even one
    another deliverer holds or one waiting for its retry: that is what keeps them in order.
    """
    rows = conn.execute(
        sa.select(outbox).where(outbox.c.delivered_at.is_(None)).order_by(outbox.c.id).limit(limit)
    ).all()
    blocked: set[str] = set()
    found = []
    for row in rows:
        if row.environment is not None:
            if row.environment in blocked:
                continue
            blocked.add(row.environment)
        busy = row.claimed_until is not None and row.claimed_until >= now
        waiting = row.next_attempt_at is not None and row.next_attempt_at > now
        if not busy and not waiting:
            found.append(_pending(row))
    return found


def claim(
    conn: sa.Connection, event_id: int, *, owner: str, now: datetime, lease: timedelta
) -> bool:
    """Take one event for delivery; one conditional UPDATE, so only one deliverer wins."""
    taken = conn.execute(
        outbox.update()
        .where(
            outbox.c.id == event_id,
            outbox.c.delivered_at.is_(None),
            sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
        )
        .values(claimed_by=owner, claimed_until=now + lease, attempts=outbox.c.attempts + 1)
    )
    return taken.rowcount == 1


def delivered(
    conn: sa.Connection, event_id: int, *, owner: str, now: datetime, to: str, note: str = ""
) -> bool:
    """Mark an event sent (`to`: where it went); False when another deliverer took it over."""
    marked = conn.execute(
        outbox.update()
        .where(outbox.c.id == event_id, outbox.c.claimed_by == owner)
        .values(delivered_at=now, delivered_to=to[:96], claimed_until=None, error=note or None)
    )
    return marked.rowcount == 1


def intend(conn: sa.Connection, event_id: int, *, owner: str, intent: str | None) -> bool:
    """Record, before sending, a send that cannot be read back afterwards (None: it failed
    for certain). False when another deliverer took the event over."""
    marked = conn.execute(
        outbox.update()
        .where(outbox.c.id == event_id, outbox.c.claimed_by == owner)
        .values(intent=intent)
    )
    return marked.rowcount == 1


def retry_later(
    conn: sa.Connection, event_id: int, *, owner: str, at: datetime, error: str
) -> None:
    conn.execute(
        outbox.update()
        .where(outbox.c.id == event_id, outbox.c.claimed_by == owner)
        .values(next_attempt_at=at, claimed_until=None, error=error[:500])
    )


def progress_steps(conn: sa.Connection, operation: int, upto: int) -> list[str]:
    """The progress messages of an operation, in order, up to event `upto`."""
    rows = conn.execute(
        sa.select(outbox.c.payload)
        .where(
            outbox.c.operation_id == operation,
            outbox.c.event == Event.PROGRESS.value,
            outbox.c.id <= upto,
        )
        .order_by(outbox.c.id)
    )
    return [str((payload or {}).get("message", "")) for (payload,) in rows]


def outcome_before(conn: sa.Connection, operation: int, event_id: int) -> bool:
    """Whether the operation's outcome (ready, failed, destroyed) came before event `event_id`."""
    found = conn.execute(
        sa.select(outbox.c.id).where(
            outbox.c.operation_id == operation,
            outbox.c.id < event_id,
            outbox.c.event.in_([Event.READY.value, Event.FAILED.value, Event.DESTROYED.value]),
        )
    ).first()
    return found is not None


@dataclass(frozen=True)
class Flow:
    """Whether the outbox is flowing: what waits, since when, and the last delivery."""

    waiting: int
    oldest_waiting: datetime | None
    last_delivered: datetime | None


def flow(conn: sa.Connection) -> Flow:
    waiting, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
            outbox.c.delivered_at.is_(None)
        )
    ).one()
    # min/max keep the column's type, so these come back as aware UTC datetimes.
    last = conn.execute(sa.select(sa.func.max(outbox.c.delivered_at))).scalar()
    return Flow(int(waiting), oldest, last)


def remember_route(
    conn: sa.Connection,
    operation: int,
    *,
    user: str,
    channel: str | None,
    thread_ts: str | None = None,
    response_url: str | None,
    at: datetime,
) -> None:
    """Where to answer the person who started `operation` (first route wins)."""
    exists = conn.execute(
        sa.select(reply_routes.c.operation_id).where(reply_routes.c.operation_id == operation)
    ).first()
    if exists is None:
        conn.execute(
            reply_routes.insert().values(
                operation_id=operation,
                user_id=user,
                channel=channel,
                thread_ts=thread_ts,
                response_url=response_url,
                created_at=at,
            )
        )


def route(conn: sa.Connection, operation: int) -> Route | None:
    row = conn.execute(
        sa.select(reply_routes).where(reply_routes.c.operation_id == operation)
    ).first()
    return Route(row.user_id, row.channel, row.thread_ts, row.response_url) if row else None
