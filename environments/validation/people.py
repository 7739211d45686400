"""Checks of people, roles and Slack: user ids, channels, roles that do not nest."""

from __future__ import annotations

import re

from environments.catalog import SLACK_USER
from environments.errors import clip
from environments.validation.common import Problems
from environments.yamlsource import Loc

SLACK_GROUP = re.compile(r"S[A-Z0-9]{2,}")
CHANNEL = re.compile(r"[CGD][A-Z0-9]{2,}|#?[a-z0-9][a-z0-9._-]{0,79}")


def check_people(p: Problems) -> None:
    c = p.catalog
    for person, user in c.people.items():
        if not SLACK_USER.fullmatch(user):
            p.add(
                ("people", person),
                f"people.{clip(person)}: '{clip(user)}' is not a Slack user id",
                "use the member id from the person's Slack profile, e.g. U012AB3CD",
            )
    for role, members in c.roles.items():
        for index, member in enumerate(members):
            if member in c.roles:
                p.add(
                    ("roles", role, index),
                    f"role '{clip(role)}' names role '{clip(member)}'; roles do not nest",
                    f"list the people of '{clip(member)}' in '{clip(role)}' instead",
                )
    check_channel(p, ("slack", "channel"), c.slack.channel)
    for name, env_type in c.types.items():
        if env_type.approval:
            check_channel(p, ("types", name, "approval", "channel"), env_type.approval.channel)
        if env_type.approval and env_type.approval.dm:
            check_reachable(p, name, env_type.approval.approvers)


def check_reachable(p: Problems, type_name: str, approvers: tuple[str, ...]) -> None:
    """`approval: {dm: true}` needs a Slack user id for each approver (a Slack user group's
    members have theirs)."""
    c = p.catalog
    for entry in approvers:
        for member in c.roles.get(entry, (entry,)):
            if c.slack_id(member) is None and not SLACK_GROUP.fullmatch(member):
                p.add(
                    ("types", type_name, "approval", "dm"),
                    f"types.{clip(type_name)}.approval.dm: approver '{clip(member)}' has no "
                    "Slack user id to send the request to",
                    f"map it under people: ({clip(member)}: U012AB3CD), or set dm: false",
                )


def check_channel(p: Problems, loc: Loc, channel: str | None) -> None:
    if channel is not None and not CHANNEL.fullmatch(channel):
        p.add(
            loc,
            f"'{clip(channel)}' is not a Slack channel",
            "use the channel's id (C0123ABC) or its name (#deploys)",
        )
