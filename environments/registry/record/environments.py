"""Environments in the record: live ones by name, inserted, updated, current release."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from environments.errors import Conflict, NotFound, clip
from environments.model import (
    Environment,
    EnvironmentName,
    EnvironmentState,
    HealthStatus,
    Person,
    Version,
)
from environments.outcome import Hint
from environments.registry.record.releases import release_id
from environments.registry.schema import (
    environments,
    releases,
)

LIVE = environments.c.state != EnvironmentState.DESTROYED.value


RELEASE_VERSION = releases.c.version.label("release_version")
_env_select = sa.select(environments, RELEASE_VERSION).select_from(
    environments.outerjoin(releases, releases.c.id == environments.c.release_id)
)


def _environment(row: sa.Row[Any]) -> Environment:
    return Environment(
        id=row.id,
        name=EnvironmentName(row.name),
        type=row.type,
        state=EnvironmentState(row.state),
        owner=Person(row.owner),
        created_at=row.created_at,
        expires_at=row.expires_at,
        release=Version(row.release_version) if row.release_version else None,
        release_since=row.release_since,
        release_by=Person(row.release_by) if row.release_by else None,
        endpoint=row.endpoint,
        outputs=dict(row.outputs or {}),
        overrides=dict(row.overrides or {}),
        reason=row.reason,
        health=HealthStatus(row.health_status) if row.health_status else None,
        health_reason=row.health_reason,
        health_at=row.health_at,
    )


def _locked(query: sa.Select[Any], lock: bool) -> sa.Select[Any]:
    """With `lock`, the environment's row stays locked until the transaction ends (PostgreSQL
    `FOR UPDATE`; SQLite's write transaction already holds the whole database), so a
    read-modify-write of an environment cannot lose a concurrent one's change."""
    return query.with_for_update(of=environments) if lock else query


def find_environment(conn: sa.Connection, name: str, *, lock: bool = False) -> Environment | None:
    row = conn.execute(_locked(_env_select.where(environments.c.name == name, LIVE), lock)).first()
    return _environment(row) if row else None


def get_environment(conn: sa.Connection, name: str, *, lock: bool = False) -> Environment:
    found = find_environment(conn, name, lock=lock)
    if found is None:
        raise NotFound(
            f"there is no environment '{clip(name)}'",
            hints=(Hint("see the environments", "env list"), Hint("create it", "env create")),
        )
    return found


def environment_by_id(conn: sa.Connection, env_id: int, *, lock: bool = False) -> Environment:
    query = _locked(_env_select.where(environments.c.id == env_id), lock)
    return _environment(conn.execute(query).one())


def list_environments(
    conn: sa.Connection, *, env_type: str | None = None, owner: str | None = None
) -> list[Environment]:
    query = _env_select.where(LIVE).order_by(environments.c.type, environments.c.name)
    if env_type:
        query = query.where(environments.c.type == env_type)
    if owner:
        query = query.where(environments.c.owner == owner)
    return [_environment(row) for row in conn.execute(query)]


def insert_environment(
    conn: sa.Connection,
    *,
    name: str,
    env_type: str,
    owner: str,
    at: datetime,
    expires_at: datetime | None,
    overrides: dict[str, str],
) -> int:
    if find_environment(conn, name):
        raise Conflict(
            f"environment '{name}' already exists",
            hint="pick another name",
            hints=Hint("deploy into it", "env deploy", {"name": name, "release": None}),
        )
    return int(
        conn.execute(
            environments.insert()
            .values(
                name=name,
                type=env_type,
                state=EnvironmentState.REQUESTED.value,
                owner=owner,
                created_at=at,
                expires_at=expires_at,
                outputs={},
                overrides=overrides,
            )
            .returning(environments.c.id)
        ).scalar_one()
    )


def update_environment(conn: sa.Connection, env_id: int, **values: Any) -> None:
    if isinstance(values.get("state"), EnvironmentState):
        values["state"] = values["state"].value
    conn.execute(environments.update().where(environments.c.id == env_id).values(**values))


def set_current_release(
    conn: sa.Connection, env_id: int, *, deployment_id: int, release: str, by: str, at: datetime
) -> None:
    update_environment(
        conn,
        env_id,
        release_id=release_id(conn, release),
        release_since=at,
        release_by=by,
        release_deployment_id=deployment_id,
    )


def deployed_release_of_type(conn: sa.Connection, env_type: str) -> str | None:
    """The release most recently put into a live environment of this type, if any."""
    row = conn.execute(
        sa.select(releases.c.version)
        .join(environments, releases.c.id == environments.c.release_id)
        .where(
            environments.c.type == env_type,
            environments.c.state.not_in(("destroying", "destroyed")),
        )
        .order_by(environments.c.release_since.desc(), environments.c.id.desc())
        .limit(1)
    ).first()
    return str(row[0]) if row else None
