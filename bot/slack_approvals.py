"""Approve and Reject buttons and the reject-reason form: decisions on a waiting request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient

from bot import views
from bot.command import Outcome
from bot.slack_face import FaceBase
from bot.speech import for_chat
from environments import policy
from environments.errors import ShipyardError


class ApprovalFlow(FaceBase):
    """Approve and Reject buttons and the reject-reason form: decisions on a waiting request."""

    def ack_approve(self, ack: Callable[..., None]) -> None:
        ack()

    def run_approve(
        self, body: dict[str, Any], client: WebClient, respond: Callable[..., Any]
    ) -> None:
        user = body["user"]["id"]
        approval_id = body["actions"][0]["value"]
        try:
            approval, op_id = self.rt.lifecycle.approve(self.actor(user), approval_id)
        except ShipyardError as exc:
            self._explain(client, body, exc)
            return
        if op_id is None:
            return
        where = self.notifier.approval_thread(approval.id)
        title = f"{approval.kind} {approval.release} → {approval.environment}"
        outcome = Outcome(text=title, operation=op_id)
        channel = where[0] if where else body.get("channel", {}).get("id", "")
        self._report(respond, body, channel, outcome, thread_ts=where[1] if where else None)

    def ack_reject(self, ack: Callable[..., None], body: dict[str, Any], client: WebClient) -> None:
        self._ack_with_reject_modal(
            ack,
            client,
            body["trigger_id"],
            body["user"]["id"],
            body["actions"][0]["value"],
            body=body,
        )

    def _ack_with_reject_modal(
        self,
        ack: Callable[..., None],
        client: WebClient,
        trigger_id: str,
        user: str,
        ref: str,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Ask for a reason, but only someone who may decide gets the form."""
        try:
            with self.rt.database.read() as conn:
                approval = self.rt.lifecycle.find_approval(conn, ref)
            policy.require_approver(
                self.rt.catalog,
                self.actor(user).person,
                approvers=approval.approvers,
                requested_by=approval.requested_by,
                state=approval.state,
                decisions=approval.decisions,
            )
        except ShipyardError as exc:
            ack() if body is not None else ack(text=for_chat(exc))
            if body is not None:
                self._explain(client, body, exc)
            return
        ack()
        self._open(client, trigger_id, views.reject_modal(approval))

    def on_reject_reason(
        self, ack: Callable[..., None], body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        reason = view["state"]["values"]["reason"]["value"]["value"] or ""
        try:
            self.rt.lifecycle.reject(
                self.actor(body["user"]["id"]), view["private_metadata"], reason=reason
            )
        except ShipyardError as exc:
            ack(response_action="errors", errors={"reason": for_chat(exc)[:150]})
            return
        ack()
