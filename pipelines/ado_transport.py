"""The Azure DevOps transport: SDK clients, timeouts, retries honouring Retry-After, errors."""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Self
from urllib.parse import quote

from urllib3.util.retry import Retry

from environments.catalog import Catalog
from environments.config.azure_devops import PAT_VARIABLE, AzureDevOpsSettings, pipelines_settings
from environments.errors import ConfigError
from environments.registry import shipyard_home
from pipelines.ado_model import (
    API_VERSION,
    CHECKS_LOCATION,
    NOT_REPEATABLE,
    RETRY_STATUSES,
    PipelineError,
    _first_line,
)


class _Retry(Retry):
    """urllib3's Retry, bounded, with Retry-After capped and non-repeatable verbs kept safe."""

    max_retry_after: float = 60.0
    # msrest reads this name (urllib3 1.x's) whenever it opens a session, which it does once per
    # thread; urllib3 2.x renamed it, so without it any second thread fails its first request.
    BACKOFF_MAX = Retry.DEFAULT_BACKOFF_MAX

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code not in RETRY_STATUSES:
            return False
        return method.upper() not in NOT_REPEATABLE or status_code in (429, 503)

    def _is_method_retryable(self, method: str) -> bool:
        # Read errors: a POST/PATCH may have been applied before the answer was lost.
        return method.upper() not in NOT_REPEATABLE

    def parse_retry_after(self, retry_after: str) -> float:
        return float(min(super().parse_retry_after(retry_after), self.max_retry_after))


def _retry_policy(settings: AzureDevOpsSettings) -> Retry:
    retry = _Retry(
        total=settings.max_retries,
        connect=settings.max_retries,
        read=settings.max_retries,
        status=settings.max_retries,
        backoff_factor=0.5,
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    retry.max_retry_after = settings.max_retry_after
    return retry


def _sdk_cache_dir() -> None:
    """The SDK caches route discovery on disk; keep it under SHIPYARD_HOME unless told otherwise.

    It reads AZURE_DEVOPS_CACHE_DIR when first imported, so this runs before that import.
    """
    if not os.environ.get("AZURE_DEVOPS_CACHE_DIR"):
        folder = shipyard_home() / "cache" / "azure-devops"
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["AZURE_DEVOPS_CACHE_DIR"] = str(folder)


class Transport:
    """One organization and project: runs, timelines and logs, environments and checks, approvals.

    Build it with `AzureDevOps.from_environment(catalog)` (organization and project from
    shipyard.yaml or AZURE_DEVOPS_*; the PAT only from AZURE_DEVOPS_PAT).
    """

    def __init__(self, settings: AzureDevOpsSettings, pat: str) -> None:
        if not settings.configured:
            raise ConfigError(
                "Azure DevOps is not configured",
                hint="set azure_devops.organization_url and project in shipyard.yaml "
                "(or AZURE_DEVOPS_ORG_URL and AZURE_DEVOPS_PROJECT)",
            )
        if not pat:
            raise ConfigError(
                f"{PAT_VARIABLE} is not set",
                hint="export a personal access token with the scopes listed in the README",
            )
        _sdk_cache_dir()
        from azure.devops.client import Client
        from azure.devops.connection import Connection
        from msrest.authentication import BasicAuthentication

        self.settings = settings
        self.org_url = settings.organization_url.rstrip("/")
        self.project = settings.project
        credentials = BasicAuthentication("", pat)
        self._connection = Connection(base_url=self.org_url, creds=credentials)
        self._clients: dict[str, Any] = {}
        self._raw = self._configured(Client(self.org_url, credentials))

    @classmethod
    def from_environment(cls, catalog: Catalog, environ: Mapping[str, str] | None = None) -> Self:
        source = os.environ if environ is None else environ
        return cls(pipelines_settings(catalog, source), source.get(PAT_VARIABLE, ""))

    # --- plumbing -------------------------------------------------------------------------

    def _configured(self, client: Any) -> Any:
        """Shipyard's timeout and retries on an SDK client, for every request it sends."""
        policy = _retry_policy(self.settings)
        timeout = self.settings.request_timeout
        client.config.connection.timeout = timeout
        client.config.retry_policy.policy = policy

        # msrest builds its session when the client is made, so the retry policy is (re)applied
        # per request through msrest's session hook, on whichever thread's session is used.
        def per_request(session: Any, _config: Any, _local: Any, **kwargs: Any) -> Any:
            for adapter in session.adapters.values():
                adapter.max_retries = policy
            kwargs["timeout"] = timeout
            return kwargs

        client.config.session_configuration_callback = per_request
        return client

    def _client(self, kind: str) -> Any:
        if kind not in self._clients:
            factory = self._connection.clients_v7_1
            with self._translated("connecting"):
                made = {
                    "pipelines": factory.get_pipelines_client,
                    "build": factory.get_build_client,
                    "environments": factory.get_task_agent_client,
                    "checks": factory.get_pipelines_checks_client,
                }[kind]()
            self._clients[kind] = self._configured(made)
        return self._clients[kind]

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        from azure.devops.exceptions import AzureDevOpsServiceError
        from msrest.exceptions import AuthenticationError, ClientException

        try:
            yield
        except AuthenticationError as exc:
            raise ConfigError(
                f"Azure DevOps at {self.org_url} refused the personal access token ({what})",
                hint=f"check {PAT_VARIABLE} and its scopes (see the README)",
            ) from exc
        except AzureDevOpsServiceError as exc:
            raise PipelineError(
                f"Azure DevOps could not {what}: {exc.message}",
                hint="see the run or the setting in Azure DevOps",
            ) from exc
        except (ClientException, ValueError) as exc:
            raise PipelineError(
                f"Azure DevOps could not {what}: {_first_line(exc)}",
                hint=f"check that {self.org_url} is reachable; Shipyard retried "
                f"{self.settings.max_retries} times",
            ) from exc

    def _request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        """A project-scoped REST call through the SDK's Client (for APIs the SDK lacks)."""
        from msrest.universal_http import ClientRequest

        url = f"{self.org_url}/{quote(self.project)}/_apis/{path}"
        request = ClientRequest(method=method, url=url)
        params = {"api-version": API_VERSION}
        params.update({k: quote(v, safe=",") for k, v in (query or {}).items()})
        request.format_parameters(params)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "X-TFS-FedAuthRedirect": "Suppress",
        }
        response = self._raw._send_request(
            request, headers=headers, content=body, media_type="application/json"
        )
        return response.json() if response.content else None

    def _checks(
        self, method: str, route: Mapping[str, str], query: Any = None, body: Any = None
    ) -> Any:
        """Check configurations via the SDK's `_send`: its models drop `settings`, so raw JSON."""
        client = self._client("checks")
        response = client._send(
            http_method=method,
            location_id=CHECKS_LOCATION,
            version=API_VERSION,
            route_values={"project": quote(self.project), **route},
            query_parameters={k: quote(str(v)) for k, v in (query or {}).items()},
            content=body,
        )
        return response.json() if response.content else None

    # --- runs -----------------------------------------------------------------------------
