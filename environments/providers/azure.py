"""The azure provider: an environment is a resource group filled by an ARM deployment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceNotFoundError

from environments import parameters as layered
from environments.catalog import Catalog
from environments.config.azure import AzureSettings
from environments.errors import ProviderError, ShipyardError
from environments.model import Environment, HealthStatus, Release
from environments.providers import arm_outputs, arm_parameters, azure_drift, azure_whatif, whatif
from environments.providers import arm_template as arm
from environments.providers.arm_source import arm_source
from environments.providers.azure_arm import (
    TERMINAL,
    ResourceManager,
    calling,
    provisioning_state,
    wire,
)
from environments.providers.azure_drift import TAG, Drift
from environments.providers.base import HealthReport, Progress, ProviderResult
from environments.secrets import KeyVaultRef


class AzureProvider:
    """Environments as resource groups `<prefix>-<name>`, each filled by an ARM deployment.

    Clients are built on first use, so a configuration with azure types costs nothing until an
    azure environment is touched. Deployment names are deterministic: a step resumed after a
    crash finds the deployment it started and waits for it instead of starting another.
    """

    name = "azure"

    def __init__(
        self,
        catalog: Catalog,
        *,
        settings: AzureSettings | None = None,
        credential: TokenCredential | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.catalog = catalog
        self.settings = settings or catalog.azure.with_environment()
        self.arm = ResourceManager(
            self.settings,
            source=catalog.source,
            credential=credential,
            client_options=client_options,
        )

    # --- naming ---------------------------------------------------------------------------

    def resource_group(self, environment: Environment) -> str:
        return f"{self.settings.resource_group_prefix}-{environment.name}"

    def tags(self, environment: Environment) -> dict[str, str]:
        expires = environment.expires_at.isoformat() if environment.expires_at else "never"
        return {
            TAG: environment.name,
            "shipyard-type": environment.type,
            "shipyard-owner": environment.owner,
            "shipyard-expires": expires,
            "shipyard-id": str(environment.id),
        }

    def render(
        self, environment: Environment, supplied: Mapping[str, str]
    ) -> tuple[arm.Template, dict[str, dict[str, Any]]]:
        """Template and ARM parameters object, checked against each other (no Azure call)."""
        source = arm_source(self.catalog, environment.type)
        template = source.template

        shared = (
            self.settings.key_vault_resource_group
            or f"{self.settings.resource_group_prefix}-shared"
        )

        def vault_id(ref: KeyVaultRef) -> str:
            return ref.vault_id(self.settings.subscription_id, shared)

        rendered = arm_parameters.render_parameters(
            template,
            supplied,
            file_values=source.file_values,
            unique=source.unique,
            suffix=arm.unique_suffix(environment),
            fallback_base=environment.name,
            vault_id=vault_id,
            file_name=source.file_name,
        )
        return template, rendered

    def check(self, environment: Environment, parameters: Mapping[str, str]) -> None:
        """Parameters against the type's template, all problems at once, no Azure call."""
        self.render(environment, parameters)

    def _layered(self, environment: Environment) -> dict[str, str]:
        env_type = self.catalog.type(environment.type)
        return layered.values(layered.resolve(self.catalog, env_type, environment.overrides))

    # --- the Provider protocol ------------------------------------------------------------

    def provision(self, environment: Environment, *, progress: Progress) -> ProviderResult:
        self.render(environment, self._layered(environment))
        group = self.resource_group(environment)
        resources, _ = self.arm.clients()
        with calling(f"creating resource group {group}", self.settings):
            resources.resource_groups.create_or_update(
                group, {"location": self.settings.location, "tags": self.tags(environment)}
            )
        progress(f"resource group {group} in {self.settings.location}")
        return ProviderResult(outputs={"resourceGroup": group, "location": self.settings.location})

    def deploy(
        self,
        environment: Environment,
        release: Release,
        parameters: Mapping[str, str],
        *,
        progress: Progress,
    ) -> ProviderResult:
        template, rendered = self.render(environment, parameters)
        group = self.resource_group(environment)
        name = arm_outputs.deployment_name(environment, release.version, rendered)
        existing = self.arm.get_deployment(group, name)
        state = provisioning_state(existing)
        if state == "succeeded":
            progress(f"ARM deployment {name} already succeeded")
            finished = existing or {}
        elif existing is not None and state not in TERMINAL:
            progress(f"re-attaching to ARM deployment {name} ({state})")
            finished = self.arm.wait_existing(group, name, progress)
        else:
            finished = self.arm.start(group, name, template, rendered, progress)
        outputs = arm_outputs.flatten_outputs(finished.get("properties", {}).get("outputs"))
        progress(f"ARM deployment {name} succeeded")
        return ProviderResult(
            endpoint=arm_outputs.pick_endpoint(
                outputs, _endpoint_output(self.catalog, environment.type)
            ),
            outputs={**outputs, "resourceGroup": group, "deployment": name},
        )

    def destroy(self, environment: Environment, *, progress: Progress) -> None:
        group = self.resource_group(environment)
        resources, _ = self.arm.clients()
        try:
            with calling(f"deleting resource group {group}", self.settings):
                poller = resources.resource_groups.begin_delete(group)
        except ProviderError as exc:
            if isinstance(exc.__cause__, ResourceNotFoundError):
                progress(f"resource group {group} is already gone")
                return
            raise
        progress(f"deleting resource group {group}")
        self.arm.wait(poller, f"deleting resource group {group}", progress)
        progress(f"resource group {group} deleted")

    def health(self, environment: Environment) -> str:
        group = self.resource_group(environment)
        try:
            resources, _ = self.arm.clients()
            with calling(f"reading resource group {group}", self.settings):
                found = wire(resources.resource_groups.get(group))
        except ProviderError as exc:
            if isinstance(exc.__cause__, ResourceNotFoundError):
                return f"resource group {group} missing"
            return f"unknown: {exc.reason}"
        except ShipyardError as exc:
            return f"unknown: {exc.reason}"
        state = found.get("properties", {}).get("provisioningState", "?")
        return f"resource group {group} {state}"

    def probe(self, environment: Environment, *, timeout: float) -> HealthReport:
        """The resource group, its newest ARM deployment, then the type's health URL if any."""
        group = self.resource_group(environment)
        once: dict[str, Any] = {
            "retry_total": 0,
            "connection_timeout": timeout,
            "read_timeout": timeout,
        }
        try:
            resources, deployments = self.arm.clients()
            with calling(f"reading resource group {group}", self.settings):
                found = wire(resources.resource_groups.get(group, **once))
                newest = next(
                    iter(deployments.deployments.list_by_resource_group(group, top=1, **once)),
                    None,
                )
        except ProviderError as exc:
            if isinstance(exc.__cause__, ResourceNotFoundError):
                return HealthReport(HealthStatus.UNHEALTHY, f"resource group {group} is missing")
            return HealthReport(HealthStatus.UNKNOWN, exc.reason)
        except ShipyardError as exc:
            return HealthReport(HealthStatus.UNKNOWN, exc.reason)
        state = found.get("properties", {}).get("provisioningState", "unknown")
        if state != "Succeeded":
            return HealthReport(HealthStatus.UNHEALTHY, f"resource group {group} is {state}")
        deployed = wire(newest).get("properties", {}) if newest is not None else {}
        deployment_state = deployed.get("provisioning_state") or deployed.get(
            "provisioningState", "none"
        )
        if deployment_state in ("Failed", "Canceled"):
            return HealthReport(
                HealthStatus.UNHEALTHY, f"newest ARM deployment in {group} {deployment_state}"
            )
        if deployment_state not in ("Succeeded", "none"):
            return HealthReport(
                HealthStatus.DEGRADED, f"ARM deployment in {group} is {deployment_state}"
            )
        settings = self.catalog.types[environment.type].azure
        if settings is None or not settings.health_url:
            return HealthReport(HealthStatus.HEALTHY, f"resource group {group} Succeeded")
        if not environment.endpoint:
            return HealthReport(HealthStatus.UNKNOWN, "no endpoint recorded to probe")
        return endpoint_health(settings.health_url.format(endpoint=environment.endpoint), timeout)

    # --- what-if and drift ----------------------------------------------------------------

    def what_if(
        self, environment: Environment, release: str, parameters: Mapping[str, str]
    ) -> whatif.WhatIf:
        """The changes ARM would make for this deployment; nothing is deployed."""
        template, rendered = self.render(environment, parameters)
        return azure_whatif.what_if(
            self.arm,
            environment,
            group=self.resource_group(environment),
            name=arm_outputs.deployment_name(environment, release, rendered),
            template=template,
            rendered=rendered,
            tags=self.tags(environment),
        )

    def drift(self, environments: Sequence[Environment]) -> Drift:
        """Tagged resource groups the record does not know, and azure environments whose group
        vanished."""
        return azure_drift.drift(self.arm, self.catalog, environments, self.resource_group)


def _endpoint_output(catalog: Catalog, type_name: str) -> str | None:
    settings = catalog.type(type_name).azure
    return settings.endpoint_output if settings else None


def endpoint_health(url: str, timeout: float) -> HealthReport:
    """GET the type's health URL; a Service Fabric answer's AggregatedHealthState decides."""
    try:
        answer = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return HealthReport(HealthStatus.UNHEALTHY, f"{url} did not answer: {type(exc).__name__}")
    if answer.status_code != 200:
        return HealthReport(HealthStatus.UNHEALTHY, f"{url} answered {answer.status_code}")
    try:
        body = answer.json()
    except ValueError:
        body = None
    aggregated = body.get("AggregatedHealthState") if isinstance(body, dict) else None
    if aggregated is None:
        return HealthReport(HealthStatus.HEALTHY, f"{url} answered 200")
    status = {"Ok": HealthStatus.HEALTHY, "Warning": HealthStatus.DEGRADED}.get(
        aggregated, HealthStatus.UNHEALTHY
    )
    return HealthReport(status, f"cluster health {aggregated}")
