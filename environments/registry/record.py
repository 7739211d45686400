"""Reads and writes of releases, environments, deployments and approvals on one connection."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from environments.errors import Conflict, NotFound, clip
from environments.model import (
    Approval,
    ApprovalDecision,
    ApprovalState,
    Decision,
    Deployment,
    DeploymentKind,
    DeploymentStatus,
    Environment,
    EnvironmentName,
    EnvironmentState,
    HealthStatus,
    MatrixRow,
    Person,
    Release,
    Version,
)
from environments.registry.schema import (
    approval_decisions,
    approvals,
    deployments,
    environments,
    releases,
)

LIVE = environments.c.state != EnvironmentState.DESTROYED.value


# --- releases -------------------------------------------------------------------------------


def _release(row: sa.Row[Any]) -> Release:
    return Release(
        version=Version(row.version),
        artifact=row.artifact,
        build_id=row.build_id,
        commit=row.commit,
        added_by=Person(row.added_by),
        added_at=row.added_at,
        build_run=row.build_run,
        build_number=row.build_number,
        build_artifact=row.build_artifact,
        source_ref=row.source_ref,
    )


def add_release(conn: sa.Connection, release: Release) -> None:
    if conn.execute(sa.select(releases.c.id).where(releases.c.version == release.version)).first():
        raise Conflict(
            f"release {release.version} is already in the record",
            hint="releases are immutable: give the new build a new version",
        )
    conn.execute(
        releases.insert().values(
            version=release.version,
            artifact=release.artifact,
            build_id=release.build_id,
            commit=release.commit,
            added_by=release.added_by,
            added_at=release.added_at,
            build_run=release.build_run,
            build_number=release.build_number,
            build_artifact=release.build_artifact,
            source_ref=release.source_ref,
        )
    )


def release_id(conn: sa.Connection, version: str) -> int:
    found = conn.execute(sa.select(releases.c.id).where(releases.c.version == version)).scalar()
    if found is None:
        raise NotFound(
            f"there is no release {clip(version)} in the record",
            hint="add it with 'shipyard release add VERSION --artifact PATH' "
            "or see 'shipyard release list'",
        )
    return int(found)


def get_release(conn: sa.Connection, version: str) -> Release:
    row = conn.execute(sa.select(releases).where(releases.c.id == release_id(conn, version))).one()
    return _release(row)


def list_releases(conn: sa.Connection, limit: int = 100) -> list[Release]:
    rows = conn.execute(sa.select(releases).order_by(releases.c.id.desc()).limit(limit))
    return [_release(row) for row in rows]


# --- environments ---------------------------------------------------------------------------

_release_version = releases.c.version.label("release_version")
_env_select = sa.select(environments, _release_version).select_from(
    environments.outerjoin(releases, releases.c.id == environments.c.release_id)
)


def _environment(row: sa.Row[Any]) -> Environment:
    return Environment(
        id=row.id,
        name=EnvironmentName(row.name),
        type=row.type,
        state=EnvironmentState(row.state),
        owner=Person(row.owner),
        created_at=row.created_at,
        expires_at=row.expires_at,
        release=Version(row.release_version) if row.release_version else None,
        release_since=row.release_since,
        release_by=Person(row.release_by) if row.release_by else None,
        endpoint=row.endpoint,
        outputs=dict(row.outputs or {}),
        overrides=dict(row.overrides or {}),
        reason=row.reason,
        health=HealthStatus(row.health_status) if row.health_status else None,
        health_reason=row.health_reason,
        health_at=row.health_at,
    )


def _locked(query: sa.Select[Any], lock: bool) -> sa.Select[Any]:
    """With `lock`, the environment's row stays locked until the transaction ends (PostgreSQL
    `FOR UPDATE`; SQLite's write transaction already holds the whole database), so a
    read-modify-write of an environment cannot lose a concurrent one's change."""
    return query.with_for_update(of=environments) if lock else query


def find_environment(conn: sa.Connection, name: str, *, lock: bool = False) -> Environment | None:
    row = conn.execute(_locked(_env_select.where(environments.c.name == name, LIVE), lock)).first()
    return _environment(row) if row else None


def get_environment(conn: sa.Connection, name: str, *, lock: bool = False) -> Environment:
    found = find_environment(conn, name, lock=lock)
    if found is None:
        raise NotFound(
            f"there is no environment '{clip(name)}'",
            hint="see 'shipyard env list', or create it with 'shipyard env create'",
        )
    return found


def environment_by_id(conn: sa.Connection, env_id: int, *, lock: bool = False) -> Environment:
    query = _locked(_env_select.where(environments.c.id == env_id), lock)
    return _environment(conn.execute(query).one())


def list_environments(
    conn: sa.Connection, *, env_type: str | None = None, owner: str | None = None
) -> list[Environment]:
    query = _env_select.where(LIVE).order_by(environments.c.type, environments.c.name)
    if env_type:
        query = query.where(environments.c.type == env_type)
    if owner:
        query = query.where(environments.c.owner == owner)
    return [_environment(row) for row in conn.execute(query)]


def insert_environment(
    conn: sa.Connection,
    *,
    name: str,
    env_type: str,
    owner: str,
    at: datetime,
    expires_at: datetime | None,
    overrides: dict[str, str],
) -> int:
    if find_environment(conn, name):
        raise Conflict(
            f"environment '{name}' already exists",
            hint="pick another name, or deploy into it with 'shipyard env deploy'",
        )
    return int(
        conn.execute(
            environments.insert()
            .values(
                name=name,
                type=env_type,
                state=EnvironmentState.REQUESTED.value,
                owner=owner,
                created_at=at,
                expires_at=expires_at,
                outputs={},
                overrides=overrides,
            )
            .returning(environments.c.id)
        ).scalar_one()
    )


def update_environment(conn: sa.Connection, env_id: int, **values: Any) -> None:
    if isinstance(values.get("state"), EnvironmentState):
        values["state"] = values["state"].value
    conn.execute(environments.update().where(environments.c.id == env_id).values(**values))


def set_current_release(
    conn: sa.Connection, env_id: int, *, deployment_id: int, release: str, by: str, at: datetime
) -> None:
    update_environment(
        conn,
        env_id,
        release_id=release_id(conn, release),
        release_since=at,
        release_by=by,
        release_deployment_id=deployment_id,
    )


# --- deployments ----------------------------------------------------------------------------

_source = environments.alias("source")
_deploy_select = sa.select(
    deployments,
    environments.c.name.label("environment_name"),
    environments.c.type.label("environment_type"),
    releases.c.version.label("release_version"),
    _source.c.name.label("source_name"),
).select_from(
    deployments.join(environments, environments.c.id == deployments.c.environment_id)
    .join(releases, releases.c.id == deployments.c.release_id)
    .outerjoin(_source, _source.c.id == deployments.c.source_environment_id)
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


def matrix(
    conn: sa.Connection,
    *,
    release: str | None = None,
    env_type: str | None = None,
    limit: int = 500,
) -> list[MatrixRow]:
    """Which release runs where (live environments), since when, by whom, approved by whom.

    Reads only the columns it shows, and finds approvers with a subquery rather than a long
    IN-list, which PostgreSQL misestimates (see docs/benchmarks.md).
    """
    query = (
        sa.select(
            environments.c.name,
            environments.c.type,
            environments.c.state,
            environments.c.release_since,
            environments.c.release_by,
            environments.c.release_deployment_id,
            environments.c.endpoint,
            _release_version,
        )
        .select_from(environments.outerjoin(releases, releases.c.id == environments.c.release_id))
        .where(LIVE)
        .order_by(environments.c.type, environments.c.name)
        .limit(limit)
    )
    if release is not None:
        query = query.where(environments.c.release_id == release_id(conn, release))
    if env_type is not None:
        query = query.where(environments.c.type == env_type)
    rows = conn.execute(query).all()
    approvers: dict[int, list[str]] = defaultdict(list)
    if any(row.release_deployment_id for row in rows):
        shown = sa.select(query.subquery().c.release_deployment_id)
        for found in conn.execute(
            sa.select(approvals.c.deployment_id, approval_decisions.c.person)
            .join(approval_decisions, approval_decisions.c.approval_id == approvals.c.id)
            .where(
                approvals.c.deployment_id.in_(shown),
                approval_decisions.c.decision == Decision.APPROVE.value,
            )
            .order_by(approval_decisions.c.id)
        ):
            approvers[found.deployment_id].append(found.person)
    return [
        MatrixRow(
            environment=EnvironmentName(row.name),
            type=row.type,
            state=EnvironmentState(row.state),
            release=Version(row.release_version) if row.release_version else None,
            since=row.release_since,
            by=Person(row.release_by) if row.release_by else None,
            approved_by=tuple(Person(p) for p in approvers.get(row.release_deployment_id, [])),
            endpoint=row.endpoint,
        )
        for row in rows
    ]


# --- approvals ------------------------------------------------------------------------------

_approval_select = sa.select(
    approvals,
    deployments.c.kind,
    deployments.c.override_reason,
    environments.c.name.label("environment_name"),
    releases.c.version.label("release_version"),
    _source.c.name.label("source_name"),
).select_from(
    approvals.join(deployments, deployments.c.id == approvals.c.deployment_id)
    .join(environments, environments.c.id == deployments.c.environment_id)
    .join(releases, releases.c.id == deployments.c.release_id)
    .outerjoin(_source, _source.c.id == deployments.c.source_environment_id)
)


def insert_approval(
    conn: sa.Connection,
    *,
    deployment_id: int,
    required: int,
    approvers: Sequence[str],
    requested_by: str,
    at: datetime,
    expires_at: datetime,
) -> int:
    return int(
        conn.execute(
            approvals.insert()
            .values(
                deployment_id=deployment_id,
                state=ApprovalState.PENDING.value,
                required=required,
                approvers=list(approvers),
                requested_by=requested_by,
                requested_at=at,
                expires_at=expires_at,
            )
            .returning(approvals.c.id)
        ).scalar_one()
    )


def _approvals(conn: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[Approval]:
    decisions: dict[int, list[ApprovalDecision]] = defaultdict(list)
    if rows:
        for d in conn.execute(
            sa.select(approval_decisions)
            .where(approval_decisions.c.approval_id.in_([row.id for row in rows]))
            .order_by(approval_decisions.c.id)
        ):
            decisions[d.approval_id].append(
                ApprovalDecision(Person(d.person), Decision(d.decision), d.comment, d.at)
            )
    return [
        Approval(
            id=row.id,
            deployment_id=row.deployment_id,
            environment=EnvironmentName(row.environment_name),
            release=Version(row.release_version),
            kind=DeploymentKind(row.kind),
            source_environment=EnvironmentName(row.source_name) if row.source_name else None,
            state=ApprovalState(row.state),
            required=row.required,
            approvers=tuple(row.approvers),
            requested_by=Person(row.requested_by),
            requested_at=row.requested_at,
            expires_at=row.expires_at,
            decisions=tuple(decisions.get(row.id, [])),
            override_reason=row.override_reason,
        )
        for row in rows
    ]


def get_approval(conn: sa.Connection, approval_id: int) -> Approval:
    rows = conn.execute(_approval_select.where(approvals.c.id == approval_id)).all()
    if not rows:
        raise NotFound(
            f"there is no approval request #{clip(str(approval_id))}",
            hint="see waiting requests with 'shipyard env approvals'",
        )
    return _approvals(conn, rows)[0]


def list_approvals(
    conn: sa.Connection,
    *,
    state: ApprovalState | None = ApprovalState.PENDING,
    environment: str | None = None,
) -> list[Approval]:
    query = _approval_select.order_by(approvals.c.id)
    if state is not None:
        query = query.where(approvals.c.state == state.value)
    if environment is not None:
        query = query.where(environments.c.name == environment, LIVE)
    return _approvals(conn, conn.execute(query).all())


def add_decision(conn: sa.Connection, approval_id: int, decision: ApprovalDecision) -> None:
    conn.execute(
        approval_decisions.insert().values(
            approval_id=approval_id,
            person=decision.person,
            decision=decision.decision.value,
            comment=decision.comment,
            at=decision.at,
        )
    )


def set_approval_state(
    conn: sa.Connection, approval_id: int, state: ApprovalState, at: datetime
) -> bool:
    """Move a pending approval to `state`; False when someone else already decided it."""
    result = conn.execute(
        approvals.update()
        .where(approvals.c.id == approval_id, approvals.c.state == ApprovalState.PENDING.value)
        .values(state=state.value, decided_at=at)
    )
    return result.rowcount == 1


def set_override_reason(conn: sa.Connection, deployment_id: int, reason: str) -> None:
    """Why a deployment goes ahead past a blocking load test: kept for good, shown to approvers."""
    conn.execute(
        deployments.update().where(deployments.c.id == deployment_id).values(override_reason=reason)
    )


def deployed_release_of_type(conn: sa.Connection, env_type: str) -> str | None:
    """The release most recently put into a live environment of this type, if any."""
    row = conn.execute(
        sa.select(releases.c.version)
        .join(environments, releases.c.id == environments.c.release_id)
        .where(
            environments.c.type == env_type,
            environments.c.state.not_in(("destroying", "destroyed")),
        )
        .order_by(environments.c.release_since.desc(), environments.c.id.desc())
        .limit(1)
    ).first()
    return str(row[0]) if row else None
