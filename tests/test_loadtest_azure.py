"""The azure-load-testing engine: the real azure-developer-loadtesting SDK against a fake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.runtime import load_engines
from environments.errors import InvalidInput, ProviderError
from environments.loadtests.azure import AzureLoadTestingEngine, load_test_id
from environments.loadtests.engine import Load
from environments.providers.azure_credentials import StaticTokenCredential
from tests.fakes.loadtesting import FakeLoadTesting

LOAD = Load(users=7, spawn_rate=7, duration=timedelta(seconds=2))
PLAN = """<?xml version="1.0" encoding="UTF-8"?>
<jmeterTestPlan version="1.2" properties="5.0"><hashTree/></jmeterTestPlan>
"""


@pytest.fixture
def alt() -> Iterator[FakeLoadTesting]:
    with FakeLoadTesting() as fake:
        yield fake


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "Checkout Flow.jmx"
    path.write_text(PLAN)
    return path


def make(alt: FakeLoadTesting) -> AzureLoadTestingEngine:
    return AzureLoadTestingEngine(
        alt.endpoint,
        StaticTokenCredential("fake-token"),
        poll_interval=0.05,
        request_timeout=5,
        validation_timeout=5,
        run_grace=5,
        client_options={"connection_verify": str(alt.ca_file)},
    )


def test_a_run_reports_the_samples_of_the_result_file(
    alt: FakeLoadTesting, plan: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    done = make(alt).run(plan, "https://app.example:8443", LOAD, folder)

    assert done.result_file == folder / "results.jtl" and done.result_file.exists()
    assert done.history_file is None
    assert done.report.labels == ("Home", "Login")
    assert done.report.total.samples == 50 and done.report.total.errors == 2
    assert done.report.row("Login").samples == 20

    test = load_test_id(plan)
    assert test == "shipyard-checkout-flow"
    assert alt.tests[test]["passFailCriteria"] == {"passFailMetrics": {}}
    assert alt.tests[test]["loadTestConfiguration"] == {"engineInstances": 1}
    assert alt.tests[test]["environmentVariables"]["SHIPYARD_USERS"] == "7"
    assert alt.files[(test, plan.name)]["validationStatus"] == "VALIDATION_SUCCESS"
    assert alt.contents[(test, plan.name)] == plan.read_bytes()
    properties = alt.contents[(test, "user.properties")].decode().splitlines()
    assert {"protocol=https", "host=app.example", "port=8443", "threads=7", "duration=2"} <= set(
        properties
    )
    (run,) = alt.runs.values()
    assert run.test_id == test and run.polled[0] == "ACCEPTED" and run.polled[-1] == "DONE"
    assert "EXECUTING" in run.polled
    assert not alt.violations


def test_a_failed_run_is_a_provider_error_naming_the_run(
    alt: FakeLoadTesting, plan: Path, tmp_path: Path
) -> None:
    alt.fail_runs("Engine health check failed\nsecond line")
    with pytest.raises(ProviderError) as failed:
        make(alt).run(plan, "http://app.example", LOAD, tmp_path / "run")
    (run_id,) = alt.runs
    assert run_id in failed.value.reason and "FAILED" in failed.value.reason
    assert "Engine health check failed" in failed.value.reason
    assert "\n" not in failed.value.reason
    assert not (tmp_path / "run" / "results.jtl").exists()


def test_a_rejected_plan_is_a_provider_error(
    alt: FakeLoadTesting, plan: Path, tmp_path: Path
) -> None:
    alt.reject_file("Thread group missing")
    with pytest.raises(ProviderError, match=r"rejected Checkout Flow\.jmx .*Thread group missing"):
        make(alt).run(plan, "http://app.example", LOAD, tmp_path / "run")
    assert not alt.runs


def test_a_429_with_retry_after_is_retried(
    alt: FakeLoadTesting, plan: Path, tmp_path: Path
) -> None:
    alt.inject("PATCH", r"^/test-runs/", 429, retry_after=1)
    done = make(alt).run(plan, "http://app.example", LOAD, tmp_path / "run")
    assert done.report.total.samples == 50
    statuses = [r.status for r in alt.seen("PATCH", r"^/test-runs/")]
    assert statuses == [429, 201]
    assert not alt.violations


def test_errors_the_service_keeps_giving_become_one_line_provider_errors(
    alt: FakeLoadTesting, plan: Path, tmp_path: Path
) -> None:
    alt.inject("PATCH", r"^/tests/", 400, retry_after=None)
    with pytest.raises(
        ProviderError, match=r"answered 400 while creating test shipyard-checkout-flow"
    ):
        make(alt).run(plan, "http://app.example", LOAD, tmp_path / "run")


def test_a_locustfile_or_a_missing_endpoint_is_refused(tmp_path: Path) -> None:
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text("")
    with pytest.raises(InvalidInput, match="JMeter plans"):
        AzureLoadTestingEngine("x.example").run(locustfile, "http://a", LOAD, tmp_path)
    jmx = tmp_path / "p.jmx"
    jmx.write_text(PLAN)
    with pytest.raises(InvalidInput, match="no Azure Load Testing endpoint"):
        AzureLoadTestingEngine("").run(jmx, "http://a", LOAD, tmp_path)


def test_the_engine_is_chosen_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_LOAD_TESTING_ENDPOINT", "https://abc.cnt-prod.loadtest.azure.com/")
    chosen = load_engines()["azure-load-testing"]()
    assert isinstance(chosen, AzureLoadTestingEngine)
    assert chosen.name == "azure-load-testing"
    assert chosen.command(Path("a.jmx"), "http://x", LOAD, Path("."))[1] == (
        "abc.cnt-prod.loadtest.azure.com"
    )


def test_the_test_is_one_per_plan_and_type_and_carries_the_plans_criteria(
    alt: FakeLoadTesting, plan: Path, tmp_path: Path
) -> None:
    criteria = ("p95(response_time_ms) > 500", "Login: percentage(error) > 5")
    for env_type in ("test", "staging"):
        make(alt).run(
            plan,
            "https://app.example",
            LOAD,
            tmp_path / env_type,
            name=f"checkout-{env_type}",
            criteria=criteria,
        )
    assert set(alt.tests) == {"shipyard-checkout-test", "shipyard-checkout-staging"}
    metrics = list(
        alt.tests["shipyard-checkout-test"]["passFailCriteria"]["passFailMetrics"].values()
    )
    assert metrics == [
        {
            "clientMetric": "response_time_ms",
            "aggregate": "p95",
            "condition": ">",
            "value": 500.0,
            "action": "continue",
        },
        {
            "clientMetric": "error",
            "aggregate": "percentage",
            "condition": ">",
            "value": 5.0,
            "action": "continue",
            "requestName": "Login",
        },
    ]
    assert not alt.violations
