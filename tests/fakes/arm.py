"""A fake Azure Resource Manager on 127.0.0.1 (HTTPS), speaking ARM's wire protocol.

Shaped after the recorded exchange in Azure/azure-sdk-for-python (azure-mgmt-resource recordings,
arm_deployments_basic.yaml): resource groups (PUT/GET/HEAD/list with a tag filter/DELETE with
`Location` polling), deployments (PUT → 201 + `Azure-AsyncOperation`, polled `Running` →
`Succeeded`/`Failed` with nested error details; GET with outputs; operations list), what-if
(POST …/whatIf → 202 + `Location` → result) at resource-group and subscription scope, and
injected 429/5xx answers. It records every request and every request sent before a
`Retry-After` it gave had passed (a violation).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.server import Injected, serve, shut, take_injected

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
SLACK = 0.005  # seconds of clock slack before an early request counts as a violation


@dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    at: float
    status: int = 0


@dataclass
class Deployment:
    group: str
    name: str
    body: dict[str, Any]
    started: float
    seconds: float
    failure: tuple[str, str, str, str] | None = None
    operation: str = field(default_factory=lambda: uuid.uuid4().hex)

    def state(self, now: float) -> str:
        if now < self.started + self.seconds:
            return "Running"
        return "Failed" if self.failure else "Succeeded"


@dataclass
class Pending:
    """A Location-polled job: a group deletion or a what-if."""

    ready_at: float
    result: dict[str, Any] | None
    on_done: Any = None


def _certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-arm.localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "fake-arm.pem", folder / "fake-arm.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class FakeArm:
    """Start with `with FakeArm() as arm:`; point clients at `arm.url`, trust `arm.ca_file`."""

    def __init__(
        self,
        *,
        deployment_seconds: float = 0.5,
        delete_seconds: float = 0.5,
        retry_after: int = 1,
        subscription: str = SUBSCRIPTION,
    ) -> None:
        self.deployment_seconds = deployment_seconds
        self.delete_seconds = delete_seconds
        self.retry_after = retry_after
        self.subscription = subscription
        self.lock = threading.RLock()
        self.groups: dict[str, dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], Deployment] = {}
        self.pending: dict[str, Pending] = {}
        self.requests: list[Seen] = []
        self.violations: list[str] = []
        self.injected: list[Injected] = []
        self.failing: dict[str, tuple[str, str, str, str]] = {}
        self.output_values: dict[str, Any] = {}
        self._not_before: dict[str, float] = {}
        self._folder = Path(tempfile.mkdtemp(prefix="fake-arm-"))
        self.ca_file, key_file = _certificate(self._folder)
        self._key_file = key_file
        self.server: ThreadingHTTPServer | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeArm:
        fake = self

        class Handler(_Handler):
            arm = fake

        self.server, _ = serve(Handler, certificate=(self.ca_file, self._key_file))
        return self

    def stop(self) -> None:
        shut(self.server)

    def __enter__(self) -> FakeArm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    # --- test controls and observations -----------------------------------------------------

    def inject(
        self, method: str, pattern: str, status: int, *, times: int = 1, retry_after: int | None = 1
    ) -> None:
        """Answer the next `times` requests matching METHOD and regex `pattern` with `status`."""
        with self.lock:
            self.injected.append(Injected(method, pattern, status, times, retry_after))

    def fail_deployments_in(
        self, group: str, resource_type: str, resource_name: str, code: str, message: str
    ) -> None:
        self.failing[group.lower()] = (resource_type, resource_name, code, message)

    def add_group(self, name: str, tags: dict[str, str], location: str = "westeurope") -> None:
        with self.lock:
            self.groups[name.lower()] = self._group(name, location, tags)

    def seen(self, method: str, pattern: str = "") -> list[Seen]:
        with self.lock:
            return [
                r for r in self.requests if r.method == method and re.search(pattern, r.path, re.I)
            ]

    def deployment_puts(self) -> list[Seen]:
        return [
            r
            for r in self.seen("PUT", r"/deployments/[^/]+$")
            if r.status in (200, 201) and "/providers/microsoft.resources/" in r.path.lower()
        ]

    def for_group(self, group: str) -> list[Seen]:
        with self.lock:
            return [
                r for r in self.requests if f"/resourcegroups/{group.lower()}" in r.path.lower()
            ]

    def observed(self) -> dict[str, Any]:
        """What a fake in another process saw, for a benchmark to count (GET /_fake/observed)."""
        with self.lock:
            return {
                "requests": [[r.method, r.path, r.status, r.at] for r in self.requests],
                "violations": list(self.violations),
            }

    # --- the protocol -----------------------------------------------------------------------

    def _group(self, name: str, location: str, tags: dict[str, str]) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{self.subscription}/resourceGroups/{name}",
            "name": name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location,
            "tags": tags,
            "properties": {"provisioningState": "Succeeded"},
            "resources": {},
        }

    def handle(self, method: str, raw_path: str, body: Any) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        now = time.monotonic()
        with self.lock:
            seen = Seen(method, path, query, body, now)
            self.requests.append(seen)
            key = f"{method} {path.lower()}"
            if now + SLACK < self._not_before.get(key, 0.0):
                self.violations.append(
                    f"{key} sent {self._not_before[key] - now:.3f}s before its Retry-After"
                )
            injected = take_injected(self.injected, method, path, flags=re.I)
            if injected is not None:
                if injected.retry_after is not None:
                    self._not_before[key] = now + injected.retry_after
                code = "TooManyRequests" if injected.status == 429 else "InternalServerError"
                seen.status = injected.status
                return (
                    injected.status,
                    injected.headers(),
                    _error(code, f"injected {injected.status}"),
                )
            status, headers, answer = self._route(method, path, query, body, now)
            seen.status = status
            if "Retry-After" in headers:
                poll = headers.get("Azure-AsyncOperation") or headers.get("Location") or raw_path
                poll_path = unquote(urlsplit(poll).path).lower()
                self._not_before[f"GET {poll_path}"] = now + int(headers["Retry-After"])
            return status, headers, answer

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, now: float
    ) -> tuple[int, dict[str, str], Any]:
        sub = f"/subscriptions/{self.subscription}"
        if not path.lower().startswith(sub.lower()):
            return 404, {}, _error("SubscriptionNotFound", f"no subscription in {path}")
        rest = path[len(sub) :]
        low = rest.lower()
        if low == "/resourcegroups" and method == "GET":
            return self._list_groups(query)
        if low.startswith("/operationresults/") and method == "GET":
            return self._poll_pending(rest.split("/")[2], now)
        match = re.fullmatch(r"/providers/microsoft\.resources/deployments/([^/]+)/whatif", low)
        if match and method == "POST":
            return self._what_if(None, body, now)
        match = re.fullmatch(r"/resourcegroups/([^/]+)(.*)", rest, re.I)
        if not match:
            return 404, {}, _error("NotFound", path)
        group, tail = match.group(1), match.group(2)
        if tail == "":
            return self._group_verb(method, group, body, now)
        if group.lower() not in self.groups:
            return (
                404,
                {},
                _error("ResourceGroupNotFound", f"Resource group '{group}' could not be found."),
            )
        if method == "GET" and re.fullmatch(
            r"(?:/providers/microsoft\.resources)?/deployments/?", tail, re.I
        ):
            return self._list_deployments(group, query, now)
        deployment = re.fullmatch(
            r"(?:/providers/microsoft\.resources)?/deployments/([^/]+)(/.*)?", tail, re.I
        )
        if not deployment:
            return 404, {}, _error("NotFound", path)
        name, sub_path = deployment.group(1), (deployment.group(2) or "")
        return self._deployment_verb(method, group, name, sub_path, body, now)

    # resource groups

    def _group_verb(
        self, method: str, name: str, body: Any, now: float
    ) -> tuple[int, dict[str, str], Any]:
        key = name.lower()
        found = self.groups.get(key)
        if method == "PUT":
            created = found is None
            group = found or self._group(name, body.get("location", ""), {})
            group["tags"] = dict(body.get("tags") or {})
            self.groups[key] = group
            return (201 if created else 200), {}, _public(group)
        if found is None:
            message = f"Resource group '{name}' could not be found."
            return 404, {}, (None if method == "HEAD" else _error("ResourceGroupNotFound", message))
        if method == "HEAD":
            return 204, {}, None
        if method == "GET":
            return 200, {}, _public(found)
        if method == "DELETE":
            token = uuid.uuid4().hex
            found["properties"]["provisioningState"] = "Deleting"

            def gone() -> None:
                self.groups.pop(key, None)
                for k in [k for k in self.deployments if k[0] == key]:
                    del self.deployments[k]

            self.pending[token] = Pending(now + self.delete_seconds, None, gone)
            return 202, self._location(token, first=True), None
        return 405, {}, _error("MethodNotAllowed", method)

    def _list_groups(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        wanted = None
        for text in query.get("$filter", []):
            match = re.fullmatch(r"tagName eq '([^']+)'", text.strip())
            if not match:
                return 400, {}, _error("InvalidFilter", text)
            wanted = match.group(1)
        groups = [
            _public(g)
            for g in self.groups.values()
            if wanted is None or wanted in (g.get("tags") or {})
        ]
        return 200, {}, {"value": groups}

    def _location(self, token: str, *, first: bool = False) -> dict[str, str]:
        location = {
            "Location": f"{self.url}/subscriptions/{self.subscription}/operationresults/{token}"
            "?api-version=2025-04-01"
        }
        # As recorded: the first 202 has no Retry-After; later 202s ask the client to wait.
        return location if first else {**location, "Retry-After": str(self.retry_after)}

    def _poll_pending(self, token: str, now: float) -> tuple[int, dict[str, str], Any]:
        job = self.pending.get(token)
        if job is None:
            return 404, {}, _error("NotFound", token)
        if now < job.ready_at:
            return 202, self._location(token), None
        if job.on_done is not None:
            job.on_done()
            job.on_done = None
        return 200, {}, job.result

    # deployments

    def _list_deployments(
        self, group: str, query: dict[str, list[str]], now: float
    ) -> tuple[int, dict[str, str], Any]:
        found = [d for (g, _), d in self.deployments.items() if g == group.lower()]
        found.sort(key=lambda d: d.started, reverse=True)
        if "$top" in query:
            found = found[: int(query["$top"][0])]
        return 200, {}, {"value": [self._deployment_json(d, now) for d in found]}

    def _deployment_verb(
        self, method: str, group: str, name: str, sub_path: str, body: Any, now: float
    ) -> tuple[int, dict[str, str], Any]:
        key = (group.lower(), name.lower())
        found = self.deployments.get(key)
        low = sub_path.lower()
        if low == "" and method == "PUT":
            if found is not None and found.state(now) == "Running":
                return 409, {}, _error("DeploymentActive", f"deployment '{name}' is running")
            found = Deployment(
                group=group,
                name=name,
                body=body,
                started=now,
                seconds=self.deployment_seconds,
                failure=self.failing.get(group.lower()),
            )
            self.deployments[key] = found
            status_url = (
                f"{self.url}/subscriptions/{self.subscription}/resourcegroups/{group}/providers/"
                f"Microsoft.Resources/deployments/{name}/operationStatuses/{found.operation}"
                "?api-version=2026-06-01"
            )
            # As recorded: no Retry-After on the 201 (azure-core polls once at once regardless).
            headers = {"Azure-AsyncOperation": status_url}
            return 201, headers, self._deployment_json(found, now, accepted=True)
        if low == "/whatif" and method == "POST":
            return self._what_if(group, body, now)
        if found is None:
            message = f"Deployment '{name}' could not be found."
            return 404, {}, _error("DeploymentNotFound", message)
        if low == "" and method == "GET":
            return 200, {}, self._deployment_json(found, now)
        if low.startswith("/operationstatuses/") and method == "GET":
            state = found.state(now)
            if state == "Running":
                return 200, {"Retry-After": str(self.retry_after)}, {"status": "Running"}
            if state == "Failed":
                return 200, {}, {"status": "Failed", "error": self._deployment_error(found)}
            self._complete(found)
            return 200, {}, {"status": "Succeeded"}
        if low == "/operations" and method == "GET":
            return 200, {}, {"value": self._operations(found, now)}
        return 405, {}, _error("MethodNotAllowed", f"{method} {sub_path}")

    def _resources(self, deployment: Deployment) -> list[tuple[str, str]]:
        properties = deployment.body.get("properties", {})
        return _resource_names(properties.get("template", {}), properties.get("parameters", {}))

    def _deployment_json(self, d: Deployment, now: float, *, accepted: bool = False) -> Any:
        state = "Accepted" if accepted else d.state(now)
        properties = d.body.get("properties", {})
        shown = {
            k: ({"type": "SecureString"} if "reference" in v else {"type": "String", **v})
            for k, v in (properties.get("parameters") or {}).items()
        }
        answer: dict[str, Any] = {
            "id": f"/subscriptions/{self.subscription}/resourceGroups/{d.group}/providers/"
            f"Microsoft.Resources/deployments/{d.name}",
            "name": d.name,
            "type": "Microsoft.Resources/deployments",
            "properties": {
                "provisioningState": state,
                "mode": properties.get("mode", "Incremental"),
                "parameters": shown,
                "timestamp": dt.datetime.now(dt.UTC).isoformat(),
                "correlationId": d.operation,
            },
        }
        if state == "Succeeded":
            self._complete(d)
            answer["properties"]["outputs"] = self._outputs(d)
        if state == "Failed":
            answer["properties"]["error"] = self._deployment_error(d)
        return answer

    def _complete(self, d: Deployment) -> None:
        group = self.groups.get(d.group.lower())
        if group is not None:
            for kind, name in self._resources(d):
                group["resources"][f"{kind}/{name}"] = {"type": kind, "name": name}

    def _outputs(self, d: Deployment) -> dict[str, Any]:
        properties = d.body.get("properties", {})
        declared = properties.get("template", {}).get("outputs", {}) or {}
        given = properties.get("parameters") or {}
        outputs = {}
        for key, spec in declared.items():
            kind = str(spec.get("type", "string"))
            value = self.output_values.get(key)
            if value is None:
                declared_parameters = properties.get("template", {}).get("parameters", {})
                value = _evaluate(str(spec.get("value", "")), given, declared_parameters)
                if kind.lower() == "object" and not isinstance(value, dict):
                    value = {"fake": key}
            outputs[key] = {"type": kind.capitalize(), "value": value}
        return outputs

    def _deployment_error(self, d: Deployment) -> dict[str, Any]:
        assert d.failure is not None
        kind, name, code, message = d.failure
        return {
            "code": "DeploymentFailed",
            "message": "At least one resource deployment operation failed. Please list deployment "
            "operations for details. Please see https://aka.ms/arm-deployment-operations for usage "
            "details.",
            "details": [
                {
                    "code": "Conflict",
                    "message": json.dumps({"error": {"code": code, "message": message}}),
                    "details": [{"code": code, "message": message, "target": f"{kind}/{name}"}],
                }
            ],
        }

    def _operations(self, d: Deployment, now: float) -> list[dict[str, Any]]:
        operations = []
        for index, (kind, name) in enumerate(self._resources(d)):
            failed = d.failure is not None and (kind, name) == d.failure[:2]
            state = d.state(now)
            properties: dict[str, Any] = {
                "provisioningOperation": "Create",
                "provisioningState": "Failed"
                if failed
                else ("Running" if state == "Running" else "Succeeded"),
                "targetResource": {
                    "id": f"/subscriptions/{self.subscription}/resourceGroups/{d.group}/providers/"
                    f"{kind}/{name}",
                    "resourceType": kind,
                    "resourceName": name,
                },
            }
            if failed and d.failure is not None:
                properties["statusCode"] = "Conflict"
                properties["statusMessage"] = {
                    "status": "Failed",
                    "error": {
                        "code": "Conflict",
                        "message": "The resource operation failed.",
                        "details": [{"code": d.failure[2], "message": d.failure[3]}],
                    },
                }
            operations.append(
                {
                    "id": f"{d.name}/operations/{index:016X}",
                    "operationId": f"{index:016X}",
                    "properties": properties,
                }
            )
        return operations

    # what-if

    def _what_if(self, group: str | None, body: Any, now: float) -> tuple[int, dict[str, str], Any]:
        properties = body.get("properties", {})
        changes: list[dict[str, Any]] = []
        if group is None:
            for resource in properties.get("template", {}).get("resources", []):
                if resource.get("type", "").lower() == "microsoft.resources/resourcegroups":
                    exists = resource["name"].lower() in self.groups
                    changes.append(self._change(resource["name"], None, "", "", exists))
                elif resource.get("type", "").lower() == "microsoft.resources/deployments":
                    inner = resource.get("properties", {})
                    for kind, name in _resource_names(
                        inner.get("template", {}), inner.get("parameters", {})
                    ):
                        changes.append(
                            self._change(resource["resourceGroup"], None, kind, name, False)
                        )
        else:
            existing = self.groups[group.lower()]["resources"]
            for kind, name in _resource_names(
                properties.get("template", {}), properties.get("parameters", {})
            ):
                changes.append(
                    self._change(group, existing, kind, name, f"{kind}/{name}" in existing)
                )
        token = uuid.uuid4().hex
        self.pending[token] = Pending(
            now, {"status": "Succeeded", "properties": {"changes": changes}}
        )
        return 202, self._location(token, first=True), None

    def _change(
        self, group: str, existing: Any, kind: str, name: str, exists: bool
    ) -> dict[str, Any]:
        base = f"/subscriptions/{self.subscription}/resourceGroups/{group}"
        resource_id = f"{base}/providers/{kind}/{name}" if kind else base
        if not exists:
            return {
                "resourceId": resource_id,
                "changeType": "Create",
                "after": {"name": name or group},
            }
        return {
            "resourceId": resource_id,
            "changeType": "Modify",
            "delta": [
                {
                    "path": "tags",
                    "propertyChangeType": "Modify",
                    "children": [
                        {
                            "path": "release",
                            "propertyChangeType": "Modify",
                            "before": "old",
                            "after": "new",
                        }
                    ],
                }
            ],
        }


def _public(group: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in group.items() if k != "resources"}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _evaluate(
    expression: str, parameters: dict[str, Any], declared: dict[str, Any] | None = None
) -> Any:
    """The tiny part of ARM's expression language the fake needs: [parameters('x')]."""
    match = re.fullmatch(r"\[parameters\('([^']+)'\)\]", expression.strip())
    if not match:
        return expression
    entry = parameters.get(match.group(1))
    if entry is None:
        return (declared or {}).get(match.group(1), {}).get("defaultValue")
    return entry.get("value", "<keyvault reference>") if isinstance(entry, dict) else entry


def _resource_names(template: dict[str, Any], parameters: dict[str, Any]) -> list[tuple[str, str]]:
    variables = template.get("variables", {}) or {}
    names = []
    for resource in template.get("resources", []) or []:
        name = _evaluate(str(resource.get("name", "")), parameters, template.get("parameters"))
        match = re.fullmatch(r"\[variables\('([^']+)'\)\]", str(name))
        if match and isinstance(variables.get(match.group(1)), str):
            name = variables[match.group(1)]
        names.append((str(resource.get("type", "")), str(name)))
    return names


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    arm: FakeArm

    def setup(self) -> None:
        self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        if self.path == "/_fake/observed":
            status, headers, answer = 200, {}, self.arm.observed()
        elif not (self.headers.get("Authorization") or "").startswith("Bearer "):
            status, headers, answer = 401, {}, _error("AuthenticationFailed", "no bearer token")
        else:
            status, headers, answer = self.arm.handle(self.command, self.path, body)
        payload = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if payload:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(payload)))
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _serve


def main() -> None:
    """Serve a fake ARM in its own process until standard input closes (for benchmarks)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="a fake Azure Resource Manager on 127.0.0.1")
    parser.add_argument("--deployment-seconds", type=float, default=2.0)
    parser.add_argument("--retry-after", type=int, default=1)
    args = parser.parse_args()
    with FakeArm(deployment_seconds=args.deployment_seconds, retry_after=args.retry_after) as arm:
        print(json.dumps({"url": arm.url, "ca_file": str(arm.ca_file)}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
