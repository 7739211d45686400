"""Deploy windows: business hours and freezes per type, with a fixed clock.

Pure predicates first (when is it open, when does it open next), then the real lifecycle and
worker on SQLite: refused with the next opening, queued `--when-open` and started by the worker
when the window opens, overridden by an admin with a reason recorded for approvers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.runtime import Runtime
from environments import windows
from environments.catalog import load_catalog
from environments.errors import ConfigError, Conflict, PolicyRefused
from environments.model import OperationState
from environments.registry import record as rec
from tests.conftest import EXAMPLES, MovableClock, destroy_everything, person

STOCKHOLM = ZoneInfo("Europe/Stockholm")
WINDOWS = windows.Windows.model_validate(
    {
        "timezone": "Europe/Stockholm",
        "open": [{"days": "mon-fri", "hours": "09:00-17:00"}],
        "frozen": [{"from": "2026-12-19", "until": "2027-01-03", "reason": "holidays"}],
    }
)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM)


@pytest.mark.parametrize(
    ("at", "closed", "opens"),
    [
        ("2026-12-07 10:00", None, "2026-12-07 10:00"),  # Monday, in hours
        ("2026-12-07 08:59", "outside deploy hours", "2026-12-07 09:00"),
        ("2026-12-07 17:00", "outside deploy hours", "2026-12-08 09:00"),
        ("2026-12-05 12:00", "outside deploy hours", "2026-12-07 09:00"),  # Saturday
        ("2026-12-18 16:59", None, "2026-12-18 16:59"),  # Friday before the freeze
        ("2026-12-21 10:00", "frozen from 2026-12-19 to 2027-01-03 (holidays)", "2027-01-04 09:00"),
    ],
)
def test_when_the_window_is_open_and_when_it_opens_next(
    at: str, closed: str | None, opens: str
) -> None:
    why = windows.closed_because(WINDOWS, local(at))
    assert (why is None) == (closed is None)
    if closed is not None:
        assert why is not None and why.startswith(closed)
    assert windows.next_opening(WINDOWS, local(at)) == local(opens)


def test_the_window_is_read_in_its_own_timezone() -> None:
    # 08:30 UTC on a Monday in December is 09:30 in Stockholm: open.
    assert windows.closed_because(WINDOWS, datetime(2026, 12, 7, 8, 30, tzinfo=UTC)) is None
    assert windows.closed_because(WINDOWS, datetime(2026, 12, 7, 7, 30, tzinfo=UTC)) is not None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"open": [{"days": "monday-fri"}]}, "is not a list of days"),
        ({"open": [{"hours": "9-17"}]}, "is not a time range"),
        ({"open": [{"hours": "17:00-09:00"}]}, "ends before it starts"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
    ],
)
def test_bad_windows_are_refused_with_file_and_line(
    tmp_path: Path, body: dict[str, object], problem: str
) -> None:
    import yaml

    config = yaml.safe_load((EXAMPLES / "shipyard.yaml").read_text(encoding="utf-8"))
    config["types"]["test"]["windows"] = body
    path = tmp_path / "shipyard.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError, match=problem) as refused:
        load_catalog(path)
    assert str(path) in refused.value.reason


def test_the_gate_is_a_pure_predicate() -> None:
    saturday = local("2026-12-05 12:00")
    with pytest.raises(Conflict) as refused:
        windows.gate("test", WINDOWS, saturday, person="alice", admin=False)
    assert "next opening is 2026-12-07 09:00 Europe/Stockholm" in refused.value.reason
    assert "--when-open" in refused.value.hint
    queued = windows.gate("test", WINDOWS, saturday, person="alice", admin=False, when_open=True)
    assert queued.opens_at == local("2026-12-07 09:00")
    with pytest.raises(PolicyRefused, match="only an admin"):
        windows.gate("test", WINDOWS, saturday, person="alice", admin=False, override="hotfix")
    overridden = windows.gate("test", WINDOWS, saturday, person="dave", admin=True, override="fix")
    assert overridden.override is not None and "by dave: fix" in overridden.override
    assert windows.gate("test", None, saturday, person="alice", admin=False).opens_at is None


# --- through the lifecycle and the worker ----------------------------------------------------


@pytest.fixture
def windowed(home: Path, tmp_path: Path) -> Iterator[tuple[Runtime, MovableClock]]:
    """The sample configuration with business hours and a freeze on `test`; a fixed clock."""
    text = (EXAMPLES / "shipyard.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "    description: on-demand, isolated, short-lived\n",
        "    description: on-demand, isolated, short-lived\n"
        "    windows:\n"
        "      timezone: Europe/Stockholm\n"
        "      open: [{days: mon-fri, hours: '09:00-17:00'}]\n"
        "      frozen: [{from: 2026-12-19, until: 2027-01-03, reason: holidays}]\n",
    )
    text = text.replace("file: loadtests/login.py", f"file: {EXAMPLES / 'loadtests/login.py'}")
    config = tmp_path / "shipyard.yaml"
    config.write_text(text, encoding="utf-8")
    clock = MovableClock()
    clock.moment = local("2026-12-04 10:00").astimezone(UTC)  # a Friday, open
    rt = Runtime.open(str(config), database_url=f"sqlite:///{tmp_path / 'r.db'}", clock=clock)
    ci = person("ci")
    for version in ("1.0.0", "1.1.0"):
        rt.lifecycle.add_release(ci, version, str(EXAMPLES / f"game/releases/{version}"))
    created = rt.lifecycle.create(person("alice"), "pr-1", env_type="test", release="1.0.0")
    assert created.operation_id is not None
    finished = rt.worker.run(created.operation_id)
    assert finished is not None and finished.state is OperationState.SUCCEEDED
    yield rt, clock
    destroy_everything(rt)
    rt.close()


def test_outside_hours_a_deploy_is_refused_with_the_next_opening(
    windowed: tuple[Runtime, MovableClock],
) -> None:
    rt, clock = windowed
    clock.moment = local("2026-12-05 12:00").astimezone(UTC)  # Saturday
    with rt.database.read() as conn:
        before = rec.history(conn, "pr-1")
    with pytest.raises(Conflict) as refused:
        rt.lifecycle.deploy(person("alice"), "pr-1", release="1.1.0")
    assert "test is outside deploy hours" in refused.value.reason
    assert "2026-12-07 09:00 Europe/Stockholm" in refused.value.reason
    with rt.database.read() as conn:
        assert rec.history(conn, "pr-1") == before  # a refusal changes nothing


def test_when_open_queues_it_and_the_worker_starts_it_when_the_window_opens(
    windowed: tuple[Runtime, MovableClock],
) -> None:
    rt, clock = windowed
    clock.moment = local("2026-12-05 12:00").astimezone(UTC)  # Saturday
    requested = rt.lifecycle.deploy(person("alice"), "pr-1", release="1.1.0", when_open=True)
    assert requested.opens_at == local("2026-12-07 09:00")
    assert requested.operation_id is not None
    assert rt.worker.run_pending() == []  # held while closed
    assert rt.worker.run(requested.operation_id, wait=False) is None
    clock.moment = local("2026-12-07 08:59").astimezone(UTC)
    assert rt.worker.run_pending() == []
    clock.advance(timedelta(minutes=1))  # Monday 09:00: open
    (done,) = rt.worker.run_pending()
    assert done.id == requested.operation_id and done.state is OperationState.SUCCEEDED
    with rt.database.read() as conn:
        assert rec.get_environment(conn, "pr-1").release == "1.1.0"


def test_an_admin_overrides_a_freeze_with_a_reason_shown_to_approvers(
    windowed: tuple[Runtime, MovableClock],
) -> None:
    rt, clock = windowed
    clock.moment = local("2026-12-22 10:00").astimezone(UTC)  # frozen for the holidays
    with pytest.raises(PolicyRefused, match="only an admin"):
        rt.lifecycle.deploy(person("alice"), "pr-1", release="1.1.0", window_override="urgent")
    requested = rt.lifecycle.deploy(
        person("dave"), "pr-1", release="1.1.0", window_override="security fix"
    )
    assert requested.opens_at is None and requested.operation_id is not None
    with rt.database.read() as conn:
        deployment = rec.get_deployment(conn, requested.deployment_id)
    assert deployment.override_reason is not None
    assert "by dave: security fix" in deployment.override_reason
    assert "holidays" in deployment.override_reason
    finished = rt.worker.run(requested.operation_id)
    assert finished is not None and finished.state is OperationState.SUCCEEDED
