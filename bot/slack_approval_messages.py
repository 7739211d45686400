"""Approval requests in Slack: one message in the type's approval channel kept up to date,
and (with `approval: {dm: true}`) a direct message to each approver."""

from __future__ import annotations

import logging

from bot import views
from bot.slack_delivery import Deliverer, FollowUp, Sent
from environments.model import Approval, ApprovalState
from environments.registry import chat as chat_record
from environments.registry import loadtests as loadtest_runs
from environments.registry import record as rec
from environments.registry.outbox import Event, Pending

log = logging.getLogger(__name__)


class ApprovalMessages(Deliverer):
    """Approval requested, decided and expired events."""

    def approval_thread(self, approval_id: int) -> tuple[str, str] | None:
        with self.db.read() as conn:
            return chat_record.message(conn, f"approval:{approval_id}")

    def _approval_requested(self, row: Pending) -> Sent:
        approval_id = int(row.payload["approval"])
        with self.db.read() as conn:
            approval = rec.get_approval(conn, approval_id)
            where = chat_record.message(conn, f"approval:{approval_id}")
        dms = self._direct_messages(approval)
        if where is not None:
            return Sent(self._approval_changed(row), dms)
        channel = self._approval_channel(approval.environment)
        if channel is None:
            log.warning("approval #%s has no Slack channel (set slack.channel)", approval.id)
            return Sent("nowhere", dms)
        text, blocks = views.approval_message(
            self.catalog, approval, details=self._details(approval_id)
        )
        posted = self._post_once(row, channel, text=text, blocks=blocks)
        with self.db.write() as conn:
            chat_record.remember_message(
                conn, f"approval:{approval_id}", posted[0], posted[1], self.clock.now()
            )
        return Sent(f"{posted[0]}/{posted[1]}", dms)

    def _direct_messages(self, approval: Approval) -> tuple[FollowUp, ...]:
        """With `approval: {dm: true}`, one direct message per approver (not the requester),
        each an outbox event of its own: sent once, retried on its own, found again."""
        with self.db.read() as conn:
            env = rec.find_environment(conn, approval.environment)
        gate = self.catalog.type(env.type).approval if env else None
        if gate is None or not gate.dm:
            return ()
        people = self.catalog.members(approval.approvers) - {approval.requested_by}
        users = sorted({u for u in map(self.catalog.slack_id, people) if u is not None})
        return tuple(
            FollowUp(Event.APPROVAL_DM, approval.environment, {"approval": approval.id, "user": u})
            for u in users
        )

    def _approval_dm(self, row: Pending) -> str:
        """One approver's copy of the request, with the buttons, while it is still open."""
        with self.db.read() as conn:
            approval = rec.get_approval(conn, int(row.payload["approval"]))
        if approval.state is not ApprovalState.PENDING:
            return f"not sent: {approval.state}"
        text, blocks = views.approval_message(
            self.catalog, approval, details=self._details(approval.id)
        )
        user = str(row.payload["user"])
        posted = self._post_once(row, self._dm_channel(user), text=text, blocks=blocks)
        with self.db.write() as conn:  # kept up to date with the decisions, as the channel's
            chat_record.remember_message(
                conn, f"approval:{approval.id}:dm:{user}", posted[0], posted[1], self.clock.now()
            )
        return f"dm {posted[0]}/{posted[1]}"

    def _approval_changed(self, row: Pending) -> str:
        """The request's messages — the channel's and each approver's direct message — show
        the decisions, and lose their buttons once it is settled."""
        approval_id = int(row.payload["approval"])
        with self.db.read() as conn:
            where = chat_record.message(conn, f"approval:{approval_id}")
            dms = chat_record.messages_under(conn, f"approval:{approval_id}:dm:")
            approval = rec.get_approval(conn, approval_id)
        if where is None and not dms:
            return "nowhere"
        text, blocks = views.approval_message(
            self.catalog, approval, details=self._details(approval_id)
        )
        for channel, ts in [*([where] if where else []), *dms]:
            self._call("chat_update", channel=channel, ts=ts, text=text, blocks=blocks)
        return f"{where[0]}/{where[1]}" if where else f"{len(dms)} direct messages"

    def _details(self, approval_id: int) -> list[str]:
        """What changes besides the release: the parameters, compared with what runs now."""
        with self.db.read() as conn:
            approval = rec.get_approval(conn, approval_id)
            deployment = rec.get_deployment(conn, approval.deployment_id)
            asked = deployment.parameters_fingerprint
            env = rec.find_environment(conn, approval.environment)
            current = rec.current_deployment(conn, env.id) if env else None
            tested = loadtest_runs.last_verdict(conn, approval.release)
        lines = []
        if current is None:
            lines.append(f"New environment; parameters `{asked}`")
        else:
            running = f"{current.release} with parameters `{current.parameters_fingerprint}`"
            change = (
                "unchanged" if current.parameters_fingerprint == asked else f"change to `{asked}`"
            )
            lines.append(f"Runs {running} now; parameters {change}")
        if tested is not None:
            lines.append(
                f"Last load test of {approval.release}: *{tested.outcome}* "
                f"(#{tested.id} on {tested.environment})"
                + (f"\n{tested.verdict}" if tested.verdict else "")
            )
        if deployment.override_reason:
            lines.append(f"⚠️ {deployment.override_reason}")
        if deployment.run_url:
            lines.append(
                f"Azure DevOps run waiting at the gate: <{deployment.run_url}|open the run>"
            )
        return lines

    def _approval_channel(self, environment: str) -> str | None:
        with self.db.read() as conn:
            env = rec.find_environment(conn, environment)
        gate = self.catalog.type(env.type).approval if env else None
        return (gate.channel if gate else None) or self.catalog.slack.channel
