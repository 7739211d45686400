"""The templates' bash steps, run as the agent runs them: macros expanded, the step's env set,
`shipyard` (and `python`) stand-ins on PATH that record how they were called."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import cli as pipeline_steps

ROOT = Path(__file__).resolve().parents[1]
STEPS = ROOT / "pipelines/templates/steps"
MACRO = re.compile(r"\$\(([A-Za-z_.]+)\)")
MACROS = {
    "Pipeline.Workspace": "/agent/work/1",
    "Build.ArtifactStagingDirectory": "/agent/work/1/a",
}
RECORDER = """#!/bin/sh
printf '%s\\n' "$(basename "$0")" "$@" >> "$CALLS"
printf '%s\\n' '--' >> "$CALLS"
if [ "$1" = "--version" ]; then echo "${FAKE_VERSION:-shipyard 0.1.0}"; fi
"""


def run_step(
    tmp_path: Path, template: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """Run the one bash step of `template` that calls Shipyard with the step's env (the
    template's own values for the names not given here) and return what `shipyard` was asked."""
    document: Any = yaml.load(
        (STEPS / template).read_text(encoding="utf-8"), Loader=yaml.BaseLoader
    )
    (step,) = [s for s in document["steps"] if "shipyard" in s.get("bash", "")]
    script = MACRO.sub(lambda m: MACROS.get(m.group(1), m.group(0)), step["bash"])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("shipyard", "python"):
        (bin_dir / name).write_text(RECORDER, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("", encoding="utf-8")
    given = {k: v for k, v in step.get("env", {}).items()}
    given.update(env)
    done = subprocess.run(
        ["bash", "-c", script],
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CALLS": str(calls), **given},
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = calls.read_text(encoding="utf-8").splitlines()
    made: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line == "--":
            made.append(current)
            current = []
        else:
            current.append(line)
    return done, made


def test_the_wait_is_refused_when_it_would_outlast_the_job(tmp_path: Path) -> None:
    done, calls = run_step(
        tmp_path, "provision.yml", ENVIRONMENT="staging", READY_TIMEOUT="60", JOB_TIMEOUT="60"
    )
    assert done.returncode == 2
    assert "readyTimeoutInMinutes (60) must be below the job's timeoutInMinutes (60)" in done.stdout
    assert calls == []


def test_the_wait_asks_shipyard_until_the_environment_is_ready(tmp_path: Path) -> None:
    done, calls = run_step(
        tmp_path, "provision.yml", ENVIRONMENT="staging", READY_TIMEOUT="50", JOB_TIMEOUT="60"
    )
    assert done.returncode == 0, done.stderr
    assert calls == [
        ["shipyard", "pipeline", "wait-ready", "staging", "--timeout", "50m", "--interval", "10s"]
    ]


@pytest.mark.parametrize(("plan", "expected"), [("", []), ("soak", ["--plan", "soak"])])
def test_the_load_test_asks_for_the_types_plan_unless_one_is_named(
    tmp_path: Path, plan: str, expected: list[str]
) -> None:
    done, calls = run_step(
        tmp_path, "loadtest.yml", ENVIRONMENT="staging", PLAN=plan, LOADTEST_TIMEOUT="30"
    )
    assert done.returncode == 0, done.stderr
    assert calls == [
        ["shipyard", "pipeline", "loadtest", "staging", *expected, "--timeout", "30m",
         "--interval", "10s"]
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("job_status", "status"),
    [
        ("Succeeded", "succeeded"),
        ("SucceededWithIssues", "succeeded"),
        ("Failed", "failed"),
        ("Canceled", "cancelled"),
    ],
)
def test_the_deployment_is_recorded_with_the_jobs_outcome(
    tmp_path: Path, job_status: str, status: str
) -> None:
    done, calls = run_step(
        tmp_path,
        "record-deployment.yml",
        ENVIRONMENT="staging",
        RELEASE="1.4.2",
        ARTIFACT="drop",
        REQUESTED_BY="carol",
        JOB_STATUS=job_status,
        RUN_URL="https://dev.azure.com/fabrikam/p/_build/results?buildId=7",
    )
    assert done.returncode == 0, done.stderr
    assert calls == [
        [
            "shipyard",
            "pipeline",
            "record-deployment",
            "--env",
            "staging",
            "--release",
            "1.4.2",
            "--status",
            status,
            "--run-url",
            "https://dev.azure.com/fabrikam/p/_build/results?buildId=7",
            "--artifact",
            "drop",
            "--requested-by",
            "carol",
        ]
    ]


def test_a_run_nobody_named_is_recorded_as_the_pipelines_not_the_agents_email(
    tmp_path: Path,
) -> None:
    done, calls = run_step(
        tmp_path,
        "record-deployment.yml",
        ENVIRONMENT="ci-test",
        RELEASE="20261130.1",
        ARTIFACT="drop",
        REQUESTED_BY="",
        JOB_STATUS="Succeeded",
        RUN_URL="u",
        BUILD_REQUESTEDFOREMAIL="carol@example.com",
    )
    assert done.returncode == 0, done.stderr
    assert calls[0][-2:] == ["--requested-by", "azure-devops"]


@pytest.mark.parametrize(
    ("ref", "extra"),
    [("refs/tags/1.4.2", ["--ref", "refs/tags/1.4.2"]), ("refs/heads/main", [])],
)
def test_a_build_registers_its_release_with_its_run(
    tmp_path: Path, ref: str, extra: list[str]
) -> None:
    done, calls = run_step(
        tmp_path,
        "register-release.yml",
        VERSION="1.4.2",
        BUILD_RUN="812",
        ARTIFACT="drop",
        SOURCE_REF=ref,
    )
    assert done.returncode == 0, done.stderr
    assert calls == [
        [
            "shipyard",
            "pipeline",
            "register-release",
            "--version",
            "1.4.2",
            "--build-run",
            "812",
            "--artifact",
            "drop",
            *extra,
        ]
    ]


def test_shipyard_is_installed_from_its_tag_at_the_pinned_version(tmp_path: Path) -> None:
    done, calls = run_step(
        tmp_path, "install-shipyard.yml", SHIPYARD_REF="refs/tags/v0.1.0", SHIPYARD_VERSION="0.1.0"
    )
    assert done.returncode == 0, done.stderr
    assert calls[0][:4] == ["python", "-m", "pip", "install"]
    assert calls[0][-1] == "/agent/work/1/shipyard-cli"
    assert calls[1] == ["shipyard", "--version"]


@pytest.mark.parametrize(
    ("ref", "version", "said"),
    [
        ("refs/heads/main", "shipyard 0.1.0", "reference it by tag: ref: refs/tags/v0.1.0"),
        ("refs/tags/v0.1.0", "shipyard 0.2.0", "installed shipyard 0.2.0, expected shipyard 0.1.0"),
    ],
)
def test_an_unpinned_or_mismatched_shipyard_stops_the_job(
    tmp_path: Path, ref: str, version: str, said: str
) -> None:
    done, _ = run_step(
        tmp_path,
        "install-shipyard.yml",
        SHIPYARD_REF=ref,
        SHIPYARD_VERSION="0.1.0",
        FAKE_VERSION=version,
    )
    assert done.returncode == 2
    assert said in done.stdout


SAMPLE_ENV = {
    "ENVIRONMENT": "staging",
    "RELEASE": "1.4.2",
    "READY_TIMEOUT": "50",
    "JOB_TIMEOUT": "60",
    "ARTIFACT": "drop",
    "REQUESTED_BY": "",
    "JOB_STATUS": "Failed",
    "RUN_URL": "https://dev.azure.com/fabrikam/p/_build/results?buildId=7",
    "VERSION": "1.4.2",
    "BUILD_RUN": "812",
    "SOURCE_REF": "refs/tags/1.4.2",
    "UPGRADE_TIMEOUT": "3000",
    "PLAN": "login",
    "LOADTEST_TIMEOUT": "30",
}
CALLERS = [
    "provision.yml",
    "deploy-service-fabric.yml",
    "deploy-arm.yml",
    "record-deployment.yml",
    "register-release.yml",
    "loadtest.yml",
]


@pytest.mark.parametrize("template", CALLERS)
def test_each_call_parses_with_the_steps_own_arguments(tmp_path: Path, template: str) -> None:
    """What the templates pass is what `shipyard pipeline …` accepts (a renamed flag fails)."""
    done, calls = run_step(tmp_path, template, **SAMPLE_ENV)
    assert done.returncode == 0, done.stderr
    (call,) = calls
    assert call[:2] == ["shipyard", "pipeline"]
    (step,) = [s for s in pipeline_steps.STEPS if s.group == "pipeline" and s.verb == call[2]]
    parser = argparse.ArgumentParser(exit_on_error=False)
    step.arguments(parser, False)
    parser.parse_args(call[3:])  # raises on an unknown flag or a missing one


def test_an_upgrade_that_would_outlast_its_job_is_refused(tmp_path: Path) -> None:
    done, calls = run_step(
        tmp_path,
        "deploy-service-fabric.yml",
        ENVIRONMENT="staging",
        RELEASE="1.4.2",
        UPGRADE_TIMEOUT="3600",
        JOB_TIMEOUT="60",
    )
    assert done.returncode == 2
    assert "upgradeTimeoutSec (3600) must be below the job's timeoutInMinutes (60 min)" in (
        done.stdout
    )
    assert calls == []
