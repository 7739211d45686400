"""Parameters end to end: set, redeploy, approval for gated types, secrets only as references."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bot.runtime import Runtime
from environments.errors import InvalidInput
from environments.model import OperationState
from environments.registry import record as rec
from tests.conftest import CONFIG, EXAMPLES, person

alice, carol, dave, erin = person("alice"), person("carol"), person("dave"), person("erin")
ROOT = Path(__file__).resolve().parents[1]


def settle(rt: Runtime, op_id: int | None) -> None:
    assert op_id is not None
    op = rt.worker.run(op_id)
    assert op is not None and op.state is OperationState.SUCCEEDED, op.error


def health(rt: Runtime, name: str) -> dict[str, Any]:
    with rt.database.read() as conn:
        endpoint = rec.get_environment(conn, name).endpoint
    with urllib.request.urlopen(f"{endpoint}/healthz", timeout=5) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def test_params_set_redeploys_and_history_shows_what_changed(runtime: Runtime) -> None:
    settle(
        runtime,
        runtime.lifecycle.create(alice, "pr-1", env_type="test", release="1.0.0").operation_id,
    )
    assert health(runtime, "pr-1")["parameters"]["GAME_MAX_PLAYERS"] == 100000

    requested = runtime.lifecycle.set_parameters(alice, "pr-1", {"GAME_MAX_PLAYERS": "7"}, [])
    assert requested is not None and requested.approval is None
    settle(runtime, requested.operation_id)

    assert health(runtime, "pr-1")["parameters"]["GAME_MAX_PLAYERS"] == 7
    with runtime.database.read() as conn:
        env = rec.get_environment(conn, "pr-1")
        newest, first = rec.history(conn, "pr-1")
    assert env.overrides == {"GAME_MAX_PLAYERS": "7"}
    assert newest.parameters is not None and first.parameters is not None
    assert (
        newest.parameters["GAME_MAX_PLAYERS"] == "7"
        and first.parameters["GAME_MAX_PLAYERS"] == "100000"
    )
    assert newest.parameters_fingerprint != first.parameters_fingerprint


def test_a_one_off_override_applies_to_one_deployment_only(runtime: Runtime) -> None:
    settle(
        runtime,
        runtime.lifecycle.create(alice, "pr-2", env_type="test", release="1.0.0").operation_id,
    )
    settle(
        runtime,
        runtime.lifecycle.deploy(
            alice, "pr-2", release="1.1.0", overrides={"GAME_MOTD": "just once"}
        ).operation_id,
    )
    assert health(runtime, "pr-2")["parameters"]["GAME_MOTD"] == "just once"
    settle(runtime, runtime.lifecycle.deploy(alice, "pr-2", release="1.0.0").operation_id)
    assert health(runtime, "pr-2")["parameters"]["GAME_MOTD"] != "just once"


def test_changing_production_parameters_waits_for_approval(runtime: Runtime) -> None:
    requested = runtime.lifecycle.create(dave, "prod-1", env_type="production", release="1.0.0")
    runtime.lifecycle.approve(carol, "prod-1")
    settle(runtime, runtime.lifecycle.approve(erin, "prod-1")[1])

    change = runtime.lifecycle.set_parameters(carol, "prod-1", {"GAME_MAX_PLAYERS": "9"}, [])
    assert change is not None and change.approval is not None and change.operation_id is None
    with runtime.database.read() as conn:
        assert rec.get_environment(conn, "prod-1").overrides == {}, "unchanged until approved"
    runtime.lifecycle.approve(dave, str(change.approval.id))
    settle(runtime, runtime.lifecycle.approve(erin, str(change.approval.id))[1])
    assert health(runtime, "prod-1")["parameters"]["GAME_MAX_PLAYERS"] == 9
    assert requested.approval is not None


@pytest.mark.parametrize(
    ("changes", "unset", "message"),
    [
        ({"GAME_DB_PASSWORD": "hunter2"}, [], "looks like a secret"),
        ({"BAD KEY": "1"}, [], "is not a parameter name"),
        ({}, ["NOT_SET_HERE"], "does not set NOT_SET_HERE itself"),
        ({"DB_TOKEN": "@keyvault(x)"}, [], "needs a vault and a secret name"),
    ],
)
def test_bad_parameter_changes_are_refused_and_change_nothing(
    runtime: Runtime, changes: dict[str, str], unset: list[str], message: str
) -> None:
    settle(
        runtime,
        runtime.lifecycle.create(alice, "pr-3", env_type="test", release="1.0.0").operation_id,
    )
    with runtime.database.read() as conn:
        before = (rec.get_environment(conn, "pr-3"), rec.history(conn, "pr-3"))
    with pytest.raises(InvalidInput, match=message):
        runtime.lifecycle.set_parameters(alice, "pr-3", changes, unset)
    with runtime.database.read() as conn:
        assert (rec.get_environment(conn, "pr-3"), rec.history(conn, "pr-3")) == before


def test_a_secret_reaches_the_process_and_nothing_else(tmp_path: Path) -> None:
    secret = "correct-horse-battery-staple-4711"
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_CONFIG": str(CONFIG),
        "SHIPYARD_DATABASE_URL": f"sqlite:///{tmp_path / 'record.db'}",
        "GAME_DB_SECRET": secret,
    }

    def shipyard(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "--as", "alice", *args],
            env=env,
            cwd=ROOT,
            text=True,
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done

    outputs = [
        shipyard("release", "add", "1.0.0", "--artifact", str(EXAMPLES / "game/releases/1.0.0")),
        shipyard(
            "env",
            "create",
            "pr-4",
            "--type",
            "test",
            "--release",
            "1.0.0",
            "--set",
            "GAME_DB_PASSWORD=@env(GAME_DB_SECRET)",
        ),
        shipyard("params", "show", "pr-4"),
        shipyard("params", "show", "pr-4", "--format", "dotenv"),
        shipyard("env", "history", "pr-4", "--json"),
        shipyard("env", "show", "pr-4", "--json"),
    ]
    shown = json.loads(outputs[-1].stdout)
    pid = json.loads(
        (Path(shown["environment"]["outputs"]["folder"]) / "instances.json").read_text()
    )["instances"][0]["pid"]
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"GAME_DB_PASSWORD={secret}".encode() in environ, "the process got the secret"
        assert "@env(GAME_DB_SECRET)" in outputs[2].stdout
        for done in outputs:
            assert secret not in done.stdout + done.stderr
        for path in [*tmp_path.glob("record.db*"), *(tmp_path / "home").rglob("*")]:
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), f"the secret is in {path}"
    finally:
        shipyard("env", "destroy", "pr-4")
