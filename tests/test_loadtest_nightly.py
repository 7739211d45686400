"""Nightly runs that always clean up: unique names, errored runs recorded, signals, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.runtime import Runtime
from environments.config.loadtests import Schedule
from environments.model import EnvironmentState, check_environment_name
from environments.nightly import environment_name, recover, run_nightly
from environments.registry import loadtests as runs
from environments.registry import record as rec
from tests.conftest import (
    APPS,
    EXAMPLES,
    MovableClock,
    RecordingNotifier,
    destroy_everything,
    person,
    sample_config,
)

ROOT = Path(__file__).resolve().parents[1]
NIGHTLY = Schedule(cron="0 2 * * *", type="test", plan="login")


@pytest.fixture
def rt(
    home: Path, tmp_path: Path, clock: MovableClock, notifier: RecordingNotifier
) -> Iterator[Runtime]:
    runtime = Runtime.open(
        str(sample_config(tmp_path, duration="4s")),
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
        clock=clock,
        notifier=notifier,
    )
    runtime.lifecycle.add_release(person("ci"), "1.0.0", str(EXAMPLES / "game/releases/1.0.0"))
    yield runtime
    destroy_everything(runtime)
    runtime.close()


def live(rt: Runtime) -> list[str]:
    with rt.database.read() as conn:
        return [e.name for e in rec.list_environments(conn)]


def test_names_are_unique_per_schedule_and_run_and_valid(rt: Runtime) -> None:
    names = {environment_name("nightly", rt.lifecycle) for _ in range(50)}
    assert len(names) == 50, "the same schedule in the same minute: still distinct"
    other = environment_name("nightly-eu", rt.lifecycle)
    assert other.startswith("nightly-eu-") and other not in names
    for schedule in ("nightly", "Very Long Schedule Name For The Weekly Soak Test", "2am"):
        name = environment_name(schedule, rt.lifecycle)
        assert check_environment_name(name) == name and len(name) <= 40


def test_a_nightly_whose_deploy_failed_is_an_errored_run_with_reason_and_logs(
    rt: Runtime,
) -> None:
    rt.lifecycle.add_release(person("ci"), "2.0.0-broken", str(APPS / "broken"))
    result = run_nightly(
        rt.lifecycle, rt.worker, rt.loadtesting, NIGHTLY, name="nightly", triggered_by="dave"
    )
    assert result.outcome == "errored" and "did not come up" in result.line
    assert live(rt) == [], "the environment was destroyed"
    with rt.database.read() as conn:
        run = runs.get(conn, result.run_id or 0)
    assert run.outcome == "errored" and run.release == "2.0.0-broken"
    assert run.schedule == "nightly" and run.requested_by == "dave"
    assert run.error is not None and "did not come up" in run.error
    kept = Path(run.folder or "") / "environment-logs"
    assert "logs kept in" in run.error and any(kept.rglob("*.log")), "logs outlive the environment"


def test_a_nightly_without_its_plan_errs_and_leaves_nothing(rt: Runtime) -> None:
    result = run_nightly(
        rt.lifecycle, rt.worker, rt.loadtesting, Schedule(cron="0 2 * * *", plan="no-such-plan")
    )
    assert result.outcome == "errored" and "no load-test plan 'no-such-plan'" in result.line
    assert live(rt) == []


def test_the_next_start_closes_a_crashed_run_and_destroys_its_environment(
    rt: Runtime, clock: MovableClock
) -> None:
    """A process killed outright (no handler runs) left a run `running` and its environment up."""
    dave = person("dave")
    run_id = rt.loadtesting.begin(
        dave,
        environment="nightly-crashed",
        env_type="test",
        release="1.0.0",
        plan="login",
        schedule="nightly",
    )
    requested = rt.lifecycle.create(dave, "nightly-crashed", env_type="test", release="1.0.0")
    rt.worker.run(requested.operation_id or 0)
    assert live(rt) == ["nightly-crashed"]
    assert recover(rt.lifecycle, rt.worker, rt.loadtesting) == [], "it may still be running"
    clock.advance(timedelta(hours=1))
    assert recover(rt.lifecycle, rt.worker, rt.loadtesting) == [run_id]
    assert live(rt) == []
    with rt.database.read() as conn:
        run = runs.get(conn, run_id)
        env = rec.find_environment(conn, "nightly-crashed")
    assert run.outcome == "errored" and "interrupted" in (run.error or "")
    assert env is None or env.state is EnvironmentState.DESTROYED


def test_schedule_run_exits_with_the_verdict_and_sigterm_still_cleans_up(
    tmp_path: Path, home: Path
) -> None:
    """`shipyard schedule run nightly` to the end (verdict line, chart, exit 0), then once more
    killed with SIGTERM mid-test: the environment is gone and the run is `errored`."""
    database = tmp_path / "cli.db"
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(home),
        "SHIPYARD_CONFIG": str(sample_config(tmp_path, duration="4s")),
        "SHIPYARD_DATABASE_URL": f"sqlite:///{database}",
    }

    def shipyard(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *args, "--as", "dave"],
            env=env,
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    added = shipyard("release", "add", "1.0.0", "--artifact", str(EXAMPLES / "game/releases/1.0.0"))
    assert added.wait(60) == 0, added.communicate()
    done = shipyard("schedule", "run", "nightly")
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert "schedule nightly: passed: 1.0.0 on nightly-" in out and "chart: " in out
    chart = Path(out.split("chart: ")[1].split()[0])
    assert chart.read_bytes()[:4] == b"\x89PNG"

    killed = shipyard("schedule", "run", "nightly")
    deadline = time.monotonic() + 90
    while not list((home / "loadtests").glob("run-2/samples.jtl")):
        assert killed.poll() is None and time.monotonic() < deadline, killed.communicate()
        time.sleep(0.2)
    time.sleep(1.0)  # mid-load
    killed.send_signal(signal.SIGTERM)
    _, err = killed.communicate(timeout=60)
    assert killed.returncode != 0

    runtime = Runtime.open(env["SHIPYARD_CONFIG"], database_url=env["SHIPYARD_DATABASE_URL"])
    try:
        recover(runtime.lifecycle, runtime.worker, runtime.loadtesting)  # the next start
        assert live(runtime) == []
        with runtime.database.read() as conn:
            first, second = runs.get(conn, 1), runs.get(conn, 2)
        assert first.outcome == "passed" and first.schedule == "nightly"
        assert first.requested_by == "dave"
        assert second.outcome == "errored" and "interrupted" in (second.error or ""), err
    finally:
        destroy_everything(runtime)
        runtime.close()
