"""The load-test step on a build agent: `shipyard pipeline loadtest` against a real `shipyard
serve`, which runs the plan on its own threads against a real (local) environment.

The step runs as a subprocess with only PATH, HOME, SHIPYARD_URL and SHIPYARD_TOKEN. The
sample configuration limits `test` environments to 5 users for 30 s; the runs here are 1 user
for 2 s, so the test neither takes long nor depends on how busy the machine is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from bot.runtime import Runtime
from environments.policy import Actor
from environments.registry import loadtests as runs
from environments.registry import operations as ops
from tests.conftest import EXAMPLES, destroy_everything
from tests.fakes.slack import FakeSlack
from tests.replicas import Serve
from tests.slackbot import CONFIG
from tests.test_pipeline_api import Shipyard

pytestmark = pytest.mark.e2e


@pytest.fixture
def shipyard(home: Path, tmp_path: Path) -> Iterator[Shipyard]:
    """`shipyard serve` with lt-1, a ready `test` environment its worker created (release 1.0.0)."""
    url = f"sqlite:///{tmp_path / 'record.db'}"
    runtime = Runtime.open(str(CONFIG), database_url=url)
    runtime.lifecycle.add_release(Actor("ci"), "1.0.0", str(EXAMPLES / "game/releases/1.0.0"))
    runtime.lifecycle.create(Actor("alice"), "lt-1", env_type="test", release="1.0.0")
    agent_home = tmp_path / "agent"
    agent_home.mkdir()
    with FakeSlack() as slack:
        serve = Serve(home, url, slack)
        try:
            yield Shipyard(serve.start(), runtime, agent_home)
        finally:
            destroy_everything(runtime)
            serve.stop()
            runtime.close()


def recorded(shipyard: Shipyard) -> tuple[list[runs.RunRecord], int]:
    """The load-test runs and the audit log's length: what a refused step leaves unchanged."""
    with shipyard.runtime.database.read() as conn:
        audit = conn.execute(sa.text("select count(*) from audit_events")).scalar()
        return runs.history(conn), int(audit or 0)


def test_a_pipeline_load_tests_through_the_api_and_exits_by_the_verdict(
    shipyard: Shipyard,
) -> None:
    token, staging = shipyard.token(env_type="test"), shipyard.token(env_type="staging")
    ready = shipyard.step(token, "wait-ready", "lt-1", "--timeout", "60s", "--interval", "1s")
    assert ready.returncode == 0, ready.stderr
    before = recorded(shipyard)

    over = shipyard.step(token, "loadtest", "lt-1", "--users", "50", "--duration", "2s")
    too_long = shipyard.step(token, "loadtest", "lt-1", "--users", "1", "--duration", "5m")
    other_type = shipyard.step(staging, "loadtest", "lt-1")
    unknown = shipyard.step("shy_not-a-token", "loadtest", "lt-1")
    assert recorded(shipyard) == before  # refused: no run, no audit line

    assert over.returncode == 5, over.stderr
    assert over.stdout == ""
    assert over.stderr.strip() == (
        "shipyard: test environments take load tests of at most 5 users, not 50"
        " — ask for --users 5 or fewer"
    )
    assert too_long.returncode == 5 and "at most 30s, not 5m" in too_long.stderr
    assert other_type.returncode == 5
    assert "acts on staging environments, not test" in other_type.stderr
    assert unknown.returncode == 14, unknown.stderr

    done = shipyard.step(
        token, "loadtest", "lt-1", "--users", "1", "--duration", "2s", "--interval", "1s",
        "--timeout", "110s",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (run,), _ = recorded(shipyard)
    assert (run.environment, run.release, run.plan, run.outcome) == (
        "lt-1",
        "1.0.0",
        "login",
        "passed",
    )
    assert run.load["users"] == 1 and run.load["duration_s"] == 2
    assert run.requested_by == "azure-devops"
    assert run.verdict and run.report_figures["TOTAL"]["samples"] > 0
    assert done.stdout.strip() == f"load test #{run.id} of 1.0.0 on lt-1 (login): {run.verdict}"
    assert f"load test #{run.id} of 1.0.0 on lt-1 started" in done.stderr
    with shipyard.runtime.database.read() as conn:
        actions = [e.action for e in ops.audit_log(conn) if e.action.startswith("loadtest.")]
    assert sorted(actions) == ["loadtest.finish", "loadtest.start"]

    # The run as the API describes it; another type's token may not read it.
    answer = requests.get(
        f"{shipyard.url}/api/v1/loadtests/{run.id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.json()["state"] == "passed" and answer.json()["verdict"] == run.verdict
    refused = requests.get(
        f"{shipyard.url}/api/v1/loadtests/{run.id}",
        headers={"Authorization": f"Bearer {staging}"},
        timeout=10,
    )
    assert refused.status_code == 403

    # No verdict within --timeout: 124 and one line; the run goes on on the server.
    late = shipyard.step(
        token, "loadtest", "lt-1", "--users", "1", "--duration", "3s", "--interval", "1s",
        "--timeout", "1s",
    )  # fmt: skip
    assert late.returncode == 124, late.stdout + late.stderr
    assert late.stdout == ""
    assert f"load test #{run.id + 1} on lt-1 is still running after 1s" in late.stderr
