"""Open the record's database (SQLite in SHIPYARD_HOME or SHIPYARD_DATABASE_URL); migrate it."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from environments import redaction
from environments.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")


def shipyard_home() -> Path:
    """SHIPYARD_HOME, default ~/.local/share/shipyard: the record, environments' folders, logs."""
    home = Path(os.environ.get("SHIPYARD_HOME") or Path.home() / ".local/share/shipyard")
    home.mkdir(parents=True, exist_ok=True)
    return home


def database_url(home: Path) -> str:
    return os.environ.get("SHIPYARD_DATABASE_URL") or f"sqlite:///{home / 'shipyard.db'}"


@dataclass
class Database:
    """An engine plus the transaction helpers every repository call goes through."""

    engine: sa.Engine
    _local_writer: threading.RLock = field(default_factory=threading.RLock)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE).

        On SQLite, threads of one process also queue on a lock of their own first: waiting in
        SQLite's busy handler sleeps in growing steps (up to 100 ms), a lock hands over at once.
        """
        with (
            self._local_writer if self.is_sqlite else contextlib.nullcontext(),
            self.engine.connect().execution_options(shipyard_write=True) as conn,
            conn.begin(),
        ):
            yield conn

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest revision (a no-op when it is there already).

        The common case (already there) is one query; Alembic is only imported to upgrade.
        """
        with self.engine.connect() as conn:
            try:
                current = conn.execute(sa.text("select version_num from alembic_version")).scalar()
            except sa.exc.DBAPIError:
                current = None
            conn.rollback()
        if current == head_revision():
            return
        from alembic import command

        with self.engine.begin() as conn:
            config = _alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


def head_revision() -> str:
    """The newest migration's id, read from the migration files without importing Alembic."""
    revisions: dict[str, str | None] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision = re.search(r"^revision = ['\"](\w+)['\"]", text, re.M)
        down = re.search(r"^down_revision = (?:['\"](\w+)['\"]|None)", text, re.M)
        if revision:
            revisions[revision.group(1)] = down.group(1) if down else None
    heads = set(revisions) - {d for d in revisions.values() if d}
    if len(heads) != 1:
        raise ConfigError(
            f"migrations have {len(heads)} heads: {sorted(heads)}",
            hint="merge the migration branches",
        )
    return heads.pop()


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def open_database(url: str | None = None, *, migrate: bool = True) -> Database:
    """Open (and migrate) the record at `url`, else SHIPYARD_DATABASE_URL, else the home's."""
    url = url or database_url(shipyard_home())
    try:
        engine = _engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise ConfigError(
            f"cannot use database URL {sa.engine.make_url(url).render_as_string()}: {exc}",
            hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
        ) from None
    # Nothing the record keeps may carry a secret value this process resolved (see redaction).
    sa.event.listen(engine, "before_cursor_execute", _masked_parameters, retval=True)
    database = Database(engine)
    if migrate:
        try:
            database.migrate()
        except sa.exc.OperationalError as exc:
            raise ConfigError(
                f"cannot reach the record at {engine.url.render_as_string()}: "
                f"{str(exc.orig).strip().splitlines()[0]}",
                hint="check SHIPYARD_DATABASE_URL and that the database server is running",
            ) from None
    return database


def _masked_parameters(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> tuple[str, Any]:
    if parameters and redaction.active():
        parameters = _mask_bound(parameters)
    return statement, parameters


def _mask_bound(value: Any) -> Any:
    """Bound values masked, including JSON that psycopg receives wrapped (Json(obj), Jsonb(obj))."""
    if isinstance(value, dict):
        return {key: _mask_bound(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask_bound(item) for item in value)
    if type(value).__name__ in ("Json", "Jsonb") and hasattr(value, "obj"):
        return type(value)(redaction.mask_data(value.obj))
    return redaction.mask_data(value)


def _engine(url: str) -> sa.Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself so write transactions can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get("shipyard_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
