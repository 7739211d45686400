"""The azure-load-testing engine: a JMeter plan run by Azure Load Testing, reported like JMeter's.

The only module that imports azure-developer-loadtesting. Steps: create or update the test (its
id derived from the plan's name and the environment type, one engine instance, the plan's
criteria as its passFailCriteria), upload the plan (JMX_FILE) and a
user.properties (USER_PROPERTIES) carrying protocol/host/port/threads/rampup/duration, which the
plan reads via ${__P(…)} as it does under the jmeter engine; wait for validation; start a test
run and wait for it; download the result file from the run's output artifacts (a CSV JTL, or a
zip holding one) into the run's folder and read it with `read_result` + `aggregate`.

The SDK's API version (2022-11-01) knows only JMeter plans, so a Locust file is refused. Every
call has a timeout; every failure is a ProviderError with a one-line reason.
"""

from __future__ import annotations

import io
import os
import re
import time
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.polling import LROPoller
from azure.developer.loadtesting import LoadTestAdministrationClient, LoadTestRunClient

from environments.errors import InvalidInput, ProviderError, ShipyardError
from environments.loadtests.aggregate import aggregate
from environments.loadtests.criteria import parse_criterion
from environments.loadtests.engine import EngineRun, Load, Progress
from environments.loadtests.readers import read_result
from environments.providers.azure_credentials import credential_from_environment

ENDPOINT_VARIABLE = "SHIPYARD_LOAD_TESTING_ENDPOINT"
VALIDATED = {"VALIDATION_SUCCESS", "NOT_VALIDATED", "VALIDATION_NOT_REQUIRED"}
_HINT_ENDPOINT = (
    f"set {ENDPOINT_VARIABLE} to the Load Testing resource's data-plane endpoint "
    "(…cnt-….loadtest.azure.com)"
)


def load_test_id(plan: Path, name: str = "") -> str:
    """The Load Testing test id: lower-case [a-z0-9_-], 2 to 50 characters, from `name` (the
    plan's name and the environment type: one test each) or else the plan file's name."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", (name or plan.stem).lower()).strip("-_")
    slug = f"shipyard-{slug}" if slug else "shipyard-plan"
    return slug[:50].rstrip("-_")


def pass_fail_criteria(criteria: tuple[str, ...]) -> dict[str, Any]:
    """Azure Load Testing's passFailCriteria for the plan's criteria (the same syntax)."""
    metrics = {}
    for text in criteria:
        c = parse_criterion(text)
        metric: dict[str, Any] = {
            "clientMetric": c.metric,
            "aggregate": c.function,
            "condition": c.operator,
            "value": c.threshold,
            "action": "continue",
        }
        if c.request is not None:
            metric["requestName"] = c.request
        metrics[str(uuid.uuid5(uuid.NAMESPACE_URL, f"shipyard:{text}"))] = metric
    return {"passFailMetrics": metrics}


def _run_id(test: str) -> str:
    return f"{test[:37].rstrip('-_')}-{uuid.uuid4().hex[:12]}"


def _properties(endpoint: str, load: Load) -> str:
    url = urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    ramp = max(1, int(load.users / max(load.spawn_rate, 0.001)))
    return "".join(
        f"{key}={value}\n"
        for key, value in (
            ("protocol", url.scheme or "http"),
            ("host", url.hostname or ""),
            ("port", port),
            ("threads", load.users),
            ("rampup", ramp),
            ("duration", max(1, int(load.duration.total_seconds()))),
        )
    )


class AzureLoadTestingEngine:
    """Runs a .jmx plan in Azure Load Testing; `client_options` go to both SDK clients
    (e.g. connection_verify for a test's fake); `poll_interval` is between status reads."""

    name = "azure-load-testing"

    def __init__(
        self,
        endpoint: str | None = None,
        credential: TokenCredential | None = None,
        *,
        poll_interval: float = 5.0,
        request_timeout: float = 30.0,
        validation_timeout: float = 600.0,
        run_grace: float = 900.0,
        max_retries: int = 5,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.endpoint = endpoint or os.environ.get(ENDPOINT_VARIABLE, "")
        self._credential = credential
        self.poll_interval = poll_interval
        self.request_timeout = request_timeout
        self.validation_timeout = validation_timeout
        self.run_grace = run_grace
        self.max_retries = max_retries
        self._options = dict(client_options or {})

    # --- the Engine protocol ----------------------------------------------------------------

    def command(self, plan: Path, endpoint: str, load: Load, folder: Path) -> list[str]:
        """No local process runs; this describes what `run` does, for logs and dry runs."""
        return ["azure-load-testing", self._host(), load_test_id(plan), str(plan), endpoint]

    def run(
        self,
        plan: Path,
        endpoint: str,
        load: Load,
        folder: Path,
        progress: Progress | None = None,
        *,
        name: str = "",
        criteria: tuple[str, ...] = (),
    ) -> EngineRun:
        if plan.suffix.lower() != ".jmx":
            raise InvalidInput(
                f"{plan}: azure-load-testing runs JMeter plans (.jmx) only",
                hint="use a .jmx plan, or the locust engine for a locustfile",
            )
        if not plan.is_file():
            raise InvalidInput(f"{plan}: no such plan file", hint="check the plan's path")
        admin, runs = self._clients()
        test = load_test_id(plan, name)
        try:
            with self._calling(f"creating test {test}"):
                admin.create_or_update_test(
                    test,
                    {
                        "displayName": f"Shipyard {plan.stem}"[:50],
                        "description": f"Shipyard load test of {plan.name}",
                        "loadTestConfiguration": {"engineInstances": 1},
                        # The plan's criteria on the test itself: the portal shows the same
                        # verdict Shipyard computes from the results.
                        "passFailCriteria": pass_fail_criteria(criteria),
                        "environmentVariables": {
                            "SHIPYARD_ENDPOINT": endpoint,
                            "SHIPYARD_USERS": str(load.users),
                            "SHIPYARD_DURATION": str(max(1, int(load.duration.total_seconds()))),
                        },
                    },
                    timeout=self.request_timeout,
                )
            self._upload(admin, test, plan.name, plan.read_bytes(), "JMX_FILE")
            self._upload(
                admin,
                test,
                "user.properties",
                _properties(endpoint, load).encode(),
                "USER_PROPERTIES",
            )
            run_id = _run_id(test)
            result = self._test_run(runs, test, run_id, plan, load)
            return self._results(result, run_id, folder)
        finally:
            admin.close()
            runs.close()

    # --- steps ------------------------------------------------------------------------------

    def _upload(
        self, admin: LoadTestAdministrationClient, test: str, name: str, body: bytes, kind: str
    ) -> None:
        what = f"uploading {name} to test {test}"
        with self._calling(what):
            poller = cast(
                "LROPoller[Any]",
                admin.begin_upload_test_file(
                    test,
                    name,
                    io.BytesIO(body),
                    file_type=kind,
                    timeout=self.request_timeout,
                    _polling_interval=self.poll_interval,
                ),
            )
            file = self._wait(poller, self.validation_timeout, f"validation of {name}")
        status = str((file or {}).get("validationStatus") or "")
        if status not in VALIDATED:
            details = (file or {}).get("validationFailureDetails") or status or "no status"
            raise ProviderError(
                f"Azure Load Testing rejected {name} of test {test}: {_one_line(details)}",
                hint="fix the plan (it runs under JMeter in Azure) and run again",
            )

    def _test_run(
        self, runs: LoadTestRunClient, test: str, run_id: str, plan: Path, load: Load
    ) -> dict[str, Any]:
        budget = load.duration.total_seconds() + self.run_grace
        with self._calling(f"running test run {run_id}"):
            poller = cast(
                "LROPoller[Any]",
                runs.begin_test_run(
                    run_id,
                    {"testId": test, "displayName": f"{plan.stem} {run_id[-12:]}"[:50]},
                    timeout=self.request_timeout,
                    _polling_interval=self.poll_interval,
                ),
            )
            try:
                result = self._wait(poller, budget, f"test run {run_id}")
            except ProviderError:
                self._stop(runs, run_id)
                raise
        status = str(result.get("status") or "")
        if status != "DONE":
            errors = [
                _one_line(str(e.get("message") or e)) for e in result.get("errorDetails") or [] if e
            ]
            reason = "; ".join(errors) or str(result.get("testResult") or "no error details")
            raise ProviderError(
                f"Azure Load Testing test run {run_id} of test {test} ended {status}: {reason}",
                hint=str(result.get("portalUrl") or "see the run in the Azure portal"),
            )
        return result

    def _results(self, run: Mapping[str, Any], run_id: str, folder: Path) -> EngineRun:
        outputs = (run.get("testArtifacts") or {}).get("outputArtifacts") or {}
        info = outputs.get("resultFileInfo") or {}
        url = info.get("url")
        if not url:
            raise ProviderError(
                f"Azure Load Testing test run {run_id} has no result file",
                hint="see the run in the Azure portal",
            )
        verify = self._options.get("connection_verify", True)
        try:
            response = requests.get(url, timeout=self.request_timeout, verify=verify)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise ProviderError(
                f"cannot download the results of test run {run_id}: "
                f"{_one_line(str(exc) or type(exc).__name__)}",
                hint="the link expires after a while; run the test again",
            ) from exc
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "results.jtl"
        content = response.content
        if content[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = [n for n in archive.namelist() if n.lower().endswith((".csv", ".jtl"))]
                if not names:
                    raise ProviderError(
                        f"the results of test run {run_id} hold no CSV",
                        hint="see the run in the Azure portal",
                    )
                content = archive.read(sorted(names)[0])
        target.write_bytes(content)
        return EngineRun(aggregate(read_result(target)), target, None, target)

    # --- plumbing ---------------------------------------------------------------------------

    def _host(self) -> str:
        # The SDK prefixes https:// itself; accept the endpoint with or without it.
        return re.sub(r"^https?://", "", self.endpoint.strip()).rstrip("/")

    def _clients(self) -> tuple[LoadTestAdministrationClient, LoadTestRunClient]:
        host = self._host()
        if not host:
            raise InvalidInput("no Azure Load Testing endpoint is configured", hint=_HINT_ENDPOINT)
        credential = self._credential or credential_from_environment()
        options: dict[str, Any] = {
            "retry_total": self.max_retries,
            "retry_backoff_factor": 0.8,
            "retry_backoff_max": 60,
            "connection_timeout": self.request_timeout,
            "read_timeout": self.request_timeout,
            **self._options,
        }
        return (
            LoadTestAdministrationClient(host, credential, **options),
            LoadTestRunClient(host, credential, **options),
        )

    def _wait(self, poller: LROPoller[Any], budget: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + budget
        while not poller.done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProviderError(
                    f"{what} did not finish within {budget:.0f}s in Azure Load Testing",
                    hint="see the run in the Azure portal; it was asked to stop",
                )
            poller.wait(min(left, 1.0))
        result = poller.result(0)
        return dict(result or {})

    def _stop(self, runs: LoadTestRunClient, run_id: str) -> None:
        with suppress(AzureError):
            runs.stop_test_run(run_id, timeout=self.request_timeout)

    @contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        try:
            yield
        except ShipyardError:
            raise
        except ClientAuthenticationError as exc:
            raise ProviderError(
                f"Azure Load Testing refused the credential while {what}: {_message(exc)}",
                hint="sign in (az login, a managed identity, or SHIPYARD_AZURE_STATIC_TOKEN) "
                "with the Load Test Contributor role",
            ) from exc
        except HttpResponseError as exc:
            raise ProviderError(
                f"Azure Load Testing answered {exc.status_code} while {what}: {_message(exc)}",
                hint=f"see the message; 429 and 5xx were already retried {self.max_retries} "
                "time(s)",
            ) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise ProviderError(
                f"cannot reach Azure Load Testing at {self._host()} while {what}: "
                f"{_one_line(str(exc.message))}",
                hint=f"check {ENDPOINT_VARIABLE} and the network, then retry",
            ) from exc
        except AzureError as exc:
            raise ProviderError(
                f"Azure Load Testing failed while {what}: {_one_line(str(exc.message))}",
                hint="retry",
            ) from exc


def _message(exc: AzureError) -> str:
    error = getattr(exc, "error", None)
    code, message = getattr(error, "code", None), getattr(error, "message", None)
    if message:
        return _one_line(f"{code}: {message}" if code else str(message))
    return _one_line(str(exc.message or exc))


def _one_line(text: Any) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""
