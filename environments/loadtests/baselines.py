"""Which recorded runs a new run is judged against: a set of recent runs, named in the verdict.

The reference is what the release would replace: the release running on the next environment
type along the promotion path (its recent measured runs, even a release that went there with an
override — once it runs there it is the reference). Failing that (no next type, nothing deployed
there, the same release, or no runs of it), the previous release's recent passing runs. Always
the same plan and the same environment type, and only runs whose samples are kept.
"""

from __future__ import annotations

import sqlalchemy as sa

from environments.catalog import Catalog
from environments.loadtests.samplesets import SampleSet
from environments.loadtests.verdicts import BaselineNames
from environments.registry import loadtests as runs
from environments.registry import record as rec

MEASURED = ("passed", "regressed", "inconclusive", "failed")
"""Outcomes of runs that measured their release (an errored run measured nothing)."""


def choose(
    conn: sa.Connection,
    catalog: Catalog,
    *,
    release: str,
    plan: str,
    env_type: str,
    limit: int,
    before: int,
) -> tuple[BaselineNames, SampleSet | None]:
    """The baseline runs for a run of `release` (run ids below `before`), and their samples."""
    found: list[runs.RunRecord] = []
    why = ""
    next_type = catalog.next_on_path(env_type)
    deployed = rec.deployed_release_of_type(conn, next_type) if next_type else None
    if deployed and deployed != release:
        found = runs.recent_runs(
            conn,
            release=deployed,
            plan=plan,
            env_type=env_type,
            outcomes=MEASURED,
            limit=limit,
            before=before,
        )
        why = f"the release running on {next_type}"
    if not found:
        previous = runs.previous_release(conn, release=release, plan=plan, env_type=env_type)
        if previous:
            found = runs.recent_runs(
                conn,
                release=previous,
                plan=plan,
                env_type=env_type,
                outcomes=("passed",),
                limit=limit,
                before=before,
            )
            why = "the previous release's passing runs"
    if not found:
        return BaselineNames((), None, ""), None
    kept = runs.samples(conn, [r.id for r in found])
    ids = tuple(sorted(kept))
    sets = SampleSet.combined((i, SampleSet.from_bytes(kept[i], i)) for i in ids)
    return BaselineNames(ids, found[0].release, why), sets
