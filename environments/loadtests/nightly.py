"""The nightly load test: a fresh environment, the newest release, the plan, a verdict, teardown."""

from __future__ import annotations

import logging

from environments.errors import ShipyardError
from environments.lifecycle import SYSTEM, Lifecycle
from environments.loadtests.config import Schedule
from environments.loadtests.service import LoadTesting
from environments.model import OperationState
from environments.registry import record as rec
from environments.worker import Worker

log = logging.getLogger(__name__)


def run_nightly(
    lifecycle: Lifecycle, worker: Worker, loadtesting: LoadTesting, schedule: Schedule
) -> str:
    """Returns one line saying what happened; the environment is destroyed even on failure."""
    with lifecycle.db.read() as conn:
        newest = rec.list_releases(conn, limit=1)
    if not newest:
        return "skipped: there is no release yet"
    release = newest[0].version
    name = f"nightly-{lifecycle.clock.now():%Y%m%d-%H%M}"
    requested = lifecycle.create(SYSTEM, name, env_type=schedule.type, release=release)
    try:
        if requested.operation_id is None:
            return f"skipped: {schedule.type} environments need approval, so no nightly run"
        op = worker.run(requested.operation_id)
        if op is None or op.state is not OperationState.SUCCEEDED:
            return f"failed: {name} with {release} did not come up: {op.error if op else '?'}"
        summary = loadtesting.run(SYSTEM, name, plan=schedule.plan)
        return f"{summary.outcome}: {release} on {name} (load test #{summary.run_id})"
    except ShipyardError as exc:
        return f"failed: {exc.one_line()}"
    finally:
        try:
            worker.run(lifecycle.destroy(SYSTEM, name, force=True))
        except ShipyardError as exc:
            log.error("could not destroy %s after the nightly run: %s", name, exc.one_line())
