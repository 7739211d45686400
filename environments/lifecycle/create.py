"""Use cases: create, extend and destroy an environment."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from environments import inputs, policy
from environments.errors import Conflict, InvalidInput
from environments.lifecycle.requesting import Requested, UseCases
from environments.model import (
    ApprovalState,
    DeploymentKind,
    DeploymentStatus,
    Environment,
    EnvironmentState,
    OperationKind,
    check_environment_name,
)
from environments.policy import Actor
from environments.registry import operations as ops
from environments.registry import record as rec


class Creating(UseCases):
    """An environment's life: created, extended, destroyed."""

    def create(
        self,
        actor: Actor,
        name: str,
        *,
        env_type: str,
        release: str,
        ttl: timedelta | None = None,
        overrides: dict[str, str] | None = None,
    ) -> Requested:
        check_environment_name(name)
        declared = self.catalog.type(env_type)
        policy.require(self.catalog, actor, "create", declared)
        lifetime = policy.lifetime(declared, ttl)
        inputs.require(
            declared.inputs,
            overrides or {},
            type_name=env_type,
            preset=[*self.catalog.parameters, *declared.parameters],
            creating=True,
        )
        now = self.clock.now()
        with self.db.write() as conn:
            rec.release_id(conn, release)
            env_id = rec.insert_environment(
                conn,
                name=name,
                env_type=env_type,
                owner=actor.person,
                at=now,
                expires_at=now + lifetime if lifetime else None,
                overrides=dict(overrides or {}),
            )
            ops.audit(
                conn,
                at=now,
                actor=actor.person,
                action="environment.create",
                environment=name,
                type=env_type,
                release=release,
                ttl=str(lifetime) if lifetime else None,
                overridden=sorted((overrides or {}).keys()),
            )
            requested = self._request(
                conn, env_id, name, declared, release, DeploymentKind.CREATE, actor, now=now
            )
        self._announce(requested)
        return requested

    def extend(self, actor: Actor, name: str, *, by: timedelta) -> Environment:
        now = self.clock.now()
        with self.db.write() as conn:
            env = self._usable(conn, name)
            env_type = self.catalog.type(env.type)
            if env_type.ttl is None or env.expires_at is None:
                raise InvalidInput(f"{name} does not expire", hint="nothing to extend")
            if actor.person != env.owner:
                policy.require(self.catalog, actor, "extend", env_type)
            new_expiry = max(env.expires_at, now) + by
            policy.check_within(env_type, new_expiry - now)
            rec.update_environment(conn, env.id, expires_at=new_expiry, warned_at=None)
            ops.audit(
                conn,
                at=now,
                actor=actor.person,
                action="environment.extend",
                environment=name,
                expires_at=new_expiry.isoformat(),
            )
            return rec.get_environment(conn, name)

    def destroy(self, actor: Actor, name: str, *, force: bool = False) -> int:
        now = self.clock.now()
        with self.db.write() as conn:
            env = rec.get_environment(conn, name, lock=True)
            env_type = self.catalog.type(env.type)
            policy.require_destroyable(self.catalog, actor, env_type, force)
            if env.state is EnvironmentState.DESTROYING:
                raise Conflict(f"{name} is already being destroyed", hint="wait for it")
            op_id = queue_destroy(conn, env, now)
            ops.audit(
                conn,
                at=now,
                actor=actor.person,
                action="environment.destroy",
                environment=name,
                forced=force,
            )
        return op_id


def queue_destroy(conn: sa.Connection, env: Environment, now: datetime) -> int:
    for open_one in rec.open_deployments(conn, env.id):
        if open_one.status is DeploymentStatus.AWAITING_APPROVAL:
            rec.set_deployment_status(
                conn,
                open_one.id,
                DeploymentStatus.CANCELLED,
                at=now,
                reason="environment destroyed",
            )
            for approval in rec.list_approvals(conn, environment=env.name):
                if approval.deployment_id == open_one.id:
                    rec.set_approval_state(conn, approval.id, ApprovalState.EXPIRED, now)
    return ops.enqueue(
        conn, kind=OperationKind.DESTROY, env_id=env.id, at=now, key=f"destroy-{env.id}"
    )
