"""Pipeline approvals: list, describe, approve and reject the gates a run waits on."""

from dataclasses import replace
from typing import Any

from pipelines.ado_model import (
    PipelineApproval,
    approval_from_json,
)
from pipelines.ado_runs import Runs


class Approvals(Runs):
    """The approvals API (no SDK client: requests through the SDK's Client)."""

    def list_approvals(
        self, *, state: str = "pending", describe: bool = True
    ) -> list[PipelineApproval]:
        """Approvals in `state` (default pending), each with its run, environment and release."""
        with self._translated("list approvals"):
            body = self._request("GET", "pipelines/approvals", {"state": state, "$expand": "steps"})
        found = [approval_from_json(a) for a in (body or {}).get("value", [])]
        return [self.describe(a) for a in found] if describe else found

    def get_approval(self, approval_id: str) -> PipelineApproval:
        with self._translated(f"read approval {approval_id}"):
            body = self._request("GET", f"pipelines/approvals/{approval_id}", {"$expand": "steps"})
        return self.describe(approval_from_json(body))

    def approve(self, approval_id: str, person: str, *, comment: str = "") -> PipelineApproval:
        """Approve as decided in Slack by `person`; the comment says so, for the record."""
        text = f"approved in Slack by {person}" + (f": {comment}" if comment else "")
        return self._decide(approval_id, person, "approved", text)

    def reject(self, approval_id: str, person: str, *, reason: str) -> PipelineApproval:
        return self._decide(
            approval_id, person, "rejected", f"rejected in Slack by {person}: {reason}"
        )

    def _decide(self, approval_id: str, person: str, status: str, comment: str) -> PipelineApproval:
        # Azure DevOps records the token's account as the approver (it must be one on the
        # check); the comment names the people who decided in Shipyard.
        change: dict[str, Any] = {"approvalId": approval_id, "status": status, "comment": comment}
        with self._translated(f"mark approval {approval_id} {status}"):
            body = self._request("PATCH", "pipelines/approvals", body=[change])
        values = (body or {}).get("value") or []
        return (
            self.describe(approval_from_json(values[0]))
            if values
            else self.get_approval(approval_id)
        )

    def describe(self, approval: PipelineApproval) -> PipelineApproval:
        """Fill in the run (web URL, release) and the environment whose stage it gates."""
        if approval.run_id is None or approval.pipeline_id is None:
            return approval
        run = self.get_run(approval.pipeline_id, approval.run_id)
        environment = next(
            (s.environment for s in self.stages(run) if approval.id in s.approval_ids),
            run.parameters.get("environment"),
        )
        return replace(
            approval,
            run_url=run.web_url,
            environment=environment,
            release=run.release or None,
            requested_by=run.parameters.get("requestedBy"),
        )
