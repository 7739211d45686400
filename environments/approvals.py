"""Approval requests: finding one, and settling it once decided (queue it, or not promoted)."""

from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy as sa

from environments.errors import InvalidInput, NotFound, clip
from environments.model import (
    Approval,
    ApprovalState,
    DeploymentStatus,
    EnvironmentState,
    OperationKind,
)
from environments.outcome import Hint
from environments.registry import operations as ops
from environments.registry import record as rec
from environments.registry.pipeline_runs import run_url_of


def find(conn: sa.Connection, ref: str) -> Approval:
    """An approval by number (`12`, `#12`) or by the one environment it waits on."""
    ref = ref.removeprefix("#")
    if re.fullmatch(r"[0-9]+", ref):
        if len(ref) > 18:  # beyond any id the record's integer columns can hold
            raise NotFound(
                f"there is no approval #{clip(ref, 24)}",
                hints=Hint("see waiting requests", "env approvals"),
            )
        return rec.get_approval(conn, int(ref))
    waiting = rec.list_approvals(conn, environment=ref)
    if len(waiting) == 1:
        return waiting[0]
    if not waiting:
        raise NotFound(
            f"nothing is waiting for approval on '{clip(ref)}'",
            hints=Hint("see waiting requests", "env approvals"),
        )
    raise InvalidInput(
        f"{len(waiting)} requests wait on {ref}",
        hint=f"name one by number: {', '.join('#' + str(a.id) for a in waiting)}",
    )


def settle(
    conn: sa.Connection, approval: Approval, state: ApprovalState, now: datetime
) -> int | None:
    """After the last decision: queue the deployment, or close it as not promoted.

    A pipeline gate's request (its deployment is a run already waiting in Azure DevOps) queues
    nothing: the run goes on once Shipyard answers the gate, and its follower records the end.
    """
    deployment = rec.get_deployment(conn, approval.deployment_id)
    env = rec.get_environment(conn, deployment.environment)
    if run_url_of(conn, deployment.id) is not None:
        if state is ApprovalState.APPROVED:
            rec.set_deployment_status(conn, deployment.id, DeploymentStatus.RUNNING)
        else:
            rec.set_deployment_status(
                conn,
                deployment.id,
                DeploymentStatus.REJECTED
                if state is ApprovalState.REJECTED
                else DeploymentStatus.EXPIRED,
                at=now,
                reason="not promoted",
            )
        return None
    if state is ApprovalState.APPROVED:
        rec.set_deployment_status(conn, deployment.id, DeploymentStatus.QUEUED)
        kind = (
            OperationKind.CREATE
            if env.state is EnvironmentState.REQUESTED
            else OperationKind.DEPLOY
        )
        return ops.enqueue(
            conn,
            kind=kind,
            env_id=env.id,
            at=now,
            deployment_id=deployment.id,
            key=f"approval-{approval.id}",
        )
    outcome = (
        DeploymentStatus.REJECTED if state is ApprovalState.REJECTED else DeploymentStatus.EXPIRED
    )
    rec.set_deployment_status(conn, deployment.id, outcome, at=now, reason="not promoted")
    if env.state is EnvironmentState.REQUESTED and not rec.open_deployments(conn, env.id):
        # Nothing was ever built for it: the environment simply never comes to be.
        rec.update_environment(
            conn,
            env.id,
            state=EnvironmentState.DESTROYED,
            destroyed_at=now,
            reason="not promoted",
        )
    return None
