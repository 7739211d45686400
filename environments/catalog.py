"""Load and validate shipyard.yaml: environment types, promotion path, roles, application."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field, PrivateAttr, ValidationError

from environments.ade import Definition, load_definition
from environments.config.azure import AzureSettings, AzureTypeSettings
from environments.config.azure_devops import AzureDevOpsSettings, TypePipelineSettings
from environments.config.fields import Duration, ParameterValue, Strict
from environments.config.loadtests import LoadTestPlan, Schedule
from environments.config.rules import ApprovalPolicy, GlobalAction, Limits, TypeAction
from environments.errors import ConfigError, ConfigProblem, NotFound, ShipyardError, clip
from environments.inputs import Input
from environments.model import check_environment_name
from environments.secrets import check_not_literal_secret
from environments.windows import Windows
from environments.yamlsource import SourcedYaml, load_yaml

SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


class TTL(Strict):
    """How long an ephemeral environment lives unless extended, and the most it may live."""

    default: Duration
    max: Duration


class ChatSettings(Strict):
    """Where Shipyard speaks in Slack when nothing more specific is configured, and the
    workspace (team id, e.g. T0123) whose members may sign in to the dashboard."""

    channel: str | None = None
    team: str | None = None


class Directory(Protocol):
    """Resolves a group (e.g. a Slack user group id) to its members; None if it is not a group."""

    def group_members(self, group: str) -> frozenset[str] | None: ...


class ServiceFabricSettings(Strict):
    """A type's `service_fabric:` section: the manifest to check against, an optional base file.

    Paths are relative to shipyard.yaml; the parameters file (e.g. ApplicationParameters/Cloud.xml)
    is a layer below the type's own parameters.
    """

    manifest: str
    parameters_file: str | None = None
    application: str | None = None


class EnvironmentType(Strict):
    """A catalog entry: provider, lifetime, who may do what, approval gate, parameter layer."""

    name: str = ""
    description: str = ""
    provider: Literal["local", "azure"] = "local"
    # direct: Shipyard deploys through the provider; azure-pipelines: it runs the team's pipeline.
    engine: Literal["direct", "azure-pipelines"] = "direct"
    # With engine azure-pipelines: what the run deploys (a release's build, or its tag).
    azure_devops: TypePipelineSettings = TypePipelineSettings()
    azure: AzureTypeSettings | None = None
    # An Azure Deployment Environments catalog item (folder with environment.yaml), instead of
    # azure.template: its manifest gives the template and the type's user-facing parameters.
    ade: str | None = None
    loadtest: str | None = None
    service_fabric: ServiceFabricSettings | None = None
    ttl: TTL | None = None
    protected: bool = False
    allow: dict[TypeAction, tuple[str, ...]] = {}
    limits: Limits = Limits()
    windows: Windows | None = None
    approval: ApprovalPolicy | None = None
    parameters: dict[str, ParameterValue] = {}
    _definition: Definition | None = PrivateAttr(default=None)

    @property
    def ephemeral(self) -> bool:
        return self.ttl is not None

    @property
    def definition(self) -> Definition | None:
        """The ADE environment definition behind the type (`ade:`), read when loaded."""
        return self._definition

    @property
    def inputs(self) -> tuple[Input, ...]:
        """The parameters a person sets when creating one (from the ADE manifest)."""
        return self._definition.inputs if self._definition else ()

    @property
    def summary(self) -> str:
        """One line about the type: its description, else the ADE definition's summary."""
        if self.description:
            return self.description
        return self._definition.headline() if self._definition else ""


class Application(Strict):
    """How the local provider runs a release: command, health path, instances, start-up budget."""

    command: tuple[str, ...] = ("{python}", "server.py", "--port", "{port}")
    health: str = "/healthz"
    instances: int = Field(default=1, ge=1, le=16)
    startup_timeout: Duration = timedelta(seconds=30)


class Catalog(Strict):
    """Everything shipyard.yaml declares."""

    version: Literal[1] = 1
    people: dict[str, str] = {}
    roles: dict[str, tuple[str, ...]] = {}
    admins: tuple[str, ...] = ()
    allow: dict[GlobalAction, tuple[str, ...]] = {}
    slack: ChatSettings = ChatSettings()
    application: Application = Application()
    parameters: dict[str, ParameterValue] = {}
    types: dict[str, EnvironmentType] = Field(min_length=1)
    promotion: tuple[str, ...] = ()
    azure: AzureSettings = AzureSettings()
    azure_devops: AzureDevOpsSettings = AzureDevOpsSettings()
    loadtests: dict[str, LoadTestPlan] = {}
    schedules: dict[str, Schedule] = {}
    source: str = Field(default="", exclude=True)
    _directory: Directory | None = PrivateAttr(default=None)
    base_dir: str = Field(default=".", exclude=True)

    def type(self, name: str) -> EnvironmentType:
        try:
            return self.types[name]
        except KeyError:
            raise NotFound(
                f"there is no environment type '{clip(name)}'",
                hint=f"use one of: {', '.join(self.types)}",
            ) from None

    def next_on_path(self, type_name: str) -> str | None:
        if type_name not in self.promotion:
            return None
        index = self.promotion.index(type_name)
        return self.promotion[index + 1] if index + 1 < len(self.promotion) else None

    def previous_on_path(self, type_name: str) -> str | None:
        if type_name not in self.promotion:
            return None
        index = self.promotion.index(type_name)
        return self.promotion[index - 1] if index > 0 else None

    def with_directory(self, directory: Directory) -> Catalog:
        """This catalog, resolving groups (e.g. Slack user groups) through `directory`."""
        copy = self.model_copy()
        copy._directory = directory
        return copy

    def members(self, entries: tuple[str, ...]) -> frozenset[str]:
        """People named directly, through a role, or through a directory group (e.g. Slack's)."""
        people: set[str] = set()
        for entry in entries:
            for member in self.roles.get(entry, (entry,)):
                group = self._directory.group_members(member) if self._directory else None
                if group is None:
                    people.add(member)
                else:
                    people.update(self.person_for_slack(user) for user in group)
        return frozenset(people)

    def person_for_slack(self, user_id: str) -> str:
        """The name `people:` gives a Slack user id, else the id itself."""
        for name, known in self.people.items():
            if known == user_id:
                return name
        return user_id

    def slack_id(self, person: str) -> str | None:
        """The Slack user id of a person, if `people:` maps it or it is one already."""
        if person in self.people:
            return self.people[person]
        return person if SLACK_USER.fullmatch(person) else None


def config_path(explicit: str | None = None) -> Path:
    """--config PATH, else SHIPYARD_CONFIG, else ./shipyard.yaml."""
    return Path(explicit or os.environ.get("SHIPYARD_CONFIG") or "shipyard.yaml").resolve()


def load_catalog(path: Path) -> Catalog:
    """Read, validate and cross-check shipyard.yaml; every problem names file:line.

    The structure only; `environments.validation.load` adds the checks that read further files
    (templates, manifests, plans) and is what commands use.
    """
    catalog, _, problems = read_catalog(path)
    if problems or catalog is None:
        raise ConfigError.of(str(path), problems)
    return catalog


def read_catalog(path: Path) -> tuple[Catalog | None, SourcedYaml, list[ConfigProblem]]:
    """The catalog (None when its structure is wrong), its source, and every problem found."""
    source = load_yaml(path)
    if not isinstance(source.data, dict):
        problem = ConfigProblem(f"{path}:1", "expected a mapping at the top", EXAMPLE)
        return None, source, [problem]
    data = dict(source.data)
    types = data.get("types")
    if isinstance(types, dict):
        data["types"] = {
            name: ({**body, "name": name} if isinstance(body, dict) else body)
            for name, body in types.items()
        }
    try:
        catalog = Catalog.model_validate(
            {**data, "source": str(path), "base_dir": str(path.parent)}
        )
    except ValidationError as exc:
        return None, source, [_problem(error, source) for error in exc.errors()]
    return catalog, source, [*_cross_check(catalog, source), *_read_definitions(catalog, source)]


EXAMPLE = "see examples/shipyard.yaml"


def _problem(error: Any, source: SourcedYaml) -> ConfigProblem:
    loc = tuple(part for part in error["loc"] if not isinstance(part, str) or "[" not in part)
    dotted = ".".join(str(part) for part in loc) or "(top)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "is not a known setting"
    elif error["type"] == "missing":
        message = "is required"
    return ConfigProblem(source.where(loc), f"{dotted[:120]}: {message[:200]}", EXAMPLE)


def _cross_check(catalog: Catalog, source: SourcedYaml) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []

    def fail(loc: tuple[str | int, ...], message: str, hint: str) -> None:
        problems.append(ConfigProblem(source.where(loc), message, hint))

    for name in catalog.types:
        try:
            check_environment_name(name)
        except ShipyardError:
            fail(
                ("types", name),
                f"type name '{name[:60]}' is not valid",
                "use 3-40 lowercase letters, digits and hyphens, starting with a letter",
            )
    for index, name in enumerate(catalog.promotion):
        if name not in catalog.types:
            fail(
                ("promotion", index),
                f"promotion path names unknown type '{name[:60]}'",
                f"use types declared under 'types': {', '.join(catalog.types)}",
            )
    if len(set(catalog.promotion)) != len(catalog.promotion):
        fail(("promotion",), "promotion path names a type twice", "list each type once, in order")
    for key, value in catalog.parameters.items():
        _no_literal_secret(problems, source, ("parameters", key), key, value)
    for name, env_type in catalog.types.items():
        for key, value in env_type.parameters.items():
            _no_literal_secret(problems, source, ("types", name, "parameters", key), key, value)
        if env_type.ttl and env_type.ttl.default > env_type.ttl.max:
            fail(
                ("types", name, "ttl"),
                f"type '{name}': ttl.default is longer than ttl.max",
                "make default at most max",
            )
        if env_type.approval:
            deciders = catalog.members(env_type.approval.approvers)
            if env_type.approval.required > len(deciders):
                fail(
                    ("types", name, "approval", "required"),
                    f"type '{name}' needs {env_type.approval.required} approvals but only "
                    f"{len(deciders)} approver(s) can give one",
                    "lower 'required' or add approvers",
                )
    return problems


def _read_definitions(catalog: Catalog, source: SourcedYaml) -> list[ConfigProblem]:
    """Read each `ade:` type's environment definition (its manifest) and attach it to the type;
    every problem of every manifest, each naming the manifest and line. The template is checked
    against the manifest with the other files (`environments.validation`)."""
    problems: list[ConfigProblem] = []
    for name, env_type in catalog.types.items():
        if env_type.ade is None:
            continue
        where = source.where(("types", name, "ade"))
        if env_type.provider != "azure" or env_type.azure is not None:
            problems.append(
                ConfigProblem(
                    where,
                    f"type '{name}': 'ade:' needs provider: azure and no 'azure:' section",
                    "the environment definition names the template",
                )
            )
            continue
        try:
            definition = load_definition(resolve_path(catalog, env_type.ade))
        except ConfigError as exc:
            problems.append(ConfigProblem(where, f"type '{name}': {exc.reason}", exc.hint))
            continue
        problems.extend(definition.problems)
        env_type._definition = definition
    return problems


def _no_literal_secret(
    problems: list[ConfigProblem],
    source: SourcedYaml,
    loc: tuple[str | int, ...],
    key: str,
    value: object,
) -> None:
    try:
        check_not_literal_secret(key, str(value), "")
    except ShipyardError as exc:
        problems.append(
            ConfigProblem(source.where(loc), exc.reason.removeprefix(": "), hint=exc.hint)
        )


def resolve_path(catalog: Catalog, relative: str) -> Path:
    """A path written in shipyard.yaml, relative to the file's own folder."""
    return (Path(catalog.base_dir) / relative).resolve()
