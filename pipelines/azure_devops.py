"""Azure DevOps through the azure-devops SDK: runs and logs, environments and checks, approvals.

Every call has a timeout and bounded retries on 429/5xx that honour Retry-After (a POST or
PATCH, which may have taken effect, is repeated only on 429/503, which say it did not). SDK
models and exceptions stay in here: callers get the frozen dataclasses below and
`PipelineError` (a ProviderError) or `ConfigError`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from urllib3.util.retry import Retry

from environments.catalog import Catalog
from environments.errors import ConfigError, ProviderError
from environments.pipelines_config import PAT_VARIABLE, AzureDevOpsSettings, pipelines_settings
from environments.registry import record as rec
from environments.registry import shipyard_home

__all__ = [
    "APPROVAL_CHECK_TYPE",
    "AzureDevOps",
    "FailedStep",
    "Identity",
    "PipelineApproval",
    "PipelineError",
    "PipelineRun",
    "RunResult",
    "RunState",
    "StageOutcome",
    "SyncChange",
    "approval_from_json",
    "environment_of_stage",
    "stage_of_environment",
]

API_VERSION = "7.1-preview.1"
APPROVAL_CHECK_TYPE = {"id": "8c6f20a7-a545-4486-9777-f762fafe0d4d", "name": "Approval"}
CHECKS_LOCATION = "86c8381e-5aee-4cde-8ae4-25c0c7f5eaea"
STAGE_PREFIX = "shipyard_deploy_"
MANAGED = "Managed by Shipyard"
SLACK_COMMENT = re.compile(r"^(approved|rejected) in Slack by (?P<person>[^:]+?)(?::.*)?$", re.S)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
NOT_REPEATABLE = frozenset({"POST", "PATCH"})


class PipelineError(ProviderError):
    """Azure DevOps failed or could not be reached (a technical error, not a refusal)."""


class RunState(StrEnum):
    UNKNOWN = "unknown"
    IN_PROGRESS = "inProgress"
    CANCELING = "canceling"
    COMPLETED = "completed"


class RunResult(StrEnum):
    UNKNOWN = "unknown"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True)
class PipelineRun:
    """One run of a pipeline as Azure DevOps reports it; `web_url` is the run's page."""

    pipeline_id: int
    id: int
    name: str
    state: RunState
    result: RunResult | None
    web_url: str
    created: datetime | None
    finished: datetime | None
    parameters: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_finished(self) -> bool:
        return self.state is RunState.COMPLETED


@dataclass(frozen=True)
class StageOutcome:
    """A stage of a run (from its timeline): name, state, result, the approvals that gated it."""

    name: str
    state: str
    result: str | None
    approval_ids: tuple[str, ...] = ()

    @property
    def environment(self) -> str | None:
        return environment_of_stage(self.name)


@dataclass(frozen=True)
class FailedStep:
    """The step that failed a run, with the end of its log."""

    name: str
    log_id: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Identity:
    id: str
    name: str = ""


@dataclass(frozen=True)
class ApprovalStep:
    """One approver's part in an approval: who was asked, what they decided, with what comment."""

    assigned: Identity
    status: str
    comment: str = ""
    acted_by: Identity | None = None


@dataclass(frozen=True)
class PipelineApproval:
    """An Azure DevOps approval gate, and (when known) the run, stage and release it holds."""

    id: str
    status: str
    min_required: int
    instructions: str
    steps: tuple[ApprovalStep, ...]
    blocked: tuple[Identity, ...]
    created: datetime | None
    pipeline_id: int | None = None
    run_id: int | None = None
    run_url: str | None = None
    environment: str | None = None
    release: str | None = None

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"


@dataclass(frozen=True)
class SyncChange:
    """What `sync` did (or would do) to one Azure DevOps environment."""

    environment: str
    action: str
    detail: str = ""


def stage_of_environment(environment: str) -> str:
    """The stage name the templates give the deployment into a Shipyard environment."""
    return STAGE_PREFIX + environment.replace("-", "_")


def environment_of_stage(stage: str) -> str | None:
    """The Shipyard environment a `shipyard_deploy_…` stage deploys into (names have no '_')."""
    if not stage.startswith(STAGE_PREFIX):
        return None
    return stage.removeprefix(STAGE_PREFIX).replace("_", "-") or None


def person_of(step: ApprovalStep, identities: Mapping[str, str]) -> str:
    """Who decided a step: the Slack person in Shipyard's comment, else the mapped identity."""
    found = SLACK_COMMENT.match(step.comment or "")
    if found:
        return found.group("person").strip()
    actor = step.acted_by or step.assigned
    for person, identity in identities.items():
        if identity.lower() == actor.id.lower():
            return person
    return actor.name or actor.id


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


class AzureDevOps:
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
    def from_environment(
        cls, catalog: Catalog, environ: Mapping[str, str] | None = None
    ) -> AzureDevOps:
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

    def start_run(
        self,
        *,
        environment: str,
        release: str,
        requested_by: str,
        pipeline_id: int | None = None,
        parameters: Mapping[str, str] | None = None,
        branch: str | None = None,
    ) -> PipelineRun:
        """Start the deploy pipeline for one release into one environment."""
        from azure.devops.v7_1.pipelines.models import (
            RepositoryResourceParameters,
            RunPipelineParameters,
            RunResourcesParameters,
        )

        pid = pipeline_id or self.settings.pipeline_id
        if pid is None:
            raise ConfigError(
                "no Azure DevOps pipeline to start",
                hint="set azure_devops.pipeline_id in shipyard.yaml (or AZURE_DEVOPS_PIPELINE_ID)",
            )
        template = {
            "environment": environment,
            "release": release,
            "requestedBy": requested_by,
            **(parameters or {}),
        }
        resources = (
            RunResourcesParameters(
                repositories={"self": RepositoryResourceParameters(ref_name=branch)}
            )
            if branch
            else None
        )
        body = RunPipelineParameters(template_parameters=template, resources=resources)
        with self._translated(f"start pipeline {pid} for {release} into {environment}"):
            made = self._client("pipelines").run_pipeline(body, self.project, pid)
        return self._run(made, pid)

    def get_run(self, pipeline_id: int, run_id: int) -> PipelineRun:
        with self._translated(f"read run {run_id} of pipeline {pipeline_id}"):
            found = self._client("pipelines").get_run(self.project, pipeline_id, run_id)
        return self._run(found, pipeline_id)

    def list_runs(self, pipeline_id: int) -> list[PipelineRun]:
        """The pipeline's runs, newest first (without template parameters; get_run has them)."""
        with self._translated(f"list runs of pipeline {pipeline_id}"):
            found = self._client("pipelines").list_runs(self.project, pipeline_id) or []
        return sorted((self._run(r, pipeline_id) for r in found), key=lambda r: -r.id)

    def wait_for_run(
        self,
        run: PipelineRun,
        *,
        timeout: timedelta,
        on_change: Callable[[PipelineRun], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> PipelineRun:
        """Follow a run until it completes; PipelineError when `timeout` passes first."""
        deadline = time.monotonic() + timeout.total_seconds()
        seen = (run.state, run.result)
        while not run.is_finished:
            if time.monotonic() >= deadline:
                raise PipelineError(
                    f"run {run.id} is still {run.state} after {timeout}",
                    hint=f"follow it at {run.web_url}",
                )
            sleep(self.settings.poll_interval)
            run = self.get_run(run.pipeline_id, run.id)
            if on_change is not None and (run.state, run.result) != seen:
                on_change(run)
            seen = (run.state, run.result)
        return run

    def stages(self, run: PipelineRun) -> list[StageOutcome]:
        """The run's stages from its build timeline, each with the approvals that gated it."""
        records = self._timeline(run)
        by_id = {r.id: r for r in records}
        approvals: dict[str, list[str]] = {}
        for record in records:
            if record.type != "Checkpoint.Approval":
                continue
            parent = by_id.get(record.parent_id)
            stage = by_id.get(parent.parent_id) if parent is not None else None
            if stage is not None:
                approvals.setdefault(stage.id, []).append(str(record.id))
        return [
            StageOutcome(
                name=str(r.identifier or r.name),
                state=_text(r.state),
                result=_text(r.result) or None,
                approval_ids=tuple(approvals.get(r.id, [])),
            )
            for r in sorted((r for r in records if r.type == "Stage"), key=lambda r: r.order or 0)
        ]

    def failed_step(self, run: PipelineRun, *, tail: int = 40) -> FailedStep | None:
        """The first failed task of a run and the last `tail` lines of its log."""
        failed = [
            r for r in self._timeline(run) if r.type == "Task" and _text(r.result) == "failed"
        ]
        if not failed or failed[0].log is None:
            return None
        step = failed[0]
        with self._translated(f"read the log of '{step.name}' in run {run.id}"):
            lines = self._client("build").get_build_log_lines(self.project, run.id, step.log.id)
        return FailedStep(str(step.name), int(step.log.id), tuple(str(x) for x in lines[-tail:]))

    def _timeline(self, run: PipelineRun) -> list[Any]:
        with self._translated(f"read the timeline of run {run.id}"):
            timeline = self._client("build").get_build_timeline(self.project, run.id)
        return list(timeline.records or []) if timeline is not None else []

    def _run(self, found: Any, pipeline_id: int) -> PipelineRun:
        links = getattr(found._links, "additional_properties", None) or {}
        web = (links.get("web") or {}).get("href") or _web_url(str(found.url or ""), found.id)
        return PipelineRun(
            pipeline_id=int(found.pipeline.id) if found.pipeline else pipeline_id,
            id=int(found.id),
            name=str(found.name or found.id),
            state=RunState(found.state) if found.state in set(RunState) else RunState.UNKNOWN,
            result=RunResult(found.result) if found.result in set(RunResult) else None,
            web_url=str(web),
            created=found.created_date,
            finished=found.finished_date,
            parameters={k: str(v) for k, v in (found.template_parameters or {}).items()},
        )

    # --- environments and approval checks ----------------------------------------------------

    def ensure_environment(self, name: str, *, description: str = "") -> tuple[int, bool]:
        """The Azure DevOps environment `name`, created if missing: (id, created)."""
        from azure.devops.v7_1.task_agent.models import EnvironmentCreateParameter

        client = self._client("environments")
        with self._translated(f"read environment {name}"):
            found = [e for e in client.get_environments(self.project, name=name) if e.name == name]
        if found:
            return int(found[0].id), False
        with self._translated(f"create environment {name}"):
            made = client.add_environment(
                EnvironmentCreateParameter(name=name, description=description), self.project
            )
        return int(made.id), True

    def approval_checks(self, environment_id: int) -> list[dict[str, Any]]:
        """The approval checks on an environment, with their settings (raw JSON)."""
        with self._translated(f"read the checks of environment {environment_id}"):
            body = self._checks(
                "GET",
                {},
                {
                    "resourceType": "environment",
                    "resourceId": environment_id,
                    "$expand": "settings",
                },
            )
        return [
            c for c in (body or {}).get("value", []) if c["type"]["id"] == APPROVAL_CHECK_TYPE["id"]
        ]

    def sync(
        self,
        catalog: Catalog,
        environments: Sequence[tuple[str, str]],
        *,
        dry_run: bool = False,
    ) -> list[SyncChange]:
        """Make each environment's Azure DevOps twin exist with the approval check its type says.

        `environments` are the record's live (name, type) pairs.
        Only checks Shipyard manages (their instructions start with "Managed by Shipyard") are
        changed or removed; others are reported and left alone.
        """
        changes: list[SyncChange] = []
        for environment, type_name in self._targets(catalog, environments):
            kind = catalog.type(type_name)
            name = self.settings.environment_name(environment)
            wanted = self._wanted_check(catalog, type_name) if kind.approval else None
            if dry_run:
                changes.append(SyncChange(name, "would sync", _describe(wanted)))
                continue
            env_id, created = self.ensure_environment(
                name, description=f"Shipyard environment {environment} (type {type_name})"
            )
            if created:
                changes.append(SyncChange(name, "created environment"))
            changes.extend(self._sync_check(name, env_id, wanted))
        return changes

    def _targets(
        self, catalog: Catalog, environments: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Live environments, plus one named after each gated type.

        Azure DevOps creates an environment a pipeline names on first use, with no checks; the
        twin named after a gated type exists beforehand so its first deployment is gated too.
        """
        targets = dict(environments)
        for type_name, kind in catalog.types.items():
            if kind.approval is not None:
                targets.setdefault(type_name, type_name)
        return [(name, type_name) for name, type_name in targets.items()]

    def _wanted_check(self, catalog: Catalog, type_name: str) -> dict[str, Any]:
        kind = catalog.type(type_name)
        assert kind.approval is not None
        people = sorted(catalog.members(kind.approval.approvers))
        missing = [p for p in people if p not in self.settings.identities]
        if missing:
            raise ConfigError(
                f"type '{type_name}': approvers {', '.join(missing)} have no Azure DevOps identity",
                hint="map them under azure_devops.identities in shipyard.yaml "
                "(person: identity id)",
            )
        return {
            "approvers": [{"id": self.settings.identities[p], "displayName": p} for p in people],
            "minRequiredApprovers": kind.approval.required,
            "requesterCannotBeApprover": True,
            "executionOrder": "anyOrder",
            "blockedApprovers": [],
            "instructions": f"{MANAGED} from shipyard.yaml (type '{type_name}'): "
            f"{kind.approval.required} of {', '.join(people)}; approve here or in Slack.",
            "timeout": max(1, int(kind.approval.timeout.total_seconds() // 60)),
        }

    def _sync_check(
        self, name: str, env_id: int, wanted: dict[str, Any] | None
    ) -> list[SyncChange]:
        existing = self.approval_checks(env_id)
        ours = [c for c in existing if _instructions(c).startswith(MANAGED)]
        changes = [
            SyncChange(name, "left alone", f"approval check #{c['id']} is not managed by Shipyard")
            for c in existing
            if c not in ours
        ]
        resource = {"type": "environment", "id": str(env_id), "name": name}
        for extra in ours[1 if wanted else 0 :]:
            with self._translated(f"remove approval check #{extra['id']} from {name}"):
                self._checks("DELETE", {"id": str(extra["id"])})
            changes.append(SyncChange(name, "removed approval check", f"#{extra['id']}"))
        if wanted is None:
            return changes or [SyncChange(name, "unchanged", "no approval")]
        settings = {k: v for k, v in wanted.items() if k != "timeout"}
        body = {
            "type": APPROVAL_CHECK_TYPE,
            "settings": settings,
            "timeout": wanted["timeout"],
            "resource": resource,
        }
        if not ours:
            with self._translated(f"add the approval check to {name}"):
                made = self._checks("POST", {}, body=body)
            changes.append(
                SyncChange(name, "created approval check", f"#{made['id']}: {_describe(wanted)}")
            )
        elif _same_check(ours[0], wanted):
            changes.append(SyncChange(name, "unchanged", _describe(wanted)))
        else:
            with self._translated(f"update approval check #{ours[0]['id']} on {name}"):
                self._checks(
                    "PATCH", {"id": str(ours[0]["id"])}, body={**body, "id": ours[0]["id"]}
                )
            changes.append(
                SyncChange(name, "updated approval check", f"#{ours[0]['id']}: {_describe(wanted)}")
            )
        return changes

    # --- approvals ------------------------------------------------------------------------

    def list_approvals(
        self, *, state: str = "pending", describe: bool = True
    ) -> list[PipelineApproval]:
        """Approvals in `state` (default pending), each with its run, environment and release."""
        with self._translated("list approvals"):
            body = self._request("GET", "pipelines/approvals", {"state": state, "$expand": "steps"})
        found = [approval_from_json(a) for a in (body or {}).get("value", [])]
        return [self.describe(a) for a in found] if describe else found

    def get_approval(self, approval_id: str) -> PipelineApproval:
        with self._translated(f"read approval {approval_id}"):
            body = self._request("GET", f"pipelines/approvals/{approval_id}", {"$expand": "steps"})
        return self.describe(approval_from_json(body))

    def approve(self, approval_id: str, person: str, *, comment: str = "") -> PipelineApproval:
        """Approve as decided in Slack by `person`; the comment says so, for the record."""
        text = f"approved in Slack by {person}" + (f": {comment}" if comment else "")
        return self._decide(approval_id, person, "approved", text)

    def reject(self, approval_id: str, person: str, *, reason: str) -> PipelineApproval:
        return self._decide(
            approval_id, person, "rejected", f"rejected in Slack by {person}: {reason}"
        )

    def _decide(self, approval_id: str, person: str, status: str, comment: str) -> PipelineApproval:
        change: dict[str, Any] = {"approvalId": approval_id, "status": status, "comment": comment}
        identity = self.settings.identities.get(person)
        if identity:
            change["assignedApprover"] = {"id": identity}
        with self._translated(f"mark approval {approval_id} {status}"):
            body = self._request("PATCH", "pipelines/approvals", body=[change])
        values = (body or {}).get("value") or []
        return (
            self.describe(approval_from_json(values[0]))
            if values
            else self.get_approval(approval_id)
        )

    def describe(self, approval: PipelineApproval) -> PipelineApproval:
        """Fill in the run (web URL, release) and the environment whose stage it gates."""
        if approval.run_id is None or approval.pipeline_id is None:
            return approval
        run = self.get_run(approval.pipeline_id, approval.run_id)
        environment = next(
            (s.environment for s in self.stages(run) if approval.id in s.approval_ids),
            run.parameters.get("environment"),
        )
        return replace(
            approval,
            run_url=run.web_url,
            environment=environment,
            release=run.parameters.get("release"),
        )

    def approvals_by_id(self, ids: Sequence[str]) -> list[PipelineApproval]:
        if not ids:
            return []
        with self._translated("read approvals"):
            body = self._request(
                "GET",
                "pipelines/approvals",
                {"approvalIds": ",".join(ids), "$expand": "steps", "state": "all"},
            )
        return [approval_from_json(a) for a in (body or {}).get("value", [])]


def live_environments(conn: sa.Connection) -> list[tuple[str, str]]:
    """The record's live environments as (name, type): what `sync` mirrors."""
    return [(e.name, e.type) for e in rec.list_environments(conn)]


# --- JSON and SDK model helpers ---------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    inner = getattr(exc, "inner_exception", None)
    if inner is not None and str(inner).strip():
        text = f"{text} ({str(inner).strip().splitlines()[0]})"
    return text.splitlines()[0]


def _web_url(api_url: str, run_id: Any) -> str:
    """`{org}/{project}/_apis/Pipelines/1/runs/7` → `{org}/{project}/_build/results?buildId=7`."""
    base = api_url.split("/_apis/")[0]
    return f"{base}/_build/results?buildId={run_id}"


def _instructions(check: Mapping[str, Any]) -> str:
    return str((check.get("settings") or {}).get("instructions") or "")


def _same_check(check: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    settings = check.get("settings") or {}
    have = sorted(str(a.get("id", "")).lower() for a in settings.get("approvers", []))
    want = sorted(str(a["id"]).lower() for a in wanted["approvers"])
    return (
        have == want
        and settings.get("minRequiredApprovers") == wanted["minRequiredApprovers"]
        and bool(settings.get("requesterCannotBeApprover")) == wanted["requesterCannotBeApprover"]
        and settings.get("instructions") == wanted["instructions"]
        and check.get("timeout") == wanted["timeout"]
    )


def _describe(wanted: Mapping[str, Any] | None) -> str:
    if wanted is None:
        return "no approval"
    names = ", ".join(a["displayName"] for a in wanted["approvers"])
    return (
        f"{wanted['minRequiredApprovers']} of {names}, requester may not approve, "
        f"timeout {wanted['timeout']} min"
    )


def _identity(body: Mapping[str, Any] | None) -> Identity:
    body = body or {}
    return Identity(
        id=str(body.get("id") or ""),
        name=str(body.get("displayName") or body.get("uniqueName") or ""),
    )


def _when(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def approval_from_json(body: Mapping[str, Any]) -> PipelineApproval:
    """An approval as the REST API and the service hooks give it."""
    pipeline = body.get("pipeline") or {}
    owner = pipeline.get("owner") or {}
    web = ((owner.get("_links") or {}).get("web") or {}).get("href")
    return PipelineApproval(
        id=str(body["id"]),
        status=str(body.get("status") or ""),
        min_required=int(body.get("minRequiredApprovers") or 0),
        instructions=str(body.get("instructions") or ""),
        steps=tuple(
            ApprovalStep(
                assigned=_identity(s.get("assignedApprover")),
                status=str(s.get("status") or ""),
                comment=str(s.get("comment") or ""),
                acted_by=_identity(s["actualApprover"]) if s.get("actualApprover") else None,
            )
            for s in body.get("steps") or []
        ),
        blocked=tuple(_identity(b) for b in body.get("blockedApprovers") or []),
        created=_when(body.get("createdOn")),
        pipeline_id=int(pipeline["id"]) if str(pipeline.get("id", "")).isdigit() else None,
        run_id=int(owner["id"]) if str(owner.get("id", "")).isdigit() else None,
        run_url=str(web) if web else None,
    )
