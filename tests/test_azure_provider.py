"""The azure provider through the real azure-mgmt-resource clients, against a fake ARM on HTTPS."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from bot.command import Outcome
from bot.runtime import Runtime
from bot.table import execute, parse
from environments.errors import InvalidInput
from environments.model import Environment, EnvironmentName, EnvironmentState, Person
from environments.providers import arm_parameters
from environments.providers import arm_template as arm
from environments.providers.azure import AzureProvider
from environments.registry import record as rec
from tests.conftest import EXAMPLES, MovableClock, RecordingNotifier, person
from tests.fakes.arm import SUBSCRIPTION, FakeArm
from tests.reference import REFERENCE as DATA_REFERENCE

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path(__file__).parent / "data" / "azure" / "shipyard.yaml"
REFERENCE = DATA_REFERENCE / "arm"
VAULT = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/sy-shared/providers/Microsoft.KeyVault"
ALICE = person("alice")


class FakeCredential:
    """A test credential: hands out a token and never reaches out to anything."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("test-token", int(time.time()) + 3600)


@pytest.fixture
def fake() -> Iterator[FakeArm]:
    with FakeArm(deployment_seconds=0.3, delete_seconds=0.2) as server:
        yield server


def provider_for(rt: Runtime, fake: FakeArm, **settings: Any) -> AzureProvider:
    return AzureProvider(
        rt.catalog,
        settings=rt.catalog.azure.model_copy(update={"resource_manager_url": fake.url, **settings}),
        credential=FakeCredential(),
        client_options={"connection_verify": str(fake.ca_file), "retry_backoff_factor": 0.05},
    )


@pytest.fixture
def rt(
    home: Path, tmp_path: Path, fake: FakeArm, clock: MovableClock, notifier: RecordingNotifier
) -> Iterator[Runtime]:
    runtime = Runtime.open(
        str(CONFIG),
        database_url=f"sqlite:///{tmp_path / 'record.db'}",
        clock=clock,
        notifier=notifier,
    )
    runtime.worker.providers = {**runtime.worker.providers, "azure": provider_for(runtime, fake)}
    for version in ("1.0.0", "1.1.0"):
        runtime.lifecycle.add_release(ALICE, version, str(EXAMPLES / "game/releases" / version))
    yield runtime
    runtime.close()


def run(rt: Runtime, *argv: str) -> Outcome:
    return execute(rt, ALICE, parse(list(argv)))


def create(rt: Runtime, name: str, env_type: str = "cloud", **kwargs: Any) -> Any:
    requested = rt.lifecycle.create(ALICE, name, env_type=env_type, release="1.0.0", **kwargs)
    assert requested.operation_id is not None
    return rt.worker.run(requested.operation_id)


def environment(rt: Runtime, name: str) -> Environment:
    with rt.database.read() as conn:
        return rec.get_environment(conn, name)


# --- create, deploy, outputs ------------------------------------------------------------------


def test_create_builds_a_tagged_group_deploys_and_env_show_has_the_outputs(
    rt: Runtime, fake: FakeArm
) -> None:
    fake.output_values["clusterEndpoint"] = "https://game.westeurope.cloudapp.azure.com:19080"
    op = create(rt, "pr-1", overrides={"nodeCount": "4"})
    assert op.state == "succeeded", op.error
    group = fake.groups["sy-pr-1"]
    assert group["location"] == "westeurope"
    tags = group["tags"]
    assert (tags["shipyard-env"], tags["shipyard-type"], tags["shipyard-owner"]) == (
        "pr-1",
        "cloud",
        "alice",
    )
    assert datetime.fromisoformat(tags["shipyard-expires"]) > datetime.now(UTC)

    shown = run(rt, "env", "show", "pr-1", "--json")
    env = shown.data["environment"]
    assert env.state is EnvironmentState.READY
    assert env.endpoint == "https://game.westeurope.cloudapp.azure.com:19080"
    assert env.outputs["nodeCount"] == 4
    assert env.outputs["resourceGroup"] == "sy-pr-1"
    assert env.outputs["clusterName"].startswith("game") and len(env.outputs["clusterName"]) == 12
    assert "https://game.westeurope" in run(rt, "env", "show", "pr-1").text
    assert shown.data["health"] == "resource group sy-pr-1 Succeeded"

    put = fake.deployment_puts()[0]
    assert put.body["properties"]["parameters"]["releaseVersion"] == {"value": "1.0.0"}
    assert put.body["properties"]["parameters"]["nodeCount"] == {"value": 4}
    assert "tier" not in put.body["properties"]["parameters"]  # ARM applies the default
    assert fake.violations == []


def test_deploy_of_a_new_release_runs_a_second_deployment_with_its_own_name(
    rt: Runtime, fake: FakeArm
) -> None:
    assert create(rt, "pr-2").state == "succeeded"
    requested = rt.lifecycle.deploy(ALICE, "pr-2", release="1.1.0", overrides={"tier": "Standard"})
    op = rt.worker.run(requested.operation_id or 0)
    assert op is not None and op.state == "succeeded", op.error
    first, second = (r.path.rsplit("/", 1)[1] for r in fake.deployment_puts())
    assert first.startswith("shipyard-pr-2-1.0.0-") and second.startswith("shipyard-pr-2-1.1.0-")
    assert fake.deployment_puts()[1].body["properties"]["parameters"]["tier"] == {
        "value": "Standard"
    }
    assert environment(rt, "pr-2").release == "1.1.0"


# --- validation -------------------------------------------------------------------------------


def test_every_parameter_problem_is_refused_at_once_before_anything_is_recorded(
    rt: Runtime, fake: FakeArm
) -> None:
    bad = {
        "nodeCount": "many",
        "tier": "Gold",
        "diagnostics": "yes",
        "settings": "[1]",
        "regions": "not json",
        "colour": "blue",
    }
    with rt.database.read() as conn:
        before = rec.list_environments(conn)
    with pytest.raises(InvalidInput) as refused:
        rt.lifecycle.create(ALICE, "pr-3", env_type="cloud", release="1.0.0", overrides=bad)
    assert refused.value.exit_code == 2
    assert refused.value.reason.startswith("game.json: 6 parameter problems: ")
    for expected in (
        "colour: supplied but not a parameter of the template",
        "diagnostics: must be true or false, got 'yes'",
        "nodeCount: must be an int, got 'many'",
        "regions: must be a JSON array, got 'not json'",
        "settings: must be a JSON object, got '[1]'",
        '"Gold" is not allowed (allowed: "Basic", "Standard")',
    ):
        assert expected in refused.value.reason
    assert fake.requests == []
    with rt.database.read() as conn:
        assert rec.list_environments(conn) == before
        assert rec.find_environment(conn, "pr-3") is None
    assert create(rt, "pr-3").state == "succeeded", "the same name is free for a retry"
    with pytest.raises(InvalidInput, match="tier"):
        rt.lifecycle.deploy(ALICE, "pr-3", release="1.1.0", overrides={"tier": "Gold"})
    assert environment(rt, "pr-3").release == "1.0.0"


def template(**parameters: dict[str, Any]) -> arm.Template:
    return arm.Template(Path("t.json"), {"parameters": parameters, "resources": []})


def render(tpl: arm.Template, **supplied: str) -> dict[str, dict[str, Any]]:
    return arm_parameters.render_parameters(
        tpl, supplied, vault_id=lambda ref: f"/vaults/{ref.vault}"
    )


@pytest.mark.parametrize(
    ("spec", "text", "value"),
    [
        ({"type": "string"}, "x", "x"),
        ({"type": "int"}, "-42", -42),
        ({"type": "Int", "minValue": 1, "maxValue": 3}, "3", 3),
        ({"type": "bool"}, "TRUE", True),
        ({"type": "bool"}, "false", False),
        ({"type": "object"}, '{"a": [1]}', {"a": [1]}),
        ({"type": "array", "allowedValues": ["a", "b"]}, '["a"]', ["a"]),
        ({"type": "string", "minLength": 2, "maxLength": 2}, "ab", "ab"),
        ({"type": "string"}, "{{ release.version }}", "{{ release.version }}"),
    ],
)
def test_values_are_typed_as_the_template_declares(
    spec: dict[str, Any], text: str, value: Any
) -> None:
    assert render(template(p=spec), p=text) == {"p": {"value": value}}


@pytest.mark.parametrize(
    ("spec", "text", "problem"),
    [
        ({"type": "int"}, "1.5", "p: must be an int, got '1.5'"),
        ({"type": "int", "minValue": 2}, "1", "p: 1 is below minValue 2"),
        ({"type": "int", "maxValue": 2}, "3", "p: 3 is above maxValue 2"),
        ({"type": "string", "minLength": 3}, "ab", "p: is shorter than minLength 3 (2)"),
        ({"type": "string", "maxLength": 1}, "ab", "p: is longer than maxLength 1 (2)"),
        ({"type": "array", "maxLength": 1}, "[1, 2]", "p: is longer than maxLength 1 (2)"),
        ({"type": "array", "allowedValues": [1]}, "[2]", "p: [2] is not allowed (allowed: 1)"),
        ({"type": "string"}, "@keyvault(v)", "p: @keyvault(v) needs a vault and a secret name"),
        ({"type": "string"}, "@env(X)", "p: @env(X) is for local environments"),
        ({"type": "SecureString"}, "s3", "p: shipyard.yaml or --set gives a literal value"),
    ],
)
def test_a_bad_value_is_refused_naming_the_template(
    spec: dict[str, Any], text: str, problem: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        render(template(p=spec), p=text)
    assert refused.value.reason.startswith("t.json: 1 parameter problem: ")
    assert problem in refused.value.reason


def test_a_required_parameter_without_a_default_must_be_supplied() -> None:
    with pytest.raises(InvalidInput, match="p: required by the template"):
        render(template(p={"type": "string"}, q={"type": "int", "defaultValue": 1}))


def test_a_key_vault_reference_is_rendered_as_a_reference_never_a_value() -> None:
    tpl = template(p={"type": "securestring"})
    assert render(tpl, p="@keyvault(my-vault, pw, 0123abc)") == {
        "p": {
            "reference": {
                "keyVault": {"id": "/vaults/my-vault"},
                "secretName": "pw",
                "secretVersion": "0123abc",
            }
        }
    }


def test_unique_names_differ_for_a_recreated_environment_and_fit_storage_rules() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)

    def env(env_id: int, at: datetime) -> Environment:
        return Environment(
            env_id,
            EnvironmentName("pr-1"),
            "cloud",
            EnvironmentState.READY,
            Person("a"),
            at,
            None,
            None,
            None,
            None,
            None,
        )

    first = arm.unique_suffix(env(1, now))
    again = arm.unique_suffix(env(1, now))
    recreated = arm.unique_suffix(env(2, now + timedelta(seconds=1)))
    assert first == again != recreated
    name = arm.unique_name("My-Storage_Account.Name!", first)
    assert len(name) == 24 and name.isalnum() and name == name.lower() and name.endswith(first)


# --- Key Vault, real templates ----------------------------------------------------------------


def test_a_key_vault_reference_reaches_arm_untouched(rt: Runtime, fake: FakeArm) -> None:
    assert create(rt, "pr-4").state == "succeeded"
    sent = fake.deployment_puts()[0].body["properties"]["parameters"]["adminPassword"]
    assert sent == {
        "reference": {
            "keyVault": {"id": f"{VAULT}/vaults/shipyard-vault"},
            "secretName": "game-admin-password",
        }
    }


def _arm_schema_validator(name: str) -> Any:
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    schemas = REFERENCE / "schemas"

    def retrieve(uri: str) -> Resource[Any]:
        local = schemas / uri.split("/schemas/", 1)[-1].split("#")[0]
        body = json.loads(local.read_text()) if local.is_file() else {}
        return Resource.from_contents(body, default_specification=DRAFT4)

    schema = json.loads((schemas / "2019-04-01" / name).read_text())
    return jsonschema.Draft4Validator(schema, registry=Registry(retrieve=retrieve))


@pytest.mark.parametrize("env_type", ["storage", "fabric"])
def test_the_reference_templates_validate_render_and_deploy(
    rt: Runtime, fake: FakeArm, env_type: str
) -> None:
    op = create(rt, f"ref-{env_type}", env_type=env_type)
    assert op.state == "succeeded", op.error
    body = fake.deployment_puts()[0].body["properties"]
    document = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/"
        "deploymentParameters.json#",
        "contentVersion": "1.0.0.0",
        "parameters": body["parameters"],
    }
    errors = list(_arm_schema_validator("deploymentParameters.json").iter_errors(document))
    assert errors == []
    if env_type == "fabric":
        params = body["parameters"]
        assert params["adminPassword"] == {
            "reference": {
                "keyVault": {"id": f"{VAULT}/vaults/sf-vault"},
                "secretName": "sf-admin-password",
            }
        }
        assert params["nt0InstanceCount"] == {"value": 5}
        assert params["clusterName"]["value"].startswith("game")
        assert len(fake.groups[f"sy-ref-{env_type}"]["resources"]) == 7
    else:
        assert body["parameters"] == {"storageAccountType": {"value": "Standard_GRS"}}


# --- failures and retries ---------------------------------------------------------------------


def test_a_failed_deployment_names_the_resource_and_arms_nested_message(
    rt: Runtime, fake: FakeArm
) -> None:
    fake.fail_deployments_in(
        "sy-pr-5",
        "Microsoft.Web/serverfarms",
        "game-plan",
        "SubscriptionIsOverQuotaForSku",
        "This region has quota of 0 instances for your subscription.",
    )
    op = create(rt, "pr-5")
    assert op.state == "failed"
    assert op.error is not None
    assert "Microsoft.Web/serverfarms 'game-plan'" in op.error
    assert "SubscriptionIsOverQuotaForSku: This region has quota of 0 instances" in op.error
    assert environment(rt, "pr-5").state is EnvironmentState.FAILED


def test_429_and_500_are_retried_honouring_retry_after(rt: Runtime, fake: FakeArm) -> None:
    fake.inject("PUT", r"/resourcegroups/sy-pr-6$", 429, retry_after=1)
    fake.inject("GET", r"/deployments/shipyard-pr-6-", 500, retry_after=None)
    fake.inject("GET", r"/operationStatuses/", 503, retry_after=1)
    op = create(rt, "pr-6")
    assert op.state == "succeeded", op.error
    assert [r.status for r in fake.seen("PUT", r"/resourcegroups/sy-pr-6$")] == [429, 201]
    assert fake.violations == []


def test_retries_are_bounded(rt: Runtime, fake: FakeArm) -> None:
    fake.inject("PUT", r"/resourcegroups/sy-pr-7$", 500, times=50, retry_after=None)
    op = create(rt, "pr-7")
    assert op.state == "failed"
    assert op.error is not None and "500" in op.error
    assert len(fake.seen("PUT", r"/resourcegroups/sy-pr-7$")) == 4  # 1 + max_retries 3


# --- destroy, expire, reconcile ---------------------------------------------------------------


def test_destroy_deletes_the_group_and_is_idempotent(rt: Runtime, fake: FakeArm) -> None:
    assert create(rt, "pr-8").state == "succeeded"
    env = environment(rt, "pr-8")
    op = rt.worker.run(rt.lifecycle.destroy(ALICE, "pr-8"))
    assert op is not None and op.state == "succeeded", op.error
    assert "sy-pr-8" not in fake.groups
    said: list[str] = []
    rt.worker.providers["azure"].destroy(env, progress=said.append)
    assert said == ["resource group sy-pr-8 is already gone"]


def test_expiry_destroys_azure_environments_too(
    rt: Runtime, fake: FakeArm, clock: MovableClock
) -> None:
    assert create(rt, "pr-9").state == "succeeded"
    clock.advance(timedelta(hours=9))
    report = rt.lifecycle.expire()
    assert report.expired == ("pr-9",)
    for op_id in report.operations:
        op = rt.worker.run(op_id)
        assert op is not None and op.state == "succeeded", op.error
    assert "sy-pr-9" not in fake.groups
    with rt.database.read() as conn:
        assert rec.list_environments(conn) == []


def test_reconcile_reports_orphans_and_vanished_groups(rt: Runtime, fake: FakeArm) -> None:
    assert run(rt, "reconcile").exit_code == 0, "no drift"
    assert create(rt, "pr-10").state == "succeeded"
    assert create(rt, "pr-11").state == "succeeded"
    fake.add_group("sy-ghost", {"shipyard-env": "ghost", "shipyard-owner": "bob"})
    fake.add_group("sy-untagged", {})
    fake.add_group("other-team-env", {"shipyard-env": "theirs"})
    del fake.groups["sy-pr-11"]

    outcome = run(rt, "reconcile", "--json")
    assert outcome.data["orphans"] == [
        {
            "name": "sy-ghost",
            "location": "westeurope",
            "tags": {"shipyard-env": "ghost", "shipyard-owner": "bob"},
        }
    ]
    assert outcome.data["vanished"] == [
        {"environment": "pr-11", "type": "cloud", "state": "ready", "resourceGroup": "sy-pr-11"}
    ]
    assert outcome.exit_code == 11, "drift is not success: a scheduled reconcile can alert"
    text = run(rt, "reconcile").text
    assert "1 orphaned resource group(s)" in text and "sy-ghost" in text and "bob" in text
    assert "1 environment(s) whose resource group vanished" in text and "sy-pr-11" in text
    assert fake.seen("GET", r"/resourcegroups$")[0].query["$filter"] == [
        "tagName eq 'shipyard-env'"
    ]


# --- what-if ----------------------------------------------------------------------------------


def test_what_if_shows_changes_and_changes_nothing(rt: Runtime, fake: FakeArm) -> None:
    outcome = run(
        rt, "env", "create", "pr-12", "--type", "cloud", "--release", "1.0.0", "--what-if"
    )
    lines = outcome.text.splitlines()
    assert lines[0].startswith("what-if for pr-12 (azure): ARM deployment shipyard-pr-12-1.0.0-")
    assert "  + Create    Microsoft.Resources/resourceGroups sy-pr-12" in lines
    assert "  + Create    Microsoft.Web/serverfarms game-plan" in lines
    assert any(
        line.startswith("  + Create    Microsoft.Storage/storageAccounts game") for line in lines
    )
    assert lines[-1] == "nothing was done and the record is unchanged"
    assert outcome.operation is None
    assert fake.groups == {} and fake.deployment_puts() == []
    with rt.database.read() as conn:
        assert rec.list_environments(conn) == []

    assert create(rt, "pr-12").state == "succeeded"
    puts = len(fake.deployment_puts())
    outcome = run(rt, "env", "deploy", "pr-12", "--release", "1.1.0", "--what-if")
    assert "  ~ Modify    Microsoft.Web/serverfarms game-plan" in outcome.text
    assert "      ~ tags.release: 'old' → 'new'" in outcome.text
    assert len(fake.deployment_puts()) == puts
    assert environment(rt, "pr-12").release == "1.0.0"
    assert fake.seen("POST", r"/resourcegroups/sy-pr-12/.*/whatIf$")
    assert fake.violations == []


def test_what_if_for_a_local_type_says_what_would_start(rt: Runtime, fake: FakeArm) -> None:
    text = run(
        rt, "env", "create", "pr-13", "--type", "test", "--release", "1.0.0", "--what-if"
    ).text
    assert "what-if for pr-13 (local)" in text
    assert "1 process of release 1.0.0" in text
    assert fake.requests == []


def test_config_check_checks_each_azure_template(rt: Runtime) -> None:
    text = run(rt, "config", "check").text
    assert "  azure cloud: game.json ok (8 parameters)" in text
    assert "  azure fabric: azuredeploy.json ok (18 parameters)" in text


# --- a crash in the middle of a deployment ----------------------------------------------------


@pytest.mark.e2e
def test_a_killed_create_is_finished_by_the_worker_without_a_second_deployment(
    tmp_path: Path,
) -> None:
    with FakeArm(deployment_seconds=4.0, retry_after=1) as fake:
        env = {
            **os.environ,
            "SHIPYARD_HOME": str(tmp_path / "home"),
            "SHIPYARD_CONFIG": str(CONFIG),
            "SHIPYARD_DATABASE_URL": f"sqlite:///{tmp_path / 'record.db'}",
            "SHIPYARD_AZURE_RESOURCE_MANAGER_URL": fake.url,
            "SHIPYARD_AZURE_STATIC_TOKEN": "test-token",
            "REQUESTS_CA_BUNDLE": str(fake.ca_file),
            "SHIPYARD_USER": "alice",
        }

        def shipyard(*args: str) -> subprocess.CompletedProcess[str]:
            done = subprocess.run(
                [sys.executable, "-m", "bot.cli", *args],
                env=env,
                cwd=ROOT,
                text=True,
                capture_output=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            return done

        shipyard("release", "add", "1.0.0", "--artifact", str(EXAMPLES / "game/releases/1.0.0"))
        creating = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "env",
                "create",
                "pr-1",
                "--type",
                "cloud",
                "--release",
                "1.0.0",
            ],
            env=env,
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while not fake.deployment_puts() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake.deployment_puts(), "the deployment never started"
        time.sleep(0.5)
        creating.send_signal(signal.SIGKILL)
        creating.communicate(timeout=30)
        assert (
            json.loads(shipyard("env", "show", "pr-1", "--json").stdout)["environment"]["state"]
            == "deploying"
        )

        resumed = shipyard("worker", "--once")
        assert "create pr-1: succeeded" in resumed.stdout, resumed.stdout + resumed.stderr
        # Still running (re-attached and polled) or already finished by the time the worker
        # looked (on a loaded machine): either way the same deployment, never a second PUT.
        assert re.search(
            r"(re-attaching to ARM deployment|ARM deployment) shipyard-pr-1-1\.0\.0-\w+"
            r"( already succeeded)?",
            resumed.stderr,
        ), resumed.stderr
        assert len(fake.deployment_puts()) == 1
        shown = json.loads(shipyard("env", "show", "pr-1", "--json").stdout)["environment"]
        assert shown["state"] == "ready" and shown["outputs"]["resourceGroup"] == "sy-pr-1"
        drift = json.loads(shipyard("reconcile", "--json").stdout)
        assert drift == {"orphans": [], "vanished": []}
        assert fake.violations == []
