"""Who may do what where: the rule table, promotion order, TTL bounds, N-of-M approvals.

`authorize(catalog, actor, action, target)` is the one permission check. It reads the rule
table of shipyard.yaml: `types.<type>.allow.<action>` (people, roles, Slack user groups) with
`types.<type>.limits`, and the top-level `allow:` for actions about no one type. Admins may do
everything. An action a type's table does not mention is denied on protected types and open on
the others; `promote` and `params_set` not mentioned follow `deploy`. A top-level action not
mentioned is open, except those in ADMIN_ONLY, which need an admin when `admins:` names any.
Approvals (Slack and Azure DevOps gates alike) follow the type's `approval.approvers`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from environments.catalog import Catalog, EnvironmentType
from environments.config.rules import ACTIONS, GLOBAL_ACTIONS
from environments.errors import Conflict, InvalidInput, PolicyRefused
from environments.model import ApprovalDecision, ApprovalState, Decision, format_duration
from environments.outcome import Hint


class Channel(StrEnum):
    """Where a request came from: chat is held to stricter rules than the command line."""

    CLI = "cli"
    CHAT = "chat"
    SCHEDULE = "schedule"
    API = "api"  # a pipeline step (or script) holding an API token


@dataclass(frozen=True)
class Actor:
    """A person acting through a channel."""

    person: str
    channel: Channel = Channel.CLI


FOLLOWS = {"promote": "deploy", "params_set": "deploy"}
ADMIN_ONLY = frozenset(
    {"expire", "schedule_run", "schedule_pause", "schedule_resume", "tokens_manage"}
)
EVERYONE = None


def who_may(catalog: Catalog, action: str, target: EnvironmentType | None) -> frozenset[str] | None:
    """The people the rule table lets do `action` on `target` (admins aside); None: everyone."""
    if target is None:
        if action not in GLOBAL_ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        entries = catalog.allow.get(action)  # type: ignore[call-overload]
        if entries is None:
            return frozenset() if action in ADMIN_ONLY and catalog.admins else EVERYONE
        return catalog.members(entries)
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    entries = target.allow.get(action)  # type: ignore[call-overload]
    if entries is None and action in FOLLOWS:
        entries = target.allow.get(FOLLOWS[action])  # type: ignore[call-overload]
    if entries is None:
        return frozenset() if target.protected else EVERYONE
    return catalog.members(entries)


def allowed(catalog: Catalog, person: str, action: str, env_type: EnvironmentType | None) -> bool:
    """Does the rule table let this person do this (limits aside)?"""
    if person in catalog.admins:
        return True
    people = who_may(catalog, action, env_type)
    return people is None or person in people


def authorize(
    catalog: Catalog,
    actor: Actor,
    action: str,
    target: EnvironmentType | None = None,
    *,
    users: int | None = None,
    duration: timedelta | None = None,
) -> None:
    """The one permission check: may this person do `action` on an environment of `target`
    (None: an action about no one type), asking for this many users for this long?"""
    if actor.channel is Channel.SCHEDULE:
        return  # schedules act on what whoever controls shipyard.yaml configured
    if not allowed(catalog, actor.person, action, target):
        who = ", ".join(sorted(who_may(catalog, action, target) or ()))
        what = f"{action} {target.name} environments" if target else action
        raise PolicyRefused(
            f"{actor.person} may not {what.replace('_', ' ')}",
            hint=f"ask one of: {who or 'an admin'}",
        )
    if target is not None and action == "loadtest":
        within_load_limits(actor, target, users, duration)


def within_load_limits(
    actor: Actor, target: EnvironmentType, users: int | None, duration: timedelta | None
) -> None:
    """The type's load-test limits (`types.<t>.limits.loadtest`) on the load a run will put.

    authorize() checks what was asked for; the load-test use case checks again with the plan's
    defaults filled in, so leaving out --users cannot bring a plan's 500 users past a limit of 50.
    """
    if actor.channel is Channel.SCHEDULE:
        return  # schedules run what whoever controls shipyard.yaml configured
    limits = target.limits.loadtest
    if users is not None and limits.max_users is not None and users > limits.max_users:
        raise PolicyRefused(
            f"{target.name} environments take load tests of at most {limits.max_users} users, "
            f"not {users}",
            hint=f"ask for --users {limits.max_users} or fewer",
        )
    if duration is not None and limits.max_duration is not None and duration > limits.max_duration:
        most = format_duration(limits.max_duration)
        raise PolicyRefused(
            f"{target.name} environments take load tests of at most {most}, "
            f"not {format_duration(duration)}",
            hint=f"ask for --duration {most} or less",
        )


def require(catalog: Catalog, actor: Actor, action: str, env_type: EnvironmentType) -> None:
    """authorize() on a type (the use cases' spelling)."""
    authorize(catalog, actor, action, env_type)


def require_destroyable(
    catalog: Catalog, actor: Actor, env_type: EnvironmentType, force: bool
) -> None:
    """Protected environments: never destroyed from chat; from the CLI by an admin with --force."""
    if env_type.protected and actor.channel is not Channel.SCHEDULE:
        if actor.channel is Channel.CHAT:
            raise PolicyRefused(
                f"{env_type.name} environments are protected and cannot be destroyed from chat",
                hint="an admin can do it from the command line with --force",
            )
        if not force or actor.person not in catalog.admins:
            raise PolicyRefused(
                f"{env_type.name} environments are protected",
                hint="an admin can destroy one from the command line with --force",
            )
    require(catalog, actor, "destroy", env_type)


def lifetime(env_type: EnvironmentType, requested: timedelta | None) -> timedelta | None:
    """The TTL a new environment gets: the type's default, or the requested one within its range."""
    if env_type.ttl is None:
        if requested is not None:
            raise InvalidInput(
                f"{env_type.name} environments do not expire, so --ttl does not apply",
                hint="leave out --ttl",
            )
        return None
    if requested is None:
        return env_type.ttl.default
    check_within(env_type, requested)
    return requested


def check_within(env_type: EnvironmentType, ttl: timedelta) -> None:
    assert env_type.ttl is not None
    if ttl > env_type.ttl.max:
        raise InvalidInput(
            f"a TTL of {format_duration(ttl)} is longer than {env_type.name} allows "
            f"({format_duration(env_type.ttl.max)})",
            hint=f"ask for at most {format_duration(env_type.ttl.max)}",
        )


def promotion_target_type(catalog: Catalog, source_type: str, target_type: str) -> None:
    """A release moves one step at a time along the promotion path."""
    if target_type not in catalog.promotion:
        raise InvalidInput(
            f"{target_type} is not on the promotion path ({' → '.join(catalog.promotion)})",
            hints=Hint("deploy into it instead", "env deploy"),
        )
    previous = catalog.previous_on_path(target_type)
    if previous != source_type:
        path = " → ".join(catalog.promotion)
        raise InvalidInput(
            f"promotion must follow the path {path}: {target_type} takes releases from "
            f"{previous or 'nothing (it is the first step)'}, not from {source_type}",
            hint=f"promote into {target_type} a release that passed {previous}" if previous else "",
            hints=() if previous else Hint(f"deploy into {target_type} instead", "env deploy"),
        )


def require_approver(
    catalog: Catalog,
    person: str,
    *,
    approvers: Iterable[str],
    requested_by: str,
    state: ApprovalState,
    decisions: Iterable[ApprovalDecision],
    blocked: Iterable[str] = (),
    what: str = "this request",
) -> None:
    """May this person decide on this request now? Not the requester (nor anyone `blocked`,
    as Azure DevOps blocks a run's requester), not twice, not unlisted. Slack's approvals and
    Azure DevOps gates alike are decided by the type's `approval.approvers`."""
    if state.is_terminal:
        raise Conflict(f"this request is already {state}", hint="nothing more to decide")
    deciders = catalog.members(tuple(approvers))
    if person not in deciders:
        raise PolicyRefused(
            f"{person} is not an approver for {what}",
            hint=f"ask one of: {', '.join(sorted(deciders)) or 'an admin to add approvers'}",
        )
    if person == requested_by or person in set(blocked):
        raise PolicyRefused(
            "you cannot approve your own request",
            hint=f"ask another approver: {', '.join(sorted(deciders - {person}))}",
        )
    if any(d.person == person for d in decisions):
        raise Conflict(f"{person} has already decided on this request", hint="wait for the others")


def outcome(required: int, decisions: Iterable[ApprovalDecision]) -> ApprovalState:
    """N of M: one rejection ends it; N distinct approvals approve it."""
    approvals: set[str] = set()
    for decision in decisions:
        if decision.decision is Decision.REJECT:
            return ApprovalState.REJECTED
        approvals.add(decision.person)
    return ApprovalState.APPROVED if len(approvals) >= required else ApprovalState.PENDING
