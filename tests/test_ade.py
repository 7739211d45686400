"""ADE environment definitions as types: read, checked, rendered and deployed through the real
azure-mgmt-resource clients against the fake ARM; broken manifests; Bicep; catalog commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.command import Outcome
from bot.runtime import Runtime
from bot.table import execute, parse
from environments import ade, inputs, validation
from environments.catalog import load_catalog
from environments.errors import ConfigError, InvalidInput
from environments.model import EnvironmentState
from environments.providers import ade_templates
from environments.registry import record as rec
from tests.conftest import EXAMPLES, MovableClock, RecordingNotifier, person
from tests.fakes.arm import FakeArm
from tests.test_azure_provider import provider_for

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "ade"
CONFIG = DATA / "shipyard.yaml"
ITEMS = DATA / "Environments"
ALICE = person("alice")


@pytest.fixture
def fake() -> Iterator[FakeArm]:
    with FakeArm(deployment_seconds=0.2, delete_seconds=0.1) as server:
        yield server


def open_runtime(config: Path, tmp_path: Path, fake: FakeArm, clock: MovableClock) -> Runtime:
    runtime = Runtime.open(
        str(config),
        database_url=f"sqlite:///{tmp_path / 'record.db'}",
        clock=clock,
        notifier=RecordingNotifier(),
    )
    runtime.worker.providers = {**runtime.worker.providers, "azure": provider_for(runtime, fake)}
    runtime.lifecycle.add_release(ALICE, "1.0.0", str(EXAMPLES / "game/releases/1.0.0"))
    return runtime


@pytest.fixture
def rt(home: Path, tmp_path: Path, fake: FakeArm, clock: MovableClock) -> Iterator[Runtime]:
    runtime = open_runtime(CONFIG, tmp_path, fake, clock)
    yield runtime
    runtime.close()


def run(rt: Runtime, *argv: str) -> Outcome:
    return execute(rt, ALICE, parse(list(argv)))


def create(rt: Runtime, env: str, env_type: str, overrides: dict[str, str] | None = None) -> Any:
    requested = rt.lifecycle.create(
        ALICE, env, env_type=env_type, release="1.0.0", overrides=overrides or {}
    )
    assert requested.operation_id is not None
    return rt.worker.run(requested.operation_id)


def copy_item(tmp_path: Path, name: str) -> Path:
    target = tmp_path / "catalog" / "Environments" / name
    shutil.copytree(ITEMS / name, target)
    for path in [target, *target.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def config_for(tmp_path: Path, types: str) -> Path:
    text = CONFIG.read_text().split("types:", 1)[0] + "types:\n" + types
    path = tmp_path / "shipyard.yaml"
    path.write_text(text)
    return path


# --- the three sample items -------------------------------------------------------------------


def test_the_sample_items_load_with_their_manifest_parameters() -> None:
    catalog = load_catalog(CONFIG)
    functions = catalog.type("functionapp")
    assert functions.summary == "FunctionApp 1.0.0 — Azure Function App Environment"
    assert functions.definition is not None and functions.definition.runner == "ARM"
    by_id = {i.id: i for i in functions.inputs}
    assert list(by_id) == ["name", "supportsHttpsTrafficOnly", "runtime"]
    assert by_id["name"].required and by_id["name"].label == "Name"
    assert by_id["supportsHttpsTrafficOnly"].kind == "boolean"
    assert by_id["runtime"].choices == (
        "dotnet",
        "dotnet-isolated",
        "java",
        "node",
        "powershell",
        "python",
    )
    assert by_id["runtime"].default == "dotnet-isolated"
    assert catalog.type("sandbox").inputs == ()
    assert [i.id for i in catalog.type("webapp").inputs] == ["name"]


@pytest.mark.parametrize(
    ("env_type", "given", "sent"),
    [
        ("webapp", {"name": "shop"}, {"name": {"value": "shop"}}),
        (
            "functionapp",
            {"name": "fn", "supportsHttpsTrafficOnly": "false", "runtime": "python"},
            {
                "name": {"value": "fn"},
                "supportsHttpsTrafficOnly": {"value": False},
                "runtime": {"value": "python"},
            },
        ),
        (
            "functionapp",
            {"name": "fn"},
            {"name": {"value": "fn"}, "runtime": {"value": "dotnet-isolated"}},
        ),
        ("sandbox", {}, {}),
    ],
)
def test_the_sample_items_render_arm_parameters_and_deploy(
    rt: Runtime, fake: FakeArm, env_type: str, given: dict[str, str], sent: dict[str, Any]
) -> None:
    op = create(rt, f"ade-{env_type}", env_type, given)
    assert op.state == "succeeded", op.error
    body = fake.deployment_puts()[0].body["properties"]
    assert body["parameters"] == sent
    template = (
        ITEMS
        / {"webapp": "WebApp", "functionapp": "FunctionApp", "sandbox": "Sandbox"}[env_type]
        / "azuredeploy.json"
    ).read_text()
    assert body["template"]["contentVersion"] == "1.0.0.0"
    assert body["template"]["metadata"]["_generator"]["templateHash"] in template
    with rt.database.read() as conn:
        env = rec.get_environment(conn, f"ade-{env_type}")
    assert env.state is EnvironmentState.READY
    assert fake.groups[f"sy-ade-{env_type}"]["tags"]["shipyard-type"] == env_type
    assert fake.violations == []


def test_env_show_and_config_check_say_what_the_definition_is(rt: Runtime) -> None:
    assert create(rt, "fn-1", "functionapp", {"name": "fn"}).state == "succeeded"
    shown = run(rt, "env", "show", "fn-1").text
    assert "FunctionApp 1.0.0 — Azure Function App Environment" in shown
    checked = run(rt, "config", "check").text
    assert "azure functionapp: azuredeploy.json ok (ADE FunctionApp 1.0.0" in checked
    assert "each environment must set name" in checked


def test_required_read_only_and_bad_values_are_refused_before_anything_is_written(
    rt: Runtime, fake: FakeArm
) -> None:
    with pytest.raises(InvalidInput) as refused:
        rt.lifecycle.create(
            ALICE,
            "fn-2",
            env_type="functionapp",
            release="1.0.0",
            overrides={"runtime": "cobol", "supportsHttpsTrafficOnly": "maybe"},
        )
    reason = refused.value.reason
    assert "runtime: 'cobol' is not allowed (allowed: dotnet, dotnet-isolated" in reason
    assert "supportsHttpsTrafficOnly must be true or false, got 'maybe'" in reason
    assert "name (Name) is required" in reason
    assert "as ID=VALUE (its parameters: name, supportsHttpsTrafficOnly, runtime)" in (
        refused.value.hint
    )
    with rt.database.read() as conn:
        assert rec.find_environment(conn, "fn-2") is None
    assert fake.requests == []
    # The CLI's --set takes the same ids.
    outcome = run(
        rt,
        "env",
        "create",
        "fn-3",
        "--type",
        "functionapp",
        "--release",
        "1.0.0",
        "--set",
        "name=fn",
        "--set",
        "runtime=node",
        "--no-wait",
    )
    assert outcome.operation is not None
    with rt.database.read() as conn:
        assert rec.get_environment(conn, "fn-3").overrides == {"name": "fn", "runtime": "node"}


def test_what_if_for_an_ade_type_checks_its_parameters_and_changes_nothing(
    rt: Runtime, fake: FakeArm
) -> None:
    with pytest.raises(InvalidInput, match="name \\(Name\\) is required"):
        run(rt, "env", "create", "fn-9", "--type", "functionapp", "--release", "1.0.0", "--what-if")
    text = run(
        rt,
        *("env", "create", "fn-9", "--type", "functionapp", "--release", "1.0.0"),
        *("--set", "name=shop", "--what-if"),
    ).text
    assert "+ Create    Microsoft.Web/sites" in text
    assert text.splitlines()[-1] == "nothing was done and the record is unchanged"
    assert fake.groups == {} and fake.deployment_puts() == []


def test_a_read_only_parameter_cannot_be_overridden(
    tmp_path: Path, home: Path, fake: FakeArm, clock: MovableClock
) -> None:
    item = copy_item(tmp_path, "FunctionApp")
    manifest = item / "environment.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "    default: 'dotnet-isolated'", "    default: 'dotnet-isolated'\n    readOnly: true"
        )
    )
    config = config_for(
        tmp_path, "  fnapp:\n    provider: azure\n    ade: catalog/Environments/FunctionApp\n"
    )
    runtime = open_runtime(config, tmp_path, fake, clock)
    try:
        with pytest.raises(
            InvalidInput, match="runtime is read-only \\(it keeps dotnet-isolated\\)"
        ):
            runtime.lifecycle.create(
                ALICE,
                "fn-4",
                env_type="fnapp",
                release="1.0.0",
                overrides={"name": "a", "runtime": "java"},
            )
        op = create(runtime, "fn-4", "fnapp", {"name": "a"})
        assert op.state == "succeeded", op.error
        with pytest.raises(InvalidInput, match="runtime is read-only"):
            runtime.lifecycle.deploy(ALICE, "fn-4", release="1.0.0", overrides={"runtime": "java"})
        with pytest.raises(InvalidInput, match="runtime is read-only"):
            runtime.lifecycle.set_parameters(ALICE, "fn-4", {"runtime": "java"}, [])
        sent = fake.deployment_puts()[0].body["properties"]["parameters"]
        assert sent["runtime"] == {"value": "dotnet-isolated"}
    finally:
        runtime.close()


# --- broken manifests -------------------------------------------------------------------------

BROKEN = """\
name: Broken
version: 1.0.0
runner: ARM
templatePath: azuredeploy.json
parameters:
  - id: name
    name: Name
    type: string
    required: true
  - id: name
    type: string
  - id: runtime
    type: text
  - name: Nameless
    type: string
  - id: supportsHttpsTrafficOnly
    type: boolean
    default: 'yes'
"""


def test_a_broken_manifest_is_refused_with_every_problem_naming_file_and_line(
    tmp_path: Path,
) -> None:
    item = copy_item(tmp_path, "FunctionApp")
    (item / "environment.yaml").write_text(BROKEN)
    config = config_for(
        tmp_path, "  fnapp:\n    provider: azure\n    ade: catalog/Environments/FunctionApp\n"
    )
    with pytest.raises(ConfigError) as refused:
        validation.load(config)
    reason = refused.value.reason
    manifest = item / "environment.yaml"
    assert reason.startswith(f"{config}: 4 problems: ")
    assert f"{manifest}:10: parameter id 'name' is given twice (first on line 6)" in reason
    assert f"{manifest}:13: type 'text' is not one of: string, number, integer" in reason
    assert f"{manifest}:14: 'id' is required" in reason
    assert f"{manifest}:18: default 'yes' is not a boolean" in reason


def test_a_manifest_and_template_that_disagree_are_refused(tmp_path: Path) -> None:
    item = copy_item(tmp_path, "WebApp")
    manifest = item / "environment.yaml"
    manifest.write_text(
        manifest.read_text()
        + "\n  - id: sku\n    name: SKU\n    type: string\n"
        + "  - id: location\n    type: boolean\n"
    )
    template = item / "azuredeploy.json"
    template.write_text(
        template.read_text().replace('"tags": {', '"owner": {"type": "string"},\n    "tags": {')
    )
    config = config_for(
        tmp_path, "  web:\n    provider: azure\n    ade: catalog/Environments/WebApp\n"
    )
    with pytest.raises(ConfigError) as refused:
        validation.load(config)
    reason = refused.value.reason
    assert f"{manifest}:16: parameter 'sku' is not declared by azuredeploy.json" in reason
    assert (
        f"{manifest}:19: parameter 'location' is a boolean here but azuredeploy.json "
        "declares 'location' as string" in reason
    )
    assert (
        f"{manifest}:1: azuredeploy.json requires parameter 'owner' (no defaultValue) but the "
        "manifest does not offer it" in reason
    )


@pytest.mark.parametrize(
    ("runner", "said"),
    [
        ("Terraform", "runner Terraform is not supported by Shipyard"),
        ("myregistry.azurecr.io/ade-custom:1.0", "(a custom container image) is not supported"),
    ],
)
def test_terraform_and_custom_runners_are_refused_clearly(
    tmp_path: Path, runner: str, said: str
) -> None:
    item = copy_item(tmp_path, "Sandbox")
    manifest = item / "environment.yaml"
    manifest.write_text(manifest.read_text().replace("runner: ARM", f"runner: {runner}"))
    config = config_for(
        tmp_path, "  box:\n    provider: azure\n    ade: catalog/Environments/Sandbox\n"
    )
    with pytest.raises(ConfigError) as refused:
        validation.load(config)
    assert f"{manifest}:6: " in refused.value.reason and said in refused.value.reason
    assert "convert this item" in refused.value.reason


# --- Bicep --------------------------------------------------------------------------------------


def bicep_item(tmp_path: Path, *, compiled: bool) -> tuple[Path, Path]:
    item = copy_item(tmp_path, "WebApp")
    manifest = item / "environment.yaml"
    manifest.write_text(
        manifest.read_text()
        .replace("runner: ARM", "runner: Bicep")
        .replace("templatePath: azuredeploy.json", "templatePath: main.bicep")
    )
    if not compiled:
        (item / "azuredeploy.json").unlink()
    config = config_for(
        tmp_path, "  web:\n    provider: azure\n    ade: catalog/Environments/WebApp\n"
    )
    return item, config


def test_a_bicep_item_uses_the_compiled_template_beside_it_when_newer(
    tmp_path: Path, home: Path, fake: FakeArm, clock: MovableClock
) -> None:
    item, config = bicep_item(tmp_path, compiled=True)
    now = time.time()
    os.utime(item / "main.bicep", (now - 60, now - 60))
    os.utime(item / "azuredeploy.json", (now, now))
    runtime = open_runtime(config, tmp_path, fake, clock)
    try:
        op = create(runtime, "web-1", "web", {"name": "shop"})
        assert op.state == "succeeded", op.error
        put = fake.deployment_puts()[0].body["properties"]
        assert put["template"]["metadata"]["_generator"]["name"] == "bicep"
        assert put["parameters"] == {"name": {"value": "shop"}}
    finally:
        runtime.close()


def test_a_bicep_item_without_a_compiled_template_or_cli_is_refused_with_the_reason(
    tmp_path: Path, home: Path, fake: FakeArm, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    item, config = bicep_item(tmp_path, compiled=False)
    runtime = open_runtime(config, tmp_path, fake, clock)  # loads: compiling waits for use
    try:
        # Refused by the use case before anything is recorded (not a failed environment).
        with pytest.raises(ConfigError) as at_create:
            create(runtime, "web-2", "web", {"name": "shop"})
        bicep = item / "main.bicep"
        assert f"{bicep}: runner Bicep needs a compiled template" in at_create.value.reason
        assert "no Bicep CLI (bicep or az) on PATH" in at_create.value.reason
        assert fake.requests == []
        with runtime.database.read() as conn:
            assert rec.find_environment(conn, "web-2") is None
        with pytest.raises(ConfigError) as refused:
            run(runtime, "config", "check")
        assert f"az bicep build --file {bicep} --outfile {item / 'azuredeploy.json'}" in (
            refused.value.hint
        )
    finally:
        runtime.close()


def test_a_stale_compiled_template_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    item, _ = bicep_item(tmp_path, compiled=True)
    now = time.time()
    os.utime(item / "azuredeploy.json", (now - 60, now - 60))
    os.utime(item / "main.bicep", (now, now))
    definition = ade.load_definition(item)
    assert ade_templates.compiled_beside(item / "main.bicep") is None
    with pytest.raises(ConfigError, match="runner Bicep needs a compiled template"):
        ade_templates.template_of(definition)


def stand_in(tmp_path: Path, tool: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Only `tool` (bicep or az) on PATH: tests/fakes/bicep.py answering as that tool."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    script = folder / tool
    fake = Path(__file__).parent / "fakes" / "bicep.py"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} {fake} "$0" "$@"\n')
    script.chmod(0o755)
    log = tmp_path / "bicep.log"
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setenv("FAKE_BICEP_LOG", str(log))
    monkeypatch.setenv("FAKE_BICEP_TEMPLATE", str(ITEMS / "WebApp" / "azuredeploy.json"))
    return log


def test_a_bicep_item_is_compiled_with_the_bicep_cli_and_deployed(
    tmp_path: Path,
    home: Path,
    fake: FakeArm,
    clock: MovableClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = stand_in(tmp_path, "bicep", monkeypatch)
    item, config = bicep_item(tmp_path, compiled=False)
    runtime = open_runtime(config, tmp_path, fake, clock)
    try:
        assert (
            "azure web: main.json ok (ADE WebApp 1.0.0 — Azure Web App Environment, runner Bicep)"
            in (run(runtime, "config", "check").text)
        )
        op = create(runtime, "web-3", "web", {"name": "shop"})
        assert op.state == "succeeded", op.error
    finally:
        runtime.close()
    sent = fake.deployment_puts()[0].body["properties"]
    assert sent["template"]["metadata"]["_generator"]["name"] == "bicep"
    assert sent["parameters"] == {"name": {"value": "shop"}}
    # One compilation for the process, however often the template is needed.
    assert log.read_text().splitlines() == [f"bicep build {item / 'main.bicep'} --stdout"]


def test_the_azure_cli_compiles_when_it_is_the_bicep_cli_at_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = stand_in(tmp_path, "az", monkeypatch)
    item, _ = bicep_item(tmp_path, compiled=False)
    template = ade_templates.template_of(ade.load_definition(item))
    assert template is not None and set(template.parameters) == {"name", "location", "tags"}
    assert log.read_text().splitlines() == [f"az bicep build --file {item / 'main.bicep'} --stdout"]


def test_a_bicep_file_that_does_not_compile_is_refused_with_the_compilers_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in(tmp_path, "bicep", monkeypatch)
    item, _ = bicep_item(tmp_path, compiled=False)
    bicep = item / "main.bicep"
    bicep.write_text(bicep.read_text().replace("param name string = ''", "param name string =! ''"))
    with pytest.raises(ConfigError) as refused:
        ade_templates.template_of(ade.load_definition(item))
    assert refused.value.reason.startswith(f"{bicep}: 'bicep build {bicep} --stdout' failed: ")
    assert f"{bicep}(5,1) : Error BCP018" in refused.value.reason


# --- inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "problem"),
    [
        ("integer", "3", None),
        ("integer", "3.5", "p must be a whole number, got '3.5'"),
        ("number", "3.5", None),
        ("number", "x", "p must be a number, got 'x'"),
        ("boolean", "TRUE", None),
        ("object", "[]", "p must be a JSON object, got '[]'"),
        ("array", "[1]", None),
        ("string", "@keyvault(v, s)", None),
        ("string", "{{ env.name }}", None),
    ],
)
def test_input_values_are_checked_by_kind(kind: str, text: str, problem: str | None) -> None:
    assert inputs.value_problem(inputs.Input("p", "P", kind), text) == problem


# --- catalog list and import ------------------------------------------------------------------


def shipyard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
        capture_output=True,
        timeout=60,
    )


def test_catalog_list_shows_items_runners_parameters_and_problems(tmp_path: Path) -> None:
    for name in ("WebApp", "FunctionApp", "Sandbox"):
        copy_item(tmp_path, name)
    broken = tmp_path / "catalog" / "Environments" / "Sandbox" / "environment.yaml"
    broken.write_text(broken.read_text().replace("runner: ARM", "runner: Terraform"))
    done = shipyard("catalog", "list", "catalog", cwd=tmp_path)
    assert done.returncode == 3, done.stderr  # configuration (README's exit codes; 1 is a bug)
    out = done.stdout
    assert "FunctionApp 1.0.0  runner ARM  catalog/Environments/FunctionApp" in out
    assert "parameters: name*, supportsHttpsTrafficOnly, runtime=dotnet-isolated [6 choices]" in out
    assert "  ok (azuredeploy.json)" in out
    assert "catalog/Environments/Sandbox/environment.yaml:6: runner Terraform is not" in out
    assert "3 item(s), 1 with problems" in out


def test_catalog_list_of_a_folder_without_items_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = shipyard("catalog", "list", "empty", cwd=tmp_path)
    assert done.returncode == 4, done.stderr
    assert "no items under empty" in done.stdout
    nothing = shipyard("catalog", "import", "empty", cwd=tmp_path)
    assert nothing.returncode == 3 and "nothing to import" in nothing.stdout, nothing.stderr


def test_catalog_import_prints_and_writes_the_types(tmp_path: Path, home: Path) -> None:
    for name in ("WebApp", "FunctionApp", "Sandbox"):
        copy_item(tmp_path, name)
    printed = shipyard("catalog", "import", "catalog", "--type-prefix", "ade-", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert (
        "  ade-webapp:\n    provider: azure\n    ade: catalog/Environments/WebApp\n"
        in printed.stdout
    )
    config = tmp_path / "shipyard.yaml"
    config.write_text(
        CONFIG.read_text().split("types:", 1)[0]
        + "types:\n  # a local type the team already had\n  test:\n    provider: local\n"
    )
    written = shipyard("catalog", "import", "catalog", "--write", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert "added type(s) functionapp, sandbox, webapp" in written.stdout
    catalog = load_catalog(config)
    assert list(catalog.types) == ["functionapp", "sandbox", "webapp", "test"]
    assert catalog.type("webapp").summary.startswith("WebApp 1.0.0")
    assert "# a local type the team already had" in config.read_text()
    again = shipyard("catalog", "import", "catalog", "--write", cwd=tmp_path)
    assert (
        again.returncode == 2 and "already has type(s) functionapp, sandbox, webapp" in again.stderr
    )
