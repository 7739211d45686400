"""Azure DevOps service hooks, authenticated and applied once; and the poll that catches misses.

`WebhookHandler.handle(headers, body)` is framework-free: the web app passes the request's
headers and raw body and answers with `result.status`. A forged request is refused before
anything is parsed; an event id already seen (a retried delivery) has no second effect; a run or
stage that finished becomes deployments in the record; an approval that waits is handed back for
Slack to post. What a run deployed is read by pipelines/run_records.py, which also holds the poll.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from environments.catalog import Catalog
from environments.clock import Clock, SystemClock
from environments.config.azure_devops import WEBHOOK_SECRET_VARIABLE
from environments.errors import clip
from environments.pipeline_deployments import (
    PipelineDeployment,
    Recorded,
)
from environments.registry import Database
from environments.registry.chat import first_time
from environments.registry.pipeline_runs import seen
from pipelines.azure_devops import (
    PipelineApproval,
    PipelineError,
    RunState,
    approval_from_json,
    environment_of_stage,
)
from pipelines.run_records import (
    ReconcileReport,
    RunSource,
    deployments_of_run,
    key_of_run,
    reconcile_runs,
    record_run,
    write_deployments,
)

__all__ = [
    "SECRET_HEADER",
    "ReconcileReport",
    "RunSource",
    "WebhookAction",
    "WebhookHandler",
    "WebhookResult",
    "deployments_of_run",
    "reconcile_runs",
    "record_run",
]
SECRET_HEADER = "X-Shipyard-Webhook-Secret"
RUN_STATE_CHANGED = "ms.vss-pipelines.run-state-changed-event"
STAGE_STATE_CHANGED = "ms.vss-pipelines.stage-state-changed-event"
APPROVAL_PENDING = "ms.vss-pipelinechecks-events.approval-pending"
APPROVAL_COMPLETED = "ms.vss-pipelinechecks-events.approval-completed"


class WebhookAction(StrEnum):
    """What a delivery led to."""

    REFUSED = "refused"
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    RETRY = "retry"
    RUN_PROGRESS = "run-progress"
    DEPLOYMENT_RECORDED = "deployment-recorded"
    APPROVAL_PENDING = "approval-pending"
    APPROVAL_COMPLETED = "approval-completed"


@dataclass(frozen=True)
class WebhookResult:
    """The answer to one delivery: the HTTP status to send and what happened.

    `approval` is set for approval-pending (what Slack should post) and approval-completed (what
    Slack should update); `recorded` lists the deployments the event wrote or confirmed.
    """

    status: int
    action: WebhookAction
    message: str
    event_id: str | None = None
    event_type: str | None = None
    recorded: tuple[Recorded, ...] = ()
    skipped: tuple[str, ...] = ()
    approval: PipelineApproval | None = None


@dataclass
class _Effect:
    action: WebhookAction
    message: str
    deployments: list[PipelineDeployment] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    approval: PipelineApproval | None = None
    run_key: str | None = None


class WebhookHandler:
    """Authenticates and applies Azure DevOps service-hook deliveries.

    `secret` is the shared secret (AZURE_DEVOPS_WEBHOOK_SECRET): the hook sends it as the basic
    auth password or in the X-Shipyard-Webhook-Secret header. Without a secret every delivery is
    refused. `source` (an AzureDevOps client) is asked for a finished run's template parameters,
    stages and approvals, which the events do not carry.
    """

    def __init__(
        self,
        *,
        secret: str,
        database: Database,
        catalog: Catalog,
        source: RunSource | None,
        clock: Clock | None = None,
    ) -> None:
        self.secret = secret
        self.database = database
        self.catalog = catalog
        self.source = source
        self.clock = clock or SystemClock()

    @classmethod
    def from_environment(
        cls,
        *,
        database: Database,
        catalog: Catalog,
        source: RunSource | None,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> WebhookHandler:
        secret = (os.environ if environ is None else environ).get(WEBHOOK_SECRET_VARIABLE, "")
        return cls(secret=secret, database=database, catalog=catalog, source=source, clock=clock)

    # --- the one entry point -------------------------------------------------------------

    def handle(self, headers: Mapping[str, str], body: bytes) -> WebhookResult:
        if not self._authentic({k.lower(): v for k, v in headers.items()}):
            return WebhookResult(401, WebhookAction.REFUSED, "not a delivery from our service hook")
        try:
            event = json.loads(body)
            if not isinstance(event, dict):
                raise TypeError("the body is not a JSON object")
            event_id = clip(str(event["id"]), 80)
            event_type = clip(str(event["eventType"]), 80)
            resource = event.get("resource") or {}
            if not isinstance(resource, dict):
                raise TypeError("resource is not an object")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            detail = clip(str(exc) or type(exc).__name__, 120)
            return WebhookResult(400, WebhookAction.INVALID, f"not a service-hook event: {detail}")
        key = f"ado:{event_id}"
        duplicate = WebhookResult(
            200, WebhookAction.DUPLICATE, "already handled", event_id, event_type
        )
        with self.database.read() as conn:
            if seen(conn, key):
                return duplicate
        try:
            effect = self._effect(event_type, resource)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # Authenticated, but not shaped as its type promises: refused, nothing remembered.
            detail = clip(str(exc) or type(exc).__name__, 120)
            return WebhookResult(
                400, WebhookAction.INVALID, f"malformed {event_type} event: {detail}", event_id
            )
        except PipelineError as exc:
            # Not remembered: Azure DevOps retries the delivery, or the poll catches the run.
            return WebhookResult(503, WebhookAction.RETRY, exc.one_line(), event_id, event_type)
        with self.database.write() as conn:
            if not first_time(conn, key, self.clock.now()):
                return duplicate
            recorded, skipped = write_deployments(
                conn, self.catalog, effect.deployments, self.clock.now()
            )
            if effect.run_key:
                first_time(conn, effect.run_key, self.clock.now())
        lines = [r.line() for r in recorded] + [*effect.skipped, *skipped]
        return WebhookResult(
            200,
            effect.action,
            "; ".join(lines) or effect.message,
            event_id,
            event_type,
            recorded=tuple(recorded),
            skipped=tuple([*effect.skipped, *skipped]),
            approval=effect.approval,
        )

    def _authentic(self, headers: Mapping[str, str]) -> bool:
        if not self.secret:
            return False
        expected = self.secret.encode()
        given = headers.get(SECRET_HEADER.lower())
        if given is not None:
            return hmac.compare_digest(given.encode(), expected)
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        _, _, password = decoded.partition(b":")
        return hmac.compare_digest(password, expected)

    # --- events --------------------------------------------------------------------------

    def _effect(self, event_type: str, resource: dict[str, Any]) -> _Effect:
        if event_type == RUN_STATE_CHANGED:
            return self._run_changed(resource)
        if event_type == STAGE_STATE_CHANGED:
            return self._stage_changed(resource)
        if event_type in (APPROVAL_PENDING, APPROVAL_COMPLETED):
            return self._approval(event_type, resource)
        return _Effect(WebhookAction.IGNORED, f"{event_type} is not an event Shipyard uses")

    def _run_of(self, resource: dict[str, Any]) -> tuple[int, int] | None:
        run = resource.get("run") or {}
        pipeline = resource.get("pipeline") or run.get("pipeline") or {}
        run_id, pipeline_id = run.get("id"), pipeline.get("id")
        if not isinstance(run_id, int) or not isinstance(pipeline_id, int):
            return None
        if not (0 < run_id < 2**31 and 0 < pipeline_id < 2**31):  # Azure DevOps ids are int32
            raise TypeError(f"run {clip(str(run_id), 20)} of pipeline {clip(str(pipeline_id), 20)}")
        return pipeline_id, run_id

    def _source(self) -> RunSource:
        if self.source is None:
            raise PipelineError(
                "Azure DevOps is not configured, so the run cannot be read",
                hint="set azure_devops in shipyard.yaml and AZURE_DEVOPS_PAT",
            )
        return self.source

    def _run_changed(self, resource: dict[str, Any]) -> _Effect:
        ids = self._run_of(resource)
        state = str((resource.get("run") or {}).get("state") or "")
        if ids is None:
            return _Effect(WebhookAction.IGNORED, "the event names no run")
        if state != RunState.COMPLETED:
            return _Effect(WebhookAction.RUN_PROGRESS, f"run {ids[1]} is {state}")
        source = self._source()
        run = source.get_run(*ids)
        deployments, skipped = deployments_of_run(source, run)
        return _Effect(
            WebhookAction.DEPLOYMENT_RECORDED if deployments else WebhookAction.IGNORED,
            f"run {run.id} {run.result}: it deployed nothing Shipyard knows",
            deployments,
            skipped,
            run_key=key_of_run(run.pipeline_id, run.id),
        )

    def _stage_changed(self, resource: dict[str, Any]) -> _Effect:
        stage = resource.get("stage") or {}
        name = str(stage.get("name") or "")
        ids = self._run_of(resource)
        if environment_of_stage(name) is None or ids is None:
            return _Effect(WebhookAction.IGNORED, f"stage {name or '?'} deploys no environment")
        if stage.get("state") != "completed":
            return _Effect(WebhookAction.RUN_PROGRESS, f"stage {name} is {stage.get('state')}")
        source = self._source()
        run = source.get_run(*ids)
        deployments, skipped = deployments_of_run(source, run, stage=name)
        return _Effect(
            WebhookAction.DEPLOYMENT_RECORDED if deployments else WebhookAction.IGNORED,
            f"stage {name} of run {run.id}: nothing to record",
            deployments,
            skipped,
        )

    def _approval(self, event_type: str, resource: dict[str, Any]) -> _Effect:
        body = resource.get("approval")
        if not isinstance(body, dict) or "id" not in body:
            return _Effect(WebhookAction.IGNORED, "the event carries no approval")
        approval = approval_from_json(body)
        stage = (resource.get("stage") or {}).get("name") or resource.get("stageName")
        ids = self._run_of(resource)
        pipeline_id, run_id = ids if ids else (approval.pipeline_id, approval.run_id)
        approval = replace(
            approval,
            pipeline_id=pipeline_id,
            run_id=run_id,
            run_url=resource.get("url") or approval.run_url,
            environment=environment_of_stage(str(stage)) if stage else None,
        )
        if self.source is not None and run_id is not None:
            try:
                described = self.source.describe(approval)
                approval = replace(
                    described, environment=approval.environment or described.environment
                )
            except PipelineError:
                pass  # Slack still gets what the event says; the poll fills in the rest later.
        pending = event_type == APPROVAL_PENDING
        where = f" for {approval.environment}" if approval.environment else ""
        release = f" ({approval.release})" if approval.release else ""
        return _Effect(
            WebhookAction.APPROVAL_PENDING if pending else WebhookAction.APPROVAL_COMPLETED,
            f"approval {approval.id}{where}{release} is {approval.status}",
            approval=approval,
        )
