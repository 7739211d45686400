"""Pipeline runs into deployments: what a run deployed where, recorded once; the poll for misses.

`deployments_of_run` reads a run's timeline (each finished deploy stage is a deployment into its
environment, its approvers from the stage's checkpoints); `record_run` and `reconcile_runs` hand
them to the core's use case (environments/pipeline_deployments.py) in one write transaction with
the run's key, so a run heard of twice is recorded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from environments.catalog import Catalog
from environments.clock import Clock, SystemClock
from environments.config.azure_devops import AzureDevOpsSettings
from environments.errors import InvalidInput, NotFound
from environments.model import DeploymentStatus
from environments.pipeline_deployments import (
    SYSTEM,
    PipelineDeployment,
    Recorded,
    record_deployment,
)
from environments.registry import Database
from environments.registry.chat import first_time
from environments.registry.pipeline_runs import seen
from pipelines.azure_devops import (
    PipelineApproval,
    PipelineRun,
    StageOutcome,
    given,
    person_of,
)

__all__ = ["ReconcileReport", "RunSource", "deployments_of_run", "reconcile_runs", "record_run"]

STAGE_RESULTS = {
    "succeeded": DeploymentStatus.SUCCEEDED,
    "succeededwithissues": DeploymentStatus.SUCCEEDED,
    "failed": DeploymentStatus.FAILED,
    "canceled": DeploymentStatus.CANCELLED,
    "abandoned": DeploymentStatus.CANCELLED,
}


class RunSource(Protocol):
    """What the webhook and the poll read from Azure DevOps (AzureDevOps implements it)."""

    settings: AzureDevOpsSettings

    def get_run(self, pipeline_id: int, run_id: int) -> PipelineRun: ...

    def list_runs(self, pipeline_id: int) -> list[PipelineRun]: ...

    def stages(self, run: PipelineRun) -> list[StageOutcome]: ...

    def approvals_by_id(self, ids: Sequence[str]) -> list[PipelineApproval]: ...

    def describe(self, approval: PipelineApproval) -> PipelineApproval: ...


@dataclass(frozen=True)
class ReconcileReport:
    """What one poll found: runs looked at, deployments recorded, and what it could not record."""

    runs_checked: int
    recorded: tuple[Recorded, ...] = ()
    skipped: tuple[str, ...] = ()


def deployments_of_run(
    source: RunSource, run: PipelineRun, *, stage: str | None = None
) -> tuple[list[PipelineDeployment], list[str]]:
    """The deployments a run made: one per finished `shipyard_deploy_<env>` stage.

    The release is the run's `release` template parameter, else its name (build number). A run
    without such stages that names an `environment` template parameter counts as one deployment
    into it with the run's result. Returns (deployments, reasons some were skipped).
    """
    # A run built for the release it deploys names it by its tag or build number (examples/…).
    release = run.release
    requested_by = given(run.parameters.get("requestedBy")) or SYSTEM
    skipped: list[str] = []
    found: list[PipelineDeployment] = []
    outcomes = [
        s
        for s in source.stages(run)
        if s.environment is not None and (stage is None or s.name == stage)
    ]
    if not outcomes and stage is None and run.parameters.get("environment") and run.is_finished:
        outcomes = [
            StageOutcome(
                name=run.parameters["environment"],
                state="completed",
                result=str(run.result or "failed"),
            )
        ]
    identities = source.settings.identities
    for outcome in outcomes:
        environment = outcome.environment or outcome.name
        status = STAGE_RESULTS.get((outcome.result or "").lower())
        if outcome.state != "completed" or status is None:
            continue  # still running, or skipped: nothing was deployed
        if not release:
            skipped.append(f"run {run.id} deployed into {environment} but names no release")
            continue
        approved: list[str] = []
        for approval in source.approvals_by_id(outcome.approval_ids):
            if approval.status == "rejected":
                status = DeploymentStatus.REJECTED
            elif approval.status in ("timedOut", "canceled"):
                status = DeploymentStatus.EXPIRED
            # Shipyard's own answer names everyone who decided ("approved in Slack by a, b").
            approved += [
                person.strip()
                for s in approval.steps
                if s.status == "approved"
                for person in person_of(s, identities).split(",")
            ]
        found.append(
            PipelineDeployment(
                environment=environment,
                release=release,
                status=status,
                run_url=run.web_url,
                requested_by=requested_by,
                approved_by=()
                if status in (DeploymentStatus.REJECTED, DeploymentStatus.EXPIRED)
                else tuple(approved),
                artifact=run.parameters.get("artifact", ""),
                build_id=str(run.id),
                finished_at=run.finished,
            )
        )
    return found, skipped


def record_run(
    source: RunSource,
    database: Database,
    catalog: Catalog,
    run: PipelineRun,
    *,
    clock: Clock | None = None,
) -> tuple[list[Recorded], list[str]]:
    """Record what a run Shipyard followed (wait_for_run) deployed; the poll then skips it."""
    clock = clock or SystemClock()
    deployments, skipped = deployments_of_run(source, run)
    with database.write() as conn:
        recorded, more = write_deployments(conn, catalog, deployments, clock.now())
        if run.is_finished:
            first_time(conn, key_of_run(run.pipeline_id, run.id), clock.now())
    return recorded, skipped + more


def reconcile_runs(
    source: RunSource,
    database: Database,
    catalog: Catalog,
    *,
    clock: Clock | None = None,
    pipelines: Sequence[int] | None = None,
    lookback: timedelta | None = None,
) -> ReconcileReport:
    """Record completed runs of the watched pipelines that no hook reported (idempotent)."""
    clock = clock or SystemClock()
    now = clock.now()
    since = now - (lookback or timedelta(hours=source.settings.reconcile_lookback_hours))
    recorded: list[Recorded] = []
    skipped: list[str] = []
    checked = 0
    for pipeline_id in pipelines if pipelines is not None else source.settings.pipelines:
        for listed in source.list_runs(pipeline_id):
            if not listed.is_finished or (listed.finished and listed.finished < since):
                continue
            key = key_of_run(pipeline_id, listed.id)
            with database.read() as conn:
                if seen(conn, key):
                    continue
            checked += 1
            run = source.get_run(pipeline_id, listed.id)
            deployments, why = deployments_of_run(source, run)
            with database.write() as conn:
                if not first_time(conn, key, clock.now()):
                    continue
                done, more = write_deployments(conn, catalog, deployments, clock.now())
            recorded += done
            skipped += why + more
    return ReconcileReport(checked, tuple(recorded), tuple(skipped))


def write_deployments(
    conn: sa.Connection, catalog: Catalog, deployments: Sequence[PipelineDeployment], at: datetime
) -> tuple[list[Recorded], list[str]]:
    recorded: list[Recorded] = []
    skipped: list[str] = []
    for deployment in deployments:
        # record_deployment refuses (unknown environment, bad version) before it writes anything.
        try:
            recorded.append(record_deployment(conn, catalog, deployment, at=at))
        except (NotFound, InvalidInput) as exc:
            skipped.append(f"{deployment.environment}: {exc.reason}")
    return recorded, skipped


def key_of_run(pipeline_id: int, run_id: int) -> str:
    return f"ado-run:{pipeline_id}/{run_id}"
