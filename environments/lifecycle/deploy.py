"""Use cases: add a release, deploy it, change an environment's parameters."""

from __future__ import annotations

from pathlib import Path

from environments import inputs, parameters, policy, renderings
from environments.errors import Conflict, InvalidInput
from environments.lifecycle.requesting import Requested, UseCases
from environments.model import (
    DeploymentKind,
    Person,
    Release,
    check_version,
)
from environments.outcome import Hint
from environments.policy import Actor
from environments.registry import operations as ops
from environments.registry import record as rec
from environments.release_builds import check_build_run, check_ref


class Deploying(UseCases):
    """Releases in, releases deployed, an environment's own parameters changed."""

    def add_release(
        self,
        actor: Actor,
        version: str,
        artifact: str,
        *,
        build_id: str = "",
        commit: str = "",
        build_run: int | None = None,
        source_ref: str = "",
    ) -> Release:
        check_version(version)
        check_build_run(build_run)
        check_ref(source_ref)
        if not artifact.strip():
            raise InvalidInput(
                "--artifact is empty",
                hint="pass --artifact with the folder that holds the release's files",
            )
        folder = Path(artifact).expanduser()
        if not folder.is_absolute():
            folder = (Path.cwd() / folder).resolve()
        if not folder.is_dir():
            raise InvalidInput(
                f"artifact folder {folder} does not exist",
                hint="pass --artifact with the folder that holds the release's files",
            )
        release = Release(
            version=check_version(version),
            artifact=str(folder),
            build_id=build_id or (str(build_run) if build_run else ""),
            commit=commit,
            added_by=Person(actor.person),
            added_at=self.clock.now(),
            build_run=build_run,
            source_ref=source_ref,
        )
        with self.db.write() as conn:
            rec.add_release(conn, release)
            ops.audit(
                conn,
                at=release.added_at,
                actor=actor.person,
                action="release.add",
                environment=None,
                release=version,
                artifact=str(folder),
            )
        return release

    def deploy(
        self,
        actor: Actor,
        name: str,
        *,
        release: str,
        overrides: dict[str, str] | None = None,
        when_open: bool = False,
        window_override: str | None = None,
    ) -> Requested:
        """Deploy a release; `overrides` apply to this deployment only. A closed deploy window
        refuses it, unless `when_open` (it waits) or an admin's `window_override` reason."""
        now = self.clock.now()
        with self.db.write() as conn:
            env = self._usable(conn, name)
            env_type = self.catalog.type(env.type)
            policy.require(self.catalog, actor, "deploy", env_type)
            inputs.require(
                env_type.inputs, overrides or {}, type_name=env_type.name, creating=False
            )
            window = self._window(actor, env_type, now, when_open, window_override)
            rec.release_id(conn, release)
            if not overrides:
                self._not_already(conn, env, release)
            requested = self._request(
                conn,
                env.id,
                env.name,
                env_type,
                release,
                DeploymentKind.DEPLOY,
                actor,
                now=now,
                overrides=overrides,
            )
            requested = self._windowed(conn, requested, window)
            ops.audit(
                conn,
                at=now,
                actor=actor.person,
                action="deployment.request",
                environment=name,
                release=release,
                deployment=requested.deployment_id,
                overridden=sorted(overrides or {}),
            )
        self._announce(requested)
        return requested

    def set_parameters(
        self, actor: Actor, name: str, changes: dict[str, str], unset: list[str]
    ) -> Requested | None:
        """Change an environment's own parameters; a running release is redeployed with them.

        The redeploy goes through the type's gate like any deployment (production changes need
        approval); the environment's parameters change only when that deployment succeeds.
        Returns None when nothing runs yet and the change was applied at once.
        """
        now = self.clock.now()
        parameters.check(changes, "params set")
        with self.db.write() as conn:
            env = self._usable(conn, name)
            env_type = self.catalog.type(env.type)
            policy.require(self.catalog, actor, "params_set", env_type)
            inputs.require(env_type.inputs, changes, type_name=env_type.name, creating=False)
            missing = [key for key in unset if key not in env.overrides]
            if missing:
                raise InvalidInput(
                    f"{name} does not set {', '.join(missing)} itself",
                    hints=Hint("see its own parameters", "params show", {"name": name}),
                )
            wanted = {k: v for k, v in env.overrides.items() if k not in unset} | changes
            if wanted == env.overrides:
                raise Conflict(f"{name} already has these parameters", hint="nothing to do")
            ops.audit(
                conn,
                at=now,
                actor=actor.person,
                action="parameters.set",
                environment=name,
                changed=sorted(changes),
                unset=sorted(unset),
            )
            if env.release is None:
                resolved = parameters.resolve(
                    self.catalog,
                    env_type,
                    wanted,
                    file_layer=renderings.file_layer(self.catalog, env_type),
                )
                renderings.check_declared(self.catalog, env_type, resolved)
                rec.update_environment(conn, env.id, overrides=wanted)
                return None
            requested = self._request(
                conn,
                env.id,
                env.name,
                env_type,
                env.release,
                DeploymentKind.DEPLOY,
                actor,
                now=now,
                environment_parameters=wanted,
            )
        self._announce(requested)
        return requested
