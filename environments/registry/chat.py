"""Chat bookkeeping in the record: messages kept up to date, and requests already handled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from environments.registry.schema import chat_messages, request_keys, slack_deliveries


def _insert_ignoring_duplicates(conn: sa.Connection, table: sa.Table, **values: object) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on either database; True when the row is new."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    key = next(iter(table.primary_key.columns))
    # RETURNING tells reliably whether a row went in (rowcount does not, on every driver).
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing().returning(key)
    return conn.execute(statement).first() is not None


def first_time(conn: sa.Connection, key: str, at: datetime) -> bool:
    """Remember a request key; False when it was seen before (a retry or a replay)."""
    return _insert_ignoring_duplicates(conn, request_keys, key=key, seen_at=at)


def remember_message(conn: sa.Connection, key: str, channel: str, ts: str, at: datetime) -> None:
    if not _insert_ignoring_duplicates(
        conn, chat_messages, key=key, channel=channel, ts=ts, updated_at=at
    ):
        conn.execute(
            chat_messages.update()
            .where(chat_messages.c.key == key)
            .values(channel=channel, ts=ts, updated_at=at)
        )


def messages_under(conn: sa.Connection, prefix: str) -> list[tuple[str, str]]:
    """Every message whose key starts with `prefix` (channel, ts), in key order."""
    rows = conn.execute(
        sa.select(chat_messages.c.channel, chat_messages.c.ts)
        .where(chat_messages.c.key.startswith(prefix, autoescape=True))
        .order_by(chat_messages.c.key)
    )
    return [(row.channel, row.ts) for row in rows]


def message(conn: sa.Connection, key: str) -> tuple[str, str] | None:
    row = conn.execute(
        sa.select(chat_messages.c.channel, chat_messages.c.ts).where(chat_messages.c.key == key)
    ).first()
    return (row.channel, row.ts) if row else None


# --- Slack deliveries: recorded before the ack, taken at most once by any replica ------------

PENDING, TAKEN, REPLAYING = "pending", "taken", "replaying"


@dataclass(frozen=True)
class Delivery:
    """A recorded delivery no replica has taken yet."""

    key: str
    body: str


@dataclass(frozen=True)
class Arrival:
    """A delivery to record: its key, stored body, and (for a form) who took it at once."""

    key: str
    body: str
    taken_by: str | None = None


def record_deliveries(conn: sa.Connection, arrivals: list[Arrival], at: datetime) -> set[str]:
    """Remember deliveries before they are acknowledged (one INSERT … ON CONFLICT DO NOTHING);
    the keys that are new. A key recorded before is a retry; of copies in `arrivals`, the first
    counts. A delivery with `taken_by` acts in its acknowledgement, so nobody acts on it later.
    """
    unique = list({a.key: a for a in reversed(arrivals)}.values())
    rows = [
        {
            "key": a.key,
            "body": a.body,
            "received_at": at,
            "state": TAKEN if a.taken_by else PENDING,
            "taken_by": a.taken_by,
            "taken_at": at if a.taken_by else None,
        }
        for a in unique
    ]
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    statement = (
        dialect.insert(slack_deliveries)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(slack_deliveries.c.key)
    )
    return set(conn.execute(statement).scalars())


def take_delivery(conn: sa.Connection, key: str, *, owner: str, at: datetime) -> bool:
    """Take a delivery to act on it: one conditional UPDATE, so of every copy only one acts.

    A pending delivery may be taken by anyone; one being replayed only by its replayer.
    """
    taken = conn.execute(
        slack_deliveries.update()
        .where(
            slack_deliveries.c.key == key,
            sa.or_(
                slack_deliveries.c.state == PENDING,
                sa.and_(
                    slack_deliveries.c.state == REPLAYING, slack_deliveries.c.taken_by == owner
                ),
            ),
        )
        .values(state=TAKEN, taken_by=owner, taken_at=at)
    )
    return taken.rowcount == 1


def _overdue(now: datetime, grace: timedelta) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(slack_deliveries.c.state == PENDING, slack_deliveries.c.received_at < now - grace),
        sa.and_(slack_deliveries.c.state == REPLAYING, slack_deliveries.c.taken_at < now - grace),
    )


def overdue_deliveries(
    conn: sa.Connection, now: datetime, grace: timedelta, limit: int = 50
) -> list[Delivery]:
    """Deliveries acknowledged `grace` ago that nobody took (their replica died), oldest first."""
    rows = conn.execute(
        sa.select(slack_deliveries.c.key, slack_deliveries.c.body)
        .where(_overdue(now, grace))
        .order_by(slack_deliveries.c.received_at)
        .limit(limit)
    )
    return [Delivery(row.key, row.body) for row in rows]


def replay_delivery(
    conn: sa.Connection, key: str, *, owner: str, now: datetime, grace: timedelta
) -> bool:
    """Claim an overdue delivery for replaying it here; one conditional UPDATE."""
    claimed = conn.execute(
        slack_deliveries.update()
        .where(slack_deliveries.c.key == key, _overdue(now, grace))
        .values(state=REPLAYING, taken_by=owner, taken_at=now)
    )
    return claimed.rowcount == 1


def forget_deliveries(conn: sa.Connection, before: datetime) -> int:
    """Drop taken deliveries received before `before` (Slack retries within minutes)."""
    gone = conn.execute(
        slack_deliveries.delete().where(
            slack_deliveries.c.state == TAKEN, slack_deliveries.c.received_at < before
        )
    )
    return int(gone.rowcount)


def unclaimed(conn: sa.Connection) -> tuple[int, datetime | None]:
    """How many recorded deliveries no replica has taken yet, and the oldest one's arrival."""
    count, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(slack_deliveries.c.received_at)).where(
            slack_deliveries.c.state.in_([PENDING, REPLAYING])
        )
    ).one()
    return int(count), oldest
