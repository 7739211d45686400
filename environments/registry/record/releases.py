"""Releases in the record: added once (immutable), found by version, listed newest first."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from environments.errors import Conflict, NotFound, clip
from environments.model import (
    Person,
    Release,
    Version,
)
from environments.outcome import Hint
from environments.registry.schema import (
    releases,
)


def _release(row: sa.Row[Any]) -> Release:
    return Release(
        version=Version(row.version),
        artifact=row.artifact,
        build_id=row.build_id,
        commit=row.commit,
        added_by=Person(row.added_by),
        added_at=row.added_at,
        build_run=row.build_run,
        build_number=row.build_number,
        build_artifact=row.build_artifact,
        source_ref=row.source_ref,
    )


def add_release(conn: sa.Connection, release: Release) -> None:
    if conn.execute(sa.select(releases.c.id).where(releases.c.version == release.version)).first():
        raise Conflict(
            f"release {release.version} is already in the record",
            hint="releases are immutable: give the new build a new version",
        )
    conn.execute(
        releases.insert().values(
            version=release.version,
            artifact=release.artifact,
            build_id=release.build_id,
            commit=release.commit,
            added_by=release.added_by,
            added_at=release.added_at,
            build_run=release.build_run,
            build_number=release.build_number,
            build_artifact=release.build_artifact,
            source_ref=release.source_ref,
        )
    )


def release_id(conn: sa.Connection, version: str) -> int:
    found = conn.execute(sa.select(releases.c.id).where(releases.c.version == version)).scalar()
    if found is None:
        raise NotFound(
            f"there is no release {clip(version)} in the record",
            hints=(
                Hint("add it", "release add", {"version": None, "artifact": None}),
                Hint("see the releases", "release list"),
            ),
        )
    return int(found)


def get_release(conn: sa.Connection, version: str) -> Release:
    row = conn.execute(sa.select(releases).where(releases.c.id == release_id(conn, version))).one()
    return _release(row)


def list_releases(conn: sa.Connection, limit: int = 100) -> list[Release]:
    rows = conn.execute(sa.select(releases).order_by(releases.c.id.desc()).limit(limit))
    return [_release(row) for row in rows]
