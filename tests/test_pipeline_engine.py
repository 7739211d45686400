"""Engine azure-pipelines: `env create`/`deploy` run the team's pipeline and record its run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.runtime import Runtime
from environments.model import DeploymentStatus, EnvironmentState, OperationState
from environments.pipeline_deployments import run_url_of
from environments.registry import record as rec
from pipelines.azure_devops import AzureDevOps
from pipelines.webhooks import record_run
from tests.conftest import EXAMPLES, destroy_everything, person
from tests.fakes.azure_devops import PROJECT, FakeAzureDevOps

DEPLOY_PIPELINE = 7


@pytest.fixture
def fake() -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps() as server:
        server.add_pipeline(DEPLOY_PIPELINE, "game-delivery")
        yield server


@pytest.fixture
def rt(
    home: Path, tmp_path: Path, fake: FakeAzureDevOps, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    monkeypatch.setenv("AZURE_DEVOPS_PAT", fake.pat)
    config = tmp_path / "shipyard.yaml"
    config.write_text(f"""\
version: 1
application:
  command: ["{{python}}", "server.py", "--port", "{{port}}"]
azure_devops:
  organization_url: {fake.org_url}
  project: {PROJECT}
  pipeline_id: {DEPLOY_PIPELINE}
  poll_interval: 0.05
types:
  uat:
    engine: azure-pipelines
""")
    runtime = Runtime.open(str(config), database_url=f"sqlite:///{tmp_path / 'e.db'}")
    runtime.lifecycle.add_release(person("ci"), "1.0.0", str(EXAMPLES / "game/releases/1.0.0"))
    yield runtime
    destroy_everything(runtime)
    runtime.close()


def test_a_deployment_runs_the_pipeline_and_keeps_its_run(
    rt: Runtime, fake: FakeAzureDevOps
) -> None:
    requested = rt.lifecycle.create(person("alice"), "uat-1", env_type="uat", release="1.0.0")
    op = rt.worker.run(requested.operation_id)  # type: ignore[arg-type]
    assert op is not None and op.state is OperationState.SUCCEEDED, op.error

    (started,) = fake.requests("POST", "pipelines/7/runs")
    assert started.body["templateParameters"]["environment"] == "uat-1"
    assert started.body["templateParameters"]["release"] == "1.0.0"
    with rt.database.read() as conn:
        env = rec.get_environment(conn, "uat-1")
        (deployment,) = rec.history(conn, "uat-1")
        url = run_url_of(conn, deployment.id)
    assert env.state is EnvironmentState.READY and env.release == "1.0.0"
    assert deployment.status is DeploymentStatus.SUCCEEDED and url and url.startswith(fake.org_url)

    # The service hook (or the poll) reporting the same run adds nothing.
    run = AzureDevOps.from_environment(rt.catalog).get_run(
        DEPLOY_PIPELINE, env.outputs["pipeline_run"]
    )
    record_run(AzureDevOps.from_environment(rt.catalog), rt.database, rt.catalog, run)
    with rt.database.read() as conn:
        assert len(rec.history(conn, "uat-1")) == 1
