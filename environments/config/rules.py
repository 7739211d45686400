"""The rule table's vocabulary: the actions `allow:` names, their limits, and approval policies."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from environments.config.fields import Duration, Strict

# What the rule table (`allow:`) speaks of. Per environment type:
TypeAction = Literal[
    "create",
    "deploy",
    "promote",
    "destroy",
    "extend",
    "loadtest",
    "params_set",
]
# Not about one type (top-level `allow:`):
GlobalAction = Literal[
    "expire",
    "schedule_run",
    "schedule_pause",
    "schedule_resume",
    "pipelines_sync",
    "pipelines_reconcile",
    "release_add",
    "record_deployment",
    "tokens_manage",
]
ACTIONS: tuple[str, ...] = TypeAction.__args__  # type: ignore[attr-defined]
GLOBAL_ACTIONS: tuple[str, ...] = GlobalAction.__args__  # type: ignore[attr-defined]


class ApprovalPolicy(Strict):
    """N of M: how many of these people (or roles) must approve, and how long the request waits."""

    required: int = Field(ge=1, le=20)
    approvers: tuple[str, ...] = Field(min_length=1)
    timeout: Duration = timedelta(hours=24)
    channel: str | None = None
    dm: bool = False  # also a direct message to each approver (with the buttons)


class LoadTestLimits(Strict):
    """The most a load test may ask of an environment of this type."""

    max_users: int | None = Field(default=None, ge=1)
    max_duration: Duration | None = None


class Limits(Strict):
    """Bounds on what an allowed action may ask for."""

    loadtest: LoadTestLimits = LoadTestLimits()
