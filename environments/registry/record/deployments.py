"""Deployments in the record: inserted, their status and run, who approved them, history."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from environments.model import (
    Decision,
    Deployment,
    DeploymentKind,
    DeploymentStatus,
    EnvironmentName,
    Person,
    Version,
)
from environments.registry.record.releases import release_id
from environments.registry.schema import (
    approval_decisions,
    approvals,
    deployments,
    environments,
    releases,
)

SOURCE = environments.alias("source")
_deploy_select = sa.select(
    deployments,
    environments.c.name.label("environment_name"),
    environments.c.type.label("environment_type"),
    releases.c.version.label("release_version"),
    SOURCE.c.name.label("source_name"),
).select_from(
    deployments.join(environments, environments.c.id == deployments.c.environment_id)
    .join(releases, releases.c.id == deployments.c.release_id)
    .outerjoin(SOURCE, SOURCE.c.id == deployments.c.source_environment_id)
)


def approvers_of(conn: sa.Connection, deployment_ids: Sequence[int]) -> dict[int, list[str]]:
    """Who approved each of these deployments, in the order they decided."""
    if not deployment_ids:
        return {}
    rows = conn.execute(
        sa.select(approvals.c.deployment_id, approval_decisions.c.person)
        .join(approval_decisions, approval_decisions.c.approval_id == approvals.c.id)
        .where(
            approvals.c.deployment_id.in_(deployment_ids),
            approval_decisions.c.decision == Decision.APPROVE.value,
        )
        .order_by(approval_decisions.c.id)
    )
    found: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        found[row.deployment_id].append(row.person)
    return found


def _deployments(conn: sa.Connection, rows: Iterable[sa.Row[Any]]) -> list[Deployment]:
    rows = list(rows)
    approvers = approvers_of(conn, [row.id for row in rows])
    return [
        Deployment(
            id=row.id,
            environment=EnvironmentName(row.environment_name),
            environment_type=row.environment_type,
            release=Version(row.release_version),
            kind=DeploymentKind(row.kind),
            status=DeploymentStatus(row.status),
            requested_by=Person(row.requested_by),
            requested_at=row.requested_at,
            finished_at=row.finished_at,
            source_environment=EnvironmentName(row.source_name) if row.source_name else None,
            parameters_fingerprint=row.parameters_fingerprint,
            approved_by=tuple(Person(p) for p in approvers.get(row.id, [])),
            reason=row.reason,
            parameters=row.parameters,
            secret_refs=tuple(row.secret_refs or ()),
            overrides=dict(row.overrides or {}),
            environment_parameters=row.environment_parameters,
            override_reason=row.override_reason,
            run_url=row.run_url or None,
        )
        for row in rows
    ]


def insert_deployment(
    conn: sa.Connection,
    *,
    env_id: int,
    release: str,
    kind: DeploymentKind,
    status: DeploymentStatus,
    requested_by: str,
    at: datetime,
    source_env_id: int | None = None,
    fingerprint: str | None = None,
    overrides: dict[str, str] | None = None,
    environment_parameters: dict[str, str] | None = None,
) -> int:
    return int(
        conn.execute(
            deployments.insert()
            .values(
                environment_id=env_id,
                release_id=release_id(conn, release),
                kind=kind.value,
                status=status.value,
                requested_by=requested_by,
                requested_at=at,
                source_environment_id=source_env_id,
                parameters_fingerprint=fingerprint,
                overrides=overrides or {},
                environment_parameters=environment_parameters,
            )
            .returning(deployments.c.id)
        ).scalar_one()
    )


def get_deployment(conn: sa.Connection, deployment_id: int) -> Deployment:
    rows = conn.execute(_deploy_select.where(deployments.c.id == deployment_id))
    return _deployments(conn, rows)[0]


def current_deployment(conn: sa.Connection, env_id: int) -> Deployment | None:
    """The deployment that put the running release into this environment, if any."""
    deployment_id = conn.execute(
        sa.select(environments.c.release_deployment_id).where(environments.c.id == env_id)
    ).scalar()
    return get_deployment(conn, deployment_id) if deployment_id else None


def set_run_url(conn: sa.Connection, deployment_id: int, run_url: str) -> None:
    """The pipeline run that carried a deployment out (a service hook then finds it recorded)."""
    conn.execute(
        deployments.update().where(deployments.c.id == deployment_id).values(run_url=run_url)
    )


def set_deployment_status(
    conn: sa.Connection,
    deployment_id: int,
    status: DeploymentStatus,
    *,
    at: datetime | None = None,
    reason: str | None = None,
    fingerprint: str | None = None,
    parameters: dict[str, str] | None = None,
    secret_refs: list[str] | None = None,
) -> None:
    values: dict[str, Any] = {"status": status.value}
    if parameters is not None:
        values["parameters"] = parameters
        values["secret_refs"] = secret_refs or []
    if status.is_terminal:
        values["finished_at"] = at
    if reason is not None:
        values["reason"] = reason
    if fingerprint is not None:
        values["parameters_fingerprint"] = fingerprint
    conn.execute(deployments.update().where(deployments.c.id == deployment_id).values(**values))


def open_deployments(conn: sa.Connection, env_id: int) -> list[Deployment]:
    """Deployments into this environment that are not finished (waiting, queued or running)."""
    open_states = [s.value for s in DeploymentStatus if not s.is_terminal]
    rows = conn.execute(
        _deploy_select.where(
            deployments.c.environment_id == env_id, deployments.c.status.in_(open_states)
        ).order_by(deployments.c.id)
    )
    return _deployments(conn, rows)


def history(conn: sa.Connection, env_name: str, limit: int = 20) -> list[Deployment]:
    """Newest first, across every environment that ever had this name."""
    env_ids = sa.select(environments.c.id).where(environments.c.name == env_name)
    rows = conn.execute(
        _deploy_select.where(deployments.c.environment_id.in_(env_ids))
        .order_by(deployments.c.id.desc())
        .limit(limit)
    )
    return _deployments(conn, rows)


def set_override_reason(conn: sa.Connection, deployment_id: int, reason: str) -> None:
    """Why a deployment goes ahead past a blocking load test: kept for good, shown to approvers."""
    conn.execute(
        deployments.update().where(deployments.c.id == deployment_id).values(override_reason=reason)
    )
