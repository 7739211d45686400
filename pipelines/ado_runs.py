"""Pipeline runs: start, follow, list; stages, timelines and the log of a failed step."""

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from environments.errors import ConfigError
from pipelines.ado_model import (
    FailedStep,
    PipelineApproval,
    PipelineError,
    PipelineRun,
    RunResult,
    RunState,
    StageOutcome,
    _text,
    _web_url,
    approval_from_json,
)
from pipelines.ado_transport import Transport


class Runs(Transport):
    """Runs of the deploy pipeline."""

    def start_run(
        self,
        *,
        environment: str,
        release: str,
        requested_by: str,
        pipeline_id: int | None = None,
        parameters: Mapping[str, str] | None = None,
        branch: str | None = None,
        build: tuple[str, str] | None = None,
    ) -> PipelineRun:
        """Start the deploy pipeline for one release into one environment.

        `branch` is the ref the pipeline's own repository runs at (`refs/tags/<version>`);
        `build` is (pipeline resource alias, its run's name): the build the run deploys.
        """
        from azure.devops.v7_1.pipelines.models import (
            PipelineResourceParameters,
            RepositoryResourceParameters,
            RunPipelineParameters,
            RunResourcesParameters,
        )

        pid = pipeline_id or self.settings.pipeline_id
        if pid is None:
            raise ConfigError(
                "no Azure DevOps pipeline to start",
                hint="set azure_devops.pipeline_id in shipyard.yaml (or AZURE_DEVOPS_PIPELINE_ID)",
            )
        template = {
            "environment": environment,
            "release": release,
            "requestedBy": requested_by,
            **(parameters or {}),
        }
        resources = RunResourcesParameters(
            repositories={"self": RepositoryResourceParameters(ref_name=branch)}
            if branch
            else None,
            pipelines={build[0]: PipelineResourceParameters(version=build[1])} if build else None,
        )
        body = RunPipelineParameters(
            template_parameters=template, resources=resources if branch or build else None
        )
        with self._translated(f"start pipeline {pid} for {release} into {environment}"):
            made = self._client("pipelines").run_pipeline(body, self.project, pid)
        return self._run(made, pid)

    def get_run(self, pipeline_id: int, run_id: int) -> PipelineRun:
        with self._translated(f"read run {run_id} of pipeline {pipeline_id}"):
            found = self._client("pipelines").get_run(self.project, pipeline_id, run_id)
        return self._run(found, pipeline_id)

    def build_number(self, run_id: int) -> str:
        """The name (build number) of a run of any pipeline, as pipeline resources name it."""
        with self._translated(f"read build run {run_id}"):
            found = self._client("build").get_build(self.project, run_id)
        return str(found.build_number or run_id)

    def list_runs(self, pipeline_id: int) -> list[PipelineRun]:
        """The pipeline's runs, newest first (without template parameters; get_run has them)."""
        with self._translated(f"list runs of pipeline {pipeline_id}"):
            found = self._client("pipelines").list_runs(self.project, pipeline_id) or []
        return sorted((self._run(r, pipeline_id) for r in found), key=lambda r: -r.id)

    def wait_for_run(
        self,
        run: PipelineRun,
        *,
        timeout: timedelta,
        on_change: Callable[[PipelineRun], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> PipelineRun:
        """Follow a run until it completes; PipelineError when `timeout` passes first."""
        deadline = time.monotonic() + timeout.total_seconds()
        seen = (run.state, run.result)
        while not run.is_finished:
            if time.monotonic() >= deadline:
                raise PipelineError(
                    f"run {run.id} is still {run.state} after {timeout}",
                    hint=f"follow it at {run.web_url}",
                )
            sleep(self.settings.poll_interval)
            run = self.get_run(run.pipeline_id, run.id)
            if on_change is not None and (run.state, run.result) != seen:
                on_change(run)
            seen = (run.state, run.result)
        return run

    def stages(self, run: PipelineRun) -> list[StageOutcome]:
        """The run's stages from its build timeline, each with the approvals that gated it."""
        records = self._timeline(run)
        by_id = {r.id: r for r in records}
        approvals: dict[str, list[str]] = {}
        for record in records:
            if record.type != "Checkpoint.Approval":
                continue
            parent = by_id.get(record.parent_id)
            stage = by_id.get(parent.parent_id) if parent is not None else None
            if stage is not None:
                approvals.setdefault(stage.id, []).append(str(record.id))
        return [
            StageOutcome(
                name=str(r.identifier or r.name),
                state=_text(r.state),
                result=_text(r.result) or None,
                approval_ids=tuple(approvals.get(r.id, [])),
            )
            for r in sorted((r for r in records if r.type == "Stage"), key=lambda r: r.order or 0)
        ]

    def gate_outcome(self, run: PipelineRun, environment: str) -> str | None:
        """How the approval gate of the run's stage into `environment` ended, if it did not pass:
        `rejected`, `timedOut` or `canceled` (None: no gate, or it passed)."""
        stage = next((s for s in self.stages(run) if s.environment == environment), None)
        if stage is None or not stage.approval_ids:
            return None
        for approval in self.approvals_by_id(stage.approval_ids):
            if approval.status in ("rejected", "timedOut", "canceled"):
                return approval.status
        return None

    def approvals_by_id(self, ids: Sequence[str]) -> list[PipelineApproval]:
        if not ids:
            return []
        with self._translated("read approvals"):
            body = self._request(
                "GET",
                "pipelines/approvals",
                {"approvalIds": ",".join(ids), "$expand": "steps", "state": "all"},
            )
        return [approval_from_json(a) for a in (body or {}).get("value", [])]

    def failed_step(self, run: PipelineRun, *, tail: int = 40) -> FailedStep | None:
        """The first failed task of a run and the last `tail` lines of its log."""
        failed = [
            r for r in self._timeline(run) if r.type == "Task" and _text(r.result) == "failed"
        ]
        if not failed or failed[0].log is None:
            return None
        step = failed[0]
        with self._translated(f"read the log of '{step.name}' in run {run.id}"):
            lines = self._client("build").get_build_log_lines(self.project, run.id, step.log.id)
        return FailedStep(str(step.name), int(step.log.id), tuple(str(x) for x in lines[-tail:]))

    def _timeline(self, run: PipelineRun) -> list[Any]:
        with self._translated(f"read the timeline of run {run.id}"):
            timeline = self._client("build").get_build_timeline(self.project, run.id)
        return list(timeline.records or []) if timeline is not None else []

    def _run(self, found: Any, pipeline_id: int) -> PipelineRun:
        links = getattr(found._links, "additional_properties", None) or {}
        web = (links.get("web") or {}).get("href") or _web_url(str(found.url or ""), found.id)
        return PipelineRun(
            pipeline_id=int(found.pipeline.id) if found.pipeline else pipeline_id,
            id=int(found.id),
            name=str(found.name or found.id),
            state=RunState(found.state) if found.state in set(RunState) else RunState.UNKNOWN,
            result=RunResult(found.result) if found.result in set(RunResult) else None,
            web_url=str(web),
            created=found.created_date,
            finished=found.finished_date,
            parameters={k: str(v) for k, v in (found.template_parameters or {}).items()},
            ref_name=_self_ref(found),
        )


def _self_ref(found: Any) -> str:
    repositories = getattr(found.resources, "repositories", None) or {}
    own = repositories.get("self")
    return str(getattr(own, "ref_name", "") or "")
