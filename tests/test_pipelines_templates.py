"""The YAML templates and the example pipeline: valid against the official Azure Pipelines schema,
and every `${{ parameters.x }}` a template uses is one it declares."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.reference import REFERENCE

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = REFERENCE / "azure-pipelines/service-schema.json"
TEMPLATES = sorted((ROOT / "pipelines/templates").rglob("*.yml"))
FILES = [*TEMPLATES, ROOT / "examples/azure-pipelines.yml"]
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
PARAMETER = re.compile(r"\bparameters\.([A-Za-z_][A-Za-z0-9_]*)|\bparameters\[\s*'([^']+)'\s*\]")
TEMPLATE_REF = re.compile(r"^\s*-?\s*template:\s*(\S+)", re.M)


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
    assert problems(validator, load(path)) == []


def test_the_schema_check_catches_a_mistake(validator: jsonschema.protocols.Validator) -> None:
    document = load(ROOT / "pipelines/templates/stages/deploy.yml")
    document["stages"][0]["jobs"][1]["enviroment"] = "typo"
    assert problems(validator, document)
    task = {"task": "ServiceFabricDeploy@1", "inputs": {"applicationPackagePath": "x"}}
    assert problems(validator, {"steps": [task]})  # serviceConnectionName is required


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_every_parameter_it_uses_is_declared(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    declared = {p["name"] for p in load(path).get("parameters", [])}
    used = {
        a or b for expression in EXPRESSION.findall(text) for a, b in PARAMETER.findall(expression)
    }
    assert used, "a template that uses no parameter is not a template"
    assert used <= declared, f"used but not declared: {sorted(used - declared)}"


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_the_templates_it_includes_exist_and_declare_what_it_passes(path: Path) -> None:
    for include in load(path).get("stages", []) + _steps(load(path)):
        if not isinstance(include, dict) or "template" not in include:
            continue
        passed = set(include.get("parameters", {}))
        names = include["template"]
        # `deploy-${{ parameters.deployTarget }}.yml` names one template per allowed value.
        targets = [names]
        if "${{ parameters.deployTarget }}" in names:
            targets = [names.replace("${{ parameters.deployTarget }}", v) for v in _targets()]
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


def test_deployment_jobs_target_the_azure_devops_environment_named_after_shipyards() -> None:
    stage = load(ROOT / "pipelines/templates/stages/deploy.yml")["stages"][0]
    (deployment,) = [job for job in stage["jobs"] if "deployment" in job]
    assert deployment["environment"] == "shipyard-${{ parameters.environment }}"
    assert stage["stage"] == "shipyard_deploy_${{ replace(parameters.environment, '-', '_') }}"


def test_the_example_runs_test_staging_production_and_a_nightly_schedule() -> None:
    example = load(ROOT / "examples/azure-pipelines.yml")
    deployed = [
        s["parameters"]["environment"]
        for s in example["stages"]
        if s.get("template", "").startswith("pipelines/templates/stages/deploy.yml@")
    ]
    assert deployed == ["ci-test", "staging", "production"]
    assert example["schedules"][0]["cron"] == "0 2 * * *"
    assert {r["repository"] for r in example["resources"]["repositories"]} == {"shipyard"}
    # Shipyard starts this pipeline with these template parameters (AzureDevOps.start_run).
    assert {"environment", "release", "requestedBy"} <= {p["name"] for p in example["parameters"]}


def _steps(document: Any) -> list[Any]:
    found: list[Any] = list(document.get("steps", []))
    for stage in document.get("stages", []):
        for job in stage.get("jobs", []) if isinstance(stage, dict) else []:
            found += job.get("steps", [])
            strategy = job.get("strategy", {}).get("runOnce", {})
            found += strategy.get("deploy", {}).get("steps", [])
            for hook in strategy.get("on", {}).values():
                found += hook.get("steps", [])
    return found


def _targets() -> list[str]:
    stage = load(ROOT / "pipelines/templates/stages/deploy.yml")
    (target,) = [p for p in stage["parameters"] if p["name"] == "deployTarget"]
    return list(target["values"])
