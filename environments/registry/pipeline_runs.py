"""What the record knows of pipeline runs: deployments by run URL, their gates, keys heard."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from environments.model import DeploymentStatus
from environments.registry.schema import approvals, deployments, request_keys


def run_url_of(conn: sa.Connection, deployment_id: int) -> str | None:
    """The Azure DevOps run behind a deployment, if a pipeline carried it out."""
    found = conn.execute(
        sa.select(deployments.c.run_url).where(deployments.c.id == deployment_id)
    ).scalar()
    return str(found) if found else None


def deployment_of_run(
    conn: sa.Connection, env_id: int, run_url: str
) -> tuple[int, DeploymentStatus] | None:
    """The newest deployment into this environment that this run made (id, status).

    A run is known by its URL; the same run written another way (project name instead of id,
    an older host) is still the same `buildId` in the same environment.
    """
    row: Any = conn.execute(
        sa.select(deployments.c.id, deployments.c.status)
        .where(deployments.c.environment_id == env_id, deployments.c.run_url == run_url)
        .order_by(deployments.c.id.desc())
        .limit(1)
    ).first()
    if row is None and (run := _run_id(run_url)) is not None:
        row = next(
            (
                r
                for r in conn.execute(
                    sa.select(deployments.c.id, deployments.c.status, deployments.c.run_url)
                    .where(
                        deployments.c.environment_id == env_id,
                        deployments.c.run_url.like(f"%buildId={run}%"),
                    )
                    .order_by(deployments.c.id.desc())
                )
                if _run_id(r.run_url) == run
            ),
            None,
        )
    return (int(row.id), DeploymentStatus(row.status)) if row else None


def _run_id(run_url: str | None) -> str | None:
    found = re.search(r"[?&]buildId=(\d+)(?:&|$)", run_url or "")
    return found.group(1) if found else None


def has_approval(conn: sa.Connection, deployment_id: int) -> bool:
    found = conn.execute(
        sa.select(approvals.c.id).where(approvals.c.deployment_id == deployment_id)
    ).first()
    return found is not None


def seen(conn: sa.Connection, key: str) -> bool:
    """Was this request key (a webhook event, a run) remembered before?"""
    found = conn.execute(sa.select(request_keys.c.key).where(request_keys.c.key == key)).first()
    return found is not None
