"""The steps of an operation — provision, deploy, destroy — each change written with its
outbox event; a failure leaves the environment as the record says (serving, or failed)."""

from __future__ import annotations

from environments import parameters, pipeline_gate, redaction, renderings
from environments.catalog import Catalog
from environments.clock import Clock
from environments.errors import NotPromoted, ProviderError, ShipyardError
from environments.model import (
    DeploymentStatus,
    Environment,
    EnvironmentState,
    Operation,
    OperationKind,
)
from environments.notify import Notifier
from environments.providers.base import DeliveryEngine, Provider
from environments.registry import Database, outbox
from environments.registry import operations as ops
from environments.registry import record as rec


class Steps:
    """What an operation does, step by step, through its provider."""

    def __init__(
        self, catalog: Catalog, database: Database, clock: Clock, notifier: Notifier
    ) -> None:
        self.catalog = catalog
        self.db = database
        self.clock = clock
        self.notifier = notifier

    def provision(self, op: Operation, provider: Provider) -> None:
        env = self._move(op.environment_id, EnvironmentState.PROVISIONING)
        self._say(op, f"provisioning {env.name} ({provider.name})")
        try:
            result = provider.provision(env, progress=lambda m: self._say(op, m))
        except ShipyardError as exc:
            self._fail(op, env, exc)
            raise
        with self.db.write() as conn:
            rec.update_environment(conn, env.id, outputs={**env.outputs, **result.outputs})

    def deploy(self, op: Operation, provider: Provider) -> None:
        if op.deployment_id is None:
            raise ProviderError(f"operation #{op.id} has no deployment", hint="report this")
        with self.db.write() as conn:
            deployment = rec.get_deployment(conn, op.deployment_id)
            release = rec.get_release(conn, deployment.release)
            rec.set_deployment_status(conn, deployment.id, DeploymentStatus.RUNNING)
        env = self._move(op.environment_id, EnvironmentState.DEPLOYING)
        env_type = self.catalog.type(env.type)
        self._say(op, f"deploying {release.version} into {env.name}")
        try:
            applied = (
                env.overrides
                if deployment.environment_parameters is None
                else deployment.environment_parameters
            )
            resolved = parameters.resolve(
                self.catalog,
                env_type,
                applied,
                deployment.overrides,
                file_layer=renderings.file_layer(self.catalog, env_type),
            )
            context = parameters.Context(
                env.name, env.type, env.owner, env.outputs, release.version
            )
            rendered = parameters.render(resolved, context)
            given = parameters.values(rendered)
            if isinstance(provider, DeliveryEngine):
                result = provider.deliver(
                    env,
                    release,
                    given,
                    requested_by=deployment.requested_by,
                    progress=lambda m: self._say(op, m),
                    started=lambda url: self._run_started(deployment.id, url),
                    resume=deployment.run_url,
                )
            else:
                result = provider.deploy(env, release, given, progress=lambda m: self._say(op, m))
        except NotPromoted as exc:
            self._not_promoted(op, env, deployment.id, release.version, exc)
            return
        except ShipyardError as exc:
            self._fail(op, env, exc)
            raise
        now = self.clock.now()
        with self.db.write() as conn:
            rec.set_deployment_status(
                conn,
                deployment.id,
                DeploymentStatus.SUCCEEDED,
                at=now,
                fingerprint=parameters.fingerprint(given),
                parameters=given,
                secret_refs=parameters.secret_names(rendered),
            )
            if deployment.environment_parameters is not None:
                rec.update_environment(conn, env.id, overrides=applied)
            if result.outputs.get("run_url"):
                rec.set_run_url(conn, deployment.id, str(result.outputs["run_url"]))
            rec.set_current_release(
                conn,
                env.id,
                deployment_id=deployment.id,
                release=release.version,
                by=deployment.requested_by,
                at=now,
            )
            rec.update_environment(
                conn,
                env.id,
                state=EnvironmentState.READY,
                endpoint=result.endpoint,
                outputs={**env.outputs, **result.outputs},
                reason=None,
            )
            ops.audit(
                conn,
                at=now,
                actor=deployment.requested_by,
                action="deployment.succeed",
                environment=env.name,
                release=release.version,
                deployment=deployment.id,
                approved_by=list(deployment.approved_by),
            )
            ready = rec.environment_by_id(conn, env.id)
            outbox.add(
                conn,
                outbox.Event.READY,
                at=now,
                environment=env.name,
                operation=op.id,
                release=release.version,
                endpoint=result.endpoint,
                run_url=result.outputs.get("run_url"),
            )
        self._say(op, f"{env.name} is ready with {release.version} at {result.endpoint}")
        self.notifier.environment_ready(ready, operation=op.id)

    def destroy(self, op: Operation, provider: Provider) -> None:
        env = self._move(op.environment_id, EnvironmentState.DESTROYING)
        self._say(op, f"destroying {env.name}")
        provider.destroy(env, progress=lambda m: self._say(op, m))
        now = self.clock.now()
        with self.db.write() as conn:
            for open_one in rec.open_deployments(conn, env.id):
                rec.set_deployment_status(
                    conn,
                    open_one.id,
                    DeploymentStatus.CANCELLED,
                    at=now,
                    reason="environment destroyed",
                )
            rec.update_environment(
                conn, env.id, state=EnvironmentState.DESTROYED, destroyed_at=now, endpoint=None
            )
            ops.audit(
                conn, at=now, actor="shipyard", action="environment.destroyed", environment=env.name
            )
            outbox.add(conn, outbox.Event.DESTROYED, at=now, environment=env.name, operation=op.id)
        self._say(op, f"{env.name} destroyed")

    # --- helpers ----------------------------------------------------------------------------

    def _move(self, env_id: int, state: EnvironmentState) -> Environment:
        with self.db.write() as conn:
            rec.update_environment(conn, env_id, state=state)
            return rec.environment_by_id(conn, env_id)

    def _run_started(self, deployment_id: int, run_url: str) -> None:
        """The run is part of the deployment from its first second: hooks find this row."""
        with self.db.write() as conn:
            rec.set_run_url(conn, deployment_id, run_url)

    def _not_promoted(
        self, op: Operation, env: Environment, deployment_id: int, release: str, exc: NotPromoted
    ) -> None:
        """A rejected or timed-out gate: no failure; the environment keeps serving what it had."""
        with self.db.write() as conn:
            pipeline_gate.not_promoted(conn, env.id, deployment_id, op.id, exc, at=self.clock.now())
        self._say(op, f"{release} not promoted into {env.name}: {exc.reason}")

    def _fail(self, op: Operation, env: Environment, exc: ShipyardError) -> None:
        """A failed deploy leaves the old release serving (ready); a failed build is failed."""
        now = self.clock.now()
        with self.db.write() as conn:
            if op.deployment_id is not None:
                rec.set_deployment_status(
                    conn, op.deployment_id, DeploymentStatus.FAILED, at=now, reason=exc.one_line()
                )
            current = rec.environment_by_id(conn, env.id)
            still_serving = current.release is not None and op.kind is OperationKind.DEPLOY
            rec.update_environment(
                conn,
                env.id,
                state=EnvironmentState.READY if still_serving else EnvironmentState.FAILED,
                reason=exc.one_line(),
            )
            ops.audit(
                conn,
                at=now,
                actor="shipyard",
                action="operation.fail",
                environment=env.name,
                operation=op.id,
                reason=exc.one_line(),
            )
            outbox.add(
                conn,
                outbox.Event.FAILED,
                at=now,
                environment=env.name,
                operation=op.id,
                reason=exc.reason,
                hint=exc.hint,
                # Next steps as commands: each surface that delivers this says them its own way.
                hints=[hint.as_dict() for hint in exc.hints],
            )
        self.notifier.failed(
            env.name, redaction.mask(exc.reason), redaction.mask(exc.advice()), operation=op.id
        )

    def _say(self, op: Operation, message: str) -> None:
        with self.db.write() as conn:
            outbox.add(
                conn,
                outbox.Event.PROGRESS,
                at=self.clock.now(),
                environment=op.environment,
                operation=op.id,
                message=message,
            )
        self.notifier.progress(op.environment, redaction.mask(message), operation=op.id)
