"""The YAML templates and the example pipelines: valid against the official Azure Pipelines
schema, every `${{ parameters.x }}` a template uses is one it declares, and the properties a
team relies on when it includes them as they are (Windows pool for Service Fabric, the gate on
the deployment stage only, one pinned install per job, API not database, one run at a time)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.reference import REFERENCE

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = REFERENCE / "azure-pipelines/service-schema.json"
TEMPLATES = sorted((ROOT / "pipelines/templates").rglob("*.yml"))
EXAMPLES = [ROOT / "examples/azure-pipelines.yml", ROOT / "examples/azure-pipelines-deploy.yml"]
FILES = [*TEMPLATES, *EXAMPLES]
STAGE = ROOT / "pipelines/templates/stages/deploy.yml"
STEPS = ROOT / "pipelines/templates/steps"
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
PARAMETER = re.compile(r"\bparameters\.([A-Za-z_][A-Za-z0-9_]*)|\bparameters\[\s*'([^']+)'\s*\]")
WHOLE_PARAMETER = re.compile(r"\$\{\{\s*parameters\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.fixture(scope="session")
def validator() -> jsonschema.protocols.Validator:
    """The 1.6 MB schema, loaded once.

    Azure Pipelines YAML is read as text: every scalar is a string to the schema (its booleans
    are patterns like ^true$), except task inputs it types as booleans or numbers, which the
    service accepts as the same text. PyYAML's BaseLoader reads every scalar as a string; the
    type checker accepts such text for boolean and number.
    """
    schema = json.loads(SCHEMA.read_text(encoding="utf-8-sig"))

    def boolean(_: Any, value: Any) -> bool:
        return isinstance(value, bool) or (isinstance(value, str) and value in ("true", "false"))

    def number(_: Any, value: Any) -> bool:
        if isinstance(value, str):
            return re.fullmatch(r"-?\d+(\.\d+)?", value) is not None
        return isinstance(value, int | float) and not isinstance(value, bool)

    checker = jsonschema.Draft7Validator.TYPE_CHECKER.redefine_many(
        {"boolean": boolean, "integer": number, "number": number}
    )
    cls = jsonschema.validators.extend(jsonschema.Draft7Validator, type_checker=checker)
    return cls(schema)


def load(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)


def compiled(path: Path) -> Any:
    """The file as Azure Pipelines compiles it with its parameters' defaults: a value that is
    just `${{ parameters.x }}` becomes x's default (a task input typed as an enum or a boolean is
    checked with the value it gets, not with the expression)."""
    document = load(path)
    defaults = {
        p["name"]: p["default"]
        for p in document.get("parameters", [])
        if isinstance(p.get("default"), str)
    }

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        found = WHOLE_PARAMETER.fullmatch(node) if isinstance(node, str) else None
        return defaults.get(found.group(1), node) if found else node

    return {**walk(document), "parameters": document.get("parameters", [])}


def problems(validator: jsonschema.protocols.Validator, document: Any) -> list[str]:
    found = []
    for error in validator.iter_errors(document):
        deepest = max([error, *_all(error.context)], key=lambda e: len(list(e.absolute_path)))
        found.append(f"{'/'.join(map(str, deepest.absolute_path))}: {deepest.message[:200]}")
    return found


def _all(errors: list[Any]) -> list[Any]:
    return [e for error in errors for e in (error, *_all(error.context))]


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_it_validates_against_the_azure_pipelines_schema(
    validator: jsonschema.protocols.Validator, path: Path
) -> None:
    assert problems(validator, compiled(path)) == []


def test_the_schema_check_catches_a_mistake(validator: jsonschema.protocols.Validator) -> None:
    document = compiled(STAGE)
    document["stages"][1]["jobs"][0]["enviroment"] = "typo"
    assert problems(validator, document)
    task = {"task": "ServiceFabricDeploy@1", "inputs": {"applicationPackagePath": "x"}}
    assert problems(validator, {"steps": [task]})  # serviceConnectionName is required
    wrong = compiled(STEPS / "deploy-service-fabric.yml")
    wrong["steps"][1]["inputs"]["upgradeMode"] = "Sometimes"
    assert problems(validator, wrong)
    raw = load(STEPS / "deploy-service-fabric.yml")  # the expression itself is no upgrade mode
    assert problems(validator, raw)


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_every_parameter_it_uses_is_declared(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    declared = {p["name"] for p in load(path).get("parameters", [])}
    used = {
        a or b for expression in EXPRESSION.findall(text) for a, b in PARAMETER.findall(expression)
    }
    assert used <= declared, f"used but not declared: {sorted(used - declared)}"


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_the_templates_it_includes_exist_and_declare_what_it_passes(path: Path) -> None:
    for include in load(path).get("stages", []) + steps_of(load(path)):
        if not isinstance(include, dict) or "template" not in include:
            continue
        passed = set(include.get("parameters", {}))
        names = include["template"]
        # `deploy-${{ parameters.deployTarget }}.yml` names one template per allowed value.
        targets = [names]
        if "${{ parameters.deployTarget }}" in names:
            targets = [names.replace("${{ parameters.deployTarget }}", v) for v in targets_()]
        for target in targets:
            # `…@shipyard` is a path in this repository (the consumer's repository resource).
            repository, _, alias = target.partition("@")
            included = (ROOT / repository if alias else path.parent / target).resolve()
            assert included.is_file(), f"{rel(path)} includes missing {target}"
            parameters = load(included).get("parameters", [])
            declared = {p["name"] for p in parameters}
            assert passed <= declared, f"{target} does not declare {sorted(passed - declared)}"
            required = {p["name"] for p in parameters if "default" not in p}
            assert required <= passed, f"{rel(path)} does not pass {sorted(required - passed)}"


# --- what a team relies on -------------------------------------------------------------------


def test_the_approval_gates_the_deployment_stage_only() -> None:
    """Azure DevOps evaluates checks before a stage starts, for every resource the stage uses:
    waiting for the environment is a stage of its own, with no environment in it."""
    provision, deploy, loadtest = load(STAGE)["stages"]
    assert (
        provision["stage"] == "shipyard_provision_${{ replace(parameters.environment, '-', '_') }}"
    )
    assert deploy["stage"] == "shipyard_deploy_${{ replace(parameters.environment, '-', '_') }}"
    assert deploy["dependsOn"] == provision["stage"]
    assert all("environment" not in job and "deployment" not in job for job in provision["jobs"])
    (job,) = deploy["jobs"]
    assert job["deployment"] == "deploy"
    assert job["environment"] == "shipyard-${{ parameters.environment }}"
    assert "provision.yml" not in json.dumps(deploy)
    # The load test after a successful deploy is a stage of its own: its verdict is not the
    # deployment's outcome (Shipyard reads that from shipyard_deploy_ stages).
    assert loadtest["stage"] == "shipyard_loadtest_${{ replace(parameters.environment, '-', '_') }}"
    assert loadtest["dependsOn"] == deploy["stage"]
    assert loadtest["condition"] == "and(succeeded(), eq('${{ parameters.runLoadTest }}', 'true'))"
    assert all("environment" not in job and "deployment" not in job for job in loadtest["jobs"])


def test_two_runs_never_deploy_into_one_environment_at_once() -> None:
    # The stage queues behind the Exclusive Lock check `pipelines sync` adds to shipyard-<env>.
    assert load(STAGE)["stages"][1]["lockBehavior"] == "sequential"


def test_service_fabric_deploys_on_windows_and_arm_on_linux_by_default() -> None:
    stage = load(STAGE)
    (job,) = stage["stages"][1]["jobs"]
    assert job["pool"] == "${{ parameters.pools[parameters.deployTarget] }}"
    pools = parameter(stage, "pools")["default"]
    assert set(targets_()) <= set(pools)
    assert pools["service-fabric"]["vmImage"].startswith("windows-")
    assert pools["arm"]["vmImage"].startswith("ubuntu-")
    assert stage["stages"][0]["jobs"][0]["pool"] == "${{ parameters.pools.shipyard }}"


def test_service_fabric_upgrade_settings_override_the_publish_profile() -> None:
    template = load(STEPS / "deploy-service-fabric.yml")
    (task,) = [s for s in template["steps"] if s.get("task") == "ServiceFabricDeploy@1"]
    inputs = task["inputs"]
    assert inputs["overridePublishProfileSettings"] == "true"
    assert inputs["isUpgrade"] == "true"
    assert inputs["publishProfilePath"].startswith("$(Pipeline.Workspace)/${{ parameters.artifact")
    upgrade = [
        "upgradeMode",
        "FailureAction",
        "HealthCheckWaitDurationSec",
        "HealthCheckStableDurationSec",
        "HealthCheckRetryTimeoutSec",
        "UpgradeDomainTimeoutSec",
        "UpgradeTimeoutSec",
        "ForceRestart",
        "ConsiderWarningAsError",
    ]
    for name in upgrade:
        wired = WHOLE_PARAMETER.fullmatch(inputs[name])
        assert wired, f"{name} is not wired from a parameter"
        # …and the stage passes each one on.
        assert wired.group(1) in stage_include("deploy-${{ parameters.deployTarget }}.yml")


def test_the_upgrade_and_the_wait_end_before_their_jobs_time_out() -> None:
    stage = load(STAGE)
    ready = int(parameter(stage, "readyTimeoutInMinutes")["default"])
    provision_job = int(parameter(stage, "provisionTimeoutInMinutes")["default"])
    assert ready < provision_job
    assert stage["stages"][0]["jobs"][0]["timeoutInMinutes"] == (
        "${{ parameters.provisionTimeoutInMinutes }}"
    )
    passed = stage_include("provision.yml", stage=0)
    assert passed["jobTimeoutInMinutes"] == "${{ parameters.provisionTimeoutInMinutes }}"
    upgrade = int(parameter(stage, "upgradeTimeoutSec")["default"])
    deploy_job = int(parameter(stage, "deployTimeoutInMinutes")["default"])
    assert upgrade < deploy_job * 60
    assert (stage["stages"][1]["jobs"][0]["timeoutInMinutes"]) == (
        "${{ parameters.deployTimeoutInMinutes }}"
    )
    passed = stage_include("deploy-${{ parameters.deployTarget }}.yml")
    assert passed["jobTimeoutInMinutes"] == "${{ parameters.deployTimeoutInMinutes }}"


def test_the_example_publishes_the_publish_profile_with_the_package() -> None:
    example = load(ROOT / "examples/azure-pipelines.yml")
    package, register = example["stages"][0]["jobs"]
    (copy,) = [s for s in package["steps"] if s.get("task") == "CopyFiles@2"]
    (publish,) = [s for s in package["steps"] if "publish" in s]
    assert copy["inputs"]["TargetFolder"] == publish["publish"]
    profile = parameter(load(STAGE), "publishProfilePath")["default"]
    assert Path(copy["inputs"]["Contents"]).parent == Path(profile).parent
    assert publish["artifact"] == parameter(load(STAGE), "artifact")["default"]
    # The release is registered once its artifact is published, with the artifact's name.
    assert register["dependsOn"] == package["job"]
    (registered,) = [s for s in register["steps"] if "register-release" in s["template"]]
    assert registered["parameters"]["artifact"] == publish["artifact"]


def test_shipyard_is_installed_once_per_job_pinned_and_cached() -> None:
    for path in FILES:
        for job in jobs_of(load(path)):
            installs = [
                s for s in job_steps(job) if "install-shipyard.yml" in str(s.get("template"))
            ]
            calls = any("shipyard pipeline" in script(step) for step in job_steps(job))
            assert len(installs) == (1 if calls else 0), f"{rel(path)}: {job}"
    install = load(STEPS / "install-shipyard.yml")
    assert parameter(install, "shipyardVersion")["default"] == VERSION
    assert parameter(load(STAGE), "shipyardVersion")["default"] == VERSION
    (cache,) = [s for s in install["steps"] if s.get("task") == "Cache@2"]
    assert "${{ parameters.shipyardVersion }}" in cache["inputs"]["key"]
    (pip,) = [s for s in install["steps"] if "pip install" in s.get("bash", "")]
    assert pip["env"]["PIP_CACHE_DIR"] == cache["inputs"]["path"]


def test_the_shipyard_repository_is_referenced_by_tag() -> None:
    for path in EXAMPLES:
        (shipyard,) = load(path)["resources"]["repositories"]
        assert shipyard["repository"] == "shipyard"
        assert shipyard["ref"] == f"refs/tags/v{VERSION}"


def test_steps_talk_to_the_api_never_to_the_database() -> None:
    verbs = set()
    for path in FILES:
        assert "SHIPYARD_DATABASE_URL" not in path.read_text(encoding="utf-8"), rel(path)
        for step in steps_of(load(path)):
            script = step.get("bash", "")
            if "shipyard pipeline" not in script:
                continue
            verbs.update(re.findall(r"shipyard pipeline ([a-z-]+)", script))
            # Secrets reach a script only through env:, so each step maps both explicitly.
            assert step["env"]["SHIPYARD_URL"] == "$(SHIPYARD_URL)"
            assert step["env"]["SHIPYARD_TOKEN"] == "$(SHIPYARD_TOKEN)"
    assert verbs == {
        "render-parameters",
        "record-deployment",
        "wait-ready",
        "register-release",
        "loadtest",
    }
    stage = load(STAGE)
    assert all(
        s["variables"] == [{"group": "${{ parameters.variableGroup }}"}] for s in stage["stages"]
    )


def test_requested_by_is_a_shipyard_person_never_an_email() -> None:
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        assert "RequestedForEmail" not in text, rel(path)
        document = load(path)
        for p in document.get("parameters", []):
            if p["name"] == "requestedBy":
                assert p.get("default", "") == "", rel(path)


def test_the_examples_declare_what_shipyard_passes_when_it_starts_a_run() -> None:
    example = load(ROOT / "examples/azure-pipelines.yml")
    deployed = [
        s["parameters"]["environment"]
        for s in example["stages"]
        if s.get("template", "").startswith("pipelines/templates/stages/deploy.yml@")
    ]
    assert deployed == ["ci-test", "staging", "production"]
    assert "refs/tags/*" in json.dumps(example["trigger"]).replace('"*"', '"refs/tags/*"')
    deploy = load(ROOT / "examples/azure-pipelines-deploy.yml")
    for document in (example, deploy):
        assert {"environment", "release", "requestedBy"} <= {
            p["name"] for p in document["parameters"]
        }
    # Shipyard names the release's build run as resources.pipelines.build.version.
    (build,) = deploy["resources"]["pipelines"]
    assert build["pipeline"] == "build"
    (stage,) = deploy["stages"]
    assert stage["parameters"]["artifactPipeline"] == "build"
    assert deploy["trigger"] == "none"


# --- helpers ---------------------------------------------------------------------------------


def parameter(document: Any, name: str) -> dict[str, Any]:
    (found,) = [p for p in document["parameters"] if p["name"] == name]
    return dict(found)


def stage_include(template: str, stage: int = 1) -> dict[str, Any]:
    """What the stage template passes to one step template it includes."""
    found = steps_of({"stages": [load(STAGE)["stages"][stage]]})
    (include,) = [s for s in found if str(s.get("template", "")).endswith(template)]
    return dict(include["parameters"])


def jobs_of(document: Any) -> list[Any]:
    return [
        job
        for stage in document.get("stages", [])
        if isinstance(stage, dict)
        for job in stage.get("jobs", [])
    ]


def job_steps(job: Any) -> list[Any]:
    found: list[Any] = list(job.get("steps", []))
    strategy = job.get("strategy", {}).get("runOnce", {})
    found += strategy.get("deploy", {}).get("steps", [])
    for hook in strategy.get("on", {}).values():
        found += hook.get("steps", [])
    return found


def steps_of(document: Any) -> list[Any]:
    found: list[Any] = list(document.get("steps", []))
    for job in jobs_of(document):
        found += job_steps(job)
    return found


def script(step: Any) -> str:
    """The scripts a step runs, those of the step templates it includes too."""
    if "template" not in step:
        return str(step.get("bash", ""))
    name = step["template"].replace("${{ parameters.deployTarget }}", "*")
    repository, _, alias = name.partition("@")
    pattern = repository if alias else f"pipelines/templates/steps/{Path(name).name}"
    return "".join(p.read_text(encoding="utf-8") for p in ROOT.glob(pattern))


def targets_() -> list[str]:
    return list(parameter(load(STAGE), "deployTarget")["values"])
