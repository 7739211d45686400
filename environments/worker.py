"""Runs operation rows: claimed under a per-thread owner and a heartbeated lease, step by step
(environments/operation_steps.py), resumed after a crash or restart."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta

import sqlalchemy as sa

from environments import redaction, windows
from environments.catalog import Catalog
from environments.clock import Clock, SystemClock
from environments.errors import ShipyardError
from environments.model import (
    DeploymentKind,
    Environment,
    Operation,
    OperationKind,
    OperationState,
)
from environments.notify import Notifier, SilentNotifier
from environments.operation_steps import Steps
from environments.providers.base import ChecksParameters, Provider
from environments.registry import Database
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
        self.steps = Steps(catalog, database, self.clock, self.notifier)
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

    def _provider_key(self, type_name: str) -> str:
        env_type = self.catalog.type(type_name)
        return (
            env_type.provider
            if env_type.engine == "direct"
            else f"{env_type.provider}+{env_type.engine}"
        )

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
            env_type = self.catalog.type(rec.environment_by_id(conn, op.environment_id).type)
            if env_type.windows is None:
                return False
            deployment = rec.get_deployment(conn, op.deployment_id)
        if deployment.kind not in (DeploymentKind.DEPLOY, DeploymentKind.PROMOTION):
            return False
        return windows.held(env_type.windows, self.clock.now(), deployment.override_reason)

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
                OperationKind.CREATE: (
                    ("provision", self.steps.provision),
                    ("deploy", self.steps.deploy),
                ),
                OperationKind.DEPLOY: (("deploy", self.steps.deploy),),
                OperationKind.DESTROY: (("destroy", self.steps.destroy),),
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
