"""Provider `azure`: one resource group per environment, built by an ARM template deployment."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.core.polling import LROPoller
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.deployments import models as arm_models
from azure.mgmt.resource.resources import ResourceManagementClient

from environments import parameters as layered
from environments.catalog import Catalog
from environments.errors import ConfigError, ProviderError, ShipyardError
from environments.model import Environment, EnvironmentState, HealthStatus, Release
from environments.providers import arm_template as arm
from environments.providers.arm_source import arm_source
from environments.providers.azure_config import AzureSettings
from environments.providers.base import HealthReport, Progress, ProviderResult
from environments.secrets import KeyVaultRef

STATIC_TOKEN_VARIABLE = "SHIPYARD_AZURE_STATIC_TOKEN"
TAG = "shipyard-env"
TERMINAL = {"succeeded", "failed", "canceled"}
PROGRESS_EVERY = 30.0
T = TypeVar("T")


class StaticTokenCredential:
    """A bearer token handed over as is (SHIPYARD_AZURE_STATIC_TOKEN), e.g. from
    `az account get-access-token`; tests use it against a fake Resource Manager. Never refreshed."""

    def __init__(self, token: str, *, lifetime: int = 3600) -> None:
        self._token = token
        self._lifetime = lifetime

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + self._lifetime)


def credential_from_environment() -> TokenCredential:
    """SHIPYARD_AZURE_STATIC_TOKEN if set, else DefaultAzureCredential (AZURE_TOKEN_CREDENTIALS).

    DefaultAzureCredential is built once per process and shared, so the token it caches is
    reused by every command and runtime of the process until it nears expiry.
    """
    token = os.environ.get(STATIC_TOKEN_VARIABLE)
    if token:
        return StaticTokenCredential(token)
    return _default_credential()


@functools.cache
def _default_credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    credential: TokenCredential = DefaultAzureCredential()
    return credential


@dataclass(frozen=True)
class OrphanGroup:
    """A resource group tagged by Shipyard that no live environment in the record owns."""

    name: str
    location: str
    tags: dict[str, str]


@dataclass(frozen=True)
class Drift:
    """Where Azure and the record disagree, both ways."""

    orphans: tuple[OrphanGroup, ...]
    vanished: tuple[Environment, ...]

    @property
    def clean(self) -> bool:
        return not self.orphans and not self.vanished


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
        self._credential = credential
        self._options = dict(client_options or {})
        self._lock = threading.Lock()
        self._clients: tuple[ResourceManagementClient, DeploymentsMgmtClient] | None = None

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

        rendered = arm.render_parameters(
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
        kind = self.catalog.type(environment.type)
        return layered.values(layered.resolve(self.catalog, kind, environment.overrides))

    # --- the Provider protocol ------------------------------------------------------------

    def provision(self, environment: Environment, *, progress: Progress) -> ProviderResult:
        self.render(environment, self._layered(environment))
        group = self.resource_group(environment)
        resources, _ = self._arm()
        with _calling(f"creating resource group {group}", self.settings):
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
        name = arm.deployment_name(environment, release.version, rendered)
        existing = self._get_deployment(group, name)
        state = _state(existing)
        if state == "succeeded":
            progress(f"ARM deployment {name} already succeeded")
            finished = existing or {}
        elif existing is not None and state not in TERMINAL:
            progress(f"re-attaching to ARM deployment {name} ({state})")
            finished = self._wait_existing(group, name, progress)
        else:
            finished = self._start(group, name, template, rendered, progress)
        outputs = arm.flatten_outputs(finished.get("properties", {}).get("outputs"))
        progress(f"ARM deployment {name} succeeded")
        return ProviderResult(
            endpoint=arm.pick_endpoint(outputs, _endpoint_output(self.catalog, environment.type)),
            outputs={**outputs, "resourceGroup": group, "deployment": name},
        )

    def destroy(self, environment: Environment, *, progress: Progress) -> None:
        group = self.resource_group(environment)
        resources, _ = self._arm()
        try:
            with _calling(f"deleting resource group {group}", self.settings):
                poller = resources.resource_groups.begin_delete(group)
        except ProviderError as exc:
            if isinstance(exc.__cause__, ResourceNotFoundError):
                progress(f"resource group {group} is already gone")
                return
            raise
        progress(f"deleting resource group {group}")
        self._wait(poller, f"deleting resource group {group}", progress)
        progress(f"resource group {group} deleted")

    def health(self, environment: Environment) -> str:
        group = self.resource_group(environment)
        try:
            resources, _ = self._arm()
            with _calling(f"reading resource group {group}", self.settings):
                found = _wire(resources.resource_groups.get(group))
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
            resources, deployments = self._arm()
            with _calling(f"reading resource group {group}", self.settings):
                found = _wire(resources.resource_groups.get(group, **once))
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
        deployed = _wire(newest).get("properties", {}) if newest is not None else {}
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
        kind = self.catalog.types[environment.type].azure
        if kind is None or not kind.health_url:
            return HealthReport(HealthStatus.HEALTHY, f"resource group {group} Succeeded")
        if not environment.endpoint:
            return HealthReport(HealthStatus.UNKNOWN, "no endpoint recorded to probe")
        return endpoint_health(kind.health_url.format(endpoint=environment.endpoint), timeout)

    # --- what-if and drift ----------------------------------------------------------------

    def what_if(
        self, environment: Environment, release: str, parameters: Mapping[str, str]
    ) -> arm.WhatIf:
        """The changes ARM would make for this deployment; nothing is deployed."""
        template, rendered = self.render(environment, parameters)
        group = self.resource_group(environment)
        name = arm.deployment_name(environment, release, rendered)
        resources, deployments = self._arm()
        with _calling(f"asking ARM what deployment {name} would change", self.settings):
            exists = resources.resource_groups.check_existence(group)
            properties = {"mode": "Incremental", "template": template.body, "parameters": rendered}
            if exists:
                poller = deployments.deployments.begin_what_if(
                    group, name, arm_models.DeploymentWhatIf({"properties": properties})
                )
            else:
                wrapper = _subscription_template(group, self.settings.location, name, properties)
                wrapper["resources"][0]["tags"] = self.tags(environment)
                scoped = {
                    "location": self.settings.location,
                    "properties": {"mode": "Incremental", "template": wrapper},
                }
                poller = deployments.deployments.begin_what_if_at_subscription_scope(
                    name, arm_models.DeploymentWhatIf(scoped)
                )
            result = self._wait(poller, f"what-if of {name}", lambda _: None)
        if str(result.get("status", "")).lower() == "failed":
            raise ProviderError(
                f"ARM what-if of {name} failed: " + "; ".join(_nested(result.get("error") or {})),
                hint=f"fix {template.name} or the parameters",
            )
        changes = tuple(_change(c) for c in result.get("properties", {}).get("changes", []))
        return arm.WhatIf(
            environment=environment.name,
            provider=self.name,
            summary=f"ARM deployment {name} of {template.name} into resource group {group}"
            + ("" if exists else " (to be created)"),
            changes=changes,
        )

    def drift(self, environments: Sequence[Environment]) -> Drift:
        """Tagged resource groups the record does not know, and azure environments whose group
        vanished."""
        resources, _ = self._arm()
        prefix = f"{self.settings.resource_group_prefix}-".lower()
        with _calling("listing resource groups tagged shipyard-env", self.settings):
            tagged = [
                _wire(g) for g in resources.resource_groups.list(filter=f"tagName eq '{TAG}'")
            ]
        ours = {
            str(g["name"]).lower(): g for g in tagged if str(g["name"]).lower().startswith(prefix)
        }
        live = [
            e
            for e in environments
            if e.is_live
            and e.type in self.catalog.types
            and self.catalog.types[e.type].provider == "azure"
        ]
        known = {self.resource_group(e).lower() for e in live}
        orphans = tuple(
            OrphanGroup(name=g["name"], location=g.get("location", ""), tags=g.get("tags") or {})
            for key, g in sorted(ours.items())
            if key not in known
        )
        built = (EnvironmentState.READY, EnvironmentState.DEPLOYING, EnvironmentState.FAILED)
        vanished = []
        for env in live:
            group = self.resource_group(env)
            if env.state not in built or "resourceGroup" not in env.outputs:
                continue
            if group.lower() in ours:
                continue
            with _calling(f"checking resource group {group}", self.settings):
                if not resources.resource_groups.check_existence(group):
                    vanished.append(env)
        return Drift(orphans=orphans, vanished=tuple(vanished))

    # --- ARM deployments ------------------------------------------------------------------

    def _get_deployment(self, group: str, name: str) -> dict[str, Any] | None:
        _, deployments = self._arm()
        try:
            with _calling(f"reading ARM deployment {name}", self.settings):
                return _wire(deployments.deployments.get(group, name))
        except ProviderError as exc:
            if isinstance(exc.__cause__, ResourceNotFoundError):
                return None
            raise

    def _start(
        self,
        group: str,
        name: str,
        template: arm.Template,
        rendered: dict[str, dict[str, Any]],
        progress: Progress,
    ) -> dict[str, Any]:
        _, deployments = self._arm()
        properties = {"mode": "Incremental", "template": template.body, "parameters": rendered}
        body = arm_models.Deployment({"properties": properties})
        with _calling(f"starting ARM deployment {name}", self.settings):
            poller = deployments.deployments.begin_create_or_update(group, name, body)
        progress(f"ARM deployment {name} of {template.name} started in {group}")
        try:
            return self._wait(poller, f"ARM deployment {name}", progress)
        except ProviderError as exc:
            if isinstance(exc.__cause__, HttpResponseError) and _state(
                self._get_deployment(group, name)
            ) in ("failed", "canceled"):
                raise self._failure(group, name) from exc.__cause__
            raise

    def _wait_existing(self, group: str, name: str, progress: Progress) -> dict[str, Any]:
        """Poll a deployment another (crashed) process started, until it ends."""
        started = time.monotonic()
        told = started
        while True:
            time.sleep(self.settings.polling_interval)
            found = self._get_deployment(group, name)
            state = _state(found)
            if found is None:
                raise ProviderError(
                    f"ARM deployment {name} disappeared while Shipyard waited for it",
                    hint="deploy again",
                )
            if state == "succeeded":
                return found
            if state in TERMINAL:
                raise self._failure(group, name)
            now = time.monotonic()
            if now - started > self.settings.operation_timeout:
                raise _still_running(f"ARM deployment {name}", self.settings)
            if now - told >= PROGRESS_EVERY:
                progress(f"ARM deployment {name} {state} ({now - started:.0f}s)")
                told = now

    def _wait(self, poller: LROPoller[Any], what: str, progress: Progress) -> dict[str, Any]:
        started = time.monotonic()
        with _calling(what, self.settings):
            while not poller.done():
                poller.wait(timeout=PROGRESS_EVERY)
                elapsed = time.monotonic() - started
                if poller.done():
                    break
                if elapsed > self.settings.operation_timeout:
                    raise _still_running(what, self.settings)
                progress(f"{what}: {poller.status()} ({elapsed:.0f}s)")
            return _wire(poller.result())

    def _failure(self, group: str, name: str) -> ProviderError:
        """A failed deployment explained: the failing resources and ARM's innermost messages."""
        _, deployments = self._arm()
        deployment = self._get_deployment(group, name) or {}
        reasons: list[str] = []
        with _calling(f"reading the operations of ARM deployment {name}", self.settings):
            for operation in deployments.deployment_operations.list(group, name):
                props = _wire(operation).get("properties", {})
                if str(props.get("provisioningState", "")).lower() != "failed":
                    continue
                target = props.get("targetResource") or {}
                what = (
                    f"{target.get('resourceType', 'resource')} '{target.get('resourceName', '?')}'"
                )
                status = props.get("statusMessage") or {}
                error = status.get("error", status) if isinstance(status, dict) else {}
                reasons.append(f"{what}: {' / '.join(_nested(error)) or status}")
        if not reasons:
            reasons = _nested(deployment.get("properties", {}).get("error") or {})
        return ProviderError(
            f"ARM deployment {name} failed: " + "; ".join(reasons or ["no reason given"]),
            hint=f"fix the template or parameters and deploy again (resource group {group})",
        )

    # --- clients --------------------------------------------------------------------------

    def _arm(self) -> tuple[ResourceManagementClient, DeploymentsMgmtClient]:
        with self._lock:
            if self._clients is None:
                self._clients = self._build_clients()
            return self._clients

    def _build_clients(self) -> tuple[ResourceManagementClient, DeploymentsMgmtClient]:
        s = self.settings
        if not s.subscription_id:
            raise ConfigError(
                f"{self.catalog.source}: azure.subscription_id is not set",
                hint="set azure.subscription_id in shipyard.yaml "
                "(or SHIPYARD_AZURE_SUBSCRIPTION_ID)",
            )
        credential = self._credential or credential_from_environment()
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        options: dict[str, Any] = {
            "base_url": s.resource_manager_url,
            "credential_scopes": [s.scope],
            "polling_interval": s.polling_interval,
            "retry_total": s.max_retries,
            "retry_backoff_factor": 0.8,
            "retry_backoff_max": 60,
            "connection_timeout": s.request_timeout,
            "read_timeout": s.request_timeout,
            **self._options,
        }
        connection = ("connection_timeout", "read_timeout", "connection_verify", "connection_cert")
        options["transport"] = RequestsTransport(
            session=session,
            session_owner=False,
            **{key: options[key] for key in connection if key in options},
        )
        return (
            ResourceManagementClient(credential, s.subscription_id, **options),
            DeploymentsMgmtClient(credential, s.subscription_id, **options),
        )


def _endpoint_output(catalog: Catalog, type_name: str) -> str | None:
    settings = catalog.type(type_name).azure
    return settings.endpoint_output if settings else None


@contextmanager
def _calling(what: str, settings: AzureSettings) -> Iterator[None]:
    """Azure's exceptions → ProviderError with what Shipyard was doing and what to do next."""
    try:
        yield
    except ShipyardError:
        raise
    except ClientAuthenticationError as exc:
        raise ProviderError(
            f"Azure refused the credential while {what}: {_message(exc)}",
            hint="sign in (az login, a managed identity, or AZURE_CLIENT_ID/AZURE_TENANT_ID/"
            "AZURE_CLIENT_SECRET) — see README, Connecting Azure",
        ) from exc
    except HttpResponseError as exc:
        raise ProviderError(
            f"Resource Manager answered {exc.status_code} while {what}: {_message(exc)}",
            hint="see the message; 429 and 5xx were already retried "
            f"{settings.max_retries} time(s)",
        ) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise ProviderError(
            f"cannot reach Resource Manager at {settings.resource_manager_url} while {what}: "
            f"{exc.message}",
            hint="check azure.resource_manager_url and the network, then retry",
        ) from exc
    except AzureError as exc:
        raise ProviderError(f"Azure failed while {what}: {exc.message}", hint="retry") from exc


def _still_running(what: str, settings: AzureSettings) -> ProviderError:
    return ProviderError(
        f"{what} is still running after {settings.operation_timeout:.0f}s",
        hint="it goes on in Azure; ask again (or let the worker resume it) to wait again",
    )


def _message(exc: AzureError) -> str:
    error = getattr(exc, "error", None)
    code, message = getattr(error, "code", None), getattr(error, "message", None)
    if message:
        return f"{code}: {message}" if code else str(message)
    return str(exc.message or exc).splitlines()[0]


def _nested(error: Mapping[str, Any]) -> list[str]:
    """The innermost `code: message` of an ARM error and its details, outermost kept as context."""
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    inner = [line for detail in details for line in _nested(detail)]
    if inner:
        return inner
    if error.get("message") or error.get("code"):
        return [f"{error.get('code', 'Error')}: {error.get('message', '')}".strip()]
    return []


def _wire(model: Any) -> dict[str, Any]:
    if model is None:
        return {}
    as_dict: Callable[[], dict[str, Any]] | None = getattr(model, "as_dict", None)
    return as_dict() if as_dict else dict(model)


def _state(deployment: Mapping[str, Any] | None) -> str | None:
    if not deployment:
        return None
    return str(deployment.get("properties", {}).get("provisioningState", "")).lower() or None


def _change(raw: Mapping[str, Any]) -> arm.ResourceChange:
    def props(deltas: Sequence[Mapping[str, Any]], prefix: str = "") -> list[arm.PropertyChange]:
        found: list[arm.PropertyChange] = []
        for delta in deltas:
            path = f"{prefix}{delta.get('path', '')}"
            if delta.get("children"):
                found.extend(props(delta["children"], f"{path}."))
            else:
                found.append(
                    arm.PropertyChange(
                        path=path,
                        change=str(delta.get("propertyChangeType", "Modify")),
                        before=delta.get("before"),
                        after=delta.get("after"),
                    )
                )
        return found

    return arm.ResourceChange(
        change=str(raw.get("changeType", "Unsupported")),
        resource_id=str(raw.get("resourceId", "")),
        properties=tuple(props(raw.get("delta") or [])),
    )


def _subscription_template(
    group: str, location: str, name: str, properties: Mapping[str, Any]
) -> dict[str, Any]:
    """A subscription-scope template that creates the group and deploys into it (for what-if)."""
    return {
        "$schema": "https://schema.management.azure.com/schemas/2018-05-01/"
        "subscriptionDeploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.Resources/resourceGroups",
                "apiVersion": "2022-09-01",
                "name": group,
                "location": location,
            },
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": name,
                "resourceGroup": group,
                "dependsOn": [f"[resourceId('Microsoft.Resources/resourceGroups', '{group}')]"],
                "properties": {**properties, "expressionEvaluationOptions": {"scope": "inner"}},
            },
        ],
    }


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
