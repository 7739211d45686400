"""Engine `azure-pipelines`: a release is deployed by running the team's pipeline, not directly."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import timedelta

from environments.errors import ProviderError
from environments.model import Environment, Release
from environments.providers.base import (
    ChecksParameters,
    HealthReport,
    Progress,
    Provider,
    ProviderResult,
)
from pipelines.azure_devops import AzureDevOps, PipelineRun


class PipelineEngine:
    """Provisions, destroys and checks health through the type's provider; deploys by a run.

    The run gets the environment and release as template parameters; Shipyard follows it to
    the end, explains a failure with the failing step's log, and keeps the run's URL with the
    deployment (so the service hook that reports the same run adds nothing twice).
    """

    def __init__(
        self, inner: Provider, connect: Callable[[], AzureDevOps], *, timeout: timedelta
    ) -> None:
        self.inner = inner
        self._connect = connect
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
        run = self.ado.start_run(
            environment=environment.name,
            release=release.version,
            requested_by=environment.release_by or environment.owner,
        )
        progress(f"pipeline run {run.id} started: {run.web_url}")

        def changed(now: PipelineRun) -> None:
            progress(
                f"pipeline run {now.id}: {now.state}" + (f" ({now.result})" if now.result else "")
            )

        done = self.ado.wait_for_run(run, timeout=self.timeout, on_change=changed)
        if str(done.result) != "succeeded":
            step = self.ado.failed_step(done)
            detail = f" in '{step.name}': {' | '.join(step.lines[-3:])}" if step else ""
            raise ProviderError(
                f"pipeline run {done.id} {done.result}{detail}", hint=f"see {done.web_url}"
            )
        return ProviderResult(
            endpoint=environment.endpoint,
            outputs={"run_url": done.web_url, "pipeline_run": done.id},
        )

    def destroy(self, environment: Environment, *, progress: Progress) -> None:
        self.inner.destroy(environment, progress=progress)

    def health(self, environment: Environment) -> str:
        return self.inner.health(environment)

    def probe(self, environment: Environment, *, timeout: float) -> HealthReport:
        return self.inner.probe(environment, timeout=timeout)
