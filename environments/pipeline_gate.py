"""The pipeline gate: for types deployed by Azure DevOps, Shipyard's approval *is* the gate.

A type with `engine: azure-pipelines` and an `approval:` policy is gated once, in the run: the
promotion queues at once (no approval first), the run Shipyard starts waits at the Azure DevOps
check of the environment, and that wait becomes one Shipyard approval request (`open_gate`),
decided in Slack or the CLI under the type's policy (N of M, never the requester). Its outcome
is what Shipyard answers Azure DevOps (pipelines/ado_gate.py in the composition root).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from environments.catalog import Catalog, EnvironmentType
from environments.errors import Conflict, NotPromoted
from environments.model import (
    Approval,
    ApprovalState,
    DeploymentKind,
    DeploymentStatus,
    EnvironmentState,
    Release,
)
from environments.outcome import Hint
from environments.registry import operations as ops
from environments.registry import outbox
from environments.registry import pipeline_runs as runs
from environments.registry import record as rec
from environments.registry.schema import approvals

__all__ = ["gate_of_run", "gated_in_pipeline", "not_promoted", "open_gate", "require_deliverable"]


def gated_in_pipeline(env_type: EnvironmentType) -> bool:
    """Is this type's approval asked for by its pipeline's gate rather than before the run?"""
    return env_type.engine == "azure-pipelines" and env_type.approval is not None


def require_deliverable(env_type: EnvironmentType, release: Release) -> None:
    """A run deploys the release's recorded build (or its tag): never the default branch."""
    if env_type.engine != "azure-pipelines" or env_type.azure_devops.source != "build":
        return
    if release.build_run is None and not release.build_number.strip():
        raise Conflict(
            f"release {release.version} has no recorded build run to deploy",
            hint=f"set azure_devops: {{source: tag}} on type '{env_type.name}' to deploy "
            f"refs/tags/{release.version}",
            hints=Hint(
                "record the build that made it, in the build stage",
                "pipeline register-release",
                {"version": release.version},
            ),
        )


def open_gate(
    conn: sa.Connection,
    catalog: Catalog,
    *,
    environment: str,
    run_url: str,
    release: str,
    requested_by: str,
    at: datetime,
) -> tuple[Approval, bool] | None:
    """The Shipyard approval request for a run waiting at an environment's gate: (it, new).

    The deployment is the run's own row (written when Shipyard started the run; written now for
    a run started elsewhere), so its requester is the one who asked Shipyard — whatever Azure
    DevOps says. None when the environment's type has no approval policy (not Shipyard's gate).
    """
    env = rec.get_environment(conn, environment)
    gate = catalog.type(env.type).approval
    if gate is None:
        return None
    found = runs.deployment_of_run(conn, env.id, run_url)
    if found is None:
        found = _starting(conn, env.id, release, run_url)
    if found is None:
        deployment_id = rec.insert_deployment(
            conn,
            env_id=env.id,
            release=release,
            kind=DeploymentKind.PROMOTION
            if catalog.previous_on_path(env.type) is not None
            else DeploymentKind.DEPLOY,
            status=DeploymentStatus.AWAITING_APPROVAL,
            requested_by=requested_by,
            at=at,
        )
        rec.set_run_url(conn, deployment_id, run_url)
    else:
        deployment_id = found[0]
    existing = _approval_of(conn, deployment_id)
    if existing is not None:
        return existing, False
    deployment = rec.get_deployment(conn, deployment_id)
    approval_id = rec.insert_approval(
        conn,
        deployment_id=deployment_id,
        required=gate.required,
        approvers=gate.approvers,
        requested_by=deployment.requested_by,
        at=at,
        expires_at=at + gate.timeout,
    )
    if not deployment.status.is_terminal:
        rec.set_deployment_status(conn, deployment_id, DeploymentStatus.AWAITING_APPROVAL)
    ops.audit(
        conn,
        at=at,
        actor=deployment.requested_by,
        action="pipeline.gate",
        environment=env.name,
        release=deployment.release,
        approval=approval_id,
        run_url=run_url,
    )
    outbox.add(
        conn, outbox.Event.APPROVAL_REQUESTED, at=at, environment=env.name, approval=approval_id
    )
    return rec.get_approval(conn, approval_id), True


def gate_of_run(conn: sa.Connection, environment: str, run_url: str) -> Approval | None:
    """The approval request Shipyard opened for this run's gate, if any."""
    env = rec.find_environment(conn, environment)
    if env is None:
        return None
    found = runs.deployment_of_run(conn, env.id, run_url)
    return _approval_of(conn, found[0]) if found else None


def _starting(
    conn: sa.Connection, env_id: int, release: str, run_url: str
) -> tuple[int, DeploymentStatus] | None:
    """The deployment whose run this is when its start is not written yet (the gate's hook
    came first): the one running deployment of this release without a run. It gets the run."""
    running = [
        d
        for d in rec.open_deployments(conn, env_id)
        if d.status is DeploymentStatus.RUNNING and d.release == release and not d.run_url
    ]
    if len(running) != 1:
        return None
    rec.set_run_url(conn, running[0].id, run_url)
    return running[0].id, running[0].status


def _approval_of(conn: sa.Connection, deployment_id: int) -> Approval | None:
    approval_id = conn.execute(
        sa.select(approvals.c.id)
        .where(approvals.c.deployment_id == deployment_id)
        .order_by(approvals.c.id.desc())
        .limit(1)
    ).scalar()
    return rec.get_approval(conn, int(approval_id)) if approval_id else None


def not_promoted(
    conn: sa.Connection,
    env_id: int,
    deployment_id: int,
    operation: int,
    outcome: NotPromoted,
    *,
    at: datetime,
) -> None:
    """The run's gate was rejected or timed out: the deployment ends `rejected` (or `expired`,
    or as Shipyard's request already settled it); the environment serves what it had."""
    deployment = rec.get_deployment(conn, deployment_id)
    status = deployment.status
    if status not in (DeploymentStatus.REJECTED, DeploymentStatus.EXPIRED):
        status = DeploymentStatus.EXPIRED if outcome.timed_out else DeploymentStatus.REJECTED
    rec.set_deployment_status(conn, deployment_id, status, at=at, reason="not promoted")
    request = _approval_of(conn, deployment_id)
    if request is not None and not request.state.is_terminal:
        # Ended in Azure DevOps (timed out there): the request in Slack ends with it.
        ended = (
            ApprovalState.EXPIRED if status is DeploymentStatus.EXPIRED else ApprovalState.REJECTED
        )
        rec.set_approval_state(conn, request.id, ended, at)
        outbox.add(
            conn,
            outbox.Event.APPROVAL_EXPIRED,
            at=at,
            environment=request.environment,
            approval=request.id,
        )
    env = rec.environment_by_id(conn, env_id)
    rec.update_environment(conn, env_id, state=EnvironmentState.READY, reason=None)
    ops.audit(
        conn,
        at=at,
        actor="shipyard",
        action="deployment.not_promoted",
        environment=env.name,
        release=deployment.release,
        deployment=deployment_id,
        status=str(status),
        reason=outcome.one_line(),
    )
    outbox.add(
        conn,
        outbox.Event.READY,
        at=at,
        environment=env.name,
        operation=operation,
        release=env.release,
        endpoint=env.endpoint,
        not_promoted=deployment.release,
        reason=outcome.reason,
        run_url=deployment.run_url,
    )
