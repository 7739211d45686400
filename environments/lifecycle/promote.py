"""Use cases: promote along the path, approve, reject."""

from __future__ import annotations

import sqlalchemy as sa

from environments import approvals, policy, promotion
from environments.errors import Conflict, InvalidInput
from environments.lifecycle.requesting import Requested, UseCases
from environments.model import (
    Approval,
    ApprovalDecision,
    ApprovalState,
    Decision,
    DeploymentKind,
    DeploymentStatus,
    Person,
    check_environment_name,
)
from environments.policy import Actor
from environments.registry import loadtests as loadtest_runs
from environments.registry import operations as ops
from environments.registry import outbox
from environments.registry import record as rec


class Promoting(UseCases):
    """Moving a release one step along the promotion path; deciding approvals."""

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
            env_type = self.catalog.type(target_type)
            source_env = rec.get_environment(conn, source) if source else None
            previous = self.catalog.previous_on_path(target_type)
            if source_env is not None:
                policy.promotion_target_type(self.catalog, source_env.type, target_type)
            elif previous is None:
                policy.promotion_target_type(self.catalog, target_type, target_type)
            assert previous is not None
            policy.require(self.catalog, actor, "promote", env_type)
            window = self._window(actor, env_type, now, when_open, window_override)
            version, source_env_id = promotion.promotable(
                conn, self.catalog, previous, release, source_env
            )
            last_verdict = loadtest_runs.last_verdict(conn, version)
            override = promotion.load_test_gate(last_verdict, version, override_reason)
            if target_env is None:
                check_environment_name(target)
                policy.require(self.catalog, actor, "create", env_type)
                env_id = rec.insert_environment(
                    conn,
                    name=target,
                    env_type=target_type,
                    owner=actor.person,
                    at=now,
                    expires_at=now + env_type.ttl.default if env_type.ttl else None,
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
                env_type,
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

    def find_approval(self, conn: sa.Connection, ref: str) -> Approval:
        """An approval by number (`12`, `#12`) or by the one environment it waits on."""
        return approvals.find(conn, ref)
