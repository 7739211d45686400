"""Engine azure-pipelines: `env create`/`deploy` run the team's pipeline and record its run."""

from __future__ import annotations

import os
import subprocess
import sys
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
ROOT = Path(__file__).resolve().parents[1]


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
    config = write_config(tmp_path, fake)
    runtime = Runtime.open(str(config), database_url=f"sqlite:///{tmp_path / 'e.db'}")
    runtime.lifecycle.add_release(person("ci"), "1.0.0", str(EXAMPLES / "game/releases/1.0.0"))
    yield runtime
    destroy_everything(runtime)
    runtime.close()


def write_config(tmp_path: Path, fake: FakeAzureDevOps) -> Path:
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
    return config


def test_no_azure_devops_client_is_built_until_a_deploy_runs_a_pipeline(
    home: Path, tmp_path: Path, fake: FakeAzureDevOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, fake)
    url = f"sqlite:///{tmp_path / 'e.db'}"
    monkeypatch.delenv("AZURE_DEVOPS_PAT", raising=False)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_DEVOPS_")}
    environ |= {"SHIPYARD_CONFIG": str(config), "SHIPYARD_DATABASE_URL": url}

    def shipyard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=environ, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    listed = shipyard("env", "list")
    added = shipyard("release", "add", "1.0.0", "--artifact", str(EXAMPLES / "game/releases/1.0.0"))
    create = shipyard(
        "--as", "alice", "env", "create", "uat-1", "--type", "uat", "--release", "1.0.0"
    )

    assert listed.returncode == 0, listed.stderr
    assert added.returncode == 0, added.stderr
    # A command that would run a pipeline is refused before anything is recorded.
    assert create.returncode == 3 and "AZURE_DEVOPS_PAT is not set" in create.stderr
    runtime = Runtime.open(str(config), database_url=url)
    try:
        with runtime.database.read() as conn:
            assert rec.list_environments(conn) == []
    finally:
        runtime.close()
    assert fake.requests() == []


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
