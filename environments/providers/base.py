"""The Provider protocol every backend (local, azure) implements; steps are idempotent."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from environments.model import Environment, HealthStatus, Release

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ProviderResult:
    """What a provider observed after a step: the endpoint and any outputs worth keeping."""

    endpoint: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthReport:
    """What one health probe observed: a status and the reason a person can act on."""

    status: HealthStatus
    reason: str


class Provider(Protocol):
    """Bring an environment up, place a release into it, tear it down.

    Every method may be called again after a crash with the same arguments and must then
    finish the job rather than start a second copy of it.
    """

    name: str

    def provision(self, environment: Environment, *, progress: Progress) -> ProviderResult: ...

    def deploy(
        self,
        environment: Environment,
        release: Release,
        parameters: Mapping[str, str],
        *,
        progress: Progress,
    ) -> ProviderResult: ...

    def destroy(self, environment: Environment, *, progress: Progress) -> None: ...

    def health(self, environment: Environment) -> str: ...

    def probe(self, environment: Environment, *, timeout: float) -> HealthReport:
        """Health as a status; every call it makes gives up after `timeout` seconds."""
        ...


@runtime_checkable
class DeliveryEngine(Protocol):
    """A provider that deploys by running a pipeline (engine azure-pipelines).

    It is told who asked (the run carries them) and reports the run the moment it starts
    (`started(run_url)`), so the deployment row knows its run before any hook arrives; `resume`
    is the run a crashed attempt started, followed instead of starting a second one.
    """

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
    ) -> ProviderResult: ...


@runtime_checkable
class ChecksParameters(Protocol):
    """A provider that can tell, without side effects, whether it could use these parameters.

    The use case asks before it records anything, so a request the provider would refuse is
    refused as bad input (nothing recorded), not recorded as a failed environment.
    """

    def check(self, environment: Environment, parameters: Mapping[str, str]) -> None: ...
