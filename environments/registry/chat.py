"""Chat bookkeeping in the record: messages kept up to date, and requests already handled."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from environments.registry.schema import chat_messages, request_keys


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


def message(conn: sa.Connection, key: str) -> tuple[str, str] | None:
    row = conn.execute(
        sa.select(chat_messages.c.channel, chat_messages.c.ts).where(chat_messages.c.key == key)
    ).first()
    return (row.channel, row.ts) if row else None
