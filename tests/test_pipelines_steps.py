"""The plugin steps as a pipeline runs them: `python -m bot.cli pipeline …`, its exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from bot.runtime import Runtime
from environments.model import EnvironmentState
from environments.pipeline_deployments import run_url_of
from environments.registry import record as rec
from tests.conftest import CONFIG, EXAMPLES
from tests.fakes.azure_devops import PROJECT, SERVICE, FakeAzureDevOps

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv/bin/python"
RUN_URL = "https://dev.azure.com/fabrikam/d6b3e0ea/_build/results?buildId=4711"
SF = "{http://schemas.microsoft.com/2011/01/fabric}"


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """A record with releases 1.0.0 and 1.1.0 and environments in three states."""
    home = tmp_path / "home"
    monkeypatch.setenv("SHIPYARD_HOME", str(home))
    url = f"sqlite:///{tmp_path / 'record.db'}"
    rt = Runtime.open(str(CONFIG), database_url=url)
    for version in ("1.0.0", "1.1.0"):
        rt.lifecycle.add_release(person(), version, str(EXAMPLES / f"game/releases/{version}"))
    now = rt.lifecycle.clock.now()
    with rt.database.write() as conn:
        for name, env_type, state in (
            ("pr-1", "test", EnvironmentState.READY),
            ("pr-2", "test", EnvironmentState.PROVISIONING),
            ("pr-3", "test", EnvironmentState.FAILED),
        ):
            env_id = rec.insert_environment(
                conn,
                name=name,
                env_type=env_type,
                owner="alice",
                at=now,
                expires_at=None,
                overrides={"GAME_MOTD": "hello {{ env.name }} on {{ release.version }}"},
            )
            rec.update_environment(conn, env_id, state=state, reason="ARM said no")
    yield rt
    rt.close()


def person() -> object:
    from environments.policy import Actor, Channel

    return Actor(person="ci", channel=Channel.CLI)


def step(
    record: Runtime, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """One step, as an agent runs it: no terminal, no input, secrets only from the environment."""
    agent = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SHIPYARD_", "AZURE_DEVOPS_", "BUILD_"))
    }
    agent.update(
        {
            "SHIPYARD_HOME": os.environ["SHIPYARD_HOME"],
            "SHIPYARD_CONFIG": str(CONFIG),
            "SHIPYARD_DATABASE_URL": str(record.database.engine.url),
            "BUILD_REQUESTEDFOREMAIL": "bob@fabrikam.example",
            "BUILD_BUILDID": "4711",
            **(env or {}),
        }
    )
    python = str(PYTHON) if PYTHON.exists() else sys.executable
    return subprocess.run(
        [python, "-m", "bot.cli", "pipeline", *args],
        env=agent,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_render_parameters_writes_the_application_parameters_file(
    record: Runtime, tmp_path: Path
) -> None:
    out = tmp_path / "staging/ApplicationParameters/pr-1.xml"

    done = step(record, "render-parameters", "pr-1", "--format", "sf-xml", "--out", str(out),
                "--release", "1.1.0")  # fmt: skip
    dotenv = step(record, "render-parameters", "pr-1", "--format", "dotenv", "--release", "1.0.0")
    no_release = step(record, "render-parameters", "pr-1", "--format", "json")
    missing = step(record, "render-parameters", "pr-404", "--out", str(tmp_path / "x.xml"))

    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout
    document = etree.parse(str(out)).getroot()
    values = {p.get("Name"): p.get("Value") for p in document.iter(f"{SF}Parameter")}
    assert values["GAME_MOTD"] == "hello pr-1 on 1.1.0"
    assert values["GAME_MAX_PLAYERS"] == "100000"
    assert dotenv.returncode == 0 and 'GAME_MOTD="hello pr-1 on 1.0.0"' in dotenv.stdout
    assert no_release.returncode == 2 and "release.version" in no_release.stderr
    assert missing.returncode == 4
    assert "there is no environment 'pr-404'" in missing.stderr
    assert not (tmp_path / "x.xml").exists()


def test_record_deployment_records_once_and_says_why_when_it_cannot(record: Runtime) -> None:
    args = ["record-deployment", "--env", "pr-1", "--release", "1.1.0", "--run-url", RUN_URL]

    first = step(record, *args, "--status", "succeeded", "--approved-by", "carol,dave")
    again = step(record, *args, "--status", "succeeded")
    unknown_env = step(record, *args[:2], "pr-404", *args[3:], "--status", "failed")
    bad_status = step(record, *args, "--status", "maybe")
    bad_release = step(record, *args[:4], "not a version", *args[5:], "--status", "failed")

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("recorded: 1.1.0 into pr-1 succeeded")
    assert again.returncode == 0 and again.stdout.startswith("already recorded")
    assert unknown_env.returncode == 4
    assert bad_status.returncode == 2 and "invalid choice: 'maybe'" in bad_status.stderr
    assert bad_release.returncode == 2
    with record.database.read() as conn:
        env = rec.get_environment(conn, "pr-1")
        (deployment,) = rec.history(conn, "pr-1")
        assert run_url_of(conn, deployment.id) == RUN_URL
    assert (env.release, env.release_by) == ("1.1.0", "bob@fabrikam.example")
    assert deployment.approved_by == ("carol", "dave")


def test_wait_ready_exit_codes_say_ready_failed_or_timed_out(record: Runtime) -> None:
    ready = step(record, "wait-ready", "pr-1", "--timeout", "10s")
    failed = step(record, "wait-ready", "pr-3", "--timeout", "10s")
    waiting = step(record, "wait-ready", "pr-2", "--timeout", "1s", "--interval", "1s")
    missing = step(record, "wait-ready", "pr-404", "--timeout", "1s")
    bad = step(record, "wait-ready", "pr-1", "--timeout", "soon")

    assert (ready.returncode, ready.stdout.strip()) == (0, "pr-1 is ready")
    assert failed.returncode == 8 and "pr-3 failed: ARM said no" in failed.stderr
    assert waiting.returncode == 124 and "still provisioning after 1s" in waiting.stderr
    assert missing.returncode == 4
    assert bad.returncode == 2


def test_the_pipelines_group_talks_to_azure_devops_with_settings_from_the_environment(
    record: Runtime, tmp_path: Path
) -> None:
    # The sample's gated types become Azure DevOps checks at sync, answered by Shipyard's
    # identity: with Azure DevOps configured, shipyard.yaml must name it.
    text = CONFIG.read_text(encoding="utf-8").replace(
        "file: loadtests/", f"file: {EXAMPLES}/loadtests/"
    )
    config = tmp_path / "shipyard.yaml"
    config.write_text(text + f"azure_devops:\n  approver_identity: {SERVICE['id']}\n")
    with FakeAzureDevOps() as fake:
        fake.add_pipeline(7, "game-delivery")
        fake._create_run(7, {"templateParameters": {"environment": "pr-1", "release": "1.1.0"}})
        settings = {
            "AZURE_DEVOPS_ORG_URL": fake.org_url,
            "AZURE_DEVOPS_PROJECT": PROJECT,
            "AZURE_DEVOPS_PIPELINE_ID": "7",
        }
        pat = {"AZURE_DEVOPS_PAT": fake.pat}
        runs = shipyard(record, settings | pat, "runs", "--json", config=config)
        sync = shipyard(record, settings | pat, "sync")
        no_pat = shipyard(record, settings, "approvals", config=config)
        assert not fake.requests("POST") and not fake.requests("PATCH")

    assert runs.returncode == 0, runs.stderr
    assert [r["id"] for r in json.loads(runs.stdout)] == [101]
    assert sync.returncode == 3
    assert "type 'staging' is gated in Slack" in sync.stderr
    assert "azure_devops has no approver_identity" in sync.stderr
    assert no_pat.returncode == 3 and "AZURE_DEVOPS_PAT is not set" in no_pat.stderr


def shipyard(
    record: Runtime, extra: dict[str, str], *args: str, config: Path = CONFIG
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "AZURE_DEVOPS_"))}
    env.update(extra)
    env.update(
        {
            "SHIPYARD_HOME": os.environ["SHIPYARD_HOME"],
            "SHIPYARD_CONFIG": str(config),
            "SHIPYARD_DATABASE_URL": str(record.database.engine.url),
            "AZURE_DEVOPS_CACHE_DIR": os.environ["AZURE_DEVOPS_CACHE_DIR"],
        }
    )
    python = str(PYTHON) if PYTHON.exists() else sys.executable
    return subprocess.run(
        [python, "-m", "bot.cli", "pipelines", *args],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_register_release_records_the_build_run_that_made_it(record: Runtime) -> None:
    agent = {
        "BUILD_BUILDID": "4711",
        "BUILD_BUILDNUMBER": "20261130.3",
        "BUILD_SOURCEBRANCH": "refs/tags/2.0.0",
        "BUILD_SOURCEVERSION": "0123abcd",
    }
    first = step(record, "register-release", "--version", "2.0.0", "--artifact", "drop", env=agent)
    again = step(record, "register-release", "--version", "2.0.0", "--artifact", "drop", env=agent)
    other_run = step(record, "register-release", "--version", "2.0.0", "--build-run", "4800")
    bad_ref = step(record, "register-release", "--version", "2.0.1", "--build-run", "4800",
                    "--ref", "main")  # fmt: skip
    no_run = step(record, "register-release", "--version", "2.0.2", env={"BUILD_BUILDID": ""})

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        "registered: release 2.0.0 from build run 4711 (20261130.3), artifact drop, refs/tags/2.0.0"
    )
    assert again.returncode == 0 and again.stdout.startswith("already registered")
    assert other_run.returncode == 6 and "from build run 4711" in other_run.stderr
    assert bad_ref.returncode == 2 and "'main' is not a git ref" in bad_ref.stderr
    assert no_run.returncode == 2 and "--build-run" in no_run.stderr
    with record.database.read() as conn:
        release = rec.get_release(conn, "2.0.0")
        versions = [r.version for r in rec.list_releases(conn)]
    assert (release.build_run, release.build_number, release.build_artifact) == (
        4711,
        "20261130.3",
        "drop",
    )
    assert (release.source_ref, release.commit) == ("refs/tags/2.0.0", "0123abcd")
    assert versions == ["2.0.0", "1.1.0", "1.0.0"]
