"""The templates' own step scripts, as an agent runs them, against a real `shipyard serve`.

Each bash step is taken from its YAML template, its `$(…)` macros expanded the way the agent
expands them (SHIPYARD_URL and SHIPYARD_TOKEN from the variable group), and run with nothing
else than an agent job has: PATH (with the installed `shipyard`), HOME and the step's `env:`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree

from environments.pipeline_deployments import run_url_of
from environments.registry import record as rec
from tests import test_pipeline_api
from tests.test_pipeline_api import SF, Shipyard

pytestmark = pytest.mark.e2e
# test_pipeline_api's running `shipyard serve` with its record and agent tokens, as `served`.
served = test_pipeline_api.shipyard

STEPS = Path(__file__).resolve().parents[1] / "pipelines/templates/steps"
MACRO = re.compile(r"\$\(([A-Za-z_.]+)\)")
RUN_URL = "https://dev.azure.com/fabrikam/d6b3e0ea/_build/results?buildId=4711"


def run(
    shipyard: Shipyard, token: str, template: str, index: int = 0, **values: str
) -> subprocess.CompletedProcess[str]:
    """The `index`th bash step of `template`, its env filled from `values` as the stage would."""
    document: Any = yaml.load((STEPS / template).read_text("utf-8"), Loader=yaml.BaseLoader)
    step = [s for s in document["steps"] if "bash" in s][index]
    macros = {
        "SHIPYARD_URL": shipyard.url,
        "SHIPYARD_TOKEN": token,
        "Pipeline.Workspace": str(shipyard.agent_home),
        "Build.ArtifactStagingDirectory": str(shipyard.agent_home / "a"),
        **{k: v for k, v in values.items() if "." in k},
    }

    def expand(text: str) -> str:
        return MACRO.sub(lambda m: macros.get(m.group(1), m.group(0)), text)

    env = {name: expand(value) for name, value in step["env"].items()}
    env.update({k: v for k, v in values.items() if "." not in k})
    unexpanded = [v for v in env.values() if MACRO.search(v) or "${{" in v]
    assert not unexpanded, f"{template}: nothing filled {unexpanded}"
    tools = str(Path(sys.executable).parent)
    env |= {"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", "HOME": str(shipyard.agent_home)}
    return subprocess.run(
        ["bash", "-c", expand(step["bash"])],
        env=env,
        cwd=shipyard.agent_home,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_templates_steps_wait_render_record_and_register_through_the_api(
    served: Shipyard,
) -> None:
    shipyard = served
    token = shipyard.token()

    waited = run(shipyard, token, "provision.yml", ENVIRONMENT="pr-1", READY_TIMEOUT="1",
                 JOB_TIMEOUT="2")  # fmt: skip
    rendered = run(shipyard, token, "deploy-service-fabric.yml", ENVIRONMENT="pr-1",
                   RELEASE="1.0.0", UPGRADE_TIMEOUT="3000", JOB_TIMEOUT="60")  # fmt: skip
    arm = run(shipyard, token, "deploy-arm.yml", ENVIRONMENT="pr-1", RELEASE="1.0.0")
    recorded = run(shipyard, token, "record-deployment.yml", ENVIRONMENT="pr-1", RELEASE="1.0.0",
                   ARTIFACT="drop", REQUESTED_BY="", JOB_STATUS="Succeeded",
                   RUN_URL=RUN_URL)  # fmt: skip
    built = {"Build.BuildId": "4711", "Build.SourceBranch": "refs/tags/2.0.0"}
    registered = run(shipyard, token, "register-release.yml", VERSION="2.0.0", ARTIFACT="drop",
                     **built)  # fmt: skip

    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.strip() == "pr-1 is ready"
    assert rendered.returncode == 0, rendered.stderr
    xml = shipyard.agent_home / "a/ApplicationParameters/pr-1.xml"
    values = {p.get("Name"): p.get("Value") for p in etree.parse(str(xml)).iter(f"{SF}Parameter")}
    assert values["GAME_MOTD"] == "hello pr-1 on 1.0.0"
    assert arm.returncode == 0, arm.stderr
    assert (shipyard.agent_home / "a/ArmParameters/pr-1.json").is_file()
    assert recorded.returncode == 0, recorded.stderr
    assert registered.returncode == 0, registered.stderr
    with shipyard.runtime.database.read() as conn:
        (deployment,) = rec.history(conn, "pr-1")
        assert run_url_of(conn, deployment.id) == RUN_URL
        env = rec.get_environment(conn, "pr-1")
        release = rec.get_release(conn, "2.0.0")
    # Nobody named in the run: the pipeline itself asked, not the agent's e-mail.
    assert (env.release, env.release_by) == ("1.0.0", "azure-devops")
    assert (release.build_run, release.build_artifact, release.source_ref) == (
        4711,
        "drop",
        "refs/tags/2.0.0",
    )


def test_a_wait_longer_than_its_job_is_refused_before_asking_shipyard(served: Shipyard) -> None:
    shipyard = served
    done = run(shipyard, "not-even-a-token", "provision.yml", ENVIRONMENT="pr-2",
               READY_TIMEOUT="60", JOB_TIMEOUT="60")  # fmt: skip
    assert done.returncode == 2
    assert "readyTimeoutInMinutes (60) must be below" in done.stdout
