"""Slack's Block Kit limits: the fake refuses what Slack refuses; the App Home fits any record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import views
from environments.catalog import load_catalog
from environments.model import (
    Approval,
    ApprovalState,
    DeploymentKind,
    EnvironmentName,
    EnvironmentState,
    MatrixRow,
    Person,
    Version,
)
from tests.conftest import CONFIG
from tests.fakes.slack import block_kit_problem

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def row(i: int) -> MatrixRow:
    return MatrixRow(
        environment=EnvironmentName(f"pr-{i:05d}-feature-branch-with-a-long-name"),
        type="test",
        state=EnvironmentState.READY,
        release=Version(f"1.{i}.0"),
        since=NOW - timedelta(hours=i),
        by=Person("alice"),
        approved_by=(Person("carol"), Person("dave")),
        endpoint=None,
    )


def waiting(i: int) -> Approval:
    return Approval(
        id=i,
        deployment_id=i,
        environment=EnvironmentName("staging"),
        release=Version(f"1.{i}.0"),
        kind=DeploymentKind.PROMOTION,
        source_environment=EnvironmentName("pr-1"),
        state=ApprovalState.PENDING,
        required=1,
        approvers=("dave",),
        requested_by=Person("carol"),
        requested_at=NOW,
        expires_at=NOW + timedelta(hours=1),
    )


@pytest.mark.parametrize(
    ("method", "params", "problem"),
    [
        (
            "chat.postMessage",
            {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]},
            "3001",
        ),
        ("chat.update", {"blocks": [{"type": "divider"}] * 51}, "50 items"),
        (
            "views.publish",
            {"view": {"type": "home", "blocks": [{"type": "divider"}] * 101}},
            "100 items",
        ),
        (
            "views.open",
            {
                "view": {
                    "blocks": [
                        {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
                    ]
                }
            },
            "151",
        ),
        ("chat.postMessage", {"text": "t" * 40_001}, "40000"),
    ],
)
def test_the_fake_refuses_what_slack_refuses(
    method: str, params: dict[str, object], problem: str
) -> None:
    found = block_kit_problem(method, params)
    assert found is not None and problem in found


def test_the_fake_accepts_blocks_at_the_limits() -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3000}}
    assert block_kit_problem("chat.postMessage", {"blocks": [section] * 50}) is None
    assert block_kit_problem("views.publish", {"view": {"blocks": [section] * 100}}) is None


@pytest.mark.parametrize(("environments", "approvals"), [(0, 0), (33, 2), (500, 0), (2_000, 60)])
def test_the_app_home_fits_slacks_limits_however_large_the_record(
    tmp_path: Path, environments: int, approvals: int
) -> None:
    catalog = load_catalog(CONFIG)
    home = views.home(
        catalog, [row(i) for i in range(environments)], [], [waiting(i) for i in range(approvals)]
    )
    assert block_kit_problem("views.publish", {"view": home}) is None
    text = str(home)
    if environments:
        assert "pr-00000-feature-branch-with-a-long-name" in text
    if environments > 100:
        assert "more environments" in text
    if approvals > 20:
        assert "more wait for you" in text
