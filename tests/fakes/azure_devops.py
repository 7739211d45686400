"""A fake Azure DevOps organization on 127.0.0.1, speaking the REST wire protocol the SDK uses.

Shaped after the Azure DevOps REST specs and recorded examples (MicrosoftDocs/vsts-rest-api-specs):
route discovery
(`OPTIONS {org}/_apis`, `GET {org}/_apis/ResourceAreas` → an empty list, so every client uses the
organization URL), pipeline runs (POST run with template parameters, GET run, list runs, logs),
the build timeline of a run (stages, checkpoints, approvals, tasks with logs) and log lines,
environments, check configurations (settings only with `$expand=settings`, as the service does)
and the approvals API (GET query, GET one, PATCH a list). Every request needs a known PAT as basic
auth and an api-version (Accept header or query); 429/5xx answers can be injected, and a request
that comes before a `Retry-After` the fake gave has passed is recorded as a violation. Importing
this module points the SDK's on-disk cache (AZURE_DEVOPS_CACHE_DIR) at a temporary folder.

As strict as the service: a PAT *is* one identity (`tokens`), which requests a run it starts
and acts on every approval it updates; an update is accepted only from an identity among the
approval's approvers, never from a blocked one (the run's requester when the check says the
requester may not approve); a run request may name only the pipeline resources its pipeline
declares and is recorded as sent (branch, pipeline resource versions, template parameters), and
a run without a branch runs the default branch, as the service does.

A run walks through one stage per environment (`shipyard_deploy_<env>`, hyphens as underscores):
a stage whose Azure DevOps environment has an approval check waits for the approval (created
from the check: approvers, minimum, requester blocked, timeout) and is rejected with it; a stage
listed in `failing` fails its deploy task with an error in the log; `step_seconds` of wall time
pass between stages so a follower sees `inProgress` first.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.server import Injected, serve, shut, take_injected
from tests.reference import REFERENCE

# The SDK caches route discovery on disk, in the folder this names when it is first imported.
os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", tempfile.mkdtemp(prefix="shipyard-ado-cache-"))

ORGANIZATION = "fabrikam"
PROJECT = "Shipyard"
PROJECT_ID = "d6b3e0ea-8197-4dec-831b-50e2e06ff95f"
DEFAULT_PAT = "fake-pat-0123456789"
APPROVAL_CHECK = {"id": "8c6f20a7-a545-4486-9777-f762fafe0d4d", "name": "Approval"}
EXCLUSIVE_LOCK_CHECK = {"id": "2ef31ad6-baa0-403a-8b45-2cbc9b4e5563", "name": "ExclusiveLock"}
CHECK_TYPES = {APPROVAL_CHECK["id"], EXCLUSIVE_LOCK_CHECK["id"]}
# The identity behind the PAT: Shipyard's service account.
SERVICE = {
    "displayName": "Shipyard",
    "id": "5b3bbba8-3c8a-4b4a-9f3b-1f6c3a1d0001",
    "uniqueName": "shipyard@fabrikam.example",
    "descriptor": "aad.c2hpcHlhcmQ",
}
HOOK_SAMPLES = REFERENCE / "azure-devops/service-hook-events"
SLACK = 0.01  # seconds of clock slack before an early request counts as a violation

# (location id, area, resource, route template, resource version) — what OPTIONS {org}/_apis lists.
_P = "{project}/_apis/"
LOCATIONS = (
    (
        "e81700f7-3be2-46de-8624-2eb35882fcaa",
        "Location",
        "ResourceAreas",
        "_apis/{resource}/{areaId}",
        1,
    ),
    (
        "28e1305e-2afe-47bf-abaf-cbb0e6a91988",
        "pipelines",
        "pipelines",
        _P + "pipelines/{pipelineId}",
        1,
    ),
    (
        "7859261e-d2e9-4a68-b820-a5d84cc5bb3d",
        "pipelines",
        "runs",
        _P + "pipelines/{pipelineId}/runs/{runId}",
        1,
    ),
    (
        "fb1b6d27-3957-43d5-a14b-a2d70403e545",
        "pipelines",
        "logs",
        _P + "pipelines/{pipelineId}/runs/{runId}/logs/{logId}",
        1,
    ),
    (
        "8572b1fc-2482-47fa-8f74-7e3ed53ee54b",
        "environments",
        "environments",
        _P + "pipelines/environments/{environmentId}",
        1,
    ),
    (
        "f5b09dd5-9d54-45a1-8b5a-1c8287d634cc",
        "distributedtask",
        "variablegroups",
        _P + "distributedtask/variablegroups/{groupId}",
        2,
    ),
    (
        "86c8381e-5aee-4cde-8ae4-25c0c7f5eaea",
        "PipelinesChecks",
        "configurations",
        _P + "pipelines/checks/configurations/{id}",
        1,
    ),
    (
        "0cd358e1-9217-4d94-8269-1c1ee6f93dcf",
        "build",
        "Builds",
        _P + "build/builds/{buildId}",
        7,
    ),
    (
        "8baac422-4c6e-4de5-8532-db96d92acffa",
        "build",
        "Timeline",
        _P + "build/builds/{buildId}/Timeline/{timelineId}",
        2,
    ),
    (
        "35a80daf-7f30-45fc-86e8-6b813d9c90df",
        "build",
        "logs",
        _P + "build/builds/{buildId}/logs/{logId}",
        2,
    ),
)


def stage_name(environment: str) -> str:
    return "shipyard_deploy_" + environment.replace("-", "_")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Seen:
    """One request the fake received (header names lower-case)."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]
    at: float
    status: int = 0
    identity: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stage:
    environment: str
    name: str
    record_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    checkpoint_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: str = "pending"  # pending, inProgress, completed
    result: str | None = None
    approval_id: str | None = None
    due: float = 0.0
    log_ids: dict[str, int] = field(default_factory=dict)


@dataclass
class Run:
    id: int
    pipeline_id: int
    parameters: dict[str, str]
    stages: list[Stage]
    created: str
    state: str = "inProgress"
    result: str | None = None
    finished: str | None = None
    requester: dict[str, Any] = field(default_factory=lambda: dict(SERVICE))
    ref_name: str = "refs/heads/main"
    pipeline_resources: dict[str, str] = field(default_factory=dict)


class FakeAzureDevOps:
    """One organization with one project, answered from memory.

    Point the SDK at ``fake.org_url`` with ``BasicAuthentication("", fake.pat)``. Register
    pipelines with ``add_pipeline``; a pipeline with ``environments`` deploys to each in order,
    one without deploys to its run's ``environment`` template parameter.
    """

    def __init__(self, pat: str = DEFAULT_PAT, *, step_seconds: float = 0.05) -> None:
        self.pat = pat
        # Each PAT belongs to one identity: the one every request made with it acts as.
        self.tokens: dict[str, dict[str, Any]] = {pat: dict(SERVICE)}
        self.step_seconds = step_seconds
        self.pipelines: dict[int, dict[str, Any]] = {}
        self.runs: dict[int, Run] = {}
        self.environments: dict[int, dict[str, Any]] = {}
        self.checks: dict[int, dict[str, Any]] = {}
        self.variable_groups: dict[int, dict[str, Any]] = {}
        self.approvals: dict[str, dict[str, Any]] = {}
        self.logs: dict[int, list[str]] = {}
        # Completed runs of the build pipeline: run id → run name (build number).
        self.builds: dict[int, str] = {}
        self.failing: set[str] = set()
        self.seen: list[Seen] = []
        self.violations: list[Seen] = []
        self._injected: list[Injected] = []
        self._retry_not_before: dict[str, float] = {}
        self._ids = {"run": 100, "env": 0, "check": 0, "log": 0, "group": 0}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # The project as the README sets it up: the templates' variable group is in the Library.
        self.add_variable_group(
            "shipyard",
            {"SHIPYARD_URL": ("https://shipyard.example", False), "SHIPYARD_TOKEN": ("x", True)},
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeAzureDevOps:
        self._server, self._thread = serve(_Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        shut(server, thread)

    def __enter__(self) -> FakeAzureDevOps:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def org_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ORGANIZATION}"

    # -- arranging -----------------------------------------------------------------------------

    def add_pipeline(
        self,
        pipeline_id: int,
        name: str,
        *,
        environments: tuple[str, ...] = (),
        resources: tuple[str, ...] = ("build",),
    ) -> None:
        """A pipeline; `resources` are the aliases of the pipeline resources its YAML declares."""
        with self._lock:
            self.pipelines[pipeline_id] = {
                "name": name,
                "environments": environments,
                "resources": resources,
            }

    def add_build(self, run_id: int, number: str) -> None:
        """A completed run of the build pipeline (the resource a deploy run may consume)."""
        with self._lock:
            self.builds[run_id] = number

    def add_token(self, pat: str, identity: dict[str, Any]) -> None:
        """Another PAT, belonging to another identity (a person's own token, say)."""
        with self._lock:
            self.tokens[pat] = dict(identity)

    def time_out(self, approval_id: str) -> None:
        """Let an approval's check time run out (the service marks it timedOut)."""
        with self._lock:
            approval = self.approvals[approval_id]
            approval["status"] = "timedOut"
            for step in approval["steps"]:
                if step["status"] == "pending":
                    step["status"] = "timedOut"
            approval["lastModifiedOn"] = _now()

    def inject(
        self,
        method: str,
        pattern: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `times` requests whose path matches `pattern` with `status`."""
        with self._lock:
            self._injected.append(Injected(method.upper(), pattern, status, times, retry_after))

    def add_variable_group(self, name: str, variables: dict[str, tuple[str, bool]]) -> None:
        """A variable group of the project's Library: name → (value, is it secret)."""
        with self._lock:
            self._ids["group"] += 1
            self.variable_groups[self._ids["group"]] = {
                "id": self._ids["group"],
                "name": name,
                "type": "Vsts",
                "variables": {k: {"value": v, "isSecret": secret} for k, (v, secret) in
                              variables.items()},
            }  # fmt: skip

    def add_environment(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self._add_environment({"name": name, "description": ""})

    def web_url(self, run_id: int) -> str:
        return f"{self.org_url}/{PROJECT_ID}/_build/results?buildId={run_id}"

    # -- inspecting ----------------------------------------------------------------------------

    def requests(self, method: str | None = None, pattern: str = "") -> list[Seen]:
        with self._lock:
            return [
                s
                for s in self.seen
                if (method is None or s.method == method.upper()) and re.search(pattern, s.path)
            ]

    def environment_named(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            return next((e for e in self.environments.values() if e["name"] == name), None)

    def checks_on(self, name: str) -> list[dict[str, Any]]:
        env = self.environment_named(name)
        if env is None:
            return []
        with self._lock:
            return [
                c
                for c in self.checks.values()
                if c["resource"]["type"] == "environment" and c["resource"]["id"] == str(env["id"])
            ]

    def run(self, run_id: int) -> Run:
        with self._lock:
            self._progress(self.runs[run_id])
            return self.runs[run_id]

    def pending_approvals(self) -> list[dict[str, Any]]:
        with self._lock:
            for run in self.runs.values():
                self._progress(run)
            return [a for a in self.approvals.values() if a["status"] == "pending"]

    def wait_for_approval(self, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = self.pending_approvals()
            if pending:
                return pending[0]
            time.sleep(0.02)
        raise AssertionError("no approval became pending")

    def wait_all_approvals(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait (wall time) until `count` approvals exist, whatever their state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pending_approvals()
            with self._lock:
                if len(self.approvals) >= count:
                    return list(self.approvals.values())
            time.sleep(0.02)
        raise AssertionError(f"fewer than {count} approvals")

    def finish_run(self, run_id: int, timeout: float = 5.0) -> Run:
        """Wait (wall time) until the run completes on its own."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run.state == "completed":
                return run
            time.sleep(0.02)
        raise AssertionError(f"run {run_id} did not complete")

    # -- service-hook events -------------------------------------------------------------------

    def _sample(self, event_type: str) -> dict[str, Any]:
        path = HOOK_SAMPLES / f"{event_type}.json"
        sample: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))
        sample["id"] = str(uuid.uuid4())
        sample["createdDate"] = _now()
        sample["resourceContainers"]["project"]["id"] = PROJECT_ID
        return sample

    def _pipeline_ref(self, run: Run) -> dict[str, Any]:
        return {
            "url": f"{self.org_url}/{PROJECT_ID}/_apis/Pipelines/{run.pipeline_id}?revision=1",
            "id": run.pipeline_id,
            "revision": 1,
            "name": self.pipelines[run.pipeline_id]["name"],
            "folder": "\\",
        }

    def run_state_changed_event(self, run_id: int) -> dict[str, Any]:
        """The run-state-changed sample, filled in with this run as it is now."""
        run = self.run(run_id)
        event = self._sample("ms.vss-pipelines.run-state-changed-event")
        body = self._run_json(run)
        body.pop("templateParameters", None)  # the event does not carry them
        event["resource"]["run"] = body
        event["resource"]["pipeline"] = self._pipeline_ref(run)
        event["message"]["text"] = f"Run {run.id} {run.result or run.state}."
        return event

    def stage_state_changed_event(self, run_id: int, environment: str) -> dict[str, Any]:
        run = self.run(run_id)
        stage = next(s for s in run.stages if s.environment == environment)
        event = self._sample("ms.vss-pipelines.stage-state-changed-event")
        event["resource"]["stage"].update(
            {
                "id": stage.record_id,
                "name": stage.name,
                "displayName": f"Deploy {environment}",
                "state": stage.state,
                "result": stage.result,
            }
        )
        body = self._run_json(run)
        body.pop("templateParameters", None)
        event["resource"]["run"] = body
        event["resource"]["pipeline"] = self._pipeline_ref(run)
        return event

    def approval_event(self, approval_id: str, *, completed: bool = False) -> dict[str, Any]:
        kind = "approval-completed" if completed else "approval-pending"
        with self._lock:
            approval = json.loads(json.dumps(self.approvals[approval_id]))
        run = self.run(approval["_run"])
        stage = next(s for s in run.stages if s.approval_id == approval_id)
        event = self._sample(f"ms.vss-pipelinechecks-events.{kind}")
        event["resource"].update(
            {
                "approval": self._approval_json(approval, steps=True),
                "projectId": PROJECT_ID,
                "pipeline": self._pipeline_ref(run),
                "run": {"id": run.id, "name": str(run.id)},
                "stage": {"id": stage.record_id, "name": stage.name},
                "id": run.id,
                "url": self.web_url(run.id),
                "stageName": stage.name,
                "attemptId": 1,
            }
        )
        return event

    # -- behaviour -----------------------------------------------------------------------------

    def _add_environment(self, body: dict[str, Any]) -> dict[str, Any]:
        self._ids["env"] += 1
        env = {
            "id": self._ids["env"],
            "name": body["name"],
            "description": body.get("description", ""),
            "createdBy": SERVICE,
            "createdOn": _now(),
            "lastModifiedBy": SERVICE,
            "lastModifiedOn": _now(),
            "project": {"id": PROJECT_ID, "name": PROJECT},
            "resources": [],
        }
        self.environments[env["id"]] = env
        return env

    def _run_request_error(self, pipeline_id: int, body: dict[str, Any]) -> str | None:
        """What the service would refuse in a run request (None: nothing)."""
        resources = body.get("resources") or {}
        declared = self.pipelines[pipeline_id]["resources"]
        for alias, wanted in (resources.get("pipelines") or {}).items():
            if alias not in declared:
                return f"Pipeline resource {alias} is not defined in the pipeline."
            version = str((wanted or {}).get("version") or "")
            if version not in self.builds.values():
                # The service resolves the version by run name (build number), not run id.
                return f"Unable to resolve version '{version}' of pipeline resource {alias}."
        for alias, wanted in (resources.get("repositories") or {}).items():
            ref = str((wanted or {}).get("refName") or "")
            if alias != "self" or (ref and not ref.startswith("refs/")):
                return f"Repository resource {alias}: {ref or 'no ref'} is not a valid ref."
        return None

    def _create_run(
        self, pipeline_id: int, body: dict[str, Any], requester: dict[str, Any] = SERVICE
    ) -> Run:
        pipeline = self.pipelines[pipeline_id]
        parameters = {k: str(v) for k, v in (body.get("templateParameters") or {}).items()}
        resources = body.get("resources") or {}
        ref = ((resources.get("repositories") or {}).get("self") or {}).get("refName")
        targets = pipeline["environments"] or (
            (parameters["environment"],) if parameters.get("environment") else ()
        )
        self._ids["run"] += 1
        run = Run(
            id=self._ids["run"],
            pipeline_id=pipeline_id,
            parameters=parameters,
            stages=[Stage(environment=e, name=stage_name(e)) for e in targets],
            created=_now(),
            requester=dict(requester),
            ref_name=ref or "refs/heads/main",
            pipeline_resources={
                alias: str(wanted["version"])
                for alias, wanted in (resources.get("pipelines") or {}).items()
            },
        )
        if run.stages:
            run.stages[0].due = time.monotonic() + self.step_seconds
        self.runs[run.id] = run
        return run

    def _approval_check_for(self, environment: str) -> dict[str, Any] | None:
        for check in self.checks_on(f"shipyard-{environment}"):
            if check["type"]["id"] == APPROVAL_CHECK["id"]:
                return check
        return None

    def _progress(self, run: Run) -> None:
        """Move a run along by wall time: stages start, wait for approvals, finish."""
        now = time.monotonic()
        for index, stage in enumerate(run.stages):
            if stage.state == "completed":
                continue
            if stage.due > now or (stage.due == 0 and index > 0):
                return
            if stage.state == "pending":
                stage.state = "inProgress"
                check = self._approval_check_for(stage.environment)
                if check is not None:
                    stage.approval_id = self._open_approval(run, check)
            if stage.approval_id is not None:
                status = self.approvals[stage.approval_id]["status"]
                if status == "pending":
                    return
                if status != "approved":
                    self._end_stage(run, index, "failed", rejected=True)
                    return
            self._end_stage(
                run, index, "failed" if stage.environment in self.failing else "succeeded"
            )
            if stage.result == "failed":
                return

    def _end_stage(self, run: Run, index: int, result: str, *, rejected: bool = False) -> None:
        stage = run.stages[index]
        stage.state, stage.result = "completed", result
        if not rejected:
            for task in ("Render parameters", "Deploy to Service Fabric", "Record deployment"):
                self._ids["log"] += 1
                stage.log_ids[task] = self._ids["log"]
                lines = [f"##[section]Starting: {task}", f"environment {stage.environment}"]
                if result == "failed" and task == "Deploy to Service Fabric":
                    lines += [
                        "Copying application package to the image store",
                        "##[error]Upgrade failed: service GameService is unhealthy "
                        "(HealthCheckRetryTimeout exceeded)",
                    ]
                self.logs[stage.log_ids[task]] = [*lines, f"##[section]Finishing: {task}"]
        following = run.stages[index + 1 :]
        if result == "succeeded" and following:
            following[0].due = time.monotonic() + self.step_seconds
            return
        for later in following:
            later.state, later.result = "completed", "skipped"
        run.state, run.result, run.finished = "completed", result, _now()

    def _open_approval(self, run: Run, check: dict[str, Any]) -> str:
        settings = check["settings"]
        approval_id = str(uuid.uuid4())
        blocked = list(settings.get("blockedApprovers", []))
        if settings.get("requesterCannotBeApprover"):
            blocked.append(run.requester)
        self.approvals[approval_id] = {
            "id": approval_id,
            "steps": [
                {
                    "assignedApprover": dict(approver),
                    "status": "pending",
                    "comment": None,
                    "initiatedOn": _now(),
                    "order": 1,
                    "history": [],
                }
                for approver in settings.get("approvers", [])
            ],
            "status": "pending",
            "createdOn": _now(),
            "lastModifiedOn": _now(),
            "executionOrder": settings.get("executionOrder", "anyOrder"),
            "minRequiredApprovers": settings.get("minRequiredApprovers", 0),
            "instructions": settings.get("instructions", ""),
            "blockedApprovers": blocked,
            "_run": run.id,
        }
        return approval_id

    def _update_approval(self, change: dict[str, Any], actor: dict[str, Any]) -> tuple[int, Any]:
        """The token's identity decides one step of its own; nobody acts for someone else."""
        approval = self.approvals.get(change.get("approvalId", ""))
        if approval is None:
            return 404, _error(f"approval {change.get('approvalId')} not found")
        if approval["status"] != "pending":
            return 400, _error(f"approval {approval['id']} is already {approval['status']}")
        status = change.get("status")
        if status not in ("approved", "rejected"):
            return 400, _error(f"status {status!r} cannot be set on an approval")
        actor_id = str(actor["id"]).lower()
        if any(str(b.get("id", "")).lower() == actor_id for b in approval["blockedApprovers"]):
            return 403, _error(
                f"{actor['displayName']} requested this run and cannot approve it "
                "(the check does not let the requester approve)"
            )
        step = next(
            (
                s
                for s in approval["steps"]
                if s["status"] == "pending"
                and str(s["assignedApprover"].get("id", "")).lower() == actor_id
            ),
            None,
        )
        if step is None:
            return 403, _error(
                f"{actor['displayName']} is not an approver of approval {approval['id']}"
            )
        step.update(
            {
                "status": status,
                "comment": change.get("comment", ""),
                "actualApprover": dict(actor),
                "lastModifiedBy": dict(actor),
                "lastModifiedOn": _now(),
            }
        )
        approved = sum(1 for s in approval["steps"] if s["status"] == "approved")
        needed = approval["minRequiredApprovers"] or len(approval["steps"])
        if status == "rejected":
            approval["status"] = "rejected"
        elif approved >= needed:
            approval["status"] = "approved"
        approval["lastModifiedOn"] = _now()
        return 200, None

    # -- JSON shapes ---------------------------------------------------------------------------

    def _run_json(self, run: Run) -> dict[str, Any]:
        base = f"{self.org_url}/{PROJECT_ID}/_apis/Pipelines/{run.pipeline_id}"
        body: dict[str, Any] = {
            "_links": {
                "self": {"href": f"{base}/runs/{run.id}"},
                "web": {"href": self.web_url(run.id)},
                "pipeline.web": {
                    "href": f"{self.org_url}/{PROJECT_ID}/_build/definition?definitionId="
                    f"{run.pipeline_id}"
                },
                "pipeline": {"href": f"{base}?revision=1"},
            },
            "templateParameters": dict(run.parameters),
            "pipeline": self._pipeline_ref(run),
            "state": run.state,
            "createdDate": run.created,
            "url": f"{base}/runs/{run.id}",
            "resources": {
                "repositories": {
                    "self": {
                        "repository": {
                            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "game")),
                            "type": "azureReposGit",
                        },
                        "refName": run.ref_name,
                        "version": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
                    }
                },
                "pipelines": {
                    alias: {
                        "pipeline": {"id": run.pipeline_id + 1000, "name": alias},
                        "version": version,
                    }
                    for alias, version in run.pipeline_resources.items()
                },
            },
            "id": run.id,
            "name": f"{run.id}",
        }
        if run.result:
            body["result"] = run.result
        if run.finished:
            body["finishedDate"] = run.finished
        return body

    def _build_json(self, build_id: int) -> dict[str, Any]:
        return {
            "id": build_id,
            "buildNumber": self.builds[build_id],
            "status": "completed",
            "result": "succeeded",
            "definition": {"id": 3, "name": "game-build", "type": "build"},
            "project": {"id": PROJECT_ID, "name": PROJECT},
            "url": f"{self.org_url}/{PROJECT_ID}/_apis/build/Builds/{build_id}",
            "_links": {"web": {"href": self.web_url(build_id)}},
        }

    def _timeline_json(self, run: Run) -> dict[str, Any]:
        records: list[dict[str, Any]] = []
        for order, stage in enumerate(run.stages, start=1):
            records.append(
                {
                    "id": stage.record_id,
                    "parentId": None,
                    "type": "Stage",
                    "name": f"Deploy {stage.environment}",
                    "identifier": stage.name,
                    "state": stage.state,
                    "result": stage.result,
                    "order": order,
                    "log": None,
                }
            )
            if stage.approval_id is not None:
                approval = self.approvals[stage.approval_id]
                done = approval["status"] != "pending"
                records.append(
                    {
                        "id": stage.checkpoint_id,
                        "parentId": stage.record_id,
                        "type": "Checkpoint",
                        "name": "Checkpoint",
                        "identifier": f"Checkpoint.{stage.name}",
                        "state": "completed" if done else "inProgress",
                        "result": ("succeeded" if approval["status"] == "approved" else "failed")
                        if done
                        else None,
                    }
                )
                records.append(
                    {
                        "id": stage.approval_id,
                        "parentId": stage.checkpoint_id,
                        "type": "Checkpoint.Approval",
                        "name": "Checkpoint.Approval",
                        "identifier": stage.approval_id,
                        "state": "completed" if done else "inProgress",
                        "result": ("succeeded" if approval["status"] == "approved" else "failed")
                        if done
                        else None,
                    }
                )
            if stage.log_ids:
                records.append(
                    {
                        "id": stage.job_id,
                        "parentId": stage.record_id,
                        "type": "Job",
                        "name": "Deploy",
                        "state": "completed",
                        "result": stage.result,
                    }
                )
                for task, log_id in stage.log_ids.items():
                    failed = stage.result == "failed" and task == "Deploy to Service Fabric"
                    records.append(
                        {
                            "id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{run.id}/{log_id}")),
                            "parentId": stage.job_id,
                            "type": "Task",
                            "name": task,
                            "state": "completed",
                            "result": "failed" if failed else "succeeded",
                            "errorCount": 1 if failed else 0,
                            "log": {
                                "id": log_id,
                                "type": "Container",
                                "url": f"{self.org_url}/{PROJECT_ID}/_apis/build/builds/"
                                f"{run.id}/logs/{log_id}",
                            },
                        }
                    )
        return {
            "records": records,
            "lastChangedBy": SERVICE["id"],
            "lastChangedOn": _now(),
            "id": str(uuid.uuid5(uuid.NAMESPACE_OID, str(run.id))),
            "changeId": len(records),
            "url": f"{self.org_url}/{PROJECT_ID}/_apis/build/builds/{run.id}/Timeline",
        }

    def _approval_json(self, approval: dict[str, Any], *, steps: bool) -> dict[str, Any]:
        body = {k: v for k, v in approval.items() if not k.startswith("_")}
        run = self.runs[approval["_run"]]
        body["steps"] = body["steps"] if steps else []
        body["pipeline"] = {
            "owner": {
                "_links": {"web": {"href": self.web_url(run.id)}},
                "id": run.id,
                "name": str(run.id),
            },
            "id": str(run.pipeline_id),
            "name": self.pipelines[run.pipeline_id]["name"],
        }
        body["_links"] = {
            "self": {"href": f"{self.org_url}/{PROJECT_ID}/_apis/pipelines/approvals/{body['id']}"}
        }
        return body

    # -- request dispatch ----------------------------------------------------------------------

    def dispatch(self, seen: Seen) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.seen.append(seen)
            rule = take_injected(self._injected, seen.method, seen.path)
            if rule is not None:
                if rule.retry_after is not None:
                    self._retry_not_before[seen.path] = seen.at + rule.retry_after
                return rule.status, rule.headers(), _error(f"injected {rule.status}")
            not_before = self._retry_not_before.pop(seen.path, None)
            if not_before is not None and seen.at + SLACK < not_before:
                self.violations.append(seen)
            identity = self._identity(seen.headers.get("authorization", ""))
            if identity is None:
                return 401, {"Content-Type": "text/plain"}, "Unauthorized"
            seen.identity = identity
            return self._route(seen)

    def _identity(self, header: str) -> dict[str, Any] | None:
        """The identity the request's PAT belongs to (None: no known PAT)."""
        if not header.startswith("Basic "):
            return None
        try:
            _, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return self.tokens.get(password)

    def _route(self, seen: Seen) -> tuple[int, dict[str, str], Any]:
        prefix = f"/{ORGANIZATION}/"
        if not seen.path.startswith(prefix):
            return 404, {}, _error("no such organization")
        rest = seen.path[len(prefix) :].strip("/")
        if rest == "_apis" and seen.method == "OPTIONS":
            return 200, {}, _collection([_location(*entry) for entry in LOCATIONS])
        if rest.lower() == "_apis/resourceareas" and seen.method == "GET":
            return 200, {}, _collection([])
        project, _, api = rest.partition("/")
        if project not in (PROJECT, PROJECT_ID) or not api.startswith("_apis/"):
            return 404, {}, _error(f"project {project} not found")
        version = seen.query.get("api-version", [""])[0] or _accept_version(seen.headers)
        if not version:
            return 400, {}, _error("No api-version was supplied for the request.")
        return self._project_route(seen, api.removeprefix("_apis/"))

    def _project_route(self, seen: Seen, api: str) -> tuple[int, dict[str, str], Any]:
        q = {k: v[0] for k, v in seen.query.items()}
        m = seen.method
        parts = api.split("/")
        for run in self.runs.values():
            self._progress(run)
        if parts[:1] == ["pipelines"] and len(parts) >= 3 and parts[1].isdigit():
            return self._pipelines_route(m, int(parts[1]), parts[2:], seen.body, seen.identity)
        if parts[:2] == ["pipelines", "environments"]:
            if m == "GET" and len(parts) == 2:
                found = [
                    e
                    for e in self.environments.values()
                    if "name" not in q or e["name"] == q["name"]
                ]
                return 200, {}, _collection(found)
            if m == "POST" and len(parts) == 2:
                if self.environment_named(seen.body["name"]):
                    return 400, {}, _error(f"Environment {seen.body['name']} already exists.")
                return 200, {}, self._add_environment(seen.body)
            if m == "GET" and len(parts) == 3 and int(parts[2]) in self.environments:
                return 200, {}, self.environments[int(parts[2])]
        if parts[:2] == ["distributedtask", "variablegroups"] and m == "GET" and len(parts) == 2:
            # Secret values never leave Azure DevOps: the variable is listed, its value is null.
            groups = [
                {**g, "variables": {
                    k: {**v, "value": None} if v["isSecret"] else v
                    for k, v in g["variables"].items()
                }}
                for g in self.variable_groups.values()
                if "groupName" not in q or g["name"].lower() == q["groupName"].lower()
            ]  # fmt: skip
            return 200, {}, _collection(groups)
        if parts[:3] == ["pipelines", "checks", "configurations"]:
            return self._checks_route(m, parts[3:], q, seen.body)
        if parts[:2] == ["pipelines", "approvals"]:
            return self._approvals_route(m, parts[2:], q, seen.body, seen.identity)
        if parts[:2] == ["build", "builds"] and len(parts) == 3 and m == "GET":
            build_id = int(parts[2]) if parts[2].isdigit() else -1
            if build_id not in self.builds:
                return 404, {}, _error(f"The requested build {parts[2]} could not be found.")
            return 200, {}, self._build_json(build_id)
        if parts[:2] == ["build", "builds"] and len(parts) >= 4 and int(parts[2]) in self.runs:
            run = self.runs[int(parts[2])]
            if parts[3].lower() == "timeline" and m == "GET":
                return 200, {}, self._timeline_json(run)
            if parts[3] == "logs" and len(parts) == 5 and m == "GET":
                lines = self.logs.get(int(parts[4]))
                if lines is None:
                    return 404, {}, _error("log not found")
                return 200, {}, _collection(lines)
        return 404, {}, _error(f"no route for {m} {api}")

    def _pipelines_route(
        self, m: str, pipeline_id: int, parts: list[str], body: Any, identity: dict[str, Any]
    ) -> tuple[int, dict[str, str], Any]:
        if pipeline_id not in self.pipelines:
            return 404, {}, _error(f"pipeline {pipeline_id} not found")
        if parts == ["runs"] and m == "POST":
            refused = self._run_request_error(pipeline_id, body or {})
            if refused is not None:
                return 400, {}, _error(refused)
            return 200, {}, self._run_json(self._create_run(pipeline_id, body or {}, identity))
        if parts == ["runs"] and m == "GET":
            runs = [r for r in self.runs.values() if r.pipeline_id == pipeline_id]
            listed = [self._run_json(r) for r in sorted(runs, key=lambda r: -r.id)]
            for entry in listed:
                entry.pop("templateParameters", None)  # the list does not carry them
                entry.pop("resources", None)
            return 200, {}, _collection(listed)
        if len(parts) >= 2 and parts[0] == "runs" and parts[1].isdigit():
            run = self.runs.get(int(parts[1]))
            if run is None or run.pipeline_id != pipeline_id:
                return 404, {}, _error(f"run {parts[1]} not found")
            if len(parts) == 2 and m == "GET":
                return 200, {}, self._run_json(run)
            if parts[2:] == ["logs"] and m == "GET":
                logs = [
                    {"id": log_id, "lineCount": len(self.logs[log_id]), "createdOn": run.created}
                    for stage in run.stages
                    for log_id in stage.log_ids.values()
                ]
                return 200, {}, {"logs": logs, "url": ""}
        return 404, {}, _error("no such pipelines route")

    def _checks_route(
        self, m: str, parts: list[str], q: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        if m == "GET" and not parts:
            found = [
                self._check_json(c, settings="settings" in q.get("$expand", ""))
                for c in self.checks.values()
                if c["resource"]["type"] == q.get("resourceType")
                and c["resource"]["id"] == q.get("resourceId")
            ]
            return 200, {}, _collection(found)
        if m == "POST" and not parts:
            refused = self._check_refused(body)
            if refused:
                return 400, {}, _error(refused)
            self._ids["check"] += 1
            check = {**body, "id": self._ids["check"], "createdBy": SERVICE, "createdOn": _now()}
            self.checks[check["id"]] = check
            return 200, {}, self._check_json(check, settings=True)
        if len(parts) == 1 and parts[0].isdigit() and int(parts[0]) in self.checks:
            check_id = int(parts[0])
            if m == "PATCH":
                self.checks[check_id] = {**self.checks[check_id], **body, "id": check_id}
                return 200, {}, self._check_json(self.checks[check_id], settings=True)
            if m == "DELETE":
                del self.checks[check_id]
                return 204, {}, None
            if m == "GET":
                return 200, {}, self._check_json(self.checks[check_id], settings=True)
        return 404, {}, _error("no such check configuration")

    def _check_refused(self, body: Any) -> str | None:
        """Why Azure DevOps would refuse this check configuration, or None."""
        kind = (body or {}).get("type") or {}
        resource = (body or {}).get("resource") or {}
        if str(kind.get("id", "")).lower() not in CHECK_TYPES:
            return f"Check type {kind.get('id')!r} is not valid."
        if resource.get("type") != "environment" or not str(resource.get("id", "")).isdigit():
            return "A check needs a resource of type environment with its id."
        if int(resource["id"]) not in self.environments:
            return f"Environment {resource['id']} does not exist."
        if not isinstance(body.get("timeout"), int) or body["timeout"] < 1:
            return "timeout must be a positive number of minutes."
        return None

    def _check_json(self, check: dict[str, Any], *, settings: bool) -> dict[str, Any]:
        body = {k: v for k, v in check.items() if settings or k != "settings"}
        body["url"] = (
            f"{self.org_url}/{PROJECT_ID}/_apis/pipelines/checks/configurations/{check['id']}"
        )
        return body

    def _approvals_route(
        self, m: str, parts: list[str], q: dict[str, str], body: Any, identity: dict[str, Any]
    ) -> tuple[int, dict[str, str], Any]:
        steps = "steps" in q.get("$expand", "")
        if m == "GET" and not parts:
            wanted = set(filter(None, q.get("approvalIds", "").split(",")))
            state = q.get("state")
            found = [
                self._approval_json(a, steps=steps)
                for a in self.approvals.values()
                if (not wanted or a["id"] in wanted)
                and (state in (None, "all") or a["status"] == state)
            ]
            top = int(q.get("top", "0") or 0)
            return 200, {}, _collection(found[:top] if top else found)
        if m == "GET" and len(parts) == 1:
            if parts[0] not in self.approvals:
                return 404, {}, _error(f"approval {parts[0]} not found")
            return 200, {}, self._approval_json(self.approvals[parts[0]], steps=steps)
        if m == "PATCH" and not parts and isinstance(body, list):
            for change in body:
                status, error = self._update_approval(change, identity)
                if status != 200:
                    return status, {}, error
            changed = [self.approvals[c["approvalId"]] for c in body]
            for run in self.runs.values():
                self._progress(run)
            return 200, {}, _collection([self._approval_json(a, steps=True) for a in changed])
        return 404, {}, _error("no such approvals route")


def _collection(items: list[Any]) -> dict[str, Any]:
    return {"count": len(items), "value": items}


def _error(message: str) -> dict[str, Any]:
    return {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": "Microsoft.VisualStudio.Services.WebApi.VssServiceException",
        "typeKey": "VssServiceException",
        "errorCode": 0,
        "eventId": 3000,
    }


def _location(
    location_id: str, area: str, resource: str, template: str, version: int
) -> dict[str, Any]:
    return {
        "id": location_id,
        "area": area,
        "resourceName": resource,
        "routeTemplate": template,
        "resourceVersion": version,
        "minVersion": 1.0,
        "maxVersion": 7.2,
        "releasedVersion": "7.1",
    }


def _accept_version(headers: dict[str, str]) -> str:
    found = re.search(r"api-version=([\w.-]+)", headers.get("accept", ""))
    return found.group(1) if found else ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        fake: FakeAzureDevOps = self.server.fake  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        seen = Seen(
            method=self.command,
            path=unquote(parts.path),
            query=parse_qs(parts.query),
            body=body,
            headers={k.lower(): v for k, v in self.headers.items()},
            at=time.monotonic(),
        )
        status, headers, payload = fake.dispatch(seen)
        seen.status = status
        if payload is None:
            data = b""
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = json.dumps(payload).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8; api-version=7.1")
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = do_OPTIONS = do_PUT = _handle
