"""The vocabulary of Shipyard: frozen dataclasses and state enums (asked vs. observed)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NewType

from environments.errors import InvalidInput, clip

EnvironmentName = NewType("EnvironmentName", str)
Version = NewType("Version", str)
Person = NewType("Person", str)

NAME_RULE = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
VERSION_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


def check_environment_name(name: str) -> EnvironmentName:
    """An environment name becomes an Azure resource name: 3-40 of a-z, 0-9, '-', starting a-z."""
    if not NAME_RULE.fullmatch(name) or name.endswith("-") or "--" in name:
        raise InvalidInput(
            f"'{clip(name)}' is not a valid environment name",
            hint="use 3-40 lowercase letters, digits and single hyphens, starting with a letter "
            "(for example pr-1234)",
        )
    return EnvironmentName(name)


def check_version(version: str) -> Version:
    if not VERSION_RULE.fullmatch(version):
        raise InvalidInput(
            f"'{clip(version)}' is not a valid release version",
            hint="use letters, digits, '.', '-', '+' or '_' (for example 1.4.2)",
        )
    return Version(version)


class EnvironmentState(StrEnum):
    """Where an environment is in its life."""

    REQUESTED = "requested"
    PROVISIONING = "provisioning"
    DEPLOYING = "deploying"
    READY = "ready"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"
    FAILED = "failed"

    @property
    def is_live(self) -> bool:
        return self is not EnvironmentState.DESTROYED


class HealthStatus(StrEnum):
    """What the last health probe of an environment observed."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


TRANSITIONS: dict[EnvironmentState, frozenset[EnvironmentState]] = {
    EnvironmentState.REQUESTED: frozenset(
        {EnvironmentState.PROVISIONING, EnvironmentState.DESTROYING, EnvironmentState.FAILED}
    ),
    EnvironmentState.PROVISIONING: frozenset(
        {EnvironmentState.DEPLOYING, EnvironmentState.READY, EnvironmentState.FAILED}
    ),
    EnvironmentState.DEPLOYING: frozenset({EnvironmentState.READY, EnvironmentState.FAILED}),
    EnvironmentState.READY: frozenset({EnvironmentState.DEPLOYING, EnvironmentState.DESTROYING}),
    EnvironmentState.FAILED: frozenset(
        {EnvironmentState.DEPLOYING, EnvironmentState.PROVISIONING, EnvironmentState.DESTROYING}
    ),
    EnvironmentState.DESTROYING: frozenset({EnvironmentState.DESTROYED, EnvironmentState.FAILED}),
    EnvironmentState.DESTROYED: frozenset(),
}


def can_transition(source: EnvironmentState, target: EnvironmentState) -> bool:
    return source == target or target in TRANSITIONS[source]


class DeploymentKind(StrEnum):
    """Why a release was placed: the first release of a new environment, a deploy, a promotion."""

    CREATE = "create"
    DEPLOY = "deploy"
    PROMOTION = "promotion"


class DeploymentStatus(StrEnum):
    """A deployment's status; rejected and expired are neutral outcomes ("not promoted")."""

    AWAITING_APPROVAL = "awaiting-approval"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in {
            DeploymentStatus.SUCCEEDED,
            DeploymentStatus.FAILED,
            DeploymentStatus.REJECTED,
            DeploymentStatus.EXPIRED,
            DeploymentStatus.CANCELLED,
        }


class ApprovalState(StrEnum):
    """An approval gate's outcome so far."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self is not ApprovalState.PENDING


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class OperationKind(StrEnum):
    """A long action the worker runs: bring an environment up, place a release, tear it down."""

    CREATE = "create"
    DEPLOY = "deploy"
    DESTROY = "destroy"


class OperationState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in {OperationState.SUCCEEDED, OperationState.FAILED}


@dataclass(frozen=True)
class Release:
    """An immutable version of the application, with where its artifact lives.

    A release a pipeline built names its build: `build_run` (the Azure DevOps run id),
    `build_number` (that run's name, what `resources.pipelines.<alias>.version` asks for),
    `build_artifact` (the pipeline artifact holding it) and `source_ref` (the ref it was built
    from, e.g. refs/tags/1.4.2). A run deploying it consumes that build, never a rebuild.
    """

    version: Version
    artifact: str
    build_id: str
    commit: str
    added_by: Person
    added_at: datetime
    build_run: int | None = None
    build_number: str = ""
    build_artifact: str = ""
    source_ref: str = ""


@dataclass(frozen=True)
class Environment:
    """A named instance of an environment type, with the release it runs now (observed)."""

    id: int
    name: EnvironmentName
    type: str
    state: EnvironmentState
    owner: Person
    created_at: datetime
    expires_at: datetime | None
    release: Version | None
    release_since: datetime | None
    release_by: Person | None
    endpoint: str | None
    outputs: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    # The latest health probe (observed; None until one ran).
    health: HealthStatus | None = None
    health_reason: str | None = None
    health_at: datetime | None = None

    @property
    def is_live(self) -> bool:
        return self.state.is_live


@dataclass(frozen=True)
class Deployment:
    """Release R placed (or asked to be placed) into environment E, by whom, with what outcome."""

    id: int
    environment: EnvironmentName
    environment_type: str
    release: Version
    kind: DeploymentKind
    status: DeploymentStatus
    requested_by: Person
    requested_at: datetime
    finished_at: datetime | None
    source_environment: EnvironmentName | None
    parameters_fingerprint: str | None
    approved_by: tuple[Person, ...] = ()
    reason: str | None = None
    parameters: dict[str, str] | None = None
    secret_refs: tuple[str, ...] = ()
    overrides: dict[str, str] = field(default_factory=dict)
    environment_parameters: dict[str, str] | None = None
    override_reason: str | None = None
    # The Azure DevOps run that carries it out (stored when the run starts).
    run_url: str | None = None


@dataclass(frozen=True)
class ApprovalDecision:
    """One person's answer to an approval request."""

    person: Person
    decision: Decision
    comment: str
    at: datetime


@dataclass(frozen=True)
class Approval:
    """A gate on a deployment or promotion: who may decide, how many must, until when."""

    id: int
    deployment_id: int
    environment: EnvironmentName
    release: Version
    kind: DeploymentKind
    source_environment: EnvironmentName | None
    state: ApprovalState
    required: int
    approvers: tuple[str, ...]
    requested_by: Person
    requested_at: datetime
    expires_at: datetime
    decisions: tuple[ApprovalDecision, ...] = ()
    override_reason: str | None = None

    @property
    def approvals(self) -> tuple[Person, ...]:
        return tuple(d.person for d in self.decisions if d.decision is Decision.APPROVE)


@dataclass(frozen=True)
class Operation:
    """A persisted long action: kind, target, state and the last step it finished."""

    id: int
    kind: OperationKind
    environment: EnvironmentName
    environment_id: int
    deployment_id: int | None
    state: OperationState
    step: str
    attempts: int
    error: str | None
    created_at: datetime


@dataclass(frozen=True)
class AuditEvent:
    """An append-only fact: who did what to which environment, when."""

    id: int
    at: datetime
    actor: Person
    action: str
    environment: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class MatrixRow:
    """One line of "which release runs where": an environment and what it runs now."""

    environment: EnvironmentName
    type: str
    state: EnvironmentState
    release: Version | None
    since: datetime | None
    by: Person | None
    approved_by: tuple[Person, ...]
    endpoint: str | None


# Beyond this a date plus the duration no longer fits a datetime; nothing needs that long.
LONGEST = timedelta(days=36500)
DURATION_RULE = re.compile(r"^([0-9]+)([smhdw])$")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """'90s', '30m', '8h', '2d', '1w' → timedelta; anything else is refused with an example."""
    match = DURATION_RULE.fullmatch(text.strip())
    if not match or not match.group(1).strip("0"):
        raise InvalidInput(
            f"'{clip(text)}' is not a duration",
            hint="write a positive number and a unit, like 30m, 8h or 2d",
        )
    try:
        # More digits than any real duration: not converted (int() of 5,000 digits is refused).
        if len(match.group(1)) > 15:
            raise OverflowError
        delta = timedelta(seconds=int(match.group(1)) * DURATION_UNITS[match.group(2)])
    except OverflowError:
        delta = LONGEST + LONGEST
    if delta <= LONGEST:
        return delta
    raise InvalidInput(
        f"'{clip(text)}' is longer than any duration Shipyard can keep",
        hint="write a duration of at most a few years, like 8h or 30d",
    )


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
