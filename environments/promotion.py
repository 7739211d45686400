"""Promotion: what TARGET means, and which release may move into it from the step before."""

from __future__ import annotations

import sqlalchemy as sa

from environments.catalog import Catalog
from environments.errors import Conflict, InvalidInput, NotFound
from environments.model import DeploymentStatus, Environment, EnvironmentState, check_version
from environments.registry import loadtests as loadtest_runs
from environments.registry import record as rec
from environments.registry.schema import deployments, environments, releases


def target(conn: sa.Connection, catalog: Catalog, target: str) -> tuple[Environment | None, str]:
    """TARGET is an environment, or a type with at most one live environment (none: create)."""
    env = rec.find_environment(conn, target, lock=True)
    if env is not None:
        return env, env.type
    if target not in catalog.types:
        raise NotFound(
            f"there is no environment or environment type '{target}'",
            hint=f"promote into one of: {', '.join(catalog.promotion[1:])}",
        )
    live = rec.list_environments(conn, env_type=target)
    if len(live) > 1:
        raise InvalidInput(
            f"there are {len(live)} {target} environments",
            hint=f"name one of them: {', '.join(e.name for e in live)}",
        )
    return (live[0], target) if live else (None, target)


def promotable(
    conn: sa.Connection,
    catalog: Catalog,
    previous: str,
    release: str | None,
    source: Environment | None,
) -> tuple[str, int | None]:
    """Which release to promote: only one that succeeded in the previous step of the path."""
    if source is not None:
        if release is not None and release != source.release:
            raise InvalidInput(
                f"{source.name} runs {source.release}, not {release}",
                hint="leave out --release to promote what runs there",
            )
        if source.release is None or source.state is not EnvironmentState.READY:
            raise Conflict(
                f"{source.name} is {source.state} with no release to promote",
                hint="wait until it is ready",
            )
        return source.release, source.id
    query = (
        sa.select(releases.c.version, deployments.c.environment_id)
        .select_from(
            deployments.join(environments, environments.c.id == deployments.c.environment_id).join(
                releases, releases.c.id == deployments.c.release_id
            )
        )
        .where(
            environments.c.type == previous,
            deployments.c.status == DeploymentStatus.SUCCEEDED.value,
        )
        .order_by(releases.c.id.desc(), deployments.c.id.desc())
        .limit(1)
    )
    if release is not None:
        check_version(release)
        rec.release_id(conn, release)
        query = query.where(releases.c.version == release)
    found = conn.execute(query).first()
    if found is None:
        subject = f"release {release} has not" if release else "no release has"
        raise Conflict(
            f"{subject} been deployed successfully to a {previous} environment yet",
            hint=f"deploy it to {previous} first; releases move along "
            f"{' → '.join(catalog.promotion)}",
        )
    return str(found.version), int(found.environment_id)


def load_test_gate(
    last: loadtest_runs.RunRecord | None, release: str, override_reason: str | None
) -> str | None:
    """A release whose last load test failed or regressed moves on only with a stated reason.

    A pure predicate over the release's last verdict, which the use case loads
    (`registry.loadtests.last_verdict`). Returns the override to record and show to approvers
    (None when no override was needed).
    """
    if last is None or last.outcome == "passed":
        return None
    if not (override_reason and override_reason.strip()):
        raise Conflict(
            f"release {release}'s last load test (#{last.id} on {last.environment}) {last.outcome}",
            hint="fix the release, or promote with --override-reason 'why it may go anyway'",
        )
    return f"override: {override_reason.strip()} (load test #{last.id} {last.outcome})"
