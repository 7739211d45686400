"""What shipyard.yaml says about Azure: subscription, location, endpoints, per-type templates."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

# Environment variables that override the `azure:` section (for a CI job, or a test's fake ARM).
OVERRIDES = {
    "SHIPYARD_AZURE_SUBSCRIPTION_ID": "subscription_id",
    "SHIPYARD_AZURE_LOCATION": "location",
    "SHIPYARD_AZURE_RESOURCE_MANAGER_URL": "resource_manager_url",
    "SHIPYARD_AZURE_CREDENTIAL_SCOPE": "credential_scope",
}


class AzureSettings(BaseModel):
    """The top-level `azure:` section: where resource groups go, how to reach Resource Manager."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subscription_id: str = ""
    location: str = "westeurope"
    resource_group_prefix: str = "shipyard"
    resource_manager_url: str = "https://management.azure.com"
    # Empty: derived from resource_manager_url (<url>/.default), right for sovereign clouds too
    # (https://management.chinacloudapi.cn, https://management.usgovcloudapi.net).
    credential_scope: str = ""
    # Where Key Vaults named only by name (`@keyvault(my-vault, secret)`) live; empty means the
    # shared resource group `<resource_group_prefix>-shared`.
    key_vault_resource_group: str = ""
    # Seconds between polls when Azure gives no Retry-After (re-attaching to a deployment).
    polling_interval: float = Field(default=10.0, gt=0, le=300)
    # Retries of one request on 429/5xx (honouring Retry-After); never forever.
    max_retries: int = Field(default=5, ge=0, le=20)
    # Seconds one HTTP request may take to connect / to answer.
    request_timeout: float = Field(default=60.0, gt=0, le=600)
    # Seconds a deployment or a resource group deletion may run before Shipyard stops waiting.
    operation_timeout: float = Field(default=3 * 3600.0, gt=0)

    @property
    def scope(self) -> str:
        """The token scope: as configured, else derived from the Resource Manager URL."""
        return self.credential_scope or f"{self.resource_manager_url.rstrip('/')}/.default"

    def with_environment(self, environ: Mapping[str, str] | None = None) -> AzureSettings:
        """These settings with SHIPYARD_AZURE_* environment variables applied on top."""
        source = os.environ if environ is None else environ
        changes = {field: source[name] for name, field in OVERRIDES.items() if source.get(name)}
        return self.model_copy(update=changes) if changes else self


class AzureTypeSettings(BaseModel):
    """A type's `azure:` section: the ARM template (relative to shipyard.yaml) and its inputs.

    `parameters_file` is an ARM parameters file whose values sit below Shipyard's parameters
    (a value `{{ release.version }}` in Shipyard's parameters receives the release); `unique`
    names template parameters that get a per-environment suffix (globally unique names such as
    storage accounts).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: str
    parameters_file: str | None = None
    unique: tuple[str, ...] = ()
    # Which output is the endpoint, dotted into objects (clusterProperties.managementEndpoint);
    # unset, the best-looking *Endpoint output (see arm_template.pick_endpoint).
    endpoint_output: str | None = None
    # Probed by the health check with `{endpoint}` filled in, e.g. a Service Fabric cluster's
    # "{endpoint}/$/GetClusterHealth?api-version=6.0" (its AggregatedHealthState decides).
    health_url: str | None = None
