"""Who may do what where: permissions per type, promotion order, TTL bounds, N-of-M approvals."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from environments.catalog import Catalog, EnvironmentType
from environments.errors import Conflict, InvalidInput, PolicyRefused
from environments.model import ApprovalDecision, ApprovalState, Decision, format_duration


class Channel(StrEnum):
    """Where a request came from: chat is held to stricter rules than the command line."""

    CLI = "cli"
    CHAT = "chat"
    SCHEDULE = "schedule"


@dataclass(frozen=True)
class Actor:
    """A person acting through a channel."""

    person: str
    channel: Channel = Channel.CLI


def allowed(catalog: Catalog, person: str, action: str, env_type: EnvironmentType) -> bool:
    """Admins may do anything; an action a type does not list is open to everyone."""
    if person in catalog.admins:
        return True
    entries = env_type.allow.get(action)  # type: ignore[call-overload]
    if entries is None:
        return True
    return person in catalog.members(entries)


def require(catalog: Catalog, actor: Actor, action: str, env_type: EnvironmentType) -> None:
    if actor.channel is Channel.SCHEDULE:
        return  # schedules act on what whoever controls shipyard.yaml configured
    if not allowed(catalog, actor.person, action, env_type):
        who = ", ".join(sorted(catalog.members(env_type.allow.get(action, ()))))  # type: ignore[call-overload]
        raise PolicyRefused(
            f"{actor.person} may not {action} {env_type.name} environments",
            hint=f"ask one of: {who or 'an admin'}",
        )


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
            hint="deploy into it with 'env deploy' instead",
        )
    previous = catalog.previous_on_path(target_type)
    if previous != source_type:
        path = " → ".join(catalog.promotion)
        raise InvalidInput(
            f"promotion must follow the path {path}: {target_type} takes releases from "
            f"{previous or 'nothing (it is the first step)'}, not from {source_type}",
            hint=(
                f"promote into {target_type} a release that passed {previous}"
                if previous
                else f"deploy into {target_type} with 'env deploy' instead"
            ),
        )


def require_approver(
    catalog: Catalog,
    person: str,
    *,
    approvers: Iterable[str],
    requested_by: str,
    state: ApprovalState,
    decisions: Iterable[ApprovalDecision],
) -> None:
    """May this person decide on this request now? Not the requester, not twice, not unlisted."""
    if state.is_terminal:
        raise Conflict(f"this request is already {state}", hint="nothing more to decide")
    deciders = catalog.members(tuple(approvers))
    if person not in deciders:
        raise PolicyRefused(
            f"{person} is not an approver for this request",
            hint=f"ask one of: {', '.join(sorted(deciders))}",
        )
    if person == requested_by:
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
