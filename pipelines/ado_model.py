"""Azure DevOps as Shipyard sees it: runs, stages, approvals and checks as frozen dataclasses."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from environments.errors import ProviderError

API_VERSION = "7.1-preview.1"
APPROVAL_CHECK_TYPE = {"id": "8c6f20a7-a545-4486-9777-f762fafe0d4d", "name": "Approval"}
EXCLUSIVE_LOCK_CHECK_TYPE = {"id": "2ef31ad6-baa0-403a-8b45-2cbc9b4e5563", "name": "ExclusiveLock"}
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
    # The ref the pipeline's own repository ran at (`resources.repositories.self.refName`).
    ref_name: str = ""

    @property
    def is_finished(self) -> bool:
        return self.state is RunState.COMPLETED

    @property
    def release(self) -> str:
        """The release the run deploys, as examples/azure-pipelines.yml computes it: its
        `release` parameter, else the tag it runs on, else its name (the build number)."""
        if given(self.parameters.get("release")):
            return given(self.parameters.get("release"))
        if self.ref_name.startswith("refs/tags/"):
            return self.ref_name.removeprefix("refs/tags/")
        return self.name


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
    # The run's `requestedBy` template parameter: the Shipyard person who asked for it.
    requested_by: str | None = None

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"


@dataclass(frozen=True)
class SyncChange:
    """What `sync` did (or, with --dry-run, would do) to one Azure DevOps environment or check,
    or what it found in the templates' variable group (which it only reads).

    `changes` are the field-level differences an update writes ("minRequiredApprovers: 3 → 1").
    """

    environment: str
    action: str
    detail: str = ""
    changes: tuple[str, ...] = ()


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


# --- JSON and SDK model helpers ---------------------------------------------------------------


def given(value: str | None) -> str:
    """A template parameter's value, unless it is empty or an unexpanded `$(macro)`."""
    text = (value or "").strip()
    return "" if not text or "$(" in text else text


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    inner = getattr(exc, "inner_exception", None)
    if inner is not None and str(inner).strip():
        text = f"{text} ({str(inner).strip().splitlines()[0]})"
    return text.splitlines()[0]


def run_id_of_url(run_url: str) -> int | None:
    """The run id in a run's web URL (`…/_build/results?buildId=7` → 7)."""
    found = re.search(r"[?&]buildId=(\d+)", run_url or "")
    return int(found.group(1)) if found else None


def _web_url(api_url: str, run_id: Any) -> str:
    """`{org}/{project}/_apis/Pipelines/1/runs/7` → `{org}/{project}/_build/results?buildId=7`."""
    base = api_url.split("/_apis/")[0]
    return f"{base}/_build/results?buildId={run_id}"


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
