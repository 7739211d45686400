"""The use case of registering a release a pipeline built: version + the build run that made it.

A build stage calls it (`shipyard pipeline register-release`), so a later run deploys that build
(its artifact, or its source ref) instead of rebuilding a branch. Registering the same version
from the same build run again changes nothing (a retried step); from another run it is refused,
because releases are immutable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from environments.errors import Conflict, InvalidInput, NotFound, clip
from environments.model import Person, Release, check_version
from environments.registry import operations as ops
from environments.registry import record as rec

__all__ = ["BuildRelease", "Registered", "check_build_run", "check_ref", "register_release"]

# A git ref as Azure DevOps names it (Build.SourceBranch): refs/heads/…, refs/tags/…, refs/pull/…
REF_RULE = re.compile(r"refs/[A-Za-z0-9._/+@-]{1,240}")


def check_build_run(run: int | None) -> int | None:
    if run is not None and run <= 0:
        raise InvalidInput(
            f"build run {run} is not a run id",
            hint="pass --build-run with the run's id ($(Build.BuildId) in a pipeline)",
        )
    return run


def check_ref(ref: str) -> str:
    if ref and (not REF_RULE.fullmatch(ref) or ".." in ref or ref.endswith("/")):
        raise InvalidInput(
            f"'{clip(ref)}' is not a git ref",
            hint="pass --ref as a full ref, e.g. refs/tags/1.4.2 ($(Build.SourceBranch))",
        )
    return ref


@dataclass(frozen=True)
class BuildRelease:
    """What a build stage says it produced: release `version`, built by run `build_run`."""

    version: str
    build_run: int
    artifact: str = ""
    ref: str = ""
    build_number: str = ""
    commit: str = ""


@dataclass(frozen=True)
class Registered:
    """The release as the record holds it; `new` is False when it was registered already."""

    release: Release
    new: bool

    def line(self) -> str:
        r = self.release
        verb = "registered" if self.new else "already registered"
        built = f"build run {r.build_run}" + (f" ({r.build_number})" if r.build_number else "")
        parts = [
            built,
            *([f"artifact {r.build_artifact}"] if r.build_artifact else []),
            *([r.source_ref] if r.source_ref else []),
        ]
        return f"{verb}: release {r.version} from {', '.join(parts)}"


def register_release(
    conn: sa.Connection, build: BuildRelease, *, by: str, at: datetime
) -> Registered:
    """Write the release in the caller's write transaction (idempotent per build run)."""
    version = check_version(build.version)
    check_build_run(build.build_run)
    check_ref(build.ref)
    try:
        existing = rec.get_release(conn, version)
    except NotFound:
        existing = None
    if existing is not None:
        if existing.build_run == build.build_run:
            return Registered(existing, new=False)
        was = f"build run {existing.build_run}" if existing.build_run else existing.artifact
        raise Conflict(
            f"release {version} is already in the record, from {was}",
            hint="releases are immutable: give this build a new version",
        )
    release = Release(
        version=version,
        artifact=f"run {build.build_run}"
        + (f" artifact {build.artifact}" if build.artifact else ""),
        build_id=str(build.build_run),
        commit=build.commit,
        added_by=Person(by),
        added_at=at,
        build_run=build.build_run,
        build_number=build.build_number,
        build_artifact=build.artifact,
        source_ref=build.ref,
    )
    rec.add_release(conn, release)
    ops.audit(
        conn,
        at=at,
        actor=by,
        action="release.add",
        environment=None,
        release=version,
        artifact=release.artifact,
        build_run=build.build_run,
        ref=build.ref,
    )
    return Registered(release, new=True)
