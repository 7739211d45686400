"""Fail criteria as tables, and `shipyard loadtest report` as a person runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from environments.errors import InvalidInput
from environments.loadtests.criteria import (
    Criterion,
    Verdict,
    evaluate,
    evaluate_all,
    needs_latency,
    parse_criterion,
    passed,
    percentiles_needed,
)
from environments.loadtests.results import (
    TOTAL,
    AggregateReport,
    Distribution,
    LabelStats,
    ResultFormat,
)
from tests.conftest import CONFIG
from tests.reference import REFERENCE

ROOT = Path(__file__).resolve().parents[1]
JMETER = REFERENCE / "jmeter"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("avg(response_time_ms) > 300", Criterion("avg", "response_time_ms", ">", 300)),
        ("p95(response_time_ms) > 500", Criterion("p95", "response_time_ms", ">", 500)),
        ("P99(Response_Time_ms)<1000.5", Criterion("p99", "response_time_ms", "<", 1000.5)),
        ("min(response_time_ms) < 1", Criterion("min", "response_time_ms", "<", 1)),
        ("max(response_time_ms) > 9000", Criterion("max", "response_time_ms", ">", 9000)),
        ("p999(response_time_ms) > 2000", Criterion("p999", "response_time_ms", ">", 2000)),
        ("percentage(error) > 5", Criterion("percentage", "error", ">", 5)),
        ("avg(requests_per_sec) < 10", Criterion("avg", "requests_per_sec", "<", 10)),
        ("requests_per_sec < 10", Criterion("avg", "requests_per_sec", "<", 10)),
        ("count(requests) < 100", Criterion("count", "requests", "<", 100)),
        ("avg(latency) > 200", Criterion("avg", "latency", ">", 200)),
        ("avg(latency_ms) > 200", Criterion("avg", "latency", ">", 200)),
        (
            "LoginDeviceId: p95(response_time_ms) > 500",
            Criterion("p95", "response_time_ms", ">", 500, "LoginDeviceId"),
        ),
        (
            "GET: /api/v1: avg(response_time_ms) > 5",
            Criterion("avg", "response_time_ms", ">", 5, "GET: /api/v1"),
        ),
        (
            "  Requête HTTP :  max(latency) > 3 ",
            Criterion("max", "latency", ">", 3, "Requête HTTP"),
        ),
    ],
)
def test_parse_a_criterion(text: str, expected: Criterion) -> None:
    assert parse_criterion(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is not a criterion"),
        ("p95 > 500", "is not a criterion"),
        ("p95(response_time_ms) 500", "is not a criterion"),
        ("p95(response_time_ms) > fast", "is not a criterion"),
        ("avg(response_time_ms) >= 300", "condition '>=' is not supported"),
        ("avg(response_time_ms) = 300", "condition '=' is not supported"),
        ("avg(throughput) > 3", "unknown metric 'throughput'"),
        ("median(response_time_ms) > 3", "response_time_ms has no median()"),
        ("p42(response_time_ms) > 3", "response_time_ms has no p42()"),
        ("p75(latency) > 3", "latency has no p75()"),
        ("avg(error) > 3", "error has no avg()"),
        ("percentage(error) > 101", "between 0 and 100"),
        ("count(requests_per_sec) > 1", "requests_per_sec has no count()"),
    ],
)
def test_a_malformed_criterion_is_refused_in_one_line(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_criterion(text)
    assert problem in refused.value.one_line()
    assert "\n" not in refused.value.one_line()


def test_the_percent_of_a_percentile_function() -> None:
    assert [parse_criterion(f"{f}(response_time_ms) > 1").percentile for f in ("p50", "p999")] == [
        50.0,
        99.9,
    ]
    assert parse_criterion("p9999(response_time_ms) > 1").percentile == 99.99
    assert parse_criterion("percentage(error) > 1").percentile is None
    criteria = [parse_criterion(t) for t in ("p97(response_time_ms) > 1", "avg(latency) > 1")]
    assert percentiles_needed(criteria) == {97.0}
    assert needs_latency(criteria)


def row(label: str, **changes: object) -> LabelStats:
    values: dict[str, object] = {
        "label": label,
        "samples": 200,
        "errors": 10,
        "response_time": Distribution(250.0, 20, 1500, {50.0: 200, 95.0: 600, 99.0: 900}),
        "throughput_per_sec": 12.5,
        "received_kb_per_sec": 3.0,
        "latency": Distribution(100.0, 5, 700, {50.0: 90}),
    }
    values.update(changes)
    return LabelStats(**values)  # type: ignore[arg-type]


REPORT = AggregateReport(
    source="run.jtl",
    format=ResultFormat.JMETER_CSV,
    rows=(
        row("LoginDeviceId", response_time=Distribution(400.0, 50, 800, {95.0: 700})),
        row("Home", errors=0, throughput_per_sec=None, latency=None),
    ),
    total=row(TOTAL),
    method="exact",
)


@pytest.mark.parametrize(
    ("text", "verdict", "measured"),
    [
        ("avg(response_time_ms) > 300", Verdict.PASSED, 250.0),
        ("avg(response_time_ms) > 200", Verdict.FAILED, 250.0),
        ("avg(response_time_ms) < 300", Verdict.FAILED, 250.0),
        ("avg(response_time_ms) > 250", Verdict.PASSED, 250.0),  # not greater: passes
        ("p95(response_time_ms) > 500", Verdict.FAILED, 600),
        ("p99(response_time_ms) > 1000", Verdict.PASSED, 900),
        ("min(response_time_ms) < 10", Verdict.PASSED, 20),
        ("max(response_time_ms) > 1000", Verdict.FAILED, 1500),
        ("percentage(error) > 5", Verdict.PASSED, 5.0),
        ("percentage(error) > 4.9", Verdict.FAILED, 5.0),
        ("requests_per_sec < 10", Verdict.PASSED, 12.5),
        ("avg(requests_per_sec) < 20", Verdict.FAILED, 12.5),
        ("count(requests) < 100", Verdict.PASSED, 200),
        ("avg(latency) > 99", Verdict.FAILED, 100.0),
        ("p50(latency) > 99", Verdict.PASSED, 90),
        ("LoginDeviceId: p95(response_time_ms) > 500", Verdict.FAILED, 700),
        ("LoginDeviceId: avg(response_time_ms) < 500", Verdict.FAILED, 400.0),
        ("Home: percentage(error) > 0", Verdict.PASSED, 0.0),
        ("Home: requests_per_sec < 1", Verdict.NOT_MEASURED, None),
        ("Home: avg(latency) > 1", Verdict.NOT_MEASURED, None),
        ("p97(response_time_ms) > 1", Verdict.NOT_MEASURED, None),
        ("Nobody: avg(response_time_ms) > 1", Verdict.NOT_MEASURED, None),
    ],
)
def test_evaluate_a_criterion(text: str, verdict: Verdict, measured: float | None) -> None:
    outcome = evaluate(parse_criterion(text), REPORT)
    assert (outcome.verdict, outcome.measured) == (verdict, measured)
    assert outcome.describe().startswith(f"{parse_criterion(text)}: {verdict}")


def test_a_run_passes_only_when_every_criterion_passes() -> None:
    ok = [parse_criterion("avg(response_time_ms) > 300"), parse_criterion("percentage(error) > 9")]
    assert passed(evaluate_all(ok, REPORT))
    unknown = [*ok, parse_criterion("Nobody: avg(response_time_ms) > 1")]
    assert not passed(evaluate_all(unknown, REPORT))
    assert passed(())
    note = evaluate(unknown[-1], REPORT).describe()
    assert "no request named it; requests: LoginDeviceId, Home" in note


# --- `shipyard loadtest report` ---------------------------------------------------------------


def shipyard(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "home"), "SHIPYARD_CONFIG": str(CONFIG)}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "loadtest", "report", *args],
        env=env,
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.e2e
def test_the_report_of_a_real_file(tmp_path: Path) -> None:
    done = shipyard(tmp_path, str(JMETER / "HTMLReportTestFile.csv"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("HTMLReportTestFile.csv (jmeter-csv, 255 samples)")
    assert lines[1].split() == [
        *("LABEL", "SAMPLES", "AVERAGE", "MEDIAN", "90%", "LINE", "95%", "LINE", "99%", "LINE"),
        *("MIN", "MAX", "ERROR", "%", "THROUGHPUT", "RECEIVED", "KB/SEC"),
    ]
    assert lines[3].split() == [
        *("JR-KO", "3", "199", "170", "329", "329", "329", "100", "329", "100.00%", "4.8/min"),
        "0.00",
    ]
    assert lines[4].split()[:3] == ["TOTAL", "255", "235"]


@pytest.mark.e2e
def test_json_and_criteria_that_pass(tmp_path: Path) -> None:
    done = shipyard(
        tmp_path,
        str(JMETER / "sample_log1c.jtl"),
        "--json",
        "--criteria",
        "p95(response_time_ms) > 500",
        "jakarta_home: p99(response_time_ms) > 800",
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["passed"] is True
    assert data["total"]["samples"] == 2000
    assert [r["label"] for r in data["rows"]] == ["jakarta_home", "jmeter_home"]
    assert [c["verdict"] for c in data["criteria"]] == ["passed", "passed"]
    assert data["criteria"][1]["measured"] == 751


@pytest.mark.e2e
def test_a_failed_criterion_shows_the_report_and_exits_non_zero(tmp_path: Path) -> None:
    done = shipyard(
        tmp_path,
        str(JMETER / "HTMLReportTestFile.csv"),
        "--criteria",
        "percentage(error) > 1",
        "JR-OK: avg(response_time_ms) > 500",
    )
    assert done.returncode == 9  # a failed load test, as `env loadtest` (1 is a bug)
    assert "TOTAL" in done.stdout
    assert "percentage(error) > 1: failed (measured 1.18%)" in done.stdout
    assert "JR-OK: avg(response_time_ms) > 500: passed (measured 235.9 ms)" in done.stdout
    assert done.stderr.startswith("shipyard: 1 of 2 criteria not met: percentage(error) > 1")
    assert "Traceback" not in done.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jtl"], "missing.jtl: no such file"),
        ([str(JMETER / "Load_JMeter_Page.jmx")], "is a JMeter test plan (.jmx), not results"),
        (
            [str(JMETER / "BatchTestLocal.csv"), "--criteria", "p95(response_time) > 1"],
            "unknown metric 'response_time'",
        ),
        ([], "the following arguments are required: FILE"),
    ],
)
def test_bad_input_exits_2_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = shipyard(tmp_path, *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""
