"""Engine `azure-pipelines`: a release is deployed by running the team's pipeline, not directly."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import timedelta

from environments import pipeline_gate
from environments.catalog import Catalog
from environments.errors import NotPromoted, ProviderError
from environments.model import Environment, Release
from environments.providers.base import (
    ChecksParameters,
    HealthReport,
    Progress,
    Provider,
    ProviderResult,
)
from pipelines.azure_devops import AzureDevOps, PipelineRun, run_id_of_url


class PipelineEngine:
    """Provisions, destroys and checks health through the type's provider; deploys by a run.

    The run gets the environment, release and requester as template parameters and deploys the
    release's recorded build (or its tag), never the default branch. A gated type's Azure
    DevOps environment gets Shipyard's approval check (sync) before the run starts, so the gate
    is never missing. Shipyard follows the run to the end, explains a failure with the failing
    step's log, and ends a rejected or timed-out gate as "not promoted".
    """

    def __init__(
        self,
        inner: Provider,
        connect: Callable[[], AzureDevOps],
        *,
        catalog: Catalog,
        timeout: timedelta,
    ) -> None:
        self.inner = inner
        self._connect = connect
        self.catalog = catalog
        self.timeout = timeout
        self.name = f"{inner.name} via azure-pipelines"

    @functools.cached_property
    def ado(self) -> AzureDevOps:
        """Built when a deploy first runs a pipeline: the other commands need no PAT."""
        return self._connect()

    def check(self, environment: Environment, parameters: Mapping[str, str]) -> None:
        """Before anything is recorded: the provider's own check, and a client the deploy's run
        can use (a missing AZURE_DEVOPS_PAT is refused now, not as a failed environment)."""
        if isinstance(self.inner, ChecksParameters):
            self.inner.check(environment, parameters)
        self.ado  # noqa: B018 - builds the client, which refuses incomplete settings

    def provision(self, environment: Environment, *, progress: Progress) -> ProviderResult:
        return self.inner.provision(environment, progress=progress)

    def deploy(
        self,
        environment: Environment,
        release: Release,
        parameters: Mapping[str, str],
        *,
        progress: Progress,
    ) -> ProviderResult:
        return self.deliver(
            environment,
            release,
            parameters,
            requested_by=environment.owner,
            progress=progress,
            started=lambda _url: None,
        )

    def deliver(
        self,
        environment: Environment,
        release: Release,
        parameters: Mapping[str, str],
        *,
        requested_by: str,
        progress: Progress,
        started: Callable[[str], None],
        resume: str | None = None,
    ) -> ProviderResult:
        run = self._resumed(environment, resume) if resume else None
        if run is None:
            run = self._start(environment, release, requested_by)
            progress(f"pipeline run {run.id} started: {run.web_url}")
        else:
            progress(f"following pipeline run {run.id} again: {run.web_url}")
        started(run.web_url)

        def changed(now: PipelineRun) -> None:
            progress(
                f"pipeline run {now.id}: {now.state}" + (f" ({now.result})" if now.result else "")
            )

        done = self.ado.wait_for_run(run, timeout=self.timeout, on_change=changed)
        if str(done.result) != "succeeded":
            gate = self.ado.gate_outcome(done, environment.name)
            if gate is not None:
                raise NotPromoted(
                    f"{release.version} not promoted into {environment.name}: the approval "
                    f"gate {'timed out' if gate == 'timedOut' else gate}",
                    hint=f"see {done.web_url}",
                    timed_out=gate == "timedOut",
                )
            step = self.ado.failed_step(done)
            detail = f" in '{step.name}': {' | '.join(step.lines[-3:])}" if step else ""
            raise ProviderError(
                f"pipeline run {done.id} {done.result}{detail}", hint=f"see {done.web_url}"
            )
        return ProviderResult(
            endpoint=environment.endpoint,
            outputs={"run_url": done.web_url, "pipeline_run": done.id},
        )

    def _start(self, environment: Environment, release: Release, requested_by: str) -> PipelineRun:
        env_type = self.catalog.type(environment.type)
        pipeline_gate.require_deliverable(env_type, release)
        if env_type.approval is not None:
            self.ado.sync(self.catalog, [(environment.name, environment.type)])
        settings = env_type.azure_devops
        build = None
        if settings.source == "build":
            # The pipeline resource is asked for by its run's name (the build number).
            number = release.build_number.strip()
            if not number and release.build_run is not None:
                number = self.ado.build_number(release.build_run)
            build = (settings.build_resource, number)
        return self.ado.start_run(
            pipeline_id=self._pipeline_of(environment),
            environment=environment.name,
            release=release.version,
            requested_by=requested_by,
            build=build,
            branch=_tag_of(release) if settings.source == "tag" else None,
        )

    def _pipeline_of(self, environment: Environment) -> int | None:
        """The pipeline that deploys this environment's type: its own, else the section's."""
        own = self.catalog.type(environment.type).azure_devops.pipeline_id
        return own if own is not None else self.ado.settings.pipeline_id

    def _resumed(self, environment: Environment, run_url: str) -> PipelineRun | None:
        """The run a crashed attempt started (`…/_build/results?buildId=N`), if it can be read."""
        run_id = run_id_of_url(run_url)
        pipeline_id = self._pipeline_of(environment)
        if run_id is None or pipeline_id is None:
            return None
        return self.ado.get_run(pipeline_id, run_id)

    def destroy(self, environment: Environment, *, progress: Progress) -> None:
        self.inner.destroy(environment, progress=progress)

    def health(self, environment: Environment) -> str:
        return self.inner.health(environment)

    def probe(self, environment: Environment, *, timeout: float) -> HealthReport:
        return self.inner.probe(environment, timeout=timeout)


def _tag_of(release: Release) -> str:
    """The tag a release was built from (its recorded ref when that is a tag), never a branch."""
    ref = release.source_ref.strip()
    return ref if ref.startswith("refs/tags/") else f"refs/tags/{release.version}"
