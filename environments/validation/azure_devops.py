"""Checks of the `azure_devops:` section and of the types that deploy through it."""

from __future__ import annotations

import re

from environments.errors import ConfigError, clip
from environments.pipelines_config import pipelines_settings
from environments.validation.common import Problems

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def check_azure_devops(p: Problems) -> None:
    try:
        settings = pipelines_settings(p.catalog)
    except ConfigError as exc:
        p.add(("azure_devops",), exc.reason, exc.hint)
        return
    url = settings.organization_url
    if url and not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", url):
        p.add(
            ("azure_devops", "organization_url"),
            f"azure_devops.organization_url '{clip(url)}' is not a URL",
            "write https://dev.azure.com/ORGANIZATION",
        )
    if url and not settings.project:
        p.add(("azure_devops",), "azure_devops: organization_url is set but project is not")
    for person, identity in settings.identities.items():
        if not GUID.fullmatch(identity):
            p.add(
                ("azure_devops", "identities", person),
                f"azure_devops.identities.{clip(person)}: '{clip(identity)}' is not an "
                "Azure DevOps identity id",
                "identity ids are GUIDs (Organization settings → Users, or the REST API)",
            )
    piped = [name for name, kind in p.catalog.types.items() if kind.engine != "direct"]
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
            p.add(
                ("types", name, "engine"),
                f"type '{name}' deploys with engine azure-pipelines, but azure_devops has "
                f"no {', '.join(missing)}",
                "fill in azure_devops: (or AZURE_DEVOPS_ORG_URL, AZURE_DEVOPS_PROJECT, "
                "AZURE_DEVOPS_PIPELINE_ID), or use engine: direct",
            )
