"""The plugin steps on a build agent: SHIPYARD_URL + SHIPYARD_TOKEN against a real `shipyard serve`.

The steps run as subprocesses in an environment cleared to what an agent's job has (PATH, HOME
and the two variables), with no shipyard.yaml and no database; whatever they change, they
change through `/api/v1`. Refused tokens change nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import sqlalchemy as sa
import yaml
from lxml import etree
from starlette.applications import Starlette

from bot.api import openapi
from bot.api_pipeline import pipeline_routes
from bot.runtime import Runtime
from environments.model import EnvironmentState
from environments.pipeline_deployments import run_url_of
from environments.policy import Actor
from environments.registry import operations as ops
from environments.registry import record as rec
from environments.registry import tokens as token_rows
from environments.tokens import Tokens
from tests.conftest import EXAMPLES
from tests.fakes.slack import FakeSlack
from tests.replicas import Serve
from tests.slackbot import CONFIG, free_port, serving

pytestmark = pytest.mark.e2e

RUN_URL = "https://dev.azure.com/fabrikam/d6b3e0ea/_build/results?buildId=4711"
SF = "{http://schemas.microsoft.com/2011/01/fabric}"


class Shipyard:
    """A running `shipyard serve`, its record (opened beside it) and tokens for agents."""

    def __init__(self, url: str, runtime: Runtime, agent_home: Path) -> None:
        self.url = url
        self.runtime = runtime
        self.tokens = Tokens(runtime.catalog, runtime.database, runtime.clock)
        self.agent_home = agent_home

    def token(self, scope: str = "pipeline", env_type: str | None = "test") -> str:
        plain, _ = self.tokens.create(Actor("dave"), scope=scope, env_type=env_type)
        return plain

    def agent(self, token: str, url: str | None) -> dict[str, str]:
        """An agent job's environment: only PATH, HOME and the two variables."""
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.agent_home),
            "SHIPYARD_URL": url or self.url,
            "SHIPYARD_TOKEN": token,
        }

    def step(
        self, token: str, *args: str, url: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`shipyard pipeline …` as an agent's job runs it."""
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "pipeline", *args],
            env=self.agent(token, url),
            cwd=self.agent_home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def popen(self, token: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "pipeline", *args],
            env=self.agent(token, None),
            cwd=self.agent_home,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def snapshot(self) -> dict[str, Any]:
        """What a refused step must leave unchanged."""
        with self.runtime.database.read() as conn:
            return {
                "releases": [r.version for r in rec.list_releases(conn)],
                "history": [d.id for d in rec.history(conn, "pr-1")],
                "environments": [(e.name, e.state, e.release) for e in rec.list_environments(conn)],
                "audit": conn.execute(sa.text("select count(*) from audit_events")).scalar(),
                "outbox": conn.execute(sa.text("select count(*) from outbox")).scalar(),
            }


@pytest.fixture
def shipyard(home: Path, tmp_path: Path) -> Iterator[Shipyard]:
    url = f"sqlite:///{tmp_path / 'record.db'}"
    runtime = Runtime.open(str(CONFIG), database_url=url)
    runtime.lifecycle.add_release(Actor("ci"), "1.0.0", str(EXAMPLES / "game/releases/1.0.0"))
    now = runtime.clock.now()
    with runtime.database.write() as conn:
        for name, env_type, state in (
            ("pr-1", "test", EnvironmentState.READY),
            ("pr-2", "test", EnvironmentState.PROVISIONING),
            ("pr-3", "test", EnvironmentState.FAILED),
            ("staging", "staging", EnvironmentState.READY),
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
    agent_home = tmp_path / "agent"
    agent_home.mkdir()
    with FakeSlack() as slack:
        serve = Serve(home, url, slack)
        try:
            yield Shipyard(serve.start(), runtime, agent_home)
        finally:
            serve.stop()
            runtime.close()


def test_render_wait_record_and_register_through_the_api(shipyard: Shipyard) -> None:
    token = shipyard.token()
    out = shipyard.agent_home / "drop/ApplicationParameters/pr-1.xml"

    rendered = shipyard.step(token, "render-parameters", "pr-1", "--release", "1.1.0",
                             "--format", "sf-xml", "--out", str(out))  # fmt: skip
    dotenv = shipyard.step(token, "render-parameters", "pr-1", "--format", "dotenv",
                           "--release", "1.0.0")  # fmt: skip
    waiting = shipyard.popen(token, "wait-ready", "pr-2", "--timeout", "60s", "--interval", "1s")
    assert waiting.stderr is not None
    first = waiting.stderr.readline()  # the step has seen pr-2 provisioning through the API
    with shipyard.runtime.database.write() as conn:
        env = rec.get_environment(conn, "pr-2")
        rec.update_environment(conn, env.id, state=EnvironmentState.READY, reason=None)
    waited_out, waited_err = waiting.communicate(timeout=60)
    failed = shipyard.step(token, "wait-ready", "pr-3", "--timeout", "10s")
    args = ["record-deployment", "--env", "pr-1", "--release", "1.1.0", "--run-url", RUN_URL,
            "--status", "succeeded", "--requested-by", "alice", "--artifact", "drop"]  # fmt: skip
    recorded = shipyard.step(token, *args, "--approved-by", "carol")
    again = shipyard.step(token, *args)
    built = ["--build-run", "4711", "--artifact", "drop", "--ref", "refs/tags/2.0.0"]
    registered = shipyard.step(token, "register-release", "--version", "2.0.0", *built)

    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout.startswith(f"wrote {out} (")
    values = {p.get("Name"): p.get("Value") for p in etree.parse(str(out)).iter(f"{SF}Parameter")}
    assert values["GAME_MOTD"] == "hello pr-1 on 1.1.0"
    assert dotenv.returncode == 0 and 'GAME_MOTD="hello pr-1 on 1.0.0"' in dotenv.stdout
    assert waiting.returncode == 0, first + waited_err
    assert first.strip() == "pr-2 is provisioning; waiting"
    assert waited_out.strip() == "pr-2 is ready"
    assert failed.returncode == 8 and "pr-3 failed: ARM said no" in failed.stderr
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.startswith("recorded: 1.1.0 into pr-1 succeeded")
    assert again.returncode == 0 and again.stdout.startswith("already recorded")
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.startswith("registered: release 2.0.0 from build run 4711")
    with shipyard.runtime.database.read() as conn:
        env = rec.get_environment(conn, "pr-1")
        (deployment,) = rec.history(conn, "pr-1")
        assert run_url_of(conn, deployment.id) == RUN_URL
        release = rec.get_release(conn, "2.0.0")
        by_token = [(e.actor, e.action) for e in ops.audit_log(conn) if e.action.startswith("api.")]
    assert (env.release, env.release_by, deployment.approved_by) == ("1.1.0", "alice", ("carol",))
    # Which token wrote what is in the audit log (once: the repeated record changed nothing).
    assert by_token == [
        (f"token {token[:12]}", "api.release_add"),
        (f"token {token[:12]}", "api.record_deployment"),
    ]
    assert (release.build_run, release.build_artifact, release.source_ref) == (
        4711,
        "drop",
        "refs/tags/2.0.0",
    )
    # The agent had no record of its own: nothing was opened or created under its HOME.
    assert sorted(p.name for p in shipyard.agent_home.rglob("*")) == [
        "ApplicationParameters",
        "drop",
        "pr-1.xml",
    ]


def test_refused_tokens_change_nothing_and_say_so_in_one_line(shipyard: Shipyard) -> None:
    revoked = shipyard.token()
    shipyard.tokens.revoke(Actor("dave"), revoked[:12])
    expired = shipyard.token()
    with shipyard.runtime.database.write() as conn:
        found = token_rows.find_by_prefix(conn, expired[:12])
        assert found is not None
        token_rows.update_token(
            conn, found.id, expires_at=shipyard.runtime.clock.now() - timedelta(minutes=1)
        )
    cases = [
        (revoked, 14, "was revoked"),
        (expired, 14, "has expired"),
        ("shy_never-issued", 14, "not one Shipyard issued"),
        (shipyard.token(scope="read", env_type=None), 5, "pipeline steps need a pipeline token"),
        (shipyard.token(env_type="staging"), 5, "acts on staging environments, not test"),
    ]
    record = ["record-deployment", "--env", "pr-1", "--release", "1.1.0", "--run-url", RUN_URL,
              "--status", "succeeded", "--requested-by", "alice"]  # fmt: skip
    register = ["register-release", "--version", "3.0.0", "--build-run", "4800"]
    before = shipyard.snapshot()

    for token, code, reason in cases:
        for args in (
            record,
            ["render-parameters", "pr-1", "--release", "1.1.0"],
            ["wait-ready", "pr-1", "--timeout", "5s"],
            *([register] if "staging" not in reason else []),
        ):
            done = shipyard.step(token, *args)
            assert (done.returncode, done.stdout) == (code, ""), (args, done.stderr)
            assert reason in done.stderr and len(done.stderr.strip().splitlines()) == 1
            assert token not in done.stderr

    assert shipyard.snapshot() == before
    # A token of another type may still register a release: releases belong to no one type.
    other = shipyard.step(shipyard.token(env_type="staging"), *register)
    assert other.returncode == 0, other.stderr


def test_a_step_says_what_to_do_when_shipyard_is_unreachable_or_unset(
    shipyard: Shipyard,
) -> None:
    token = shipyard.token()
    nobody = f"http://127.0.0.1:{free_port()}"

    unreachable = shipyard.step(token, "wait-ready", "pr-1", url=nobody)
    no_token = shipyard.step("", "wait-ready", "pr-1")
    not_shipyard = shipyard.step(token, "wait-ready", "pr-1", url=shipyard.url + "/nowhere")

    assert unreachable.returncode == 15
    assert f"Shipyard at {nobody} did not answer" in unreachable.stderr
    assert "check SHIPYARD_URL" in unreachable.stderr
    assert no_token.returncode == 3 and "SHIPYARD_TOKEN is not set" in no_token.stderr
    assert not_shipyard.returncode == 15 and "Shipyard's base URL" in not_shipyard.stderr
    for done in (unreachable, no_token, not_shipyard):
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_step_routes_answer_as_the_openapi_document_says(shipyard: Shipyard) -> None:
    document = openapi()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {shipyard.token()}"
    api = shipyard.url + "/api/v1"

    def check(answer: requests.Response, schema: str, status: int) -> None:
        assert answer.status_code == status, answer.text
        described = document["components"]["schemas"]
        assert schema in described
        jsonschema.Draft202012Validator(
            {**document, "$ref": f"#/components/schemas/{schema}"}
        ).validate(answer.json())

    deployment = {"release": "1.1.0", "status": "failed", "run_url": RUN_URL + "1"}
    release = {"version": "4.0.0", "build_run": 99, "artifact": "drop"}
    check(session.get(f"{api}/environments/pr-1/parameters", params={"format": "json",
          "release": "1.0.0"}), "Rendered", 200)  # fmt: skip
    check(session.get(f"{api}/environments/pr-1/state"), "StateAnswer", 200)
    check(session.post(f"{api}/environments/pr-1/deployments", json=deployment), "Recorded", 201)
    check(session.post(f"{api}/environments/pr-1/deployments", json=deployment), "Recorded", 200)
    check(session.post(f"{api}/releases", json=release), "Registered", 201)
    check(session.post(f"{api}/releases", json={**release, "build_run": 100}), "Problem", 409)
    check(session.post(f"{api}/releases", json={"version": "5"}), "Problem", 400)
    check(session.get(f"{api}/environments/pr-404/state"), "Problem", 404)
    check(session.get(f"{api}/environments/staging/state"), "Problem", 403)
    check(requests.get(f"{api}/environments/pr-1/state", timeout=10), "Problem", 401)
    for path, method in (
        ("/api/v1/environments/{name}/parameters", "get"),
        ("/api/v1/environments/{name}/state", "get"),
        ("/api/v1/environments/{name}/deployments", "post"),
        ("/api/v1/releases", "post"),
    ):
        assert {"401", "403"} <= set(document["paths"][path][method]["responses"])
    assert json.loads(json.dumps(document)) == document


def test_the_rule_table_decides_what_pipeline_tokens_may_write(home: Path, tmp_path: Path) -> None:
    """Pipeline tokens act as `azure-devops`: a rule table that does not name it refuses them."""
    loaded = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    loaded["allow"] = {"record_deployment": ["dave"], "release_add": ["azure-devops"]}
    loaded["loadtests"] = {}
    config = tmp_path / "shipyard.yaml"
    config.write_text(yaml.safe_dump(loaded), encoding="utf-8")
    runtime = Runtime.open(str(config), database_url=f"sqlite:///{tmp_path / 'rules.db'}")
    try:
        with runtime.database.write() as conn:
            now = runtime.clock.now()
            rec.insert_environment(conn, name="pr-1", env_type="test", owner="alice", at=now,
                                   expires_at=None, overrides={})  # fmt: skip
        plain, _ = Tokens(runtime.catalog, runtime.database, runtime.clock).create(
            Actor("dave"), scope="pipeline", env_type="test"
        )
        headers = {"Authorization": f"Bearer {plain}"}
        deployment = {"release": "1.1.0", "status": "succeeded", "run_url": RUN_URL}
        with serving(Starlette(routes=pipeline_routes(runtime))) as url:
            recorded = requests.post(f"{url}/api/v1/environments/pr-1/deployments",
                                     json=deployment, headers=headers, timeout=10)  # fmt: skip
            registered = requests.post(f"{url}/api/v1/releases", headers=headers, timeout=10,
                                       json={"version": "2.0.0", "build_run": 7})  # fmt: skip
        assert recorded.status_code == 403
        assert recorded.json()["error"] == "azure-devops may not record deployment"
        assert registered.status_code == 201, registered.text
        with runtime.database.read() as conn:
            assert rec.history(conn, "pr-1") == []
            assert [r.version for r in rec.list_releases(conn)] == ["2.0.0"]
    finally:
        runtime.close()
