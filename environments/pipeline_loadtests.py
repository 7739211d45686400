"""A pipeline's load test: asked for over `/api/v1` after a deploy, run by `shipyard serve`.

`start` checks what a request may not get past (the environment is ready with a release, the
plan exists, the rule table lets the pipeline identity `loadtest` it within its type's limits)
and records the run as started; `finish` then runs it through the same use case as
`env loadtest` (`LoadTesting.run`), off the request's thread. `run` reads where it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from environments import policy
from environments.catalog import Catalog
from environments.errors import Conflict, InvalidInput
from environments.model import EnvironmentState, parse_duration
from environments.outcome import Hint
from environments.policy import Actor
from environments.registry import Database
from environments.registry import loadtests as runs
from environments.registry import record as rec

if TYPE_CHECKING:  # the load-test modules pull in numpy and polars
    from environments.loadtests.service import LoadTesting

__all__ = ["LoadTestRequest", "LoadTestRun", "PipelineLoadTests"]

MAX_USERS = 10_000
# Where a run is: running until the engine ends, then the verdict's outcome.
RunState = Literal["running", "passed", "failed", "regressed", "inconclusive", "errored"]


@dataclass(frozen=True)
class LoadTestRequest:
    """What a pipeline asks for (the environment is named apart); unset: the plan's own."""

    plan: str | None = None
    users: int | None = None
    duration: str | None = None


@dataclass(frozen=True)
class LoadTestRun:
    """A load-test run as a step following it needs to know."""

    run: int
    environment: str
    release: str
    plan: str
    state: RunState
    verdict: str | None = None

    def line(self) -> str:
        said = f"load test #{self.run} of {self.release} on {self.environment} ({self.plan}): "
        return said + (self.verdict or self.state)


class PipelineLoadTests:
    """Starts and reads the load tests pipelines ask for, as one identity of the rule table."""

    def __init__(self, catalog: Catalog, database: Database, loadtesting: LoadTesting) -> None:
        self.catalog = catalog
        self.db = database
        self.loadtesting = loadtesting

    def start(self, actor: Actor, name: str, request: LoadTestRequest) -> LoadTestRun:
        """Refuse (changing nothing) or record the run as started; `finish` runs it."""
        users, duration = _load(request)
        with self.db.read() as conn:
            env = rec.get_environment(conn, name)
        policy.authorize(
            self.catalog, actor, "loadtest", self.catalog.type(env.type), users=users,
            duration=duration,
        )  # fmt: skip
        if env.state is not EnvironmentState.READY or not env.endpoint or env.release is None:
            raise Conflict(
                f"{env.name} is {env.state}, not ready with a release",
                hints=Hint(
                    "load-test it once it is ready", "pipeline wait-ready", {"name": env.name}
                ),
            )
        plan, _ = self.loadtesting.plan(env.type, request.plan)
        run_id = self.loadtesting.begin(
            actor, environment=env.name, env_type=env.type, release=env.release, plan=plan,
            users=users, duration=duration,
        )  # fmt: skip
        return self.run(run_id)

    def finish(self, actor: Actor, started: LoadTestRun, request: LoadTestRequest) -> None:
        """Run the started run to its verdict; whatever stops it, the run is closed as errored."""
        users, duration = _load(request)
        try:
            self.loadtesting.run(
                actor, started.environment, plan=started.plan, users=users, duration=duration,
                run_id=started.run,
            )  # fmt: skip
        except Exception as exc:
            if self.run(started.run).state == "running":  # refused before the engine started
                self.loadtesting.errored(started.run, getattr(exc, "reason", None) or repr(exc))

    def run(self, run_id: int) -> LoadTestRun:
        with self.db.read() as conn:
            found = runs.get(conn, run_id)
        state: RunState = found.outcome or "running"  # type: ignore[assignment]
        return LoadTestRun(
            run=found.id, environment=found.environment, release=found.release, plan=found.plan,
            state=state, verdict=found.verdict,
        )  # fmt: skip

    def type_of_run(self, run_id: int) -> str:
        with self.db.read() as conn:
            return runs.get(conn, run_id).environment_type


def _load(request: LoadTestRequest) -> tuple[int | None, timedelta | None]:
    if request.users is not None and not 1 <= request.users <= MAX_USERS:
        raise InvalidInput(f"users {request.users} is out of range", hint=f"use 1 to {MAX_USERS}")
    return request.users, parse_duration(request.duration) if request.duration else None
