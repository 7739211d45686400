"""A fake Azure Load Testing data plane on 127.0.0.1 (HTTPS), as azure-developer-loadtesting
1.x speaks it (api-version 2022-11-01).

Tests: PATCH tests/{id} (merge-patch, 201 new / 200 updated), GET tests/{id}. Files: PUT
tests/{id}/files/{name}?fileType=… (201, JMX_FILE → VALIDATION_INITIATED then, on a later GET,
VALIDATION_SUCCESS or VALIDATION_FAILURE; other types NOT_VALIDATED), GET the file. Test runs:
PATCH test-runs/{id} (201, ACCEPTED) → EXECUTING → DONE (or FAILED with errorDetails) as time
passes, GET test-runs/{id} with testArtifacts.outputArtifacts.resultFileInfo.url pointing to a
CSV JTL it serves without authentication (as a SAS link), POST test-runs/{id}:stop. Injected
429/5xx answers with Retry-After; every request is recorded.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.arm import _certificate
from tests.fakes.server import Injected, serve, shut, take_injected

API_VERSION = "2022-11-01"
JTL_HEADER = (
    "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,"
    "failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect"
)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    at: float
    status: int = 0


@dataclass
class Run:
    run_id: str
    test_id: str
    body: dict[str, Any]
    started: float
    failure: str | None = None
    stopped: bool = False
    polled: list[str] = field(default_factory=list)


def jtl(labels: dict[str, int], *, start_ms: int = 1_700_000_000_000) -> str:
    """A CSV JTL with `count` samples per label, 10..(10+count) ms, one failure per label."""
    lines = [JTL_HEADER]
    at = start_ms
    for label, count in labels.items():
        for i in range(count):
            ok = "false" if i == count - 1 else "true"
            code = "500" if ok == "false" else "200"
            lines.append(
                f"{at},{10 + i},{label},{code},OK,Thread Group 1-1,text,{ok},,512,128,1,1,"
                f"https://app.example/{label},{5 + i},0,1"
            )
            at += 100
    return "\n".join(lines) + "\n"


class FakeLoadTesting:
    """Start with `with FakeLoadTesting() as alt:`; the engine's endpoint is `alt.endpoint`
    (host:port, the SDK adds https://), trust `alt.ca_file`."""

    def __init__(
        self,
        *,
        validation_seconds: float = 0.1,
        run_seconds: float = 0.4,
        labels: dict[str, int] | None = None,
    ) -> None:
        self.validation_seconds = validation_seconds
        self.run_seconds = run_seconds
        self.labels = labels or {"Home": 30, "Login": 20}
        self.lock = threading.RLock()
        self.tests: dict[str, dict[str, Any]] = {}
        self.files: dict[tuple[str, str], dict[str, Any]] = {}
        self.contents: dict[tuple[str, str], bytes] = {}
        self.runs: dict[str, Run] = {}
        self.requests: list[Seen] = []
        self.violations: list[str] = []
        self.injected: list[Injected] = []
        self.failing_runs: str | None = None
        self.rejected_file: str | None = None
        self._not_before: dict[str, float] = {}
        folder = Path(tempfile.mkdtemp(prefix="fake-loadtesting-"))
        self.ca_file, self._key_file = _certificate(folder)
        self.server: ThreadingHTTPServer | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeLoadTesting:
        fake = self

        class Handler(_Handler):
            alt = fake

        self.server, _ = serve(Handler, certificate=(self.ca_file, self._key_file))
        return self

    def stop(self) -> None:
        shut(self.server)

    def __enter__(self) -> FakeLoadTesting:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"https://{self.endpoint}"

    # --- test controls and observations -----------------------------------------------------

    def inject(
        self, method: str, pattern: str, status: int, *, times: int = 1, retry_after: int | None = 1
    ) -> None:
        """Answer the next `times` requests matching METHOD and regex `pattern` with `status`."""
        with self.lock:
            self.injected.append(Injected(method, pattern, status, times, retry_after))

    def fail_runs(self, message: str) -> None:
        """Every later test run ends FAILED with this error message."""
        self.failing_runs = message

    def reject_file(self, message: str) -> None:
        """Every later JMX upload ends VALIDATION_FAILURE with this message."""
        self.rejected_file = message

    def seen(self, method: str, pattern: str = "") -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    # --- the protocol -----------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, body: bytes, content_type: str
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        now = time.monotonic()
        with self.lock:
            seen = Seen(method, path, query, now)
            self.requests.append(seen)
            key = f"{method} {path}"
            if now + 0.005 < self._not_before.get(key, 0.0):
                self.violations.append(f"{key} sent before its Retry-After")
            injected = take_injected(self.injected, method, path)
            if injected is not None:
                if injected.retry_after is not None:
                    self._not_before[key] = now + injected.retry_after
                seen.status = injected.status
                return injected.status, injected.headers(), _error("TooManyRequests", "injected")
            if query.get("api-version") != [API_VERSION]:
                seen.status = 400
                return 400, {}, _error("InvalidApiVersion", f"api-version {query}")
            status, answer = self._route(method, path, query, body, content_type, now)
            seen.status = status
            return status, {}, answer

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: bytes,
        content_type: str,
        now: float,
    ) -> tuple[int, Any]:
        match = re.fullmatch(r"/tests/([a-z0-9_-]{2,50})", path)
        if match:
            return self._test(method, match.group(1), body, content_type)
        match = re.fullmatch(r"/tests/([a-z0-9_-]{2,50})/files/([^/]+)", path)
        if match:
            return self._file(method, match.group(1), match.group(2), query, body, now)
        match = re.fullmatch(r"/test-runs/([a-z0-9_-]{2,50})(:stop)?", path)
        if match:
            return self._run(method, match.group(1), bool(match.group(2)), body, content_type, now)
        return 404, _error("NotFound", path)

    def _test(self, method: str, test: str, body: bytes, content_type: str) -> tuple[int, Any]:
        if method == "GET":
            found = self.tests.get(test)
            return (200, found) if found else (404, _error("TestNotFound", test))
        if method != "PATCH":
            return 405, _error("MethodNotAllowed", method)
        if content_type != "application/merge-patch+json":
            return 415, _error("UnsupportedMediaType", content_type)
        patch = json.loads(body or b"{}")
        problem = _criteria_problem(patch.get("passFailCriteria"))
        if problem:
            return 400, _error("InvalidPassFailCriteria", problem)
        created = test not in self.tests
        current = self.tests.setdefault(test, {"testId": test})
        current.update(patch)
        return (201 if created else 200), current

    def _file(
        self,
        method: str,
        test: str,
        name: str,
        query: dict[str, list[str]],
        body: bytes,
        now: float,
    ) -> tuple[int, Any]:
        if test not in self.tests:
            return 404, _error("TestNotFound", test)
        key = (test, name)
        if method == "PUT":
            kind = (query.get("fileType") or ["ADDITIONAL_ARTIFACTS"])[0]
            validating = kind == "JMX_FILE"
            self.contents[key] = body
            self.files[key] = {
                "url": f"{self.url}/_blobs/{test}/{name}",
                "fileName": name,
                "fileType": kind,
                "expireDateTime": "2030-01-01T00:00:00Z",
                "validationStatus": "VALIDATION_INITIATED" if validating else "NOT_VALIDATED",
                "_ready": now + self.validation_seconds if validating else now,
                "_rejected": self.rejected_file if validating else None,
            }
            return 201, _visible(self.files[key])
        if method == "GET":
            file = self.files.get(key)
            if file is None:
                return 404, _error("FileNotFound", name)
            if file["validationStatus"] == "VALIDATION_INITIATED" and now >= file["_ready"]:
                if file["_rejected"]:
                    file["validationStatus"] = "VALIDATION_FAILURE"
                    file["validationFailureDetails"] = file["_rejected"]
                else:
                    file["validationStatus"] = "VALIDATION_SUCCESS"
            return 200, _visible(file)
        return 405, _error("MethodNotAllowed", method)

    def _run(
        self, method: str, run_id: str, stop: bool, body: bytes, content_type: str, now: float
    ) -> tuple[int, Any]:
        if method == "PATCH" and not stop:
            if content_type != "application/merge-patch+json":
                return 415, _error("UnsupportedMediaType", content_type)
            data = json.loads(body or b"{}")
            test = data.get("testId")
            if test not in self.tests:
                return 400, _error("TestNotFound", f"test {test} does not exist")
            if run_id in self.runs:
                return 409, _error("TestRunExists", run_id)
            self.runs[run_id] = Run(run_id, test, data, now, self.failing_runs)
            return 201, self._describe(self.runs[run_id], now)
        run = self.runs.get(run_id)
        if run is None:
            return 404, _error("TestRunNotFound", run_id)
        if method == "POST" and stop:
            run.stopped = True
            return 200, self._describe(run, now)
        if method == "GET":
            return 200, self._describe(run, now)
        return 405, _error("MethodNotAllowed", method)

    def status(self, run: Run, now: float) -> str:
        elapsed = now - run.started
        if run.stopped:
            return "CANCELLED"
        if elapsed < self.run_seconds / 4:
            return "ACCEPTED"
        if elapsed < self.run_seconds:
            return "EXECUTING"
        return "FAILED" if run.failure else "DONE"

    def _describe(self, run: Run, now: float) -> dict[str, Any]:
        status = self.status(run, now)
        run.polled.append(status)
        described: dict[str, Any] = {
            "testRunId": run.run_id,
            "testId": run.test_id,
            "displayName": run.body.get("displayName", run.run_id),
            "status": status,
            "loadTestConfiguration": self.tests[run.test_id].get("loadTestConfiguration"),
            "portalUrl": f"https://portal.example/testruns/{run.run_id}",
            "testArtifacts": {"inputArtifacts": {}, "outputArtifacts": {}},
        }
        if status == "FAILED":
            described["errorDetails"] = [{"message": run.failure}]
            described["testResult"] = "FAILED"
        if status == "DONE":
            described["testResult"] = "PASSED"
            described["testArtifacts"]["outputArtifacts"]["resultFileInfo"] = {
                "url": f"{self.url}/_results/{run.run_id}.csv?sig=fake",
                "fileName": f"{run.run_id}.csv",
                "fileType": "ADDITIONAL_ARTIFACTS",
                "expireDateTime": "2030-01-01T00:00:00Z",
            }
        return described

    def result_file(self, path: str) -> bytes | None:
        match = re.fullmatch(r"/_results/([a-z0-9_-]+)\.csv", path)
        if not match or match.group(1) not in self.runs:
            return None
        return jtl(self.labels).encode()


def _visible(file: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in file.items() if not k.startswith("_")}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    alt: FakeLoadTesting

    def setup(self) -> None:
        self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, headers: dict[str, str], payload: bytes, kind: str) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if payload:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        if path.startswith("/_results/") and self.command == "GET":
            # A SAS link: no bearer token, and none expected.
            data = self.alt.result_file(path)
            if data is None:
                self._send(404, {}, b"BlobNotFound", "text/plain")
            else:
                self._send(200, {}, data, "text/csv")
            return
        headers: dict[str, str]
        if not (self.headers.get("Authorization") or "").startswith("Bearer "):
            status, headers, answer = 401, {}, _error("AuthenticationFailed", "no bearer token")
        else:
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            status, headers, answer = self.alt.handle(self.command, self.path, raw, content_type)
        payload = b"" if answer is None else json.dumps(answer).encode()
        self._send(status, headers, payload, "application/json; charset=utf-8")

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve


# What the service accepts in passFailCriteria.passFailMetrics (its REST reference).
CLIENT_METRICS = {"response_time_ms", "latency", "error", "requests", "requests_per_sec"}
AGGREGATES = {"count", "percentage", "avg", "p50", "p75", "p90", "p95", "p96", "p97", "p98"}
AGGREGATES |= {"p99", "p999", "p9999", "min", "max"}


def _criteria_problem(criteria: Any) -> str:
    if criteria is None:
        return ""
    metrics = criteria.get("passFailMetrics") if isinstance(criteria, dict) else None
    if not isinstance(metrics, dict):
        return "passFailMetrics must be an object"
    for key, metric in metrics.items():
        if not isinstance(metric, dict):
            return f"{key}: not an object"
        if metric.get("clientMetric") not in CLIENT_METRICS:
            return f"{key}: unknown clientMetric {metric.get('clientMetric')!r}"
        if metric.get("aggregate") not in AGGREGATES:
            return f"{key}: unknown aggregate {metric.get('aggregate')!r}"
        if metric.get("condition") not in (">", "<"):
            return f"{key}: condition must be > or <"
        if not isinstance(metric.get("value"), int | float):
            return f"{key}: value must be a number"
        if metric.get("action", "continue") not in ("continue", "stop"):
            return f"{key}: action must be continue or stop"
    return ""
