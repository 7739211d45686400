"""Engine azure-pipelines: `env create`/`deploy` run the team's pipeline and record its run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import terminal
from bot.runtime import Runtime
from environments.errors import Conflict, NotPromoted
from environments.model import DeploymentStatus, EnvironmentState, OperationState
from environments.pipeline_deployments import run_url_of
from environments.registry import record as rec
from pipelines.azure_devops import AzureDevOps
from pipelines.webhooks import record_run
from tests.conftest import EXAMPLES, destroy_everything, person
from tests.fakes.azure_devops import PROJECT, SERVICE, FakeAzureDevOps

DEPLOY_PIPELINE = 7
TAG_PIPELINE = 9  # a pipeline that builds the tag it runs on, for the type 'edge' only
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake() -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps() as server:
        server.add_pipeline(DEPLOY_PIPELINE, "game-delivery")
        server.add_pipeline(TAG_PIPELINE, "game-build-and-deploy")
        server.add_build(4242, "20261130.1")
        server.add_build(4300, "20261130.2")
        yield server


@pytest.fixture
def rt(
    home: Path, tmp_path: Path, fake: FakeAzureDevOps, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    monkeypatch.setenv("AZURE_DEVOPS_PAT", fake.pat)
    config = write_config(tmp_path, fake)
    runtime = Runtime.open(str(config), database_url=f"sqlite:///{tmp_path / 'e.db'}")
    runtime.lifecycle.add_release(
        person("ci"), "1.0.0", str(EXAMPLES / "game/releases/1.0.0"), build_run=4242
    )
    runtime.lifecycle.add_release(person("ci"), "1.1.0", str(EXAMPLES / "game/releases/1.1.0"))
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
  approver_identity: {SERVICE["id"]}
  poll_interval: 0.05
people: {{dave: U0DAVE}}
types:
  uat:
    engine: azure-pipelines
  demo:
    engine: azure-pipelines
    azure_devops: {{source: tag}}
  edge:
    engine: azure-pipelines
    azure_devops: {{source: tag, pipeline_id: {TAG_PIPELINE}}}
  gated:
    engine: azure-pipelines
    approval: {{required: 1, approvers: [dave], timeout: 1h}}
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
    assert started.body["templateParameters"] == {
        "environment": "uat-1",
        "release": "1.0.0",
        "requestedBy": "alice",
    }
    # The release's recorded build, not whatever the default branch holds.
    # The release's recorded build (asked for by its run's name), not the default branch.
    assert started.body["resources"] == {"pipelines": {"build": {"version": "20261130.1"}}}
    (run,) = fake.runs.values()
    assert run.pipeline_resources == {"build": "20261130.1"}
    with rt.database.read() as conn:
        env = rec.get_environment(conn, "uat-1")
        (deployment,) = rec.history(conn, "uat-1")
        url = run_url_of(conn, deployment.id)
    assert env.state is EnvironmentState.READY and env.release == "1.0.0"
    assert deployment.status is DeploymentStatus.SUCCEEDED and url and url.startswith(fake.org_url)
    assert deployment.run_url == url

    # The service hook (or the poll) reporting the same run adds nothing.
    run = AzureDevOps.from_environment(rt.catalog).get_run(
        DEPLOY_PIPELINE, env.outputs["pipeline_run"]
    )
    record_run(AzureDevOps.from_environment(rt.catalog), rt.database, rt.catalog, run)
    with rt.database.read() as conn:
        assert len(rec.history(conn, "uat-1")) == 1


def test_the_requester_of_a_redeploy_is_who_asked_not_the_previous_deployer(
    rt: Runtime, fake: FakeAzureDevOps
) -> None:
    requested = rt.lifecycle.create(person("alice"), "uat-2", env_type="uat", release="1.0.0")
    rt.worker.run(requested.operation_id)  # type: ignore[arg-type]
    rt.lifecycle.add_release(
        person("ci"), "1.2.0", str(EXAMPLES / "game/releases/1.1.0"), build_run=4300
    )
    again = rt.lifecycle.deploy(person("bob"), "uat-2", release="1.2.0")
    op = rt.worker.run(again.operation_id)  # type: ignore[arg-type]
    assert op is not None and op.state is OperationState.SUCCEEDED, op.error

    second = fake.requests("POST", "pipelines/7/runs")[-1]
    assert second.body["templateParameters"]["requestedBy"] == "bob"
    assert second.body["resources"]["pipelines"]["build"]["version"] == "20261130.2"


def test_a_tag_type_runs_the_releases_tag(rt: Runtime, fake: FakeAzureDevOps) -> None:
    requested = rt.lifecycle.create(person("alice"), "demo-1", env_type="demo", release="1.1.0")
    op = rt.worker.run(requested.operation_id)  # type: ignore[arg-type]
    assert op is not None and op.state is OperationState.SUCCEEDED, op.error

    (started,) = fake.requests("POST", "pipelines/7/runs")
    assert started.body["resources"] == {"repositories": {"self": {"refName": "refs/tags/1.1.0"}}}
    assert started.body["templateParameters"]["release"] == "1.1.0"
    (run,) = fake.runs.values()
    assert run.ref_name == "refs/tags/1.1.0"


def test_a_type_with_a_pipeline_of_its_own_runs_that_one_and_its_runs_are_recorded(
    rt: Runtime, fake: FakeAzureDevOps
) -> None:
    requested = rt.lifecycle.create(person("alice"), "edge-1", env_type="edge", release="1.1.0")
    op = rt.worker.run(requested.operation_id)  # type: ignore[arg-type]
    assert op is not None and op.state is OperationState.SUCCEEDED, op.error

    assert fake.requests("POST", f"pipelines/{DEPLOY_PIPELINE}/runs") == []
    (started,) = fake.requests("POST", f"pipelines/{TAG_PIPELINE}/runs")
    assert started.body["resources"] == {"repositories": {"self": {"refName": "refs/tags/1.1.0"}}}
    # Its runs are Shipyard's too: watched by the poll, their approvals answered.
    assert TAG_PIPELINE in AzureDevOps.from_environment(rt.catalog).settings.pipelines
    with rt.database.read() as conn:
        env = rec.get_environment(conn, "edge-1")
        (deployment,) = rec.history(conn, "edge-1")
    run = AzureDevOps.from_environment(rt.catalog).get_run(
        TAG_PIPELINE, env.outputs["pipeline_run"]
    )
    record_run(AzureDevOps.from_environment(rt.catalog), rt.database, rt.catalog, run)
    with rt.database.read() as conn:
        assert [d.id for d in rec.history(conn, "edge-1")] == [deployment.id]


def test_a_release_without_a_recorded_build_is_refused_before_anything_runs(
    rt: Runtime, fake: FakeAzureDevOps
) -> None:
    with pytest.raises(Conflict, match=r"release 1\.1\.0 has no recorded build run") as refused:
        rt.lifecycle.create(person("alice"), "uat-3", env_type="uat", release="1.1.0")
    assert [h.command for h in refused.value.hints] == ["pipeline register-release"]
    assert "source: tag" in refused.value.hint
    with rt.database.read() as conn:
        assert rec.find_environment(conn, "uat-3") is None
    assert fake.requests("POST") == []


def test_a_timed_out_gate_is_not_promoted_and_the_cli_says_so_with_its_own_exit_code(
    rt: Runtime,
    fake: FakeAzureDevOps,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SHIPYARD_CONFIG", str(tmp_path / "shipyard.yaml"))
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", f"sqlite:///{tmp_path / 'e.db'}")

    def time_out_the_gate() -> None:
        fake.time_out(fake.wait_for_approval(timeout=30)["id"])

    gate = threading.Thread(target=time_out_the_gate, daemon=True)
    gate.start()
    code = terminal.main(
        ["--as", "alice", "env", "create", "gated-1", "--type", "gated", "--release", "1.0.0"]
    )
    gate.join(timeout=30)
    err = capsys.readouterr().err

    assert code == NotPromoted.exit_code == 12, err
    assert "1.0.0 not promoted (expired)" in err and fake.web_url(101) in err
    # The check was synced before the run: the gate cannot be missing.
    assert [c["settings"]["approvers"][0]["id"] for c in fake.checks_on("shipyard-gated-1")
            if c["type"]["name"] == "Approval"] == [SERVICE["id"]]  # fmt: skip
    with rt.database.read() as conn:
        env = rec.get_environment(conn, "gated-1")
        (deployment,) = rec.history(conn, "gated-1")
    assert env.state is EnvironmentState.READY and env.release is None
    assert deployment.status is DeploymentStatus.EXPIRED and deployment.reason == "not promoted"
    assert deployment.run_url == fake.web_url(101)
