"""What shipyard.yaml says about load tests: plans (engine, load, criteria, verdict), schedules."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class VerdictRules(BaseModel):
    """When a plan's run counts as slower or less reliable than its baseline (docs/verdicts.md).

    A label regresses when the difference is both real (the confidence interval of the ratio
    lies above 1, or the error test's p-value is below 1 - confidence) and material (beyond
    `tolerance` and `floor_ms` for latency, `error_points` for the error rate).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # tolerance: a relative slowdown (1.0 = twice as slow) that is not material, at the
    # interval's optimistic end (docs/verdicts.md says why so wide); floor_ms: nor is an
    # absolute one below this; error_points: nor an error-rate rise below this many points;
    # min_samples: fewer samples on either side make a label inconclusive; baseline_runs: how
    # many recent runs make the baseline.
    tolerance: float = Field(
        default=1.0, ge=0.0, description="relative slowdown that is not material"
    )
    floor_ms: float = Field(
        default=20.0, ge=0.0, description="absolute slowdown (ms) that is not material"
    )
    error_points: float = Field(
        default=1.0, ge=0.0, description="error-rate rise (points) not material"
    )
    min_samples: int = Field(default=50, ge=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    baseline_runs: int = Field(
        default=3, ge=1, le=20, description="recent runs that make the baseline"
    )


class LoadTestPlan(BaseModel):
    """A named plan under `loadtests:`: which engine runs which file with what load.

    `gate` says whether the plan's verdict decides promotion; unset, only the plan that an
    environment type names as its `loadtest:` does (an exploratory stress plan does not).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: str = "locust"
    file: str
    users: int = 10
    spawn_rate: float = 10.0
    duration: str = "30s"
    criteria: tuple[str, ...] = ()
    gate: bool | None = None
    verdict: VerdictRules = VerdictRules()


class Schedule(BaseModel):
    """A named entry under `schedules:`: a cron rule, its timezone and the job it starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str
    timezone: str = "UTC"
    job: str = "nightly-loadtest"
    type: str = "test"
    plan: str | None = None
    channel: str | None = None
