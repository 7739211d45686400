"""Azure DevOps through the azure-devops SDK: runs and logs, environments and checks, approvals.

Every call has a timeout and bounded retries on 429/5xx that honour Retry-After (a POST or
PATCH, which may have taken effect, is repeated only on 429/503, which say it did not). SDK
models and exceptions stay in here: callers get the frozen dataclasses below and
`PipelineError` (a ProviderError) or `ConfigError`.

The client is one class made of one module per concept: ado_transport (SDK clients, retries,
errors), ado_runs (runs, stages, logs), ado_checks (environments and approval checks synced
with shipyard.yaml), ado_approvals (the gates runs wait on), ado_model (what callers get).
"""

from __future__ import annotations

from pipelines.ado_approvals import Approvals
from pipelines.ado_checks import CheckSync, live_environments
from pipelines.ado_model import (
    APPROVAL_CHECK_TYPE,
    FailedStep,
    Identity,
    PipelineApproval,
    PipelineError,
    PipelineRun,
    RunResult,
    RunState,
    StageOutcome,
    SyncChange,
    approval_from_json,
    environment_of_stage,
    given,
    person_of,
    run_id_of_url,
    stage_of_environment,
)

__all__ = [
    "APPROVAL_CHECK_TYPE",
    "AzureDevOps",
    "FailedStep",
    "Identity",
    "PipelineApproval",
    "PipelineError",
    "PipelineRun",
    "RunResult",
    "RunState",
    "StageOutcome",
    "SyncChange",
    "approval_from_json",
    "environment_of_stage",
    "given",
    "live_environments",
    "person_of",
    "run_id_of_url",
    "stage_of_environment",
]


class AzureDevOps(Approvals, CheckSync):
    """One organization and project, through the azure-devops SDK."""
