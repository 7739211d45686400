"""The whole check of shipyard.yaml, files it names included; every command loads through it.

`catalog.read_catalog` checks the structure (types of values, unknown keys, the promotion path,
literal secrets); this module adds what needs the files the configuration points at and the
links between sections: ARM templates against parameters (secure ones included), Service
Fabric manifests and ApplicationParameters files, load-test plans and their criteria,
schedules' cron and timezone, Slack ids and channels, Azure and Azure DevOps settings,
`{{ … }}` references. All problems are collected, each with file and line; `load` refuses a
configuration with any, so nothing reaches a worker that `shipyard config check` would refuse.
"""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path

from environments import inputs, servicefabric
from environments.catalog import SLACK_USER, Catalog, EnvironmentType, read_catalog
from environments.config.loadtests import LoadTestPlan, Schedule
from environments.errors import ConfigError, ConfigProblem, ShipyardError, clip
from environments.loadtests.criteria import parse_criterion
from environments.model import parse_duration
from environments.pipelines_config import pipelines_settings
from environments.providers import ade_templates
from environments.providers import arm_template as arm
from environments.secrets import parse_reference
from environments.yamlsource import Loc, SourcedYaml

ENGINES = ("locust", "jmeter", "azure-load-testing")
CHANNEL = re.compile(r"[CGD][A-Z0-9]{2,}|#?[a-z0-9][a-z0-9._-]{0,79}")
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TEMPLATE_REF = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
KNOWN_FIELDS = ("env.name", "env.type", "env.owner", "release.version")


def load(path: Path) -> Catalog:
    """The catalog at `path`, or ConfigError listing every problem (what commands use)."""
    catalog, problems = check_file(path)
    if problems or catalog is None:
        raise ConfigError.of(str(path), problems)
    return catalog


def check_file(path: Path) -> tuple[Catalog | None, list[ConfigProblem]]:
    """Everything wrong with the configuration at `path` (its YAML must at least parse)."""
    catalog, source, problems = read_catalog(path)
    if catalog is not None:
        problems = [*problems, *Checks(catalog, source).run()]
    return catalog, sorted(problems, key=lambda p: (p.file, p.line or 0))


class Checks:
    """The checks beyond structure, each adding problems rather than stopping at the first."""

    def __init__(self, catalog: Catalog, source: SourcedYaml) -> None:
        self.catalog = catalog
        self.source = source
        self.base = Path(catalog.base_dir)
        self.problems: list[ConfigProblem] = []

    def add(self, loc: Loc, message: str, hint: str = "") -> None:
        self.problems.append(ConfigProblem(self.source.where(loc), message, hint))

    def run(self) -> list[ConfigProblem]:
        self.people_and_slack()
        self.azure_devops()
        for name, kind in self.catalog.types.items():
            self.type(name, kind)
        for name, plan in self.catalog.loadtests.items():
            self.plan(name, plan)
        for name, schedule in self.catalog.schedules.items():
            self.schedule(name, schedule)
        self.references()
        return self.problems

    # --- people, roles, Slack ---------------------------------------------------------------

    def people_and_slack(self) -> None:
        c = self.catalog
        for person, user in c.people.items():
            if not SLACK_USER.fullmatch(user):
                self.add(
                    ("people", person),
                    f"people.{clip(person)}: '{clip(user)}' is not a Slack user id",
                    "use the member id from the person's Slack profile, e.g. U012AB3CD",
                )
        for role, members in c.roles.items():
            for index, member in enumerate(members):
                if member in c.roles:
                    self.add(
                        ("roles", role, index),
                        f"role '{clip(role)}' names role '{clip(member)}'; roles do not nest",
                        f"list the people of '{clip(member)}' in '{clip(role)}' instead",
                    )
        self.channel(("slack", "channel"), c.slack.channel)
        for name, kind in c.types.items():
            if kind.approval:
                self.channel(("types", name, "approval", "channel"), kind.approval.channel)

    def channel(self, loc: Loc, channel: str | None) -> None:
        if channel is not None and not CHANNEL.fullmatch(channel):
            self.add(
                loc,
                f"'{clip(channel)}' is not a Slack channel",
                "use the channel's id (C0123ABC) or its name (#deploys)",
            )

    # --- Azure DevOps ---------------------------------------------------------------------

    def azure_devops(self) -> None:
        try:
            settings = pipelines_settings(self.catalog)
        except ConfigError as exc:
            self.add(("azure_devops",), exc.reason, exc.hint)
            return
        url = settings.organization_url
        if url and not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", url):
            self.add(
                ("azure_devops", "organization_url"),
                f"azure_devops.organization_url '{clip(url)}' is not a URL",
                "write https://dev.azure.com/ORGANIZATION",
            )
        if url and not settings.project:
            self.add(("azure_devops",), "azure_devops: organization_url is set but project is not")
        for person, identity in settings.identities.items():
            if not GUID.fullmatch(identity):
                self.add(
                    ("azure_devops", "identities", person),
                    f"azure_devops.identities.{clip(person)}: '{clip(identity)}' is not an "
                    "Azure DevOps identity id",
                    "identity ids are GUIDs (Organization settings → Users, or the REST API)",
                )
        piped = [name for name, kind in self.catalog.types.items() if kind.engine != "direct"]
        missing = [
            field
            for field, value in (
                ("organization_url", url),
                ("project", settings.project),
                ("pipeline_id", settings.pipeline_id),
            )
            if not value
        ]
        for name in piped:
            if missing:
                self.add(
                    ("types", name, "engine"),
                    f"type '{name}' deploys with engine azure-pipelines, but azure_devops has "
                    f"no {', '.join(missing)}",
                    "fill in azure_devops: (or AZURE_DEVOPS_ORG_URL, AZURE_DEVOPS_PROJECT, "
                    "AZURE_DEVOPS_PIPELINE_ID), or use engine: direct",
                )
            elif self.catalog.types[name].approval and not settings.approver_identity:
                # The gate is answered by Shipyard's account, the check's one approver.
                self.add(
                    ("types", name, "approval"),
                    f"type '{name}' is gated in its pipeline, but azure_devops has no "
                    "approver_identity",
                    "set azure_devops.approver_identity to the identity id of the account whose "
                    "PAT Shipyard uses",
                )

    # --- types ----------------------------------------------------------------------------

    def type(self, name: str, kind: EnvironmentType) -> None:
        loc = ("types", name)
        if kind.loadtest is not None and kind.loadtest not in self.catalog.loadtests:
            self.add(
                (*loc, "loadtest"),
                f"type '{name}' names load-test plan '{clip(kind.loadtest)}', which loadtests: "
                "does not declare",
                f"declare it, or use one of: {', '.join(self.catalog.loadtests) or '(none)'}",
            )
        if kind.provider == "azure":
            self.azure_type(name, kind)
        elif kind.azure is not None:
            self.add(
                (*loc, "azure"),
                f"type '{name}' has an azure: section but provider {kind.provider}",
                "set provider: azure, or remove the azure: section",
            )
        if kind.service_fabric is not None:
            self.service_fabric(name, kind)

    def azure_type(self, name: str, kind: EnvironmentType) -> None:
        loc = ("types", name)
        if kind.ade is not None:
            self.ade_type(name, kind)
            return
        if kind.azure is None:
            self.add(
                loc,
                f"type '{name}' uses provider azure but has no 'azure:' section",
                "add types.<type>.azure.template: path/to/azuredeploy.json",
            )
            return
        if not self.catalog.azure.with_environment().subscription_id:
            self.add(
                ("azure",),
                f"type '{name}' uses provider azure but azure.subscription_id is not set",
                "set azure.subscription_id (or SHIPYARD_AZURE_SUBSCRIPTION_ID)",
            )
        try:
            template = arm.load_template(self.base / kind.azure.template)
            parameters_file = (
                self.base / kind.azure.parameters_file if kind.azure.parameters_file else None
            )
            file_values = arm.load_parameters_file(parameters_file) if parameters_file else {}
        except ShipyardError as exc:
            self.add((*loc, "azure"), exc.reason, exc.hint)
            return
        path = kind.azure.endpoint_output
        declared = {str(k).lower() for k in template.body.get("outputs") or {}}
        if path and path.split(".")[0].lower() not in declared:
            self.add(
                (*loc, "azure", "endpoint_output"),
                f"type '{name}': endpoint_output '{clip(path)}' is not an output of "
                f"{template.name}",
                f"its outputs are: {', '.join(sorted(declared)) or '(none)'}",
            )
        supplied: dict[str, str] = {}
        origins: dict[str, str] = {}
        for key, value in self.catalog.parameters.items():
            supplied[key] = _text(value)
            origins[key] = self.source.where(("parameters", key))
        for key, value in kind.parameters.items():
            supplied[key] = _text(value)
            origins[key] = self.source.where((*loc, "parameters", key))
        _, problems = arm.check_parameters(
            template,
            supplied,
            file_values=file_values,
            unique=kind.azure.unique,
            suffix="0" * arm.SUFFIX_LENGTH,
            fallback_base=name,
            vault_id=lambda ref: ref.vault_id(self.catalog.azure.subscription_id, "shared"),
            file_name=str(parameters_file or ""),
            origins=origins,
        )
        for problem in problems:
            if not problem.missing:  # each environment may still supply those
                self.add(
                    (*loc, "azure", "template"),
                    f"type '{name}': {template.name}: {problem}",
                    "make the parameters match the template's",
                )

    def ade_type(self, name: str, kind: EnvironmentType) -> None:
        """An ADE environment definition: its template against its manifest, then shipyard.yaml's
        values against both. The manifest's own problems came with the structure; a Bicep
        template that needs compiling is compiled (and checked) by `config check` and at use."""
        loc = ("types", name)
        definition = kind.definition
        if definition is None or definition.problems:
            return
        if not self.catalog.azure.with_environment().subscription_id:
            self.add(
                ("azure",),
                f"type '{name}' uses provider azure but azure.subscription_id is not set",
                "set azure.subscription_id (or SHIPYARD_AZURE_SUBSCRIPTION_ID)",
            )
        try:
            template = ade_templates.template_of(definition, compile_bicep=False)
        except ShipyardError as exc:
            self.add((*loc, "ade"), exc.reason, exc.hint)
            return
        if template is None:
            return
        mismatches = ade_templates.cross_check(definition, template)
        self.problems.extend(mismatches)
        for given in kind.inputs:
            if given.id in kind.parameters:
                wrong = inputs.value_problem(given, _text(kind.parameters[given.id]))
                if wrong:
                    self.add((*loc, "parameters", given.id), f"type '{name}': {wrong}")
        if mismatches:
            return
        supplied = {i.id: i.default_text for i in kind.inputs if i.default_text is not None}
        origins = {key: str(definition.where(key)) for key in supplied}
        for key, value in [*self.catalog.parameters.items(), *kind.parameters.items()]:
            supplied[key] = _text(value)
            origins[key] = self.source.where(
                (*loc, "parameters", key) if key in kind.parameters else ("parameters", key)
            )
        _, found = arm.check_parameters(
            template,
            supplied,
            vault_id=lambda ref: ref.vault_id(self.catalog.azure.subscription_id, "shared"),
            origins=origins,
        )
        for problem in found:
            if not problem.missing:
                self.add(
                    (*loc, "ade"),
                    f"type '{name}': {template.name}: {problem}",
                    "make the parameters match the template's",
                )

    def service_fabric(self, name: str, kind: EnvironmentType) -> None:
        settings = kind.service_fabric
        assert settings is not None
        loc = ("types", name, "service_fabric")
        try:
            manifest = servicefabric.read_manifest(self.base / settings.manifest)
        except ShipyardError as exc:
            self.add((*loc, "manifest"), exc.reason, exc.hint)
            return
        declared = set(manifest.defaults)
        if settings.parameters_file:
            path = self.base / settings.parameters_file
            try:
                _, values = servicefabric.read_application_parameters(path)
            except ShipyardError as exc:
                self.add((*loc, "parameters_file"), exc.reason, exc.hint)
                values = {}
            undeclared = sorted(set(values) - declared)
            if undeclared:
                self.add(
                    (*loc, "parameters_file"),
                    f"{path} sets {', '.join(undeclared)}, which {manifest.path.name} does not "
                    "declare",
                    "remove them from the file or declare them in the ApplicationManifest",
                )
        layers: list[tuple[Loc, dict[str, object]]] = [
            (("parameters",), dict(self.catalog.parameters)),
            (("types", name, "parameters"), dict(kind.parameters)),
        ]
        for where, values_of_layer in layers:
            for key in sorted(set(values_of_layer) - declared):
                self.add(
                    (*where, key),
                    f"{key} (for type '{name}') is not declared in {manifest.path}",
                    "remove it or declare it in the ApplicationManifest's <Parameters>",
                )

    # --- load tests and schedules ---------------------------------------------------------

    def plan(self, name: str, plan: LoadTestPlan) -> None:
        loc = ("loadtests", name)
        if plan.engine not in ENGINES:
            self.add(
                (*loc, "engine"),
                f"load-test plan '{name}': there is no load engine '{clip(plan.engine)}'",
                f"use one of: {', '.join(ENGINES)}",
            )
        if not (self.base / plan.file).is_file():
            self.add(
                (*loc, "file"),
                f"load-test plan '{name}': {self.base / plan.file} does not exist",
                "point file: at the locustfile or .jmx plan, relative to shipyard.yaml",
            )
        try:
            parse_duration(plan.duration)
        except ShipyardError as exc:
            self.add((*loc, "duration"), f"load-test plan '{name}': {exc.reason}", exc.hint)
        if plan.users < 1 or plan.spawn_rate <= 0:
            self.add(
                (*loc, "users"),
                f"load-test plan '{name}': users must be at least 1 and spawn_rate above 0",
            )
        for index, text in enumerate(plan.criteria):
            try:
                parse_criterion(text)
            except ShipyardError as exc:
                self.add((*loc, "criteria", index), exc.reason, exc.hint)

    def schedule(self, name: str, schedule: Schedule) -> None:
        loc = ("schedules", name)
        self.channel((*loc, "channel"), schedule.channel)
        timezone_ok = True
        try:
            zoneinfo.ZoneInfo(schedule.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone_ok = False
            self.add(
                (*loc, "timezone"),
                f"schedule '{name}': '{clip(schedule.timezone)}' is not a timezone",
                "use an IANA name such as Europe/Stockholm or UTC",
            )
        problem = cron_problem(schedule.cron, schedule.timezone if timezone_ok else "UTC")
        if problem:
            self.add((*loc, "cron"), f"schedule '{name}': {problem}", CRON_HINT)
        if schedule.type not in self.catalog.types:
            self.add(
                (*loc, "type"),
                f"schedule '{name}' names type '{clip(schedule.type)}', which types: does not "
                "declare",
                f"use one of: {', '.join(self.catalog.types)}",
            )
        elif schedule.job == "nightly-loadtest":
            plan = schedule.plan or self.catalog.types[schedule.type].loadtest
            if plan is None:
                self.add(
                    (*loc, "plan"),
                    f"schedule '{name}' runs a load test but neither it nor type "
                    f"'{schedule.type}' names a plan",
                    "add plan: NAME (a plan under loadtests:)",
                )
            elif plan not in self.catalog.loadtests:
                self.add(
                    (*loc, "plan"),
                    f"schedule '{name}' names plan '{clip(plan)}', which loadtests: does not "
                    "declare",
                    f"use one of: {', '.join(self.catalog.loadtests) or '(none)'}",
                )

    # --- values ---------------------------------------------------------------------------

    def references(self) -> None:
        layers: list[tuple[Loc, dict[str, object]]] = [
            (("parameters",), dict(self.catalog.parameters))
        ]
        for name, kind in self.catalog.types.items():
            layers.append((("types", name, "parameters"), dict(kind.parameters)))
        for where, values in layers:
            for key, value in values.items():
                text = _text(value)
                try:
                    parse_reference(key, text)
                except ShipyardError as exc:
                    self.add((*where, key), exc.reason, exc.hint)
                for found in TEMPLATE_REF.findall(text):
                    if found not in KNOWN_FIELDS and not re.fullmatch(
                        r"env\.outputs\.[A-Za-z0-9_.-]+", found
                    ):
                        self.add(
                            (*where, key),
                            f"parameter {key} refers to '{{{{ {clip(found)} }}}}', which "
                            "Shipyard does not know",
                            "use env.name, env.type, env.owner, env.outputs.NAME or "
                            "release.version",
                        )


CRON_HINT = "write five crontab fields, e.g. '0 2 * * *' for 02:00"


def cron_problem(cron: str, timezone: str) -> str | None:
    """What is wrong with a crontab rule (five fields, or six with seconds first), or None."""
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split()
    try:
        if len(fields) == 5:
            CronTrigger.from_crontab(cron, timezone=timezone)
            return None
        if len(fields) == 6:
            second, minute, hour, day, month, weekday = fields
            CronTrigger(
                second=second,
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=weekday,
                timezone=timezone,
            )
            return None
    except (ValueError, LookupError) as exc:
        return f"cron '{clip(cron)}' is not valid: {clip(str(exc), 120)}"
    return f"cron '{clip(cron)}' has {len(fields)} fields"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
