"""Reads and writes of API tokens: only a token's hash and its first characters are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from environments.registry.schema import api_tokens


@dataclass(frozen=True)
class ApiToken:
    """A token for scripts and pipeline steps; `prefix` names it, the secret is never kept."""

    id: int
    prefix: str
    scope: str
    environment_type: str | None
    description: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def _token(row: sa.Row[Any]) -> ApiToken:
    return ApiToken(
        id=row.id,
        prefix=row.prefix,
        scope=row.scope,
        environment_type=row.env_type,
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def insert_token(conn: sa.Connection, *, token_hash: str, **values: Any) -> ApiToken:
    token_id = conn.execute(
        api_tokens.insert().values(token_hash=token_hash, **values).returning(api_tokens.c.id)
    ).scalar_one()
    return _token(conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).one())


def find_by_hash(conn: sa.Connection, token_hash: str) -> ApiToken | None:
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == token_hash)).first()
    return _token(row) if row else None


def find_by_prefix(conn: sa.Connection, prefix: str) -> ApiToken | None:
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.prefix == prefix)).first()
    return _token(row) if row else None


def list_tokens(conn: sa.Connection) -> list[ApiToken]:
    return [_token(r) for r in conn.execute(sa.select(api_tokens).order_by(api_tokens.c.id))]


def update_token(conn: sa.Connection, token_id: int, **values: Any) -> None:
    conn.execute(api_tokens.update().where(api_tokens.c.id == token_id).values(**values))
