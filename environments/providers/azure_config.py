"""What shipyard.yaml says about Azure: subscription, location, endpoints, per-type templates."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AzureSettings(BaseModel):
    """The top-level `azure:` section: where resource groups go, how to reach Resource Manager."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subscription_id: str = ""
    location: str = "westeurope"
    resource_group_prefix: str = "shipyard"
    resource_manager_url: str = "https://management.azure.com"
    credential_scope: str = "https://management.azure.com/.default"


class AzureTypeSettings(BaseModel):
    """A type's `azure:` section: the ARM template (relative to shipyard.yaml) and its inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: str
    parameters_file: str | None = None
