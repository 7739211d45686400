"""What every use case shares: its services, and recording a deployment request."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from environments import parameters, pipeline_gate, policy, renderings, windows
from environments.catalog import Catalog, EnvironmentType
from environments.clock import Clock, SystemClock
from environments.errors import Conflict
from environments.model import (
    Approval,
    DeploymentKind,
    DeploymentStatus,
    Environment,
    EnvironmentState,
    OperationKind,
)
from environments.notify import Notifier, SilentNotifier
from environments.outcome import Hint
from environments.policy import Actor
from environments.registry import Database, outbox
from environments.registry import operations as ops
from environments.registry import record as rec

SYSTEM = Actor(person="shipyard", channel=policy.Channel.SCHEDULE)


@dataclass(frozen=True)
class Requested:
    """What a create, deploy or promote led to: a queued operation or a waiting approval."""

    environment: str
    deployment_id: int
    release: str
    operation_id: int | None
    approval: Approval | None
    # Set when the type's deploy window is closed and the request waits for it to open.
    opens_at: datetime | None = None


# Checks a request's parameters the way its provider will, raising a ShipyardError if it would not.
Preflight = Callable[[Environment, Mapping[str, str]], None]


class UseCases:
    """The ground the use cases share: the catalog, the record, the clock, the notifier."""

    def __init__(
        self,
        catalog: Catalog,
        database: Database,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        preflight: Preflight | None = None,
    ) -> None:
        self.catalog = catalog
        self.db = database
        self.clock = clock or SystemClock()
        self.notifier = notifier or SilentNotifier()
        # The provider's own checks of a request's parameters (an ARM template's), asked
        # inside the transaction that would record it: a refusal there records nothing.
        self.preflight = preflight

    def _window(
        self,
        actor: Actor,
        env_type: EnvironmentType,
        now: datetime,
        when_open: bool,
        override: str | None,
    ) -> windows.WindowGate:
        """The type's deploy window, as a gate over the time (policy.authorize ran before)."""
        if actor.channel is policy.Channel.SCHEDULE:
            return windows.WindowGate()
        return windows.gate(
            env_type.name,
            env_type.windows,
            now,
            person=actor.person,
            admin=actor.person in self.catalog.admins,
            when_open=when_open,
            override=override,
        )

    def _windowed(
        self, conn: sa.Connection, requested: Requested, window: windows.WindowGate
    ) -> Requested:
        """Record a window override on the deployment; say when a deferred one may start."""
        if window.override and not window.deferred:
            rec.set_override_reason(conn, requested.deployment_id, window.override)
        if window.deferred:
            return dataclasses.replace(requested, opens_at=window.opens_at)
        return requested

    def _request(
        self,
        conn: sa.Connection,
        env_id: int,
        env_name: str,
        env_type: EnvironmentType,
        release: str,
        deployment_kind: DeploymentKind,
        actor: Actor,
        *,
        now: datetime,
        source_env_id: int | None = None,
        creating: bool | None = None,
        overrides: dict[str, str] | None = None,
        environment_parameters: dict[str, str] | None = None,
    ) -> Requested:
        env = rec.environment_by_id(conn, env_id, lock=True)
        resolved = parameters.resolve(
            self.catalog,
            env_type,
            env.overrides if environment_parameters is None else environment_parameters,
            overrides,
            file_layer=renderings.file_layer(self.catalog, env_type),
        )
        fingerprint = parameters.fingerprint(parameters.values(resolved))
        renderings.check_declared(self.catalog, env_type, resolved)
        if self.preflight is not None:
            self.preflight(env, parameters.values(resolved))
        pipeline_gate.require_deliverable(env_type, rec.get_release(conn, release))
        # A type gated in its pipeline is asked once, when the run reaches the gate.
        gate = None if pipeline_gate.gated_in_pipeline(env_type) else env_type.approval
        deployment_id = rec.insert_deployment(
            conn,
            env_id=env_id,
            release=release,
            kind=deployment_kind,
            status=DeploymentStatus.AWAITING_APPROVAL if gate else DeploymentStatus.QUEUED,
            requested_by=actor.person,
            at=now,
            source_env_id=source_env_id,
            fingerprint=fingerprint,
            overrides=overrides,
            environment_parameters=environment_parameters,
        )
        if gate:
            approval_id = rec.insert_approval(
                conn,
                deployment_id=deployment_id,
                required=gate.required,
                approvers=gate.approvers,
                requested_by=actor.person,
                at=now,
                expires_at=now + gate.timeout,
            )
            outbox.add(
                conn,
                outbox.Event.APPROVAL_REQUESTED,
                at=now,
                environment=env_name,
                approval=approval_id,
            )
            return Requested(
                env_name, deployment_id, release, None, rec.get_approval(conn, approval_id)
            )
        creating = env.state is EnvironmentState.REQUESTED if creating is None else creating
        op_id = ops.enqueue(
            conn,
            kind=OperationKind.CREATE if creating else OperationKind.DEPLOY,
            env_id=env_id,
            at=now,
            deployment_id=deployment_id,
        )
        return Requested(env_name, deployment_id, release, op_id, None)

    def _announce(self, requested: Requested) -> None:
        if requested.approval is not None:
            self.notifier.approval_requested(requested.approval)

    def _usable(self, conn: sa.Connection, name: str) -> Environment:
        """The environment, row-locked for the rest of the write transaction."""
        env = rec.get_environment(conn, name, lock=True)
        if env.state is EnvironmentState.DESTROYING:
            raise Conflict(f"{name} is being destroyed", hint="create a new environment instead")
        return env

    def _not_already(self, conn: sa.Connection, env: Environment, release: str) -> None:
        if env.release == release and env.state is EnvironmentState.READY:
            raise Conflict(f"{env.name} already runs {release}", hint="nothing to do")
        for waiting in rec.open_deployments(conn, env.id):
            if waiting.release == release:
                raise Conflict(
                    f"{release} is already on its way into {env.name} "
                    f"(deployment #{waiting.id}, {waiting.status})",
                    hint="wait for it",
                    hints=Hint("see where it is", "env show", {"name": env.name}),
                )
