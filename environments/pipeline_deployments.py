"""The use case of recording a deployment a pipeline made: the core writes it, pipelines call it.

One function writes them, whoever learns of them first — the `record-deployment` step inside the
pipeline, a service hook, the poll — and a deployment is known by (environment, run URL), so
hearing of it twice changes nothing the second time (except adding approvers it lacked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from environments.catalog import Catalog
from environments.errors import NotFound
from environments.model import (
    ApprovalDecision,
    ApprovalState,
    Decision,
    DeploymentKind,
    DeploymentStatus,
    Person,
    Release,
    check_version,
)
from environments.registry import operations as ops
from environments.registry import outbox
from environments.registry import pipeline_runs as runs
from environments.registry import record as rec
from environments.registry.pipeline_runs import run_url_of

__all__ = ["SYSTEM", "PipelineDeployment", "Recorded", "record_deployment", "run_url_of"]

SYSTEM = "azure-devops"


@dataclass(frozen=True)
class PipelineDeployment:
    """What a pipeline says it did: release R into environment E, by run URL, with this outcome."""

    environment: str
    release: str
    status: DeploymentStatus
    run_url: str
    requested_by: str = SYSTEM
    approved_by: tuple[str, ...] = ()
    artifact: str = ""
    build_id: str = ""
    finished_at: datetime | None = None


@dataclass(frozen=True)
class Recorded:
    """What the record made of it."""

    environment: str
    release: str
    deployment_id: int
    status: DeploymentStatus
    run_url: str
    approved_by: tuple[str, ...]
    new: bool
    current: bool

    def line(self) -> str:
        approved = f", approved by {', '.join(self.approved_by)}" if self.approved_by else ""
        verb = "recorded" if self.new else "already recorded"
        return (
            f"{verb}: {self.release} into {self.environment} {self.status} "
            f"(deployment #{self.deployment_id}{approved}) — {self.run_url}"
        )


def record_deployment(
    conn: sa.Connection, catalog: Catalog, done: PipelineDeployment, *, at: datetime
) -> Recorded:
    """Write one pipeline deployment in the caller's write transaction (idempotent).

    The environment must be in the record (NotFound otherwise); a release the record does not
    know yet is added with the run's artifact. A succeeded deployment becomes the environment's
    current release unless a later one already is.
    """
    check_version(done.release)
    env = rec.get_environment(conn, done.environment)
    finished = done.finished_at or at
    _ensure_release(conn, done, at)
    existing = runs.deployment_of_run(conn, env.id, done.run_url)
    new = existing is None
    if existing is None:
        kind = (
            DeploymentKind.PROMOTION
            if catalog.previous_on_path(env.type) is not None
            else DeploymentKind.DEPLOY
        )
        deployment_id = rec.insert_deployment(
            conn,
            env_id=env.id,
            release=done.release,
            kind=kind,
            status=done.status,
            requested_by=done.requested_by,
            at=finished,
        )
        rec.set_run_url(conn, deployment_id, done.run_url)
    else:
        deployment_id = existing[0]
    status = existing[1] if existing is not None else done.status
    # People hear of a pipeline's deployment once: when it is first seen, or when it ends.
    tell = new or (not status.is_terminal and done.status.is_terminal)
    if not status.is_terminal or new:
        status = done.status
        rec.set_deployment_status(
            conn,
            deployment_id,
            status,
            at=finished,
            reason=None if status is DeploymentStatus.SUCCEEDED else f"pipeline run {status}",
        )
    approved_by = _add_approvers(conn, catalog, env.type, deployment_id, done, finished)
    current = False
    if status is DeploymentStatus.SUCCEEDED:
        current = env.release_since is None or env.release_since <= finished
        if current and _current_deployment_id(conn, env.id) != deployment_id:
            rec.set_current_release(
                conn,
                env.id,
                deployment_id=deployment_id,
                release=done.release,
                by=done.requested_by,
                at=finished,
            )
    if new or approved_by:
        ops.audit(
            conn,
            at=at,
            actor=done.requested_by,
            action="pipeline.deployment",
            environment=env.name,
            release=done.release,
            status=str(status),
            run_url=done.run_url,
            deployment=deployment_id,
            approved_by=list(approved_by),
        )
    if tell:
        outbox.add(
            conn,
            outbox.Event.PIPELINE_DEPLOYMENT,
            at=at,
            environment=env.name,
            release=done.release,
            status=str(status),
            run_url=done.run_url,
            by=done.requested_by,
        )
    return Recorded(
        environment=env.name,
        release=done.release,
        deployment_id=deployment_id,
        status=status,
        run_url=done.run_url,
        approved_by=tuple(rec.get_deployment(conn, deployment_id).approved_by),
        new=new,
        current=current,
    )


def _ensure_release(conn: sa.Connection, done: PipelineDeployment, at: datetime) -> None:
    try:
        rec.release_id(conn, done.release)
    except NotFound:
        rec.add_release(
            conn,
            Release(
                version=check_version(done.release),
                artifact=done.artifact or done.run_url,
                build_id=done.build_id,
                commit="",
                added_by=Person(done.requested_by),
                added_at=at,
            ),
        )
        ops.audit(
            conn,
            at=at,
            actor=done.requested_by,
            action="release.add",
            environment=None,
            release=done.release,
            artifact=done.artifact or done.run_url,
            run_url=done.run_url,
        )


def _current_deployment_id(conn: sa.Connection, env_id: int) -> int | None:
    current = rec.current_deployment(conn, env_id)
    return current.id if current else None


def _add_approvers(
    conn: sa.Connection,
    catalog: Catalog,
    env_type: str,
    deployment_id: int,
    done: PipelineDeployment,
    at: datetime,
) -> tuple[str, ...]:
    """Record who approved the run's gate, once: an approved approval with their decisions."""
    people = tuple(dict.fromkeys(p for p in done.approved_by if p))
    if not people:
        return ()
    if runs.has_approval(conn, deployment_id):
        return ()
    gate = catalog.type(env_type).approval
    approval_id = rec.insert_approval(
        conn,
        deployment_id=deployment_id,
        required=gate.required if gate else len(people),
        approvers=_approvers(gate.approvers if gate else (), people),
        requested_by=done.requested_by,
        at=at,
        expires_at=at,
    )
    for person in people:
        rec.add_decision(
            conn,
            approval_id,
            ApprovalDecision(Person(person), Decision.APPROVE, "approved in Azure DevOps", at),
        )
    rec.set_approval_state(conn, approval_id, ApprovalState.APPROVED, at)
    return people


def _approvers(policy: Sequence[str], people: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*policy, *people]))
