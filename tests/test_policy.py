"""Table tests for policy: who may do what, TTL bounds, promotion order, N-of-M approvals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from environments import policy
from environments.catalog import Catalog, load_catalog
from environments.errors import Conflict, InvalidInput, PolicyRefused, ShipyardError
from environments.model import ApprovalDecision, ApprovalState, Decision, Person
from environments.policy import Actor, Channel

CATALOG = """\
roles:
  developers: [alice, bob]
  release-managers: [carol, dave, erin]
admins: [root]
types:
  test:
    ttl: {default: 8h, max: 72h}
    allow:
      create: [developers]
      destroy: [developers, frank]
  staging:
    allow:
      create: [developers]
      deploy: []
    approval: {required: 1, approvers: [release-managers]}
  production:
    protected: true
    allow:
      deploy: [release-managers]
      destroy: [release-managers]
    approval: {required: 2, approvers: [release-managers]}
  sandbox: {}
promotion: [test, staging, production]
"""

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    path: Path = tmp_path_factory.mktemp("policy") / "shipyard.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    return load_catalog(path)


def approve(person: str, minute: int = 0) -> ApprovalDecision:
    return ApprovalDecision(Person(person), Decision.APPROVE, "", T0 + timedelta(minutes=minute))


def reject(person: str, minute: int = 0) -> ApprovalDecision:
    return ApprovalDecision(Person(person), Decision.REJECT, "no", T0 + timedelta(minutes=minute))


@pytest.mark.parametrize(
    ("person", "action", "type_name", "expected"),
    [
        ("root", "deploy", "production", True),  # admin
        ("root", "deploy", "staging", True),  # admin, even where the list is empty
        ("carol", "deploy", "production", True),  # through a role
        ("alice", "deploy", "production", False),
        ("frank", "destroy", "test", True),  # named directly
        ("carol", "destroy", "test", False),
        ("alice", "extend", "test", True),  # not listed: open to everyone
        ("mallory", "deploy", "test", True),  # not listed: open to everyone
        ("mallory", "create", "test", False),
        ("alice", "deploy", "staging", False),  # listed with nobody: admins only
    ],
)
def test_allowed(
    catalog: Catalog, person: str, action: str, type_name: str, expected: bool
) -> None:
    assert policy.allowed(catalog, person, action, catalog.type(type_name)) is expected


@pytest.mark.parametrize(
    ("person", "action", "type_name"),
    [("root", "deploy", "production"), ("bob", "create", "test"), ("alice", "extend", "test")],
)
def test_require_lets_permitted_people_through(
    catalog: Catalog, person: str, action: str, type_name: str
) -> None:
    policy.require(catalog, Actor(person), action, catalog.type(type_name))


@pytest.mark.parametrize(
    ("person", "action", "type_name", "reason", "hint"),
    [
        (
            "alice",
            "deploy",
            "production",
            "alice may not deploy production environments",
            "ask one of: carol, dave, erin",
        ),
        (
            "carol",
            "destroy",
            "test",
            "carol may not destroy test environments",
            "ask one of: alice, bob, frank",
        ),
        (
            "alice",
            "deploy",
            "staging",
            "alice may not deploy staging environments",
            "ask one of: an admin",
        ),
    ],
)
def test_require_refuses_and_names_who_may(
    catalog: Catalog, person: str, action: str, type_name: str, reason: str, hint: str
) -> None:
    with pytest.raises(PolicyRefused) as refused:
        policy.require(catalog, Actor(person), action, catalog.type(type_name))
    assert refused.value.reason == reason
    assert refused.value.hint == hint


@pytest.mark.parametrize(
    ("person", "channel", "type_name", "force", "reason"),
    [
        ("root", Channel.CHAT, "production", True, "cannot be destroyed from chat"),
        ("carol", Channel.CHAT, "production", False, "cannot be destroyed from chat"),
        ("root", Channel.CLI, "production", False, "production environments are protected"),
        ("carol", Channel.CLI, "production", True, "production environments are protected"),
        ("root", Channel.CLI, "production", True, None),
        ("alice", Channel.CHAT, "test", False, None),
        ("frank", Channel.CLI, "test", False, None),
        ("carol", Channel.CLI, "test", True, "carol may not destroy test environments"),
        ("carol", Channel.CHAT, "staging", False, None),
    ],
)
def test_require_destroyable(
    catalog: Catalog,
    person: str,
    channel: Channel,
    type_name: str,
    force: bool,
    reason: str | None,
) -> None:
    actor = Actor(person, channel)
    env_type = catalog.type(type_name)
    if reason is None:
        policy.require_destroyable(catalog, actor, env_type, force)
        return
    with pytest.raises(PolicyRefused) as refused:
        policy.require_destroyable(catalog, actor, env_type, force)
    assert reason in refused.value.reason
    if env_type.protected:
        assert "--force" in refused.value.hint


@pytest.mark.parametrize(
    ("type_name", "requested", "expected"),
    [
        ("test", None, timedelta(hours=8)),
        ("test", timedelta(hours=1), timedelta(hours=1)),
        ("test", timedelta(hours=72), timedelta(hours=72)),
        ("staging", None, None),
    ],
)
def test_lifetime(
    catalog: Catalog, type_name: str, requested: timedelta | None, expected: timedelta | None
) -> None:
    assert policy.lifetime(catalog.type(type_name), requested) == expected


@pytest.mark.parametrize(
    ("type_name", "requested", "reason", "hint"),
    [
        (
            "test",
            timedelta(hours=73),
            "a TTL of 73h is longer than test allows (3d)",
            "ask for at most 3d",
        ),
        ("test", timedelta(weeks=1), "a TTL of 1w is longer than test allows (3d)", "at most 3d"),
        (
            "staging",
            timedelta(hours=8),
            "staging environments do not expire, so --ttl does not apply",
            "leave out --ttl",
        ),
    ],
)
def test_lifetime_refuses(
    catalog: Catalog, type_name: str, requested: timedelta, reason: str, hint: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        policy.lifetime(catalog.type(type_name), requested)
    assert refused.value.reason == reason
    assert hint in refused.value.hint


@pytest.mark.parametrize(
    ("ttl", "refused"),
    [(timedelta(hours=8), False), (timedelta(hours=72), False), (timedelta(hours=73), True)],
)
def test_check_within(catalog: Catalog, ttl: timedelta, refused: bool) -> None:
    if refused:
        with pytest.raises(InvalidInput, match="longer than test allows"):
            policy.check_within(catalog.type("test"), ttl)
    else:
        policy.check_within(catalog.type("test"), ttl)


@pytest.mark.parametrize(("source", "target"), [("test", "staging"), ("staging", "production")])
def test_promotion_one_step_along_the_path(catalog: Catalog, source: str, target: str) -> None:
    policy.promotion_target_type(catalog, source, target)


@pytest.mark.parametrize(
    ("source", "target", "reason", "hint"),
    [
        (
            "test",
            "production",
            "production takes releases from staging, not from test",
            "a release that passed staging",
        ),
        (
            "staging",
            "test",
            "test takes releases from nothing (it is the first step)",
            "env deploy",
        ),
        (
            "test",
            "test",
            "test takes releases from nothing (it is the first step), not from test",
            "env deploy",
        ),
        (
            "production",
            "staging",
            "staging takes releases from test, not from production",
            "a release that passed test",
        ),
        (
            "test",
            "sandbox",
            "sandbox is not on the promotion path (test → staging → production)",
            "env deploy",
        ),
    ],
)
def test_promotion_off_the_path_is_refused(
    catalog: Catalog, source: str, target: str, reason: str, hint: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        policy.promotion_target_type(catalog, source, target)
    assert reason in refused.value.reason
    # The next step is said in words or given as a command (a structured hint each surface spells).
    said = [refused.value.hint, *(h.command for h in refused.value.hints)]
    assert any(hint in what for what in said), said


@pytest.mark.parametrize(
    ("source", "target", "misleading"),
    [("staging", "test", "production"), ("sandbox", "staging", "nothing comes after")],
)
def test_promotion_hint_does_not_point_away_from_the_target(
    catalog: Catalog, source: str, target: str, misleading: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        policy.promotion_target_type(catalog, source, target)
    assert misleading not in refused.value.advice()


def check_approver(
    catalog: Catalog,
    person: str,
    state: ApprovalState = ApprovalState.PENDING,
    decisions: tuple[ApprovalDecision, ...] = (),
) -> None:
    policy.require_approver(
        catalog,
        person,
        approvers=("release-managers",),
        requested_by="carol",
        state=state,
        decisions=decisions,
    )


@pytest.mark.parametrize(("person", "decisions"), [("dave", ()), ("erin", (approve("dave"),))])
def test_require_approver_lets_a_listed_approver_decide(
    catalog: Catalog, person: str, decisions: tuple[ApprovalDecision, ...]
) -> None:
    check_approver(catalog, person, decisions=decisions)


@pytest.mark.parametrize(
    ("person", "state", "decisions", "error", "reason", "hint"),
    [
        (
            "alice",
            ApprovalState.PENDING,
            (),
            PolicyRefused,
            "alice is not an approver for this request",
            "ask one of: carol, dave, erin",
        ),
        (
            "root",
            ApprovalState.PENDING,
            (),
            PolicyRefused,
            "root is not an approver for this request",
            "ask one of: carol, dave, erin",
        ),
        (
            "carol",
            ApprovalState.PENDING,
            (),
            PolicyRefused,
            "you cannot approve your own request",
            "ask another approver: dave, erin",
        ),
        (
            "dave",
            ApprovalState.PENDING,
            (approve("dave"),),
            Conflict,
            "dave has already decided on this request",
            "wait for the others",
        ),
        (
            "dave",
            ApprovalState.APPROVED,
            (approve("erin"),),
            Conflict,
            "this request is already approved",
            "nothing more to decide",
        ),
        (
            "dave",
            ApprovalState.REJECTED,
            (reject("erin"),),
            Conflict,
            "this request is already rejected",
            "nothing more to decide",
        ),
        (
            "dave",
            ApprovalState.EXPIRED,
            (),
            Conflict,
            "this request is already expired",
            "nothing more to decide",
        ),
    ],
)
def test_require_approver_refuses(
    catalog: Catalog,
    person: str,
    state: ApprovalState,
    decisions: tuple[ApprovalDecision, ...],
    error: type[ShipyardError],
    reason: str,
    hint: str,
) -> None:
    with pytest.raises(error) as refused:
        check_approver(catalog, person, state, decisions)
    assert refused.value.reason == reason
    assert refused.value.hint == hint


@pytest.mark.parametrize(
    ("required", "decisions", "expected"),
    [
        (1, (), ApprovalState.PENDING),
        (1, (approve("dave"),), ApprovalState.APPROVED),
        (2, (approve("dave"),), ApprovalState.PENDING),
        (2, (approve("dave"), approve("erin", 1)), ApprovalState.APPROVED),
        (2, (approve("dave"), approve("dave", 1)), ApprovalState.PENDING),
        (2, (approve("dave"), approve("erin", 1), approve("carol", 2)), ApprovalState.APPROVED),
        (1, (reject("dave"),), ApprovalState.REJECTED),
        (3, (approve("dave"), approve("erin", 1), reject("carol", 2)), ApprovalState.REJECTED),
        (2, (approve("dave"), reject("erin", 1)), ApprovalState.REJECTED),
    ],
)
def test_outcome_n_of_m(
    required: int, decisions: tuple[ApprovalDecision, ...], expected: ApprovalState
) -> None:
    assert policy.outcome(required, decisions) is expected
