"""The use cases: create, deploy, promote, approve, reject, extend, destroy, expire."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from environments import (
    approvals,
    inputs,
    parameters,
    pipeline_gate,
    policy,
    promotion,
    renderings,
    windows,
)
from environments.catalog import Catalog, EnvironmentType
from environments.clock import Clock, SystemClock
from environments.errors import Conflict, InvalidInput
from environments.model import (
    Approval,
    ApprovalDecision,
    ApprovalState,
    Decision,
    DeploymentKind,
    DeploymentStatus,
    Environment,
    EnvironmentState,
    OperationKind,
    Person,
    Release,
    check_environment_name,
    check_version,
)
from environments.notify import Notifier, SilentNotifier
from environments.policy import Actor
from environments.registry import Database, outbox
from environments.registry import loadtests as loadtest_runs
from environments.registry import operations as ops
from environments.registry import record as rec
from environments.registry.schema import environments

SYSTEM = Actor(person="shipyard", channel=policy.Channel.SCHEDULE)
WARN_BEFORE = timedelta(hours=1)


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


@dataclass(frozen=True)
class SweepReport:
    """What one expiry sweep did."""

    warned: tuple[str, ...]
    expired: tuple[str, ...]
    operations: tuple[int, ...]
    approvals_expired: tuple[int, ...]


# Checks a request's parameters the way its provider will, raising a ShipyardError if it would not.
Preflight = Callable[[Environment, Mapping[str, str]], None]


class Lifecycle:
    """Every change to environments goes through here: policy first, then one transaction."""

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

    # --- releases -------------------------------------------------------------------------

    def add_release(
        self, actor: Actor, version: str, artifact: str, *, build_id: str = "", commit: str = ""
    ) -> Release:
        check_version(version)
        if not artifact.strip():
            raise InvalidInput(
                "--artifact is empty",
                hint="pass --artifact with the folder that holds the release's files",
            )
        folder = Path(artifact).expanduser()
        if not folder.is_absolute():
            folder = (Path.cwd() / folder).resolve()
        if not folder.is_dir():
            raise InvalidInput(
                f"artifact folder {folder} does not exist",
                hint="pass --artifact with the folder that holds the release's files",
            )
        release = Release(
            version=check_version(version),
            artifact=str(folder),
            build_id=build_id,
            commit=commit,
            added_by=Person(actor.person),
            added_at=self.clock.now(),
        )
        with self.db.write() as conn:
            rec.add_release(conn, release)
            ops.audit(
                conn,
                at=release.added_at,
                actor=actor.person,
                action="release.add",
                environment=None,
                release=version,
                artifact=str(folder),
            )
        return release

    # --- create, deploy, promote ----------------------------------------------------------

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
        kind = self.catalog.type(env_type)
        policy.require(self.catalog, actor, "create", kind)
        lifetime = policy.lifetime(kind, ttl)
        inputs.require(
            kind.inputs,
            overrides or {},
            type_name=env_type,
            preset=[*self.catalog.parameters, *kind.parameters],
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
                conn, env_id, name, kind, release, DeploymentKind.CREATE, actor, now=now
            )
        self._announce(requested)
        return requested

    def deploy(
        self,
        actor: Actor,
        name: str,
        *,
        release: str,
        overrides: dict[str, str] | None = None,
        when_open: bool = False,
        window_override: str | None = None,
    ) -> Requested:
        """Deploy a release; `overrides` apply to this deployment only. A closed deploy window
        refuses it, unless `when_open` (it waits) or an admin's `window_override` reason."""
        now = self.clock.now()
        with self.db.write() as conn:
            env = self._usable(conn, name)
            kind = self.catalog.type(env.type)
            policy.require(self.catalog, actor, "deploy", kind)
            inputs.require(kind.inputs, overrides or {}, type_name=kind.name, creating=False)
            window = self._window(actor, kind, now, when_open, window_override)
            rec.release_id(conn, release)
            if not overrides:
                self._not_already(conn, env, release)
            requested = self._request(
                conn,
                env.id,
                env.name,
                kind,
                release,
                DeploymentKind.DEPLOY,
                actor,
                now=now,
                overrides=overrides,
            )
            requested = self._windowed(conn, requested, window)
            ops.audit(
                conn,
                at=now,
                actor=actor.person,
                action="deployment.request",
                environment=name,
                release=release,
                deployment=requested.deployment_id,
                overridden=sorted(overrides or {}),
            )
        self._announce(requested)
        return requested

    def _window(
        self,
        actor: Actor,
        kind: EnvironmentType,
        now: datetime,
        when_open: bool,
        override: str | None,
    ) -> windows.WindowGate:
        """The type's deploy window, as a gate over the time (policy.authorize ran before)."""
        if actor.channel is policy.Channel.SCHEDULE:
            return windows.WindowGate()
        return windows.gate(
            kind.name,
            kind.windows,
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

    def promote(
        self,
        actor: Actor,
        target: str,
        *,
        release: str | None = None,
        source: str | None = None,
        override_reason: str | None = None,
        when_open: bool = False,
        window_override: str | None = None,
    ) -> Requested:
        """Deploy into `target` (an environment or a type) what runs one step before it."""
        now = self.clock.now()
        with self.db.write() as conn:
            target_env, target_type = promotion.target(conn, self.catalog, target)
            kind = self.catalog.type(target_type)
            source_env = rec.get_environment(conn, source) if source else None
            previous = self.catalog.previous_on_path(target_type)
            if source_env is not None:
                policy.promotion_target_type(self.catalog, source_env.type, target_type)
            elif previous is None:
                policy.promotion_target_type(self.catalog, target_type, target_type)
            assert previous is not None
            policy.require(self.catalog, actor, "promote", kind)
            window = self._window(actor, kind, now, when_open, window_override)
            version, source_env_id = promotion.promotable(
                conn, self.catalog, previous, release, source_env
            )
            last_verdict = loadtest_runs.last_verdict(conn, version)
            override = promotion.load_test_gate(last_verdict, version, override_reason)
            if target_env is None:
                check_environment_name(target)
                policy.require(self.catalog, actor, "create", kind)
                env_id = rec.insert_environment(
                    conn,
                    name=target,
                    env_type=target_type,
                    owner=actor.person,
                    at=now,
                    expires_at=now + kind.ttl.default if kind.ttl else None,
                    overrides={},
                )
                env_name = target
            else:
                self._not_already(conn, target_env, version)
                env_id, env_name = target_env.id, target_env.name
            requested = self._request(
                conn,
                env_id,
                env_name,
                kind,
                version,
                DeploymentKind.PROMOTION,
                actor,
                now=now,
                source_env_id=source_env_id,
                creating=target_env is None,
            )
            requested = self._windowed(conn, requested, window)
            if window.override:
                override = "; ".join(o for o in (override, window.override) if o)
            if override:
                rec.set_override_reason(conn, requested.deployment_id, override)
                rec.set_deployment_status(
                    conn,
                    requested.deployment_id,
                    DeploymentStatus.AWAITING_APPROVAL
                    if requested.approval
                    else DeploymentStatus.QUEUED,
                    reason=override,
                )
            ops.audit(
                conn,
                at=now,
                actor=actor.person,
                action="promotion.request",
                environment=env_name,
                release=version,
                source=source_env.name if source_env else previous,
                deployment=requested.deployment_id,
                override=override,
            )
        self._announce(requested)
        return requested

    def set_parameters(
        self, actor: Actor, name: str, changes: dict[str, str], unset: list[str]
    ) -> Requested | None:
        """Change an environment's own parameters; a running release is redeployed with them.

        The redeploy goes through the type's gate like any deployment (production changes need
        approval); the environment's parameters change only when that deployment succeeds.
        Returns None when nothing runs yet and the change was applied at once.
        """
        now = self.clock.now()
        parameters.check(changes, "params set")
        with self.db.write() as conn:
            env = self._usable(conn, name)
            kind = self.catalog.type(env.type)
            policy.require(self.catalog, actor, "params_set", kind)
            inputs.require(kind.inputs, changes, type_name=kind.name, creating=False)
            missing = [key for key in unset if key not in env.overrides]
            if missing:
                raise InvalidInput(
                    f"{name} does not set {', '.join(missing)} itself",
                    hint="see its own parameters with 'shipyard params show " + name + "'",
                )
            wanted = {k: v for k, v in env.overrides.items() if k not in unset} | changes
            if wanted == env.overrides:
                raise Conflict(f"{name} already has these parameters", hint="nothing to do")
            ops.audit(
                conn,
                at=now,
                actor=actor.person,
                action="parameters.set",
                environment=name,
                changed=sorted(changes),
                unset=sorted(unset),
            )
            if env.release is None:
                resolved = parameters.resolve(
                    self.catalog,
                    kind,
                    wanted,
                    file_layer=renderings.file_layer(self.catalog, kind),
                )
                renderings.check_declared(self.catalog, kind, resolved)
                rec.update_environment(conn, env.id, overrides=wanted)
                return None
            requested = self._request(
                conn,
                env.id,
                env.name,
                kind,
                env.release,
                DeploymentKind.DEPLOY,
                actor,
                now=now,
                environment_parameters=wanted,
            )
        self._announce(requested)
        return requested

    # --- approvals ------------------------------------------------------------------------

    def approve(self, actor: Actor, ref: str, *, comment: str = "") -> tuple[Approval, int | None]:
        """Record an approval; when it is the N-th, queue the deployment. Returns (approval, op)."""
        return self._decide(actor, ref, Decision.APPROVE, comment)

    def reject(self, actor: Actor, ref: str, *, reason: str) -> Approval:
        if not reason.strip():
            raise InvalidInput("a rejection needs a reason", hint='add --reason "why not"')
        return self._decide(actor, ref, Decision.REJECT, reason)[0]

    def _decide(
        self, actor: Actor, ref: str, decision: Decision, comment: str
    ) -> tuple[Approval, int | None]:
        now = self.clock.now()
        op_id: int | None = None
        with self.db.write() as conn:
            approval = approvals.find(conn, ref)
            if approval.state is ApprovalState.PENDING and approval.expires_at <= now:
                raise Conflict(
                    f"request #{approval.id} expired at {approval.expires_at:%Y-%m-%d %H:%M} UTC",
                    hint="ask for the deployment again",
                )
            policy.require_approver(
                self.catalog,
                actor.person,
                approvers=approval.approvers,
                requested_by=approval.requested_by,
                state=approval.state,
                decisions=approval.decisions,
            )
            mine = ApprovalDecision(Person(actor.person), decision, comment, now)
            rec.add_decision(conn, approval.id, mine)
            ops.audit(
                conn,
                at=now,
                actor=actor.person,
                action=f"approval.{decision.value}",
                environment=approval.environment,
                approval=approval.id,
                release=approval.release,
                comment=comment,
            )
            state = policy.outcome(approval.required, (*approval.decisions, mine))
            if state is not ApprovalState.PENDING:
                rec.set_approval_state(conn, approval.id, state, now)
                op_id = approvals.settle(conn, approval, state, now)
            outbox.add(
                conn,
                outbox.Event.APPROVAL_DECIDED,
                at=now,
                environment=approval.environment,
                approval=approval.id,
                decision=decision.value,
                by=actor.person,
            )
            approval = rec.get_approval(conn, approval.id)
        self.notifier.approval_changed(approval)
        return approval, op_id

    # --- extend, destroy, expire ----------------------------------------------------------

    def extend(self, actor: Actor, name: str, *, by: timedelta) -> Environment:
        now = self.clock.now()
        with self.db.write() as conn:
            env = self._usable(conn, name)
            kind = self.catalog.type(env.type)
            if kind.ttl is None or env.expires_at is None:
                raise InvalidInput(f"{name} does not expire", hint="nothing to extend")
            if actor.person != env.owner:
                policy.require(self.catalog, actor, "extend", kind)
            new_expiry = max(env.expires_at, now) + by
            policy.check_within(kind, new_expiry - now)
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
            kind = self.catalog.type(env.type)
            policy.require_destroyable(self.catalog, actor, kind, force)
            if env.state is EnvironmentState.DESTROYING:
                raise Conflict(f"{name} is already being destroyed", hint="wait for it")
            op_id = self._queue_destroy(conn, env, now)
            ops.audit(
                conn,
                at=now,
                actor=actor.person,
                action="environment.destroy",
                environment=name,
                forced=force,
            )
        return op_id

    def _queue_destroy(self, conn: sa.Connection, env: Environment, now: datetime) -> int:
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

    def expire(self) -> SweepReport:
        """Warn owners an hour ahead, destroy what is past its TTL, expire stale approvals."""
        now = self.clock.now()
        warned: list[Environment] = []
        expired: list[str] = []
        queued: list[int] = []
        stale: list[Approval] = []
        with self.db.write() as conn:
            for listed in rec.list_environments(conn):
                if listed.expires_at is None or listed.expires_at - now > WARN_BEFORE:
                    continue
                # Re-read under a row lock: replicas sweep at once, and an extend may be
                # committing; the locked row is the one to decide on.
                env = rec.environment_by_id(conn, listed.id, lock=True)
                if env.expires_at is None or env.state in (
                    EnvironmentState.DESTROYING,
                    EnvironmentState.DESTROYED,
                ):
                    continue
                if env.expires_at <= now:
                    queued.append(self._queue_destroy(conn, env, now))
                    expired.append(env.name)
                    ops.audit(
                        conn,
                        at=now,
                        actor=SYSTEM.person,
                        action="environment.expire",
                        environment=env.name,
                        expired_at=env.expires_at.isoformat(),
                    )
                elif env.expires_at - now <= WARN_BEFORE and self._warn_once(conn, env, now):
                    warned.append(env)
                    outbox.add(
                        conn,
                        outbox.Event.EXPIRY_WARNING,
                        at=now,
                        environment=env.name,
                        owner=env.owner,
                    )
            for approval in rec.list_approvals(conn):
                if approval.expires_at <= now and rec.set_approval_state(
                    conn, approval.id, ApprovalState.EXPIRED, now
                ):
                    approvals.settle(conn, approval, ApprovalState.EXPIRED, now)
                    ops.audit(
                        conn,
                        at=now,
                        actor=SYSTEM.person,
                        action="approval.expire",
                        environment=approval.environment,
                        approval=approval.id,
                    )
                    outbox.add(
                        conn,
                        outbox.Event.APPROVAL_EXPIRED,
                        at=now,
                        environment=approval.environment,
                        approval=approval.id,
                    )
                    stale.append(rec.get_approval(conn, approval.id))
        for env in warned:
            self.notifier.expiry_warning(env)
        for approval in stale:
            self.notifier.approval_changed(approval)
        return SweepReport(
            warned=tuple(e.name for e in warned),
            expired=tuple(expired),
            operations=tuple(queued),
            approvals_expired=tuple(a.id for a in stale),
        )

    def _warn_once(self, conn: sa.Connection, env: Environment, now: datetime) -> bool:
        result = conn.execute(
            environments.update()
            .where(environments.c.id == env.id, environments.c.warned_at.is_(None))
            .values(warned_at=now)
        )
        return result.rowcount == 1

    def find_approval(self, conn: sa.Connection, ref: str) -> Approval:
        """An approval by number (`12`, `#12`) or by the one environment it waits on."""
        return approvals.find(conn, ref)

    # --- helpers --------------------------------------------------------------------------

    def _request(
        self,
        conn: sa.Connection,
        env_id: int,
        env_name: str,
        kind: EnvironmentType,
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
            kind,
            env.overrides if environment_parameters is None else environment_parameters,
            overrides,
            file_layer=renderings.file_layer(self.catalog, kind),
        )
        fingerprint = parameters.fingerprint(parameters.values(resolved))
        renderings.check_declared(self.catalog, kind, resolved)
        if self.preflight is not None:
            self.preflight(env, parameters.values(resolved))
        pipeline_gate.require_deliverable(kind, rec.get_release(conn, release))
        # A type gated in its pipeline is asked once, when the run reaches the gate.
        gate = None if pipeline_gate.gated_in_pipeline(kind) else kind.approval
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
                    hint="wait for it, or see 'shipyard env show " + env.name + "'",
                )
