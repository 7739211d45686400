"""Alembic's migrations build exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from environments.registry import open_database
from environments.registry.schema import metadata


def test_migrations_match_the_declared_schema(database_url: str) -> None:
    database = open_database(database_url)
    try:
        with database.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
            version = conn.execute(sa.text("select version_num from alembic_version")).scalar()
        assert differences == []
        assert version is not None
    finally:
        database.dispose()


def test_opening_twice_migrates_once_and_keeps_data(database_url: str) -> None:
    first = open_database(database_url)
    with first.write() as conn:
        conn.execute(
            sa.text(
                'insert into releases (version, artifact, build_id, "commit", added_by, added_at) '
                "values ('1.0.0', '/x', '', '', 'ci', '2026-01-01 00:00:00')"
            )
        )
    first.dispose()
    second = open_database(database_url)
    with second.read() as conn:
        assert conn.execute(sa.text("select count(*) from releases")).scalar() == 1
    second.dispose()


def test_the_quick_head_check_agrees_with_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from environments.registry.database import MIGRATIONS, head_revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()
