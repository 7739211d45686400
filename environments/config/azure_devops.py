"""What shipyard.yaml says about Azure DevOps: organization, project, pipeline, approver identities.

The personal access token and the webhook secret are secrets: they come only from the
environment (`AZURE_DEVOPS_PAT`, `AZURE_DEVOPS_WEBHOOK_SECRET`), never from this section.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from environments.errors import ConfigError

# Environment variables that override the `azure_devops:` section (a CI job, a test's fake server).
OVERRIDES = {
    "AZURE_DEVOPS_ORG_URL": "organization_url",
    "AZURE_DEVOPS_PROJECT": "project",
    "AZURE_DEVOPS_PIPELINE_ID": "pipeline_id",
}
PAT_VARIABLE = "AZURE_DEVOPS_PAT"
WEBHOOK_SECRET_VARIABLE = "AZURE_DEVOPS_WEBHOOK_SECRET"


class TypePipelineSettings(BaseModel):
    """A type's `azure_devops:` section: what the run Shipyard starts for a release deploys.

    `source: build` (the default) deploys the build run recorded with the release
    (`resources.pipelines.<build_resource>.version`); `source: tag` runs the pipeline on the
    release's tag (`refs/tags/<version>`). Never the default branch. `pipeline_id` is the
    pipeline Shipyard starts for this type (default: the section's `azure_devops.pipeline_id`),
    so types that deploy a recorded build and types that build their tag can live side by side.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["build", "tag"] = "build"
    # The alias of the pipeline resource (the build pipeline) in the deploy pipeline's YAML.
    build_resource: str = Field(default="build", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    pipeline_id: int | None = Field(default=None, ge=1)


class AzureDevOpsSettings(BaseModel):
    """The top-level `azure_devops:` section.

    `pipeline_id` is the pipeline Shipyard starts to deploy one release into one environment
    (see examples/azure-pipelines-deploy.yml); `watch` lists further pipelines whose runs are
    recorded (the poll looks at them). `identities` maps Shipyard people to Azure DevOps identity
    ids, so the approval checks `shipyard pipelines sync` writes name the same approvers as the
    types' `approval:` sections.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    organization_url: str = ""
    project: str = ""
    pipeline_id: int | None = None
    watch: tuple[int, ...] = ()
    environment_prefix: str = "shipyard-"
    identities: dict[str, str] = {}
    # The Azure DevOps identity id of the account whose PAT Shipyard uses: the one approver of
    # the approval checks `pipelines sync` writes (people decide in Slack, Shipyard answers).
    approver_identity: str = ""
    # The variable group the pipeline templates read SHIPYARD_URL and SHIPYARD_TOKEN (secret)
    # from (their `variableGroup` parameter); `pipelines sync` checks it is there.
    variable_group: str = "shipyard"
    # Seconds one HTTP request may take to connect / to answer.
    request_timeout: float = Field(default=30.0, gt=0, le=600)
    # Retries of one request on 429/5xx, honouring Retry-After up to max_retry_after seconds.
    max_retries: int = Field(default=4, ge=0, le=20)
    max_retry_after: float = Field(default=60.0, ge=0, le=3600)
    # Seconds between polls of a run Shipyard follows, and how far back the poll looks.
    poll_interval: float = Field(default=10.0, gt=0, le=600)
    reconcile_lookback_hours: float = Field(default=48.0, gt=0)

    @property
    def configured(self) -> bool:
        return bool(self.organization_url and self.project)

    @property
    def pipelines(self) -> tuple[int, ...]:
        """Every pipeline whose runs Shipyard records: the one it starts and the watched ones."""
        first = (self.pipeline_id,) if self.pipeline_id is not None else ()
        return tuple(dict.fromkeys((*first, *self.watch)))

    def environment_name(self, environment: str) -> str:
        """The Azure DevOps environment that stands for a Shipyard environment."""
        return f"{self.environment_prefix}{environment}"

    def with_environment(self, environ: Mapping[str, str] | None = None) -> AzureDevOpsSettings:
        """These settings with AZURE_DEVOPS_* environment variables applied on top."""
        source = os.environ if environ is None else environ
        changes = {field: source[name] for name, field in OVERRIDES.items() if source.get(name)}
        if not changes:
            return self
        try:
            return AzureDevOpsSettings.model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            error = exc.errors()[0]
            variable = next(n for n, f in OVERRIDES.items() if f == error["loc"][0])
            raise ConfigError(
                f"{variable}={source[variable]!r}: {error['msg']}",
                hint="fix the environment variable or unset it",
            ) from None


def pipelines_settings(
    catalog: object, environ: Mapping[str, str] | None = None
) -> AzureDevOpsSettings:
    """The catalog's `azure_devops:` section (defaults when it has none), environment on top.

    Pipelines that types start of their own (`types.<t>.azure_devops.pipeline_id`) are watched
    too: their runs are recorded and their approvals answered like those of `pipeline_id`.
    """
    found = getattr(catalog, "azure_devops", None)
    base = found if isinstance(found, AzureDevOpsSettings) else AzureDevOpsSettings()
    settings = base.with_environment(environ)
    types = getattr(catalog, "types", {})
    own = [
        t.azure_devops.pipeline_id
        for t in types.values()
        if isinstance(getattr(t, "azure_devops", None), TypePipelineSettings)
        and t.azure_devops.pipeline_id is not None
    ]
    if not own:
        return settings
    return settings.model_copy(update={"watch": tuple(dict.fromkeys((*settings.watch, *own)))})
