"""Load tests as people run them: real Locust against real processes, verdicts, gates, nightly."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.cli_loadtests import loadtest_compare, loadtest_history
from bot.runtime import Runtime
from environments.config.loadtests import VerdictRules
from environments.errors import Conflict, InvalidInput
from environments.loadtests.engine import Load
from environments.loadtests.engines import JMeterEngine
from environments.loadtests.verdicts import Outcome, compare
from environments.model import OperationState
from environments.registry import loadtests as runs
from environments.registry import record as rec
from tests.conftest import (
    EXAMPLES,
    MovableClock,
    RecordingNotifier,
    destroy_everything,
    person,
    sample_config,
)

alice, carol, dave = person("alice"), person("carol"), person("dave")
QUICK = timedelta(seconds=5)


@pytest.fixture
def rt(
    home: Path, tmp_path: Path, clock: MovableClock, notifier: RecordingNotifier
) -> Iterator[Runtime]:
    runtime = Runtime.open(
        # judged from 10 samples a label: a slow release serves few requests in 5 s
        str(sample_config(tmp_path, plan_extra="verdict: {min_samples: 10}")),
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
        clock=clock,
        notifier=notifier,
    )
    for version in ("1.0.0", "1.1.0"):
        runtime.lifecycle.add_release(
            person("ci"), version, str(EXAMPLES / f"game/releases/{version}")
        )
    yield runtime
    destroy_everything(runtime)
    runtime.close()


def settle(rt: Runtime, op_id: int | None) -> None:
    assert op_id is not None
    op = rt.worker.run(op_id)
    assert op is not None and op.state is OperationState.SUCCEEDED, op.error


def test_a_slower_release_is_flagged_and_cannot_be_promoted_without_a_reason(
    rt: Runtime, notifier: RecordingNotifier
) -> None:
    settle(rt, rt.lifecycle.create(alice, "pr-1", env_type="test", release="1.0.0").operation_id)
    first = rt.loadtesting.run(alice, "pr-1", users=5, duration=QUICK)
    assert first.outcome is Outcome.PASSED and first.baseline_release is None
    assert isinstance(first.total["samples"], int) and first.total["samples"] > 20
    assert first.chart is not None and first.chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    settle(rt, rt.lifecycle.deploy(alice, "pr-1", release="1.1.0").operation_id)
    second = rt.loadtesting.run(alice, "pr-1", users=5, duration=QUICK)
    assert second.outcome is Outcome.REGRESSED and second.baseline_release == "1.0.0"
    assert any("LoginDeviceId p95" in r for r in second.regressions)
    assert [k for k, _ in notifier.events].count("loadtest_finished") == 2
    with rt.database.read() as conn:
        recorded = runs.get(conn, second.run_id)
    assert recorded.outcome == "regressed" and recorded.baseline_run_id == first.run_id

    with pytest.raises(Conflict, match=r"last load test .* regressed") as refused:
        rt.lifecycle.promote(carol, "staging", release="1.1.0")
    assert "--override-reason" in refused.value.hint
    requested = rt.lifecycle.promote(
        carol, "staging", release="1.1.0", override_reason="hotfix for the login outage"
    )
    with rt.database.read() as conn:
        deployment = rec.get_deployment(conn, requested.deployment_id)
    assert deployment.override_reason == (
        f"override: hotfix for the login outage (load test #{second.run_id} regressed)"
    )

    listed = loadtest_history(rt, alice, argparse.Namespace(release=None, json=False))
    assert [r.outcome for r in listed.data] == ["regressed", "passed"]
    compared = loadtest_compare(
        rt, alice, argparse.Namespace(first=first.run_id, second=second.run_id, json=False)
    )
    assert "LoginDeviceId" in compared.text and "regressed" in compared.text


@pytest.mark.parametrize(
    ("p95", "errors", "expected"),
    [(100, 0.0, False), (109, 0.0, False), (112, 0.0, True), (100, 0.9, False), (100, 1.5, True)],
)
def test_compare_puts_p95_beyond_tolerance_or_more_errors_side_by_side(
    p95: float, errors: float, expected: bool
) -> None:
    baseline = {
        "TOTAL": {"p95": 100.0, "error_percent": 0.0},
        "Login": {"p95": 100.0, "error_percent": 0.0},
    }
    current = {
        "TOTAL": {"p95": p95, "error_percent": errors},
        "Login": {"p95": 90.0, "error_percent": 0.0},
    }
    comparisons = compare(current, baseline, VerdictRules(tolerance=0.10))
    assert [c.label for c in comparisons] == ["Login", "TOTAL"]
    assert comparisons[-1].regressed is expected


def test_jmeter_gets_the_load_as_properties_the_plan_reads(tmp_path: Path) -> None:
    command = JMeterEngine("/opt/jmeter/bin/jmeter").command(
        Path("plan.jmx"), "http://127.0.0.1:8080", Load(20, 5, timedelta(minutes=2)), tmp_path
    )
    assert command[:5] == ["/opt/jmeter/bin/jmeter", "-n", "-t", "plan.jmx", "-l"]
    assert {
        "-Jhost=127.0.0.1",
        "-Jport=8080",
        "-Jthreads=20",
        "-Jrampup=4",
        "-Jduration=120",
        "-Jprotocol=http",
    } <= set(command)
    with pytest.raises(InvalidInput, match="no JMeter binary"):
        JMeterEngine("").command(Path("p.jmx"), "http://127.0.0.1:1", Load(1, 1, QUICK), tmp_path)


def test_the_verdict_event_is_written_with_the_runs_final_record(rt: Runtime) -> None:
    """One transaction: a crash can never leave a verdict recorded that nobody hears of."""
    settle(rt, rt.lifecycle.create(alice, "pr-2", env_type="test", release="1.0.0").operation_id)
    open_statements: dict[int, list[str]] = {}
    committed: list[list[str]] = []

    def executed(conn: sa.Connection, _c: object, statement: str, *_: object) -> None:
        open_statements.setdefault(id(conn), []).append(statement.split("(")[0].strip())

    def commit(conn: sa.Connection) -> None:
        committed.append(open_statements.pop(id(conn), []))

    engine = rt.database.engine
    sa.event.listen(engine, "before_cursor_execute", executed)
    sa.event.listen(engine, "commit", commit)
    try:
        done = rt.loadtesting.run(alice, "pr-2", users=5, duration=QUICK)
    finally:
        sa.event.remove(engine, "before_cursor_execute", executed)
        sa.event.remove(engine, "commit", commit)
    finals = [t for t in committed if any(s.startswith("UPDATE loadtest_runs") for s in t)]
    assert len(finals) == 1, finals
    assert any(s.startswith("INSERT INTO outbox") for s in finals[0]), finals[0]
    with rt.database.read() as conn:
        assert runs.get(conn, done.run_id).outcome == done.outcome.value
