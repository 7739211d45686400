"""Checks of the `azure_devops:` section and of the types that deploy through it.

The section as Shipyard will use it (AZURE_DEVOPS_* variables applied on top, and named in the
message when they supplied the value): the organization URL's shape (scheme, no credentials,
the organization and nothing more on Azure DevOps Services), the project's name, the pipeline
ids, the identities (Shipyard people mapped to Azure DevOps identity ids, one person each),
Shipyard's own identity (the gates' one approver: an identity, nobody's), the variable group's
name, and, for types that use it, the settings the engine needs, a type's `azure_devops:` only
with that engine, and approval timeouts that an Azure DevOps check accepts.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from urllib.parse import urlsplit

from environments.config.azure_devops import OVERRIDES, AzureDevOpsSettings, pipelines_settings
from environments.errors import ConfigError, clip
from environments.validation.common import Problems

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Azure DevOps project names: up to 64 characters, none of these, not starting with _ or .,
# not ending with . (Azure DevOps "Naming restrictions").
PROJECT_FORBIDDEN = re.compile(r"[\\/:*?\"'<>|;#$%{},+=\[\]]")
SERVICES = "dev.azure.com"
# The longest timeout an Azure DevOps check takes (30 days, in minutes).
MAX_CHECK_TIMEOUT = timedelta(days=30)
HOSTED_URL = "write https://dev.azure.com/ORGANIZATION (or https://ORGANIZATION.visualstudio.com)"


def check_azure_devops(p: Problems) -> None:
    try:
        settings = pipelines_settings(p.catalog)
    except ConfigError as exc:
        p.add(("azure_devops",), exc.reason, exc.hint)
        return
    _organization(p, settings)
    _project(p, settings)
    _pipelines(p, settings)
    _identities(p, settings)
    _approver(p, settings)
    _variable_group(p, settings)
    _engines(p, settings)


def _named(field: str) -> str:
    """How a message names a setting: its environment variable when that supplied it."""
    for variable, overridden in OVERRIDES.items():
        if overridden == field and os.environ.get(variable):
            return variable
    return f"azure_devops.{field}"


def _organization(p: Problems, settings: AzureDevOpsSettings) -> None:
    url = settings.organization_url
    if not url:
        return
    loc = ("azure_devops", "organization_url")
    said = f"{_named('organization_url')} '{clip(url)}'"
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        p.add(loc, f"{said} is not a URL", HOSTED_URL)
        return
    if parts.scheme not in ("https", "http") or not host or re.search(r"\s", url):
        p.add(loc, f"{said} is not a URL", HOSTED_URL)
        return
    if parts.username or parts.password:
        p.add(
            loc,
            f"{_named('organization_url')} carries credentials",
            "remove them from the URL; the token comes only from AZURE_DEVOPS_PAT",
        )
        return
    if parts.query or parts.fragment:
        p.add(loc, f"{said} has a query or fragment", HOSTED_URL)
    segments = [s for s in parts.path.split("/") if s]
    hosted = host == SERVICES or host.endswith(".visualstudio.com")
    if hosted and parts.scheme != "https":
        p.add(loc, f"{said}: Azure DevOps Services answers on https only", HOSTED_URL)
    if host == SERVICES and not segments:
        p.add(loc, f"{said} names no organization", HOSTED_URL)
    # dev.azure.com/ORG; ORG.visualstudio.com (or its old /DefaultCollection).
    elif hosted and segments[1 if host == SERVICES else 0 :] not in ([], ["DefaultCollection"]):
        p.add(
            loc,
            f"{said} names more than the organization",
            f"put the project ('{clip(segments[-1])}') under azure_devops.project",
        )


def _project(p: Problems, settings: AzureDevOpsSettings) -> None:
    project = settings.project
    if settings.organization_url and not project:
        p.add(("azure_devops",), "azure_devops: organization_url is set but project is not")
    if not project or GUID.fullmatch(project):
        return
    wrong = PROJECT_FORBIDDEN.findall(project)
    problem = ""
    if len(project) > 64:
        problem = "is longer than 64 characters"
    elif wrong:
        problem = f"contains {' '.join(sorted(set(wrong)))}"
    elif project.startswith(("_", ".")) or project.endswith("."):
        problem = "starts with _ or . or ends with ."
    if problem:
        p.add(
            ("azure_devops", "project"),
            f"{_named('project')} '{clip(project)}' {problem}: no Azure DevOps project is named so",
            "use the project's name as Azure DevOps shows it, or its id",
        )


def _pipelines(p: Problems, settings: AzureDevOpsSettings) -> None:
    if settings.pipeline_id is not None and settings.pipeline_id < 1:
        p.add(
            ("azure_devops", "pipeline_id"),
            f"{_named('pipeline_id')} {settings.pipeline_id} is not a pipeline id",
            "use the number in the pipeline's URL (…/_build?definitionId=12)",
        )
    seen: set[int] = set()
    for index, pipeline in enumerate(settings.watch):
        if pipeline < 1:
            p.add(
                ("azure_devops", "watch", index),
                f"azure_devops.watch: {pipeline} is not a pipeline id",
                "use the number in the pipeline's URL (…/_build?definitionId=12)",
            )
        elif pipeline in seen or pipeline == settings.pipeline_id:
            p.add(
                ("azure_devops", "watch", index),
                f"azure_devops.watch lists pipeline {pipeline} again",
                "list each pipeline once (pipeline_id is watched already)",
            )
        seen.add(pipeline)


def _identities(p: Problems, settings: AzureDevOpsSettings) -> None:
    owners: dict[str, str] = {}
    for person, identity in settings.identities.items():
        loc = ("azure_devops", "identities", person)
        if person not in p.catalog.people:
            p.add(
                loc,
                f"azure_devops.identities names '{clip(person)}', who is not a Shipyard person",
                f"use a name under people: ({', '.join(sorted(p.catalog.people)) or 'none'})",
            )
        if not GUID.fullmatch(identity):
            p.add(
                loc,
                f"azure_devops.identities.{clip(person)}: '{clip(identity)}' is not an "
                "Azure DevOps identity id",
                "identity ids are GUIDs (Organization settings → Users, or the REST API)",
            )
            continue
        other = owners.setdefault(identity.lower(), person)
        if other != person:
            p.add(
                loc,
                f"azure_devops.identities: {clip(other)} and {clip(person)} have the same identity",
                "map each Azure DevOps identity to one person, or Shipyard cannot tell who acted",
            )


def _approver(p: Problems, settings: AzureDevOpsSettings) -> None:
    """Shipyard's own account answers every gate: it must be an identity, and nobody's own, or
    that person could approve in Azure DevOps what Shipyard's rules would refuse them."""
    identity = settings.approver_identity.strip()
    if not identity:
        return
    loc = ("azure_devops", "approver_identity")
    if not GUID.fullmatch(identity):
        p.add(
            loc,
            f"azure_devops.approver_identity '{clip(identity)}' is not an Azure DevOps identity id",
            "use the identity id (a GUID) of the account whose PAT Shipyard uses",
        )
        return
    for person, mapped in settings.identities.items():
        if mapped.lower() == identity.lower():
            p.add(
                loc,
                f"azure_devops.approver_identity is {clip(person)}'s identity: {clip(person)} "
                "could answer every gate in Azure DevOps, past Shipyard's rules",
                "give Shipyard an account of its own (a service account) and use its PAT",
            )


def _variable_group(p: Problems, settings: AzureDevOpsSettings) -> None:
    group = settings.variable_group
    if not group.strip() or group != group.strip() or re.search(r"[\x00-\x1f]", group):
        p.add(
            ("azure_devops", "variable_group"),
            f"azure_devops.variable_group '{clip(group)}' is not a variable group's name",
            "name the Library variable group the templates read (their variableGroup, "
            "default shipyard)",
        )


def _engines(p: Problems, settings: AzureDevOpsSettings) -> None:
    for name, env_type in p.catalog.types.items():
        # A type may start a pipeline of its own (types.<t>.azure_devops.pipeline_id).
        pipeline = env_type.azure_devops.pipeline_id or settings.pipeline_id
        missing = [
            field
            for field, value in (
                ("organization_url", settings.organization_url),
                ("project", settings.project),
                ("pipeline_id", "" if pipeline is None else "set"),
            )
            if not value
        ]
        if env_type.engine != "direct" and missing:
            p.add(
                ("types", name, "engine"),
                f"type '{name}' deploys with engine azure-pipelines, but azure_devops has "
                f"no {', '.join(missing)}",
                "fill in azure_devops: (or AZURE_DEVOPS_ORG_URL, AZURE_DEVOPS_PROJECT, "
                "AZURE_DEVOPS_PIPELINE_ID), or use engine: direct",
            )
        elif (
            env_type.approval
            and not settings.approver_identity.strip()
            and (env_type.engine != "direct" or settings.configured)
        ):
            # `pipelines sync` writes every gated type's approval, direct-engine types
            # included, as a check whose one approver is Shipyard's account.
            where = "in its pipeline" if env_type.engine != "direct" else "in Slack"
            p.add(
                ("types", name, "approval"),
                f"type '{name}' is gated {where}, and syncing pipelines makes that an Azure "
                "DevOps check, but azure_devops has no approver_identity",
                "set azure_devops.approver_identity to the identity id of the account whose "
                "PAT Shipyard uses",
            )
        if env_type.engine == "direct" and ("types", name, "azure_devops") in p.source.lines:
            p.add(
                ("types", name, "azure_devops"),
                f"type '{name}' has an azure_devops: section but deploys with engine direct",
                "set engine: azure-pipelines, or remove the azure_devops: section",
            )
        # `pipelines sync` turns every gated type's approval into an Azure DevOps check.
        approval = env_type.approval
        if (
            settings.configured
            and approval is not None
            and not timedelta(minutes=1) <= approval.timeout <= MAX_CHECK_TIMEOUT
        ):
            p.add(
                ("types", name, "approval", "timeout"),
                f"type '{name}': an approval timeout of {approval.timeout} is not one an "
                "Azure DevOps check takes",
                "use between 1 minute and 30 days (e.g. 24h)",
            )
