"""Shared fixtures: real SQLite files and a real PostgreSQL database per test, runtimes, clocks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.runtime import Runtime
from environments.model import Approval, Environment
from environments.policy import Actor, Channel
from environments.registry import record as rec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CONFIG = EXAMPLES / "shipyard.yaml"
APPS = Path(__file__).parent / "apps"
POSTGRES_ADMIN_URL = os.environ.get(
    "SHIPYARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def person(name: str) -> Actor:
    return Actor(person=name, channel=Channel.CLI)


class MovableClock:
    """A clock the test moves forward by hand."""

    def __init__(self) -> None:
        self.moment = datetime.now(UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


class RecordingNotifier:
    """Keeps what the core told people, for assertions."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def approval_requested(self, approval: Approval) -> None:
        self.events.append(("approval_requested", approval))

    def approval_changed(self, approval: Approval) -> None:
        self.events.append(("approval_changed", approval))

    def progress(self, environment: str, message: str, *, operation: int) -> None:
        self.events.append(("progress", message))

    def environment_ready(self, environment: Environment, *, operation: int) -> None:
        self.events.append(("ready", environment))

    def failed(self, environment: str, reason: str, hint: str, *, operation: int) -> None:
        self.events.append(("failed", reason))

    def expiry_warning(self, environment: Environment) -> None:
        self.events.append(("expiry_warning", environment.name))

    def loadtest_finished(self, summary: object) -> None:
        self.events.append(("loadtest_finished", summary))

    def health_changed(self, environment: Environment, previous: object, report: object) -> None:
        self.events.append(("health_changed", (environment.name, previous, report)))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        reason = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (PostgreSQL is mandatory when CI=true)")
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_admin: sa.Engine) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'record.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("SHIPYARD_HOME", str(folder))
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    return folder


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def runtime(
    home: Path, database_url: str, clock: MovableClock, notifier: RecordingNotifier
) -> Iterator[Runtime]:
    """A runtime on the sample configuration with releases 1.0.0, 1.1.0 and two test apps."""
    rt = Runtime.open(str(CONFIG), database_url=database_url, clock=clock, notifier=notifier)
    ci = person("ci")
    for version, folder in (
        ("1.0.0", EXAMPLES / "game/releases/1.0.0"),
        ("1.1.0", EXAMPLES / "game/releases/1.1.0"),
        ("9.9.9-broken", APPS / "broken"),
    ):
        rt.lifecycle.add_release(ci, version, str(folder))
    yield rt
    destroy_everything(rt)
    rt.close()


def destroy_everything(rt: Runtime) -> None:
    """Stop every process a test started, whatever state its environment was left in."""
    with rt.database.read() as conn:
        live = rec.list_environments(conn)
    for env in live:
        rt.worker.providers["local"].destroy(env, progress=lambda _: None)


def sample_config(tmp_path: Path, *, plan_extra: str = "", duration: str | None = None) -> Path:
    """A copy of the sample configuration in tmp_path (its plan file by absolute path), the
    `login` plan given more lines (`plan_extra`, YAML at the plan's indentation) or a duration."""
    text = CONFIG.read_text(encoding="utf-8").replace(
        "file: loadtests/login.py",
        f"file: {EXAMPLES / 'loadtests/login.py'}" + (f"\n    {plan_extra}" if plan_extra else ""),
    )
    if duration is not None:
        text = text.replace("duration: 8s", f"duration: {duration}")
    path = tmp_path / "shipyard.yaml"
    path.write_text(text, encoding="utf-8")
    return path
