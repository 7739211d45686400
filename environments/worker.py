"""Runs operation rows step by step; resumes unfinished ones after a crash or restart."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta

import sqlalchemy as sa

from environments import parameters, pipeline_gate, redaction, renderings, windows
from environments.catalog import Catalog
from environments.clock import Clock, SystemClock
from environments.errors import NotPromoted, ProviderError, ShipyardError
from environments.model import (
    DeploymentKind,
    DeploymentStatus,
    Environment,
    EnvironmentState,
    Operation,
    OperationKind,
    OperationState,
)
from environments.notify import Notifier, SilentNotifier
from environments.providers.base import ChecksParameters, DeliveryEngine, Provider
from environments.registry import Database, outbox
from environments.registry import operations as ops
from environments.registry import record as rec
from environments.registry.schema import operations as operations_table

LEASE = timedelta(seconds=30)
HEARTBEAT_SECONDS = 5.0


class Worker:
    """Claims operations (one per environment at a time, across processes) and runs them."""

    def __init__(
        self,
        catalog: Catalog,
        database: Database,
        providers: Mapping[str, Provider],
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.catalog = catalog
        self.db = database
        self.providers = providers
        self.clock = clock or SystemClock()
        self.notifier = notifier or SilentNotifier()
        self.host = socket.gethostname()
        self._identity = threading.local()

    @property
    def owner(self) -> str:
        """This thread's identity: `host:pid:random`, one per thread (and per process).

        One Worker is shared by serve's background thread and the Slack operation pool: were
        they one owner, each could take the other's running operation as its own.
        """
        owner: str | None = getattr(self._identity, "owner", None)
        if owner is None or not owner.startswith(f"{self.host}:{os.getpid()}:"):
            owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
            self._identity.owner = owner
        return owner

    def provider_for(self, env_type: str) -> Provider:
        """The type's provider, or its pipeline engine when the type deploys through one."""
        return self.providers[self._provider_key(env_type)]

    def _provider_key(self, env_type: str) -> str:
        kind = self.catalog.type(env_type)
        return kind.provider if kind.engine == "direct" else f"{kind.provider}+{kind.engine}"

    def preflight(self, environment: Environment, supplied: Mapping[str, str]) -> None:
        """What the type's provider can check before anything is recorded (see Lifecycle)."""
        provider = self.providers.get(self._provider_key(environment.type))
        if isinstance(provider, ChecksParameters):
            provider.check(environment, supplied)

    # --- running ----------------------------------------------------------------------------

    def run_pending(self, *, limit: int = 50) -> list[Operation]:
        """Run every operation that can run now (queued, or abandoned by a dead worker)."""
        self._free_dead_owners()
        done = []
        with self.db.read() as conn:
            candidates = ops.runnable(conn, self.clock.now(), limit)
        for op in candidates:
            finished = self.run(op.id, wait=False)
            if finished is not None:
                done.append(finished)
        return done

    def run(
        self,
        op_id: int,
        *,
        wait: bool = True,
        on_wait: Callable[[Operation], None] | None = None,
        poll: float = 0.2,
    ) -> Operation | None:
        """Run one operation to its end. With wait, wait for a busy environment or another worker.

        Returns the finished operation, or None when it could not be claimed and wait is False.
        """
        told = False
        while True:
            self._free_dead_owners()
            if self._held(op_id):
                return None  # its type's deploy window is closed: it starts when it opens
            with self.db.write() as conn:
                claimed = ops.claim(
                    conn, op_id, owner=self.owner, now=self.clock.now(), lease=LEASE
                )
                op = ops.get_operation(conn, op_id)
            if claimed:
                return self._execute(op, self.owner)
            if op.state.is_terminal:
                return op
            if not wait:
                return None
            if on_wait is not None and not told:
                on_wait(op)
                told = True
            time.sleep(poll)

    def _held(self, op_id: int) -> bool:
        """A queued deployment waits while its type's deploy window is closed (not overridden)."""
        with self.db.read() as conn:
            op = ops.get_operation(conn, op_id)
            if op.state is not OperationState.QUEUED or op.deployment_id is None:
                return False
            kind = self.catalog.type(rec.environment_by_id(conn, op.environment_id).type)
            if kind.windows is None:
                return False
            deployment = rec.get_deployment(conn, op.deployment_id)
        if deployment.kind not in (DeploymentKind.DEPLOY, DeploymentKind.PROMOTION):
            return False
        return windows.held(kind.windows, self.clock.now(), deployment.override_reason)

    def _execute(self, op: Operation, owner: str) -> Operation:
        stop = threading.Event()
        lost = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(op.id, owner, stop, lost), daemon=True
        )
        beat.start()
        try:
            with self.db.read() as conn:
                env = rec.environment_by_id(conn, op.environment_id)
            provider = self.provider_for(env.type)
            steps = {
                OperationKind.CREATE: (("provision", self._provision), ("deploy", self._deploy)),
                OperationKind.DEPLOY: (("deploy", self._deploy),),
                OperationKind.DESTROY: (("destroy", self._destroy),),
            }[op.kind]
            names = [name for name, _ in steps]
            start = names.index(op.step) + 1 if op.step in names else 0
            for name, step in steps[start:]:
                if lost.is_set():
                    raise TakenOver(op.id)
                step(op, provider)
                with self.db.write() as conn:
                    if not ops.owns(conn, op.id, owner):
                        raise TakenOver(op.id)
                    ops.set_step(conn, op.id, name, self.clock.now())
            state, error = OperationState.SUCCEEDED, None
        except TakenOver:
            # Our lease ran out and another worker runs it now: leave the record to it.
            with self.db.read() as conn:
                return ops.get_operation(conn, op.id)
        except ShipyardError as exc:
            state, error = OperationState.FAILED, redaction.mask(exc.one_line())
        except Exception as exc:  # a provider bug must not leave the environment locked
            state, error = OperationState.FAILED, redaction.mask(f"{type(exc).__name__}: {exc}")
        finally:
            stop.set()
            beat.join()
        with self.db.write() as conn:
            ops.finish(conn, op.id, state, self.clock.now(), error, owner=owner)
            return ops.get_operation(conn, op.id)

    # --- steps ------------------------------------------------------------------------------

    def _provision(self, op: Operation, provider: Provider) -> None:
        env = self._move(op.environment_id, EnvironmentState.PROVISIONING)
        self._say(op, f"provisioning {env.name} ({provider.name})")
        try:
            result = provider.provision(env, progress=lambda m: self._say(op, m))
        except ShipyardError as exc:
            self._fail(op, env, exc)
            raise
        with self.db.write() as conn:
            rec.update_environment(conn, env.id, outputs={**env.outputs, **result.outputs})

    def _deploy(self, op: Operation, provider: Provider) -> None:
        if op.deployment_id is None:
            raise ProviderError(f"operation #{op.id} has no deployment", hint="report this")
        with self.db.write() as conn:
            deployment = rec.get_deployment(conn, op.deployment_id)
            release = rec.get_release(conn, deployment.release)
            rec.set_deployment_status(conn, deployment.id, DeploymentStatus.RUNNING)
        env = self._move(op.environment_id, EnvironmentState.DEPLOYING)
        kind = self.catalog.type(env.type)
        self._say(op, f"deploying {release.version} into {env.name}")
        try:
            applied = (
                env.overrides
                if deployment.environment_parameters is None
                else deployment.environment_parameters
            )
            resolved = parameters.resolve(
                self.catalog,
                kind,
                applied,
                deployment.overrides,
                file_layer=renderings.file_layer(self.catalog, kind),
            )
            context = parameters.Context(
                env.name, env.type, env.owner, env.outputs, release.version
            )
            rendered = parameters.render(resolved, context)
            given = parameters.values(rendered)
            if isinstance(provider, DeliveryEngine):
                result = provider.deliver(
                    env,
                    release,
                    given,
                    requested_by=deployment.requested_by,
                    progress=lambda m: self._say(op, m),
                    started=lambda url: self._run_started(deployment.id, url),
                    resume=deployment.run_url,
                )
            else:
                result = provider.deploy(env, release, given, progress=lambda m: self._say(op, m))
        except NotPromoted as exc:
            self._not_promoted(op, env, deployment.id, release.version, exc)
            return
        except ShipyardError as exc:
            self._fail(op, env, exc)
            raise
        now = self.clock.now()
        with self.db.write() as conn:
            rec.set_deployment_status(
                conn,
                deployment.id,
                DeploymentStatus.SUCCEEDED,
                at=now,
                fingerprint=parameters.fingerprint(given),
                parameters=given,
                secret_refs=parameters.secret_names(rendered),
            )
            if deployment.environment_parameters is not None:
                rec.update_environment(conn, env.id, overrides=applied)
            if result.outputs.get("run_url"):
                rec.set_run_url(conn, deployment.id, str(result.outputs["run_url"]))
            rec.set_current_release(
                conn,
                env.id,
                deployment_id=deployment.id,
                release=release.version,
                by=deployment.requested_by,
                at=now,
            )
            rec.update_environment(
                conn,
                env.id,
                state=EnvironmentState.READY,
                endpoint=result.endpoint,
                outputs={**env.outputs, **result.outputs},
                reason=None,
            )
            ops.audit(
                conn,
                at=now,
                actor=deployment.requested_by,
                action="deployment.succeed",
                environment=env.name,
                release=release.version,
                deployment=deployment.id,
                approved_by=list(deployment.approved_by),
            )
            ready = rec.environment_by_id(conn, env.id)
            outbox.add(
                conn,
                outbox.Event.READY,
                at=now,
                environment=env.name,
                operation=op.id,
                release=release.version,
                endpoint=result.endpoint,
                run_url=result.outputs.get("run_url"),
            )
        self._say(op, f"{env.name} is ready with {release.version} at {result.endpoint}")
        self.notifier.environment_ready(ready, operation=op.id)

    def _destroy(self, op: Operation, provider: Provider) -> None:
        env = self._move(op.environment_id, EnvironmentState.DESTROYING)
        self._say(op, f"destroying {env.name}")
        provider.destroy(env, progress=lambda m: self._say(op, m))
        now = self.clock.now()
        with self.db.write() as conn:
            for open_one in rec.open_deployments(conn, env.id):
                rec.set_deployment_status(
                    conn,
                    open_one.id,
                    DeploymentStatus.CANCELLED,
                    at=now,
                    reason="environment destroyed",
                )
            rec.update_environment(
                conn, env.id, state=EnvironmentState.DESTROYED, destroyed_at=now, endpoint=None
            )
            ops.audit(
                conn, at=now, actor="shipyard", action="environment.destroyed", environment=env.name
            )
            outbox.add(conn, outbox.Event.DESTROYED, at=now, environment=env.name, operation=op.id)
        self._say(op, f"{env.name} destroyed")

    # --- helpers ----------------------------------------------------------------------------

    def _move(self, env_id: int, state: EnvironmentState) -> Environment:
        with self.db.write() as conn:
            rec.update_environment(conn, env_id, state=state)
            return rec.environment_by_id(conn, env_id)

    def _run_started(self, deployment_id: int, run_url: str) -> None:
        """The run is part of the deployment from its first second: hooks find this row."""
        with self.db.write() as conn:
            rec.set_run_url(conn, deployment_id, run_url)

    def _not_promoted(
        self, op: Operation, env: Environment, deployment_id: int, release: str, exc: NotPromoted
    ) -> None:
        """A rejected or timed-out gate: no failure; the environment keeps serving what it had."""
        with self.db.write() as conn:
            pipeline_gate.not_promoted(conn, env.id, deployment_id, op.id, exc, at=self.clock.now())
        self._say(op, f"{release} not promoted into {env.name}: {exc.reason}")

    def _fail(self, op: Operation, env: Environment, exc: ShipyardError) -> None:
        """A failed deploy leaves the old release serving (ready); a failed build is failed."""
        now = self.clock.now()
        with self.db.write() as conn:
            if op.deployment_id is not None:
                rec.set_deployment_status(
                    conn, op.deployment_id, DeploymentStatus.FAILED, at=now, reason=exc.one_line()
                )
            current = rec.environment_by_id(conn, env.id)
            still_serving = current.release is not None and op.kind is OperationKind.DEPLOY
            rec.update_environment(
                conn,
                env.id,
                state=EnvironmentState.READY if still_serving else EnvironmentState.FAILED,
                reason=exc.one_line(),
            )
            ops.audit(
                conn,
                at=now,
                actor="shipyard",
                action="operation.fail",
                environment=env.name,
                operation=op.id,
                reason=exc.one_line(),
            )
            outbox.add(
                conn,
                outbox.Event.FAILED,
                at=now,
                environment=env.name,
                operation=op.id,
                reason=exc.reason,
                hint=exc.hint,
                # Next steps as commands: each surface that delivers this says them its own way.
                hints=[hint.as_dict() for hint in exc.hints],
            )
        self.notifier.failed(
            env.name, redaction.mask(exc.reason), redaction.mask(exc.advice()), operation=op.id
        )

    def _say(self, op: Operation, message: str) -> None:
        with self.db.write() as conn:
            outbox.add(
                conn,
                outbox.Event.PROGRESS,
                at=self.clock.now(),
                environment=op.environment,
                operation=op.id,
                message=message,
            )
        self.notifier.progress(op.environment, redaction.mask(message), operation=op.id)

    def _heartbeat(
        self, op_id: int, owner: str, stop: threading.Event, lost: threading.Event
    ) -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                with self.db.write() as conn:
                    if not ops.renew(conn, op_id, owner=owner, now=self.clock.now(), lease=LEASE):
                        lost.set()
                        return
            except sa.exc.OperationalError:
                continue

    def _free_dead_owners(self) -> None:
        """Operations left running by a process on this host that no longer exists run again."""
        prefix = f"{self.host}:"
        with self.db.write() as conn:
            rows = conn.execute(
                sa.select(operations_table.c.id, operations_table.c.owner).where(
                    operations_table.c.state == OperationState.RUNNING.value,
                    operations_table.c.owner.like(prefix + "%"),
                )
            ).all()
            for row in rows:
                pid = int(row.owner.split(":")[1])
                if row.owner != self.owner and not _alive(pid):
                    conn.execute(
                        operations_table.update()
                        .where(operations_table.c.id == row.id)
                        .values(lease_until=self.clock.now() - timedelta(seconds=1))
                    )


class TakenOver(Exception):
    """This worker's lease ran out and another worker took the operation over."""

    def __init__(self, op_id: int) -> None:
        super().__init__(f"operation #{op_id} was taken over by another worker")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
