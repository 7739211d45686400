"""What the plugin steps read from and write to the record, in one place for both ways in.

A step inside a pipeline renders an environment's parameters, records what it deployed,
registers the release its build produced, and waits for an environment to be ready. `shipyard
serve` answers these over `/api/v1` (the documented way: agents hold a scoped token, never the
database) and a self-hosted agent may call them on the record directly; both use this class, so
both answer alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from environments import parameters, renderings
from environments.catalog import Catalog
from environments.clock import Clock
from environments.errors import InvalidInput
from environments.model import DeploymentStatus, Environment, EnvironmentState
from environments.pipeline_deployments import (
    SYSTEM,
    PipelineDeployment,
    Recorded,
    record_deployment,
)
from environments.registry import Database
from environments.registry import operations as ops
from environments.registry import record as rec
from environments.release_builds import BuildRelease, Registered, register_release

__all__ = [
    "FORMATS",
    "STEP_STATUSES",
    "DeploymentReport",
    "PipelineSteps",
    "ReleaseReport",
    "Rendered",
    "StateAnswer",
]

FORMATS = tuple(f for f in renderings.FORMATS if f != "table")
# How a pipeline job can end, as the record-deployment step reports it.
StepStatus = Literal["succeeded", "failed", "cancelled"]
STEP_STATUSES: tuple[str, ...] = StepStatus.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Rendered:
    """An environment's parameters rendered for a deploy task, and what the step should say."""

    environment: str
    format: str
    text: str
    parameters: list[str]
    secret_references: list[str]
    notes: list[str]


@dataclass(frozen=True)
class StateAnswer:
    """Where an environment is in its life, as a step waiting for it needs to know."""

    environment: str
    type: str
    state: EnvironmentState
    release: str | None
    reason: str | None


@dataclass(frozen=True)
class DeploymentReport:
    """What a pipeline says it deployed (the body a step sends; the environment is named apart)."""

    release: str
    status: StepStatus
    run_url: str
    requested_by: str = ""
    approved_by: tuple[str, ...] = ()
    artifact: str = ""
    build_id: str = ""

    def of(self, environment: str) -> PipelineDeployment:
        return PipelineDeployment(
            environment=environment,
            release=self.release,
            status=DeploymentStatus(self.status),
            run_url=self.run_url,
            requested_by=self.requested_by or SYSTEM,
            approved_by=self.approved_by,
            artifact=self.artifact,
            build_id=self.build_id,
        )


@dataclass(frozen=True)
class ReleaseReport:
    """What a build stage says it produced (the body a step sends), and who ran it."""

    version: str
    build_run: int
    artifact: str = ""
    ref: str = ""
    build_number: str = ""
    commit: str = ""
    requested_by: str = ""

    def build(self) -> BuildRelease:
        return BuildRelease(
            self.version, self.build_run, self.artifact, self.ref, self.build_number, self.commit
        )


class PipelineSteps:
    """The record's side of the steps: each call one read or one write transaction."""

    def __init__(self, catalog: Catalog, database: Database, clock: Clock) -> None:
        self.catalog = catalog
        self.db = database
        self.clock = clock

    def type_of(self, name: str) -> str:
        """The environment's type (NotFound when the record has no such environment)."""
        with self.db.read() as conn:
            return rec.get_environment(conn, name).type

    def parameters(self, name: str, *, format: str, release: str | None) -> Rendered:
        if format not in FORMATS:
            raise InvalidInput(
                f"there is no parameter format '{format}'", hint=f"use one of: {', '.join(FORMATS)}"
            )
        with self.db.read() as conn:
            env = rec.get_environment(conn, name)
        return self._render(env, format, release or env.release)

    def _render(self, env: Environment, format: str, release: str | None) -> Rendered:
        env_type = self.catalog.type(env.type)
        resolved = parameters.resolve(
            self.catalog,
            env_type,
            env.overrides,
            file_layer=renderings.file_layer(self.catalog, env_type),
        )
        shown = parameters.render(
            resolved, parameters.Context(env.name, env.type, env.owner, env.outputs, release)
        )
        notes: list[str] = []
        if format == "sf-xml":
            rendered = renderings.sf_xml(self.catalog, env_type, env.name, shown)
            text = rendered.xml
            notes = [
                f"{k}: not set, the ApplicationManifest's default applies"
                for k in rendered.defaulted
            ]
        elif format == "arm-json":
            text = renderings.arm_json(self.catalog, shown)
        elif format == "dotenv":
            text = renderings.dotenv(shown)
        else:
            text = renderings.as_json(shown)
        return Rendered(
            environment=env.name,
            format=format,
            text=text,
            parameters=sorted(shown),
            secret_references=parameters.secret_names(shown),
            notes=notes,
        )

    def state(self, name: str) -> StateAnswer:
        with self.db.read() as conn:
            env = rec.get_environment(conn, name)
        return StateAnswer(env.name, env.type, env.state, env.release, env.reason)

    def record(
        self, environment: str, report: DeploymentReport, *, token: str | None = None
    ) -> Recorded:
        """`token`: the API token that asked (its name), audited with what it wrote."""
        now = self.clock.now()
        with self.db.write() as conn:
            recorded = record_deployment(conn, self.catalog, report.of(environment), at=now)
            if token and recorded.new:
                ops.audit(conn, at=now, actor=token, action="api.record_deployment",
                          environment=recorded.environment, deployment=recorded.deployment_id,
                          run_url=recorded.run_url)  # fmt: skip
        return recorded

    def register(self, report: ReleaseReport, *, token: str | None = None) -> Registered:
        now = self.clock.now()
        with self.db.write() as conn:
            registered = register_release(
                conn, report.build(), by=report.requested_by or SYSTEM, at=now
            )
            if token and registered.new:
                ops.audit(conn, at=now, actor=token, action="api.release_add", environment=None,
                          release=registered.release.version)  # fmt: skip
        return registered
