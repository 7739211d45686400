"""Azure DevOps approval gates answered in Slack under Shipyard's policy; its webhook and poll."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.runtime import Runtime
from bot.speech import for_chat
from environments import policy
from environments.errors import PolicyRefused, ShipyardError
from environments.model import ApprovalState
from environments.pipelines_config import pipelines_settings
from environments.registry import chat as chat_record
from environments.registry import record as rec
from pipelines.azure_devops import AzureDevOps, PipelineApproval
from pipelines.run_records import reconcile_runs
from pipelines.webhooks import WebhookAction, WebhookHandler

log = logging.getLogger(__name__)
APPROVE = "pipeline.approve"
REJECT = "pipeline.reject"


class PipelineBridge:
    """Posts pending Azure DevOps approvals like Shipyard's own; a permitted click PATCHes them."""

    def __init__(
        self, runtime: Runtime, client: WebClient, ado: AzureDevOps, webhook: WebhookHandler
    ) -> None:
        self.rt = runtime
        self.client = client
        self.ado = ado
        self.webhook = webhook

    @classmethod
    def from_environment(cls, runtime: Runtime, client: WebClient) -> PipelineBridge | None:
        """A bridge when Azure DevOps is configured (shipyard.yaml or AZURE_DEVOPS_*), else None."""
        if not pipelines_settings(runtime.catalog).configured:
            return None
        ado = AzureDevOps.from_environment(runtime.catalog)
        webhook = WebhookHandler.from_environment(
            database=runtime.database,
            catalog=runtime.catalog,
            source=ado,
            clock=runtime.lifecycle.clock,
        )
        return cls(runtime, client, ado, webhook)

    # --- wiring ---------------------------------------------------------------------------------

    def register(self, app: App) -> None:
        app.action(APPROVE)(ack=_ack, lazy=[lambda body, client: self.decide(body, client, True)])
        app.action(REJECT)(ack=_ack, lazy=[lambda body, client: self.decide(body, client, False)])

    def route(self) -> Route:
        async def receive(request: Request) -> Response:
            body = await request.body()
            result = await run_in_threadpool(self.webhook.handle, dict(request.headers), body)
            if result.approval is not None and result.action in (
                WebhookAction.APPROVAL_PENDING,
                WebhookAction.APPROVAL_COMPLETED,
            ):
                await run_in_threadpool(self.show, result.approval)
            return JSONResponse(
                {"action": result.action.value, "message": result.message},
                status_code=result.status,
            )

        return Route("/webhooks/azure-devops", receive, methods=["POST"])

    def poll(self) -> None:
        """Catch what the webhook missed: finished runs, and pending approvals not yet posted."""
        reconcile_runs(self.ado, self.rt.database, self.rt.catalog, clock=self.rt.lifecycle.clock)
        for approval in self.ado.list_approvals():
            with self.rt.database.read() as conn:
                posted = chat_record.message(conn, _key(approval.id))
            if posted is None:
                self.show(approval)

    # --- Slack ----------------------------------------------------------------------------------

    def show(self, approval: PipelineApproval) -> None:
        """Post a pending approval once; later states update that message."""
        text, blocks = self._message(approval)
        with self.rt.database.read() as conn:
            posted = chat_record.message(conn, _key(approval.id))
        try:
            if posted is not None:
                self.client.chat_update(channel=posted[0], ts=posted[1], text=text, blocks=blocks)
                return
            channel = self._channel(approval)
            if channel is None or not approval.is_pending:
                return
            response = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        except SlackApiError as exc:
            log.warning(
                "could not show pipeline approval %s: %s", approval.id, exc.response.get("error")
            )
            return
        with self.rt.database.write() as conn:
            chat_record.remember_message(
                conn,
                _key(approval.id),
                str(response["channel"]),
                str(response["ts"]),
                self.rt.lifecycle.clock.now(),
            )

    def decide(self, body: dict[str, Any], client: WebClient, approve: bool) -> None:
        user = body["user"]["id"]
        person = self.rt.catalog.person_for_slack(user)
        approval_id = body["actions"][0]["value"]
        try:
            approval = self._permitted(approval_id, person)
            decided = (
                self.ado.approve(approval_id, person)
                if approve
                else self.ado.reject(approval_id, person, reason="rejected in Slack")
            )
        except ShipyardError as exc:
            channel = (body.get("channel") or {}).get("id") or user
            try:
                client.chat_postEphemeral(channel=channel, user=user, text=for_chat(exc))
            except SlackApiError:
                client.chat_postMessage(channel=user, text=for_chat(exc))
            return
        self.show(decided if decided.environment else approval)

    def _permitted(self, approval_id: str, person: str) -> PipelineApproval:
        """Shipyard's policy first: a listed approver of the environment's type, not blocked."""
        approval = next((a for a in self.ado.list_approvals() if a.id == approval_id), None)
        if approval is None:
            raise PolicyRefused(
                "this pipeline approval is no longer pending", hint="nothing to decide"
            )
        approvers: tuple[str, ...] = ()
        if approval.environment:
            with self.rt.database.read() as conn:
                env = rec.find_environment(conn, approval.environment)
            gate = self.rt.catalog.type(env.type).approval if env else None
            approvers = gate.approvers if gate else ()
        blocked = {self.rt.catalog.person_for_slack(i.name) for i in approval.blocked} | {
            i.name for i in approval.blocked
        }
        policy.require_approver(
            self.rt.catalog,
            person,
            approvers=approvers,
            requested_by="",
            state=ApprovalState.PENDING,
            decisions=(),
            blocked=blocked,
            what=approval.environment or "this pipeline approval",
        )
        return approval

    def _channel(self, approval: PipelineApproval) -> str | None:
        if approval.environment:
            with self.rt.database.read() as conn:
                env = rec.find_environment(conn, approval.environment)
            gate = self.rt.catalog.type(env.type).approval if env else None
            if gate and gate.channel:
                return gate.channel
        return self.rt.catalog.slack.channel

    def _message(self, approval: PipelineApproval) -> tuple[str, list[dict[str, Any]]]:
        what = f"*{approval.release or '?'}* → *{approval.environment or '?'}*"
        run = f" (<{approval.run_url}|run {approval.run_id}>)" if approval.run_url else ""
        decided = [
            f"{s.status} by {s.acted_by.name if s.acted_by else s.assigned.name}"
            + (f": {s.comment}" if s.comment else "")
            for s in approval.steps
            if s.status not in ("pending", "")
        ]
        state = {
            "pending": "waiting for approval",
            "approved": "approved",
            "rejected": "rejected — not promoted",
            "timedOut": "timed out — not promoted",
            "canceled": "canceled — not promoted",
        }.get(approval.status, approval.status)
        text = f"Pipeline deployment {approval.release} → {approval.environment}: {state}"
        blocks: list[dict[str, Any]] = [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"Azure DevOps deployment {what}{run}\n"
                    f"needs {approval.min_required} approval(s) · *{state}*",
                },
            },
        ]
        if decided:
            blocks.append(
                {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(decided)}]}
            )
        if approval.is_pending:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Approve"},
                            "action_id": APPROVE,
                            "value": approval.id,
                            "style": "primary",
                        },
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Reject"},
                            "action_id": REJECT,
                            "value": approval.id,
                            "style": "danger",
                        },
                    ],
                }
            )
        return text, blocks


def _key(approval_id: str) -> str:
    return f"ado-approval:{approval_id}"[:64]


def _ack(ack: Callable[..., None]) -> None:
    ack()
