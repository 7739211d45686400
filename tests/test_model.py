"""Table tests for the vocabulary's rules: names, versions, durations, state machine."""

from __future__ import annotations

from datetime import timedelta

import pytest

from environments.errors import InvalidInput, clip
from environments.model import (
    DeploymentStatus,
    EnvironmentState,
    can_transition,
    check_environment_name,
    check_version,
    format_duration,
    parse_duration,
)

S = EnvironmentState


@pytest.mark.parametrize(
    "name",
    ["pr-1234", "abc", "a" + "b" * 39, "test-pr-1234", "a1-2", "staging"],
)
def test_valid_environment_names_are_accepted(name: str) -> None:
    assert check_environment_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "a" * 41,
        "1abc",
        "Abc",
        "a_b",
        "abc-",
        "-abc",
        "a--b",
        "",
        "pr 1",
        "pr.1",
        "abc\n",
    ],
)
def test_invalid_environment_names_are_refused_with_an_example(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_environment_name(name)
    assert refused.value.reason == f"'{name}' is not a valid environment name"
    assert "3-40 lowercase letters" in refused.value.hint
    assert "pr-1234" in refused.value.hint


@pytest.mark.parametrize(
    "version", ["1.0.0", "1.4.2+build.7", "v2", "2024_01", "1.0.0-rc1", "1" + "0" * 63]
)
def test_valid_versions_are_accepted(version: str) -> None:
    assert check_version(version) == version


@pytest.mark.parametrize(
    "version",
    [
        "",
        ".1",
        "-1",
        "1 0",
        "1/0",
        "1" + "0" * 64,
        "1.0\n",
    ],
)
def test_invalid_versions_are_refused_with_an_example(version: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_version(version)
    assert refused.value.reason == f"'{clip(version)}' is not a valid release version"
    assert "1.4.2" in refused.value.hint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("8h", timedelta(hours=8)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        (" 8h ", timedelta(hours=8)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["0h", "8", "h", "-1h", "8x", "", "8 h", "1.5h", "8H", "h8"])
def test_parse_duration_refuses_with_an_example(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_duration(text)
    assert refused.value.reason == f"'{text}' is not a duration"
    assert "30m, 8h or 2d" in refused.value.hint


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=90), "90s"),
        (timedelta(minutes=30), "30m"),
        (timedelta(minutes=90), "90m"),
        (timedelta(hours=8), "8h"),
        (timedelta(hours=72), "3d"),
        (timedelta(days=2), "2d"),
        (timedelta(weeks=1), "1w"),
        (timedelta(days=14), "2w"),
        (timedelta(seconds=3601), "3601s"),
    ],
)
def test_format_duration_uses_the_largest_whole_unit(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text
    assert parse_duration(text) == delta


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        (S.REQUESTED, S.PROVISIONING, True),
        (S.REQUESTED, S.DESTROYING, True),
        (S.REQUESTED, S.READY, False),
        (S.REQUESTED, S.DEPLOYING, False),
        (S.PROVISIONING, S.DEPLOYING, True),
        (S.PROVISIONING, S.READY, True),
        (S.PROVISIONING, S.FAILED, True),
        (S.PROVISIONING, S.DESTROYED, False),
        (S.READY, S.DEPLOYING, True),
        (S.READY, S.DESTROYING, True),
        (S.READY, S.DESTROYED, False),
        (S.READY, S.REQUESTED, False),
        (S.DEPLOYING, S.READY, True),
        (S.DEPLOYING, S.FAILED, True),
        (S.DEPLOYING, S.DESTROYING, False),
        (S.FAILED, S.DEPLOYING, True),
        (S.FAILED, S.DESTROYING, True),
        (S.FAILED, S.READY, False),
        (S.DESTROYING, S.DESTROYED, True),
        (S.DESTROYING, S.READY, False),
        (S.DESTROYED, S.READY, False),
        (S.DESTROYED, S.REQUESTED, False),
        (S.DESTROYED, S.DESTROYING, False),
    ],
)
def test_can_transition(source: EnvironmentState, target: EnvironmentState, expected: bool) -> None:
    assert can_transition(source, target) is expected


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        (DeploymentStatus.AWAITING_APPROVAL, False),
        (DeploymentStatus.QUEUED, False),
        (DeploymentStatus.RUNNING, False),
        (DeploymentStatus.SUCCEEDED, True),
        (DeploymentStatus.FAILED, True),
        (DeploymentStatus.REJECTED, True),
        (DeploymentStatus.EXPIRED, True),
        (DeploymentStatus.CANCELLED, True),
    ],
)
def test_deployment_status_is_terminal(status: DeploymentStatus, terminal: bool) -> None:
    assert status.is_terminal is terminal
