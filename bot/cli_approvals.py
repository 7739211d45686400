"""Commands on approval requests: approve, reject, list the waiting ones."""

from __future__ import annotations

import argparse

from bot import render
from bot.command import Command, Outcome
from bot.runtime import Runtime
from environments.policy import Actor
from environments.registry import record as rec


def env_approve(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    approval, op_id = rt.lifecycle.approve(actor, args.ref, comment=args.comment)
    text = f"approved by {actor.person}: {render.approval_line(approval)}"
    if op_id is not None:
        text += f"\n  approvals complete: deploying as operation #{op_id}"
    return Outcome(text=text, data=approval, operation=op_id)


def env_reject(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    approval = rt.lifecycle.reject(actor, args.ref, reason=args.reason)
    return Outcome(
        text=f"rejected by {actor.person}: {render.approval_line(approval)} — not promoted",
        data=approval,
    )


def env_approvals(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    with rt.database.read() as conn:
        waiting = rec.list_approvals(conn)
    text = "\n".join(render.approval_line(a) for a in waiting) or "nothing waits for approval"
    return Outcome(text=text, data=waiting)


def _approve_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("ref", help="request number (#12) or the environment it waits on")
    p.add_argument("--comment", default="")


def _reject_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("ref", help="request number (#12) or the environment it waits on")
    p.add_argument("--reason", required=True, help="why not (shown to the requester)")


COMMANDS = (
    Command(
        "env",
        "approve",
        "approve a waiting deployment or promotion",
        env_approve,
        arguments=_approve_args,
        action="approve",
        waits=True,
    ),
    Command(
        "env",
        "reject",
        "reject a waiting deployment or promotion",
        env_reject,
        arguments=_reject_args,
        action="reject",
    ),
    Command(
        "env",
        "approvals",
        "list requests waiting for approval",
        env_approvals,
        read_only=True,
        json=True,
    ),
)
