"""What shipyard.yaml says about load tests: plans (engine, load, criteria) and schedules."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LoadTestPlan(BaseModel):
    """A named plan under `loadtests:`: which engine runs which file with what load."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: str = "locust"
    file: str
    users: int = 10
    spawn_rate: float = 10.0
    duration: str = "30s"
    criteria: tuple[str, ...] = ()


class Schedule(BaseModel):
    """A named entry under `schedules:`: a cron rule, its timezone and the job it starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str
    timezone: str = "UTC"
    job: str = "nightly-loadtest"
    type: str = "test"
    plan: str | None = None
