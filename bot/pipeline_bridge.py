"""Azure DevOps approval gates as Shipyard's one approval: the webhook, the poll, the answer.

A run waiting at the approval check of an environment Shipyard manages becomes one Shipyard
approval request (environments/pipeline_gate.py), posted to Slack like any other and decided
under the type's policy: N of M approvers, never the requester (the person who asked Shipyard,
whatever Azure DevOps thinks). Once decided, Shipyard answers the Azure DevOps approval with
its own identity (the PAT's account, the check's one approver), naming who decided. Approvals
of pipelines or environments Shipyard does not manage are left alone.
"""

from __future__ import annotations

import logging
import re
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
from environments import pipeline_gate
from environments.config.azure_devops import pipelines_settings
from environments.errors import ShipyardError
from environments.model import Approval, ApprovalState, Decision
from environments.notify import SilentNotifier
from environments.registry import record as rec
from environments.registry.pipeline_runs import run_url_of
from pipelines.azure_devops import (
    AzureDevOps,
    PipelineApproval,
    PipelineError,
    given,
    run_id_of_url,
)
from pipelines.run_records import reconcile_runs
from pipelines.webhooks import WebhookAction, WebhookHandler

log = logging.getLogger(__name__)
SYSTEM = "azure-devops"
# The action ids of the Approve/Reject buttons the bridge posted before Shipyard's own approval
# became the gate; such buttons may still sit in channels, and now only say where to decide.
OLD_BUTTONS = ("pipeline.approve", "pipeline.reject")
GUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


class PipelineBridge(SilentNotifier):
    """Turns a waiting Azure DevOps gate into a Shipyard approval; answers it once decided.

    It is one of the runtime's notifiers (`register`): a decided request is answered in Azure
    DevOps at once; the poll answers what that missed (Azure DevOps was down, say).
    """

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
        """Decisions reach Azure DevOps: the bridge hears every approval the core settles."""
        self.rt.notifiers.add(self)
        for action in OLD_BUTTONS:
            app.action(action)(ack=_ack, lazy=[self.old_button])

    def old_button(self, body: dict[str, Any], client: WebClient) -> None:
        """A click on an old bridge message's button: say where the gate is decided now."""
        user = body["user"]["id"]
        request = self._request_of(str(body["actions"][0].get("value") or ""))
        which = f" (request #{request.id})" if request is not None else ""
        text = (
            "This button no longer decides anything: the gate is now decided through "
            f"Shipyard's approval message{which}."
        )
        channel = (body.get("channel") or {}).get("id") or user
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError:
            client.chat_postMessage(channel=user, text=text)

    def _request_of(self, approval_id: str) -> Approval | None:
        """Shipyard's request for an Azure DevOps approval (the old buttons' value), if known."""
        if not GUID.fullmatch(approval_id):
            return None
        try:
            pending = self.ado.get_approval(approval_id)
            if not pending.environment or not pending.run_url:
                return None
            with self.rt.database.read() as conn:
                return pipeline_gate.gate_of_run(conn, pending.environment, pending.run_url)
        except ShipyardError as exc:
            log.info("old button for approval %s: %s", approval_id, exc.one_line())
            return None

    def route(self) -> Route:
        async def receive(request: Request) -> Response:
            body = await request.body()
            result = await run_in_threadpool(self.webhook.handle, dict(request.headers), body)
            if result.approval is not None and result.action is WebhookAction.APPROVAL_PENDING:
                await run_in_threadpool(self.gate, result.approval)
            return JSONResponse(
                {"action": result.action.value, "message": result.message},
                status_code=result.status,
            )

        return Route("/webhooks/azure-devops", receive, methods=["POST"])

    def poll(self) -> None:
        """Catch what the webhook missed: finished runs, waiting gates, decisions not answered."""
        reconcile_runs(self.ado, self.rt.database, self.rt.catalog, clock=self.rt.lifecycle.clock)
        for approval in self.ado.list_approvals():
            self.gate(approval)

    # --- the gate -------------------------------------------------------------------------------

    def managed(self, approval: PipelineApproval) -> bool:
        """A gate of a pipeline Shipyard starts or watches, into an environment it records."""
        if approval.pipeline_id not in self.ado.settings.pipelines or not approval.environment:
            return False
        if not approval.run_url or not approval.release:
            return False
        with self.rt.database.read() as conn:
            env = rec.find_environment(conn, approval.environment)
        return env is not None and self.rt.catalog.type(env.type).approval is not None

    def gate(self, approval: PipelineApproval) -> Approval | None:
        """The Shipyard request for a waiting gate (opened once; posted by the outbox)."""
        if not approval.is_pending or not self.managed(approval):
            log.info("approval %s is not a gate Shipyard manages: left alone", approval.id)
            return None
        assert approval.environment and approval.run_url and approval.release
        try:
            with self.rt.database.write() as conn:
                opened = pipeline_gate.open_gate(
                    conn,
                    self.rt.catalog,
                    environment=approval.environment,
                    run_url=approval.run_url,
                    release=approval.release,
                    requested_by=given(approval.requested_by) or SYSTEM,
                    at=self.rt.lifecycle.clock.now(),
                )
        except ShipyardError as exc:
            log.warning("cannot open the gate of approval %s: %s", approval.id, exc.one_line())
            return None
        if opened is None:
            return None
        request, _ = opened
        if request.state.is_terminal:
            self.answer(request)  # decided, but Azure DevOps did not hear it (poll)
        return request

    def approval_changed(self, approval: Approval) -> None:
        if approval.state.is_terminal:
            self.answer(approval)

    def answer(self, approval: Approval) -> None:
        """Tell Azure DevOps what Shipyard decided, on the run's waiting approvals (once)."""
        with self.rt.database.read() as conn:
            run_url = run_url_of(conn, approval.deployment_id)
        run_id = run_id_of_url(run_url or "")
        if run_id is None or approval.state is ApprovalState.PENDING:
            return
        try:
            of_run = [a for a in self.ado.list_approvals(describe=False) if a.run_id == run_id]
            waiting = [
                a for a in map(self.ado.describe, of_run) if a.environment == approval.environment
            ]
            for pending in waiting:
                self._answer(pending, approval)
        except PipelineError as exc:
            log.warning(
                "could not answer Azure DevOps for request #%s: %s", approval.id, exc.one_line()
            )

    def _answer(self, pending: PipelineApproval, approval: Approval) -> None:
        approved = [d.person for d in approval.decisions if d.decision is Decision.APPROVE]
        note = f"Shipyard request #{approval.id}"
        if approval.state is ApprovalState.APPROVED:
            self.ado.approve(pending.id, ", ".join(approved), comment=note)
            return
        if approval.state is ApprovalState.REJECTED:
            rejected = next((d for d in approval.decisions if d.decision is Decision.REJECT), None)
            who = rejected.person if rejected else "Shipyard"
            reason = rejected.comment if rejected and rejected.comment else "rejected"
            self.ado.reject(pending.id, who, reason=f"{reason} ({note})")
            return
        self.ado.reject(pending.id, "Shipyard", reason=f"{note} {approval.state}: not promoted")


def _ack(ack: Callable[..., None]) -> None:
    ack()
