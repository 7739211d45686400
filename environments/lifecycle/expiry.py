"""Use case: the expiry sweep (TTL warnings, destroys, stale approvals)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from environments import approvals
from environments.lifecycle.create import queue_destroy
from environments.lifecycle.requesting import SYSTEM, UseCases
from environments.model import (
    Approval,
    ApprovalState,
    Environment,
    EnvironmentState,
)
from environments.registry import operations as ops
from environments.registry import outbox
from environments.registry import record as rec
from environments.registry.schema import environments

WARN_BEFORE = timedelta(hours=1)


@dataclass(frozen=True)
class SweepReport:
    """What one expiry sweep did."""

    warned: tuple[str, ...]
    expired: tuple[str, ...]
    operations: tuple[int, ...]
    approvals_expired: tuple[int, ...]


class Expiring(UseCases):
    """The sweep: warnings, expired environments and approvals."""

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
                    queued.append(queue_destroy(conn, env, now))
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
