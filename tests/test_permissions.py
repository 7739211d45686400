"""The permission matrix: every command of the table, on every surface it is offered on, for every
role, against the rule table of tests/data/permissions.yaml, through the checks the code runs."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.command import Command, Surface
from bot.runtime import Runtime
from bot.table import CHECKED_BY_USE_CASE, TABLE, authorize
from environments import policy
from environments.catalog import load_catalog
from environments.errors import PolicyRefused, ShipyardError
from environments.model import ApprovalState
from environments.policy import Actor, Channel

CONFIG = Path(__file__).parent / "data" / "permissions.yaml"
ROLES = {"admin": "dave", "developer": "alice", "release-manager": "erin", "outsider": "zed"}
TYPES = ("test", "staging", "production")
EVERYONE = frozenset(ROLES)
ADMIN = frozenset({"admin"})
DEV = frozenset({"admin", "developer"})
RM = frozenset({"admin", "release-manager"})

# Who may, written out by hand from permissions.yaml and the README's rules (not computed).
EXPECTED: dict[tuple[str, str | None], frozenset[str]] = {
    ("create", "test"): DEV,
    ("deploy", "test"): EVERYONE,  # not mentioned, not protected: open
    ("promote", "test"): EVERYONE,  # follows deploy
    ("destroy", "test"): EVERYONE,
    ("extend", "test"): EVERYONE,
    ("loadtest", "test"): DEV | RM,
    ("params_set", "test"): EVERYONE,  # follows deploy
    ("approve", "test"): frozenset(),  # no approval gate: nobody approves
    ("reject", "test"): frozenset(),
    ("create", "staging"): DEV,
    ("deploy", "staging"): DEV,
    ("promote", "staging"): DEV,
    ("destroy", "staging"): RM,
    ("extend", "staging"): EVERYONE,
    ("loadtest", "staging"): EVERYONE,
    ("params_set", "staging"): DEV,
    ("approve", "staging"): frozenset({"release-manager"}),
    ("reject", "staging"): frozenset({"release-manager"}),
    ("create", "production"): RM,
    ("deploy", "production"): RM,
    ("promote", "production"): RM,
    ("destroy", "production"): ADMIN,  # protected: not mentioned is denied (and --force)
    ("extend", "production"): ADMIN,
    ("loadtest", "production"): ADMIN,
    ("params_set", "production"): RM,
    ("approve", "production"): frozenset({"release-manager"}),
    ("reject", "production"): frozenset({"release-manager"}),
    ("expire", None): ADMIN,
    ("schedule_run", None): RM,
    ("schedule_pause", None): ADMIN,
    ("schedule_resume", None): ADMIN,
    ("pipelines_sync", None): RM,
    ("pipelines_reconcile", None): EVERYONE,
    ("release_add", None): EVERYONE,
    ("record_deployment", None): EVERYONE,
    ("tokens_manage", None): ADMIN,
}
CHANNEL = {Surface.CLI: Channel.CLI, Surface.SLACK: Channel.CHAT, Surface.PIPELINE: Channel.CLI}


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    folder = tmp_path_factory.mktemp("permissions")
    runtime = Runtime.open(str(CONFIG), database_url=f"sqlite:///{folder / 'record.db'}")
    ci = Actor("dave")
    release = Path(__file__).resolve().parents[1] / "examples/game/releases/1.0.0"
    runtime.lifecycle.add_release(ci, "1.0.0", str(release))
    for type_name in TYPES:
        # Requested, never run: the record knows each environment and its type.
        runtime.lifecycle.create(ci, f"{type_name}-env", env_type=type_name, release="1.0.0")
    yield runtime
    runtime.close()


def _cases() -> Iterator[tuple[Command, Surface, str, str | None]]:
    for command in TABLE:
        if command.action is None:
            continue
        for surface in sorted(command.surfaces):
            for role in ROLES:
                type_names = TYPES if (command.action, None) not in EXPECTED else (None,)
                for type_name in type_names:
                    yield command, surface, role, type_name


def test_every_action_of_the_table_has_an_expectation() -> None:
    for command in TABLE:
        if command.action is not None:
            assert any(action == command.action for action, _ in EXPECTED), command.name


def _check(rt: Runtime, command: Command, actor: Actor, type_name: str | None) -> None:
    """The check the code runs for this command: the use case's, or the table's."""
    action = command.action
    assert action is not None
    if action in ("approve", "reject"):
        assert type_name is not None
        gate = rt.catalog.type(type_name).approval
        policy.require_approver(
            rt.catalog,
            actor.person,
            approvers=gate.approvers if gate else (),
            requested_by="someone-else",
            state=ApprovalState.PENDING,
            decisions=(),
        )
    elif action == "destroy":
        assert type_name is not None
        policy.require_destroyable(rt.catalog, actor, rt.catalog.type(type_name), force=True)
    elif action in CHECKED_BY_USE_CASE:
        assert type_name is not None
        policy.authorize(rt.catalog, actor, action, rt.catalog.type(type_name))
    else:
        args = argparse.Namespace(name=f"{type_name}-env", users=None, duration=None)
        authorize(rt, actor, command, args)


@pytest.mark.parametrize(
    ("command", "surface", "role", "type_name"),
    list(_cases()),
    ids=lambda v: v.name if isinstance(v, Command) else str(v),
)
def test_permission_matrix(
    rt: Runtime, command: Command, surface: Surface, role: str, type_name: str | None
) -> None:
    assert command.action is not None
    allowed = role in EXPECTED[(command.action, type_name)]
    if command.action == "destroy" and type_name == "production" and surface is Surface.SLACK:
        allowed = False  # protected environments are never destroyed from chat
    actor = Actor(ROLES[role], CHANNEL[surface])
    try:
        _check(rt, command, actor, type_name)
    except ShipyardError as refused:
        assert not allowed, (
            f"{role} was refused {command.name} on {type_name}: {refused.one_line()}"
        )
        assert isinstance(refused, PolicyRefused)
        assert refused.hint, "a refusal says who may or what to do"
    else:
        assert allowed, f"{role} may {command.name} on {type_name} via {surface}, and should not"


@pytest.mark.parametrize(
    ("users", "duration", "refused"),
    [
        (50, "5m", None),
        (51, None, "at most 50 users, not 51"),
        (10, "6m", "at most 5m, not 6m"),
        (10000, None, "at most 50 users"),
    ],
)
def test_load_tests_stay_within_the_types_limits(
    rt: Runtime, users: int, duration: str | None, refused: str | None
) -> None:
    command = next(c for c in TABLE if c.action == "loadtest")
    args = argparse.Namespace(name="test-env", users=users, duration=duration)
    if refused is None:
        authorize(rt, Actor("alice", Channel.CHAT), command, args)
        return
    with pytest.raises(PolicyRefused, match=refused) as caught:
        authorize(rt, Actor("alice", Channel.CHAT), command, args)
    assert "--users" in caught.value.hint or "--duration" in caught.value.hint


def test_refusals_name_who_may() -> None:
    catalog = load_catalog(CONFIG)
    with pytest.raises(PolicyRefused) as refused:
        policy.authorize(catalog, Actor("zed"), "loadtest", catalog.type("test"))
    assert refused.value.reason == "zed may not loadtest test environments"
    assert refused.value.hint == "ask one of: alice, bob, carol, erin"
    with pytest.raises(PolicyRefused) as refused:
        policy.authorize(catalog, Actor("zed"), "schedule_pause")
    assert refused.value.reason == "zed may not schedule pause"


def test_schedules_act_as_configured() -> None:
    catalog = load_catalog(CONFIG)
    system = Actor("shipyard", Channel.SCHEDULE)
    policy.authorize(catalog, system, "loadtest", catalog.type("production"), users=10**6)
    policy.authorize(catalog, system, "expire")


def test_limits_are_part_of_the_rule_table() -> None:
    catalog = load_catalog(CONFIG)
    assert catalog.type("test").limits.loadtest.max_duration == timedelta(minutes=5)


def test_a_plans_own_load_counts_against_the_limits_when_none_is_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    config = tmp_path / "shipyard.yaml"
    plan = tmp_path / "login.py"
    plan.write_text("")
    config.write_text(
        CONFIG.read_text()
        + "loadtests:\n  heavy: {engine: locust, file: login.py, users: 500, duration: 1m}\n"
        + "  light: {engine: locust, file: login.py, users: 5, duration: 10m}\n"
    )
    rt = Runtime.open(str(config), database_url=f"sqlite:///{tmp_path / 'r.db'}")
    try:

        def begin(plan: str, users: int | None = None, channel: Channel = Channel.CHAT) -> int:
            return rt.loadtesting.begin(
                Actor("alice", channel), environment="test-1", env_type="test",
                release="1.0.0", plan=plan, users=users,
            )  # fmt: skip

        # Leaving out --users does not bring the plan's 500 past the type's 50, nor its 10m
        # past 5m; nothing is recorded.
        with pytest.raises(PolicyRefused, match="at most 50 users, not 500"):
            begin("heavy")
        with pytest.raises(PolicyRefused, match="at most 5m, not 10m"):
            begin("light")
        with rt.database.read() as conn:
            assert conn.exec_driver_sql("select count(*) from loadtest_runs").scalar() == 0
        assert begin("heavy", users=50) > 0
        assert begin("heavy", channel=Channel.SCHEDULE) > 0  # schedules run what is configured
    finally:
        rt.close()
