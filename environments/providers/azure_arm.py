"""Resource Manager for the azure provider: SDK clients built on first use, Azure's errors
explained, ARM deployments started, awaited and re-attached after a crash."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import requests
from azure.core.credentials import TokenCredential
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

from environments.config.azure import AzureSettings
from environments.errors import ConfigError, ProviderError, ShipyardError
from environments.providers import arm_template as arm
from environments.providers.azure_credentials import credential_from_environment
from environments.providers.base import Progress

TERMINAL = {"succeeded", "failed", "canceled"}
PROGRESS_EVERY = 30.0


class ResourceManager:
    """The two ARM clients of one subscription, and ARM deployments driven to their end.

    Deployment names are the caller's and deterministic, so a step resumed after a crash finds
    the deployment it started (`get_deployment`) and waits for it (`wait_existing`).
    """

    def __init__(
        self,
        settings: AzureSettings,
        *,
        source: str,
        credential: TokenCredential | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.source = source
        self._credential = credential
        self._options = dict(client_options or {})
        self._lock = threading.Lock()
        self._clients: tuple[ResourceManagementClient, DeploymentsMgmtClient] | None = None

    def get_deployment(self, group: str, name: str) -> dict[str, Any] | None:
        _, deployments = self.clients()
        try:
            with calling(f"reading ARM deployment {name}", self.settings):
                return wire(deployments.deployments.get(group, name))
        except ProviderError as exc:
            if isinstance(exc.__cause__, ResourceNotFoundError):
                return None
            raise

    def start(
        self,
        group: str,
        name: str,
        template: arm.Template,
        rendered: dict[str, dict[str, Any]],
        progress: Progress,
    ) -> dict[str, Any]:
        _, deployments = self.clients()
        properties = {"mode": "Incremental", "template": template.body, "parameters": rendered}
        body = arm_models.Deployment({"properties": properties})
        with calling(f"starting ARM deployment {name}", self.settings):
            poller = deployments.deployments.begin_create_or_update(group, name, body)
        progress(f"ARM deployment {name} of {template.name} started in {group}")
        try:
            return self.wait(poller, f"ARM deployment {name}", progress)
        except ProviderError as exc:
            if isinstance(exc.__cause__, HttpResponseError) and provisioning_state(
                self.get_deployment(group, name)
            ) in ("failed", "canceled"):
                raise self.failure(group, name) from exc.__cause__
            raise

    def wait_existing(self, group: str, name: str, progress: Progress) -> dict[str, Any]:
        """Poll a deployment another (crashed) process started, until it ends."""
        started = time.monotonic()
        told = started
        while True:
            time.sleep(self.settings.polling_interval)
            found = self.get_deployment(group, name)
            state = provisioning_state(found)
            if found is None:
                raise ProviderError(
                    f"ARM deployment {name} disappeared while Shipyard waited for it",
                    hint="deploy again",
                )
            if state == "succeeded":
                return found
            if state in TERMINAL:
                raise self.failure(group, name)
            now = time.monotonic()
            if now - started > self.settings.operation_timeout:
                raise still_running(f"ARM deployment {name}", self.settings)
            if now - told >= PROGRESS_EVERY:
                progress(f"ARM deployment {name} {state} ({now - started:.0f}s)")
                told = now

    def wait(self, poller: LROPoller[Any], what: str, progress: Progress) -> dict[str, Any]:
        started = time.monotonic()
        with calling(what, self.settings):
            while not poller.done():
                poller.wait(timeout=PROGRESS_EVERY)
                elapsed = time.monotonic() - started
                if poller.done():
                    break
                if elapsed > self.settings.operation_timeout:
                    raise still_running(what, self.settings)
                progress(f"{what}: {poller.status()} ({elapsed:.0f}s)")
            return wire(poller.result())

    def failure(self, group: str, name: str) -> ProviderError:
        """A failed deployment explained: the failing resources and ARM's innermost messages."""
        _, deployments = self.clients()
        deployment = self.get_deployment(group, name) or {}
        reasons: list[str] = []
        with calling(f"reading the operations of ARM deployment {name}", self.settings):
            for operation in deployments.deployment_operations.list(group, name):
                props = wire(operation).get("properties", {})
                if str(props.get("provisioningState", "")).lower() != "failed":
                    continue
                target = props.get("targetResource") or {}
                what = (
                    f"{target.get('resourceType', 'resource')} '{target.get('resourceName', '?')}'"
                )
                status = props.get("statusMessage") or {}
                error = status.get("error", status) if isinstance(status, dict) else {}
                reasons.append(f"{what}: {' / '.join(nested(error)) or status}")
        if not reasons:
            reasons = nested(deployment.get("properties", {}).get("error") or {})
        return ProviderError(
            f"ARM deployment {name} failed: " + "; ".join(reasons or ["no reason given"]),
            hint=f"fix the template or parameters and deploy again (resource group {group})",
        )

    def clients(self) -> tuple[ResourceManagementClient, DeploymentsMgmtClient]:
        with self._lock:
            if self._clients is None:
                self._clients = self._build_clients()
            return self._clients

    def _build_clients(self) -> tuple[ResourceManagementClient, DeploymentsMgmtClient]:
        s = self.settings
        if not s.subscription_id:
            raise ConfigError(
                f"{self.source}: azure.subscription_id is not set",
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


@contextmanager
def calling(what: str, settings: AzureSettings) -> Iterator[None]:
    """Azure's exceptions → ProviderError with what Shipyard was doing and what to do next."""
    try:
        yield
    except ShipyardError:
        raise
    except ClientAuthenticationError as exc:
        raise ProviderError(
            f"Azure refused the credential while {what}: {message_of(exc)}",
            hint="sign in (az login, a managed identity, or AZURE_CLIENT_ID/AZURE_TENANT_ID/"
            "AZURE_CLIENT_SECRET) — see README, Azure",
        ) from exc
    except HttpResponseError as exc:
        raise ProviderError(
            f"Resource Manager answered {exc.status_code} while {what}: {message_of(exc)}",
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


def still_running(what: str, settings: AzureSettings) -> ProviderError:
    return ProviderError(
        f"{what} is still running after {settings.operation_timeout:.0f}s",
        hint="it goes on in Azure; ask again (or let the worker resume it) to wait again",
    )


def message_of(exc: AzureError) -> str:
    error = getattr(exc, "error", None)
    code, message = getattr(error, "code", None), getattr(error, "message", None)
    if message:
        return f"{code}: {message}" if code else str(message)
    return str(exc.message or exc).splitlines()[0]


def nested(error: Mapping[str, Any]) -> list[str]:
    """The innermost `code: message` of an ARM error and its details, outermost kept as context."""
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    inner = [line for detail in details for line in nested(detail)]
    if inner:
        return inner
    if error.get("message") or error.get("code"):
        return [f"{error.get('code', 'Error')}: {error.get('message', '')}".strip()]
    return []


def wire(model: Any) -> dict[str, Any]:
    if model is None:
        return {}
    as_dict: Callable[[], dict[str, Any]] | None = getattr(model, "as_dict", None)
    return as_dict() if as_dict else dict(model)


def provisioning_state(deployment: Mapping[str, Any] | None) -> str | None:
    if not deployment:
        return None
    return str(deployment.get("properties", {}).get("provisioningState", "")).lower() or None
