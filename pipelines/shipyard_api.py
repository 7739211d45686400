"""The pipeline steps' client of Shipyard's `/api/v1`: SHIPYARD_URL and a pipeline token.

Speaks the same calls as the record (`environments.pipeline_steps.PipelineSteps`), so each
step is written once. Refusals come back as the core's errors with the server's reason and
hint (401 NotAuthenticated, 403 PolicyRefused, 404 NotFound, 409 Conflict, 400 InvalidInput);
a server that does not answer, or answers 5xx, is Unreachable. Both writes are idempotent (a
deployment is known by its run URL, a release by its build run), so every call may be retried.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from pydantic import TypeAdapter
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from environments.errors import (
    ConfigError,
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PolicyRefused,
    ShipyardError,
    Unreachable,
    clip,
)
from environments.pipeline_deployments import Recorded
from environments.pipeline_loadtests import LoadTestRequest, LoadTestRun
from environments.pipeline_steps import (
    DeploymentReport,
    ReleaseReport,
    Rendered,
    StateAnswer,
)
from environments.release_builds import Registered

__all__ = ["TOKEN_VARIABLE", "URL_VARIABLE", "ShipyardApi", "configured"]

URL_VARIABLE = "SHIPYARD_URL"
TOKEN_VARIABLE = "SHIPYARD_TOKEN"
PREFIX = "/api/v1"
REFUSALS: dict[int, type[ShipyardError]] = {
    400: InvalidInput,
    401: NotAuthenticated,
    403: PolicyRefused,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
}


def configured(environ: Mapping[str, str] | None = None) -> bool:
    """Do the steps talk to Shipyard's API (SHIPYARD_URL set) rather than to the record?"""
    return bool((os.environ if environ is None else environ).get(URL_VARIABLE, "").strip())


class ShipyardApi:
    """One Shipyard server, one token; every request has a timeout and bounded retries."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0, retries: int = 3) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            status_forcelist=(502, 503, 504),
            allowed_methods=None,  # the writes are idempotent too
            backoff_factor=0.5,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ShipyardApi:
        source = os.environ if environ is None else environ
        url = source.get(URL_VARIABLE, "").strip()
        token = source.get(TOKEN_VARIABLE, "").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"{URL_VARIABLE} '{clip(url)}' is not an http(s) URL",
                hint=f"set {URL_VARIABLE} to Shipyard's address, e.g. https://shipyard.example.com",
            )
        if not token:
            raise ConfigError(
                f"{TOKEN_VARIABLE} is not set",
                hint="put a pipeline token ('shipyard tokens create --scope pipeline --type TYPE')"
                f" in the variable group beside {URL_VARIABLE}, as a secret",
            )
        return cls(url, token)

    # --- the calls of PipelineSteps ---------------------------------------------------------

    def parameters(self, name: str, *, format: str, release: str | None) -> Rendered:
        query = {"format": format, **({"release": release} if release else {})}
        answer = self._call("GET", f"/environments/{_segment(name)}/parameters", params=query)
        return TypeAdapter(Rendered).validate_python(answer)

    def state(self, name: str) -> StateAnswer:
        answer = self._call("GET", f"/environments/{_segment(name)}/state")
        return TypeAdapter(StateAnswer).validate_python(answer)

    def record(self, environment: str, report: DeploymentReport) -> Recorded:
        body = TypeAdapter(DeploymentReport).dump_python(report, mode="json")
        answer = self._call("POST", f"/environments/{_segment(environment)}/deployments", body)
        return TypeAdapter(Recorded).validate_python(answer)

    def register(self, report: ReleaseReport) -> Registered:
        body = TypeAdapter(ReleaseReport).dump_python(report, mode="json")
        return TypeAdapter(Registered).validate_python(self._call("POST", "/releases", body))

    def start_loadtest(self, environment: str, request: LoadTestRequest) -> LoadTestRun:
        body = TypeAdapter(LoadTestRequest).dump_python(request, mode="json")
        answer = self._call("POST", f"/environments/{_segment(environment)}/loadtests", body)
        return TypeAdapter(LoadTestRun).validate_python(answer)

    def loadtest_run(self, run_id: int) -> LoadTestRun:
        return TypeAdapter(LoadTestRun).validate_python(self._call("GET", f"/loadtests/{run_id}"))

    # --- plumbing ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        what = f"Shipyard at {self.url}"
        try:
            response = self.session.request(
                method,
                self.url + PREFIX + path,
                params=params,
                json=body,
                timeout=(5.0, self.timeout),
            )
        except requests.RequestException as exc:
            raise Unreachable(
                f"{what} did not answer ({_cause(exc)})",
                hint=f"check {URL_VARIABLE}, and that 'shipyard serve' runs and this agent can "
                "reach it (firewall, proxy, DNS)",
            ) from None
        if response.status_code >= 500:
            raise Unreachable(
                f"{what} answered {response.status_code}",
                hint="see the Shipyard server's log; the step may be run again",
            )
        problem = _problem(response)
        if response.ok and problem is None:
            try:
                return response.json()
            except ValueError:
                pass
        if problem is None:
            raise Unreachable(
                f"{what} answered {response.status_code} without Shipyard's JSON",
                hint=f"is {URL_VARIABLE} Shipyard's base URL (without /api/v1)?",
            )
        refusal = REFUSALS.get(response.status_code, ShipyardError)
        raise refusal(problem[0], hint=problem[1])


def _segment(name: str) -> str:
    return quote(name, safe="")


def _problem(response: requests.Response) -> tuple[str, str] | None:
    """The server's {error, hint}, if it sent one."""
    if response.ok:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"], str(body.get("hint") or "")
    return None


def _cause(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or host unknown"
    return type(exc).__name__
