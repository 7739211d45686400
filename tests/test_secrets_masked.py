"""A secret Shipyard resolved never reaches the record, its logs, the terminal or a notifier."""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.cli import main
from environments import redaction
from tests.conftest import APPS, CONFIG


def dump_record(database_url: str) -> str:
    engine = sa.create_engine(database_url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return json.dumps(
                {
                    name: [list(map(str, row)) for row in conn.execute(sa.select(table))]
                    for name, table in meta.tables.items()
                },
                ensure_ascii=False,
            )
    finally:
        engine.dispose()


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    value = f"s3cr3t-{secrets.token_hex(8)}"
    monkeypatch.setenv("SHIPYARD_TEST_DB_SECRET", value)
    return value


def test_a_release_printing_its_secret_and_one_crashing_with_it_leak_nothing(
    tmp_path: Path,
    database_url: str,
    secret: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_CONFIG", str(CONFIG))
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", database_url)
    monkeypatch.setenv("SHIPYARD_USER", "alice")

    def shipyard(*args: str) -> int:
        return main(list(args))

    try:
        assert shipyard("release", "add", "7.0.0", "--artifact", str(APPS / "leaky")) == 0
        assert shipyard("release", "add", "7.0.1", "--artifact", str(APPS / "leaky_crash")) == 0
        assert (
            shipyard(
                "env",
                "create",
                "pr-77",
                "--type",
                "test",
                "--release",
                "7.0.0",
                "--set",
                "GAME_DB_PASSWORD=@env(SHIPYARD_TEST_DB_SECRET)",
            )
            == 0
        )
        log = next((tmp_path / "home" / "environments").glob("pr-77*/logs/instance-0.log"))
        assert secret in log.read_text(), "the release really printed it (its own log)"
        assert shipyard("env", "deploy", "pr-77", "--release", "7.0.1") == 8
        logging.getLogger("shipyard.test").warning("the app said: password %s refused", secret)
        for read in (("env", "history", "pr-77", "--json"), ("env", "show", "pr-77", "--json")):
            assert shipyard(*read) == 0
    finally:
        shipyard("env", "destroy", "pr-77")

    out, err = capsys.readouterr()
    record = dump_record(database_url)
    logged = caplog.text
    assert "was refused by db:5432" in err and "was refused by db:5432" in record
    assert redaction.MASK in err and redaction.MASK in record and redaction.MASK in logged
    for where, text in (("stdout", out), ("stderr", err), ("record", record), ("logs", logged)):
        assert secret not in text, f"the secret reached {where}"
