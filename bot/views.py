"""Block Kit builders: pure functions of model objects, one per thing Shipyard shows in Slack."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from bot import create_form, render
from environments.catalog import Catalog
from environments.model import (
    Approval,
    ApprovalState,
    Environment,
    HealthStatus,
    MatrixRow,
    Release,
)
from environments.providers.base import HealthReport

Block = dict[str, Any]

APPROVE = "approval.approve"
REJECT = "approval.reject"
EXTEND = "environment.extend"
DESTROY = "environment.destroy"
CREATE_VIEW = "environment.create"
REJECT_VIEW = "approval.reject_reason"
OUTCOME_WORDS = {
    ApprovalState.PENDING: "waiting for approval",
    ApprovalState.APPROVED: "approved",
    ApprovalState.REJECTED: "rejected — not promoted",
    ApprovalState.EXPIRED: "expired — not promoted",
}


def who(catalog: Catalog, person: str) -> str:
    slack_id = catalog.slack_id(person)
    return f"<@{slack_id}>" if slack_id else person


def section(text: str) -> Block:
    """One mrkdwn section."""
    return _section(text)


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def approval_message(
    catalog: Catalog, approval: Approval, *, details: Sequence[str] = ()
) -> tuple[str, list[Block]]:
    """The approval request: what goes where, who asked, progress to N, and buttons while open."""
    what = f"*{approval.release}* → *{approval.environment}*"
    if approval.source_environment:
        what = (
            f"*{approval.release}* from *{approval.source_environment}* → *{approval.environment}*"
        )
    state = OUTCOME_WORDS[approval.state]
    text = f"{approval.kind.capitalize()} {approval.release} → {approval.environment}: {state}"
    lines = [
        f"{approval.kind.capitalize()} {what}",
        f"Asked by {who(catalog, approval.requested_by)} · needs {approval.required} of "
        f"{', '.join(approval.approvers)} · request #{approval.id}",
        *details,
    ]
    blocks: list[Block] = [_section("\n".join(lines))]
    decided = [
        f"{'✅' if d.decision == 'approve' else '❌'} {who(catalog, d.person)}"
        + (f": {d.comment}" if d.comment else "")
        for d in approval.decisions
    ]
    tally = f"*{state}* ({len(approval.approvals)}/{approval.required})"
    if approval.state is ApprovalState.PENDING:
        tally += f" · expires {render.when(approval.expires_at)}"
    blocks.append(_context(" · ".join([tally, *decided])))
    if approval.state is ApprovalState.PENDING:
        value = str(approval.id)
        blocks.append(
            {
                "type": "actions",
                "block_id": f"approval-{approval.id}",
                "elements": [
                    _button("Approve", APPROVE, value, "primary"),
                    _button("Reject", REJECT, value, "danger"),
                ],
            }
        )
    return text, blocks


def progress_message(
    title: str, steps: Sequence[str], *, done: bool | None, neutral: bool = False
) -> list[Block]:
    """One message that grows step by step: ⏳ while running, ✅ or ❌ at the end (⚪ when it
    ended without a fault and without a change: not promoted)."""
    mark = "⏳" if done is None else ("⚪" if neutral else ("✅" if done else "❌"))
    shown = list(steps[-8:])
    return [_section(f"{mark} {title}"), _context("\n".join(f"• {s}" for s in shown) or "…")]


def expiry_warning(catalog: Catalog, env: Environment) -> tuple[str, list[Block]]:
    text = f"{env.name} expires {render.when(env.expires_at)}"
    return text, [
        _section(
            f"⏰ *{env.name}* ({env.type}, {env.release or 'no release'}) expires "
            f"{render.when(env.expires_at)} and will then be destroyed."
        ),
        {"type": "actions", "elements": [_button("Extend 4h", EXTEND, env.name, "primary")]},
    ]


HEALTH_MARK = {"healthy": "🟢", "degraded": "🟡", "unhealthy": "🔴", "unknown": "⚪"}


def health_changed(
    env: Environment, previous: HealthStatus | None, report: HealthReport
) -> tuple[str, list[Block]]:
    was = f" (was {previous})" if previous else ""
    text = f"{env.name} is {report.status}{was}: {report.reason}"
    mark = HEALTH_MARK.get(report.status.value, "")
    return text, [_section(f"{mark} *{env.name}* is {report.status}{was}: {report.reason}")]


def failure(env_name: str, reason: str, hint: str) -> tuple[str, list[Block]]:
    text = f"{env_name} failed: {reason}"
    lines = [f"❌ *{env_name}*: {reason}"] + ([f"What to do: {hint}"] if hint else [])
    return text, [_section("\n".join(lines))]


def destroy_confirmation(env: Environment) -> list[Block]:
    return [
        _section(f"Destroy *{env.name}* ({env.type}, running {env.release or 'nothing'})?"),
        {
            "type": "actions",
            "elements": [
                {
                    **_button("Destroy", DESTROY, env.name, "danger"),
                    "confirm": {
                        "title": {"type": "plain_text", "text": f"Destroy {env.name}?"},
                        "text": {"type": "mrkdwn", "text": "Its processes and data go away."},
                        "confirm": {"type": "plain_text", "text": "Destroy"},
                        "deny": {"type": "plain_text", "text": "Keep it"},
                        "style": "danger",
                    },
                }
            ],
        },
    ]


def _options(values: Sequence[str]) -> list[Block]:
    return [{"text": {"type": "plain_text", "text": v}, "value": v} for v in values[:100]]


def _input(block_id: str, label: str, element: Block, *, optional: bool = False) -> Block:
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": element,
        "optional": optional,
    }


def create_modal(
    catalog: Catalog,
    releases: Sequence[Release],
    arguments: Sequence[argparse.Action],
    *,
    chosen: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Block:
    """`/env create` with no arguments: an input per argument of `env create` (`arguments`,
    from the command table); once a type is chosen, its own parameters (`create_form`)."""
    env_type = catalog.types.get(chosen) if chosen else None
    own = create_form.parameter_blocks(env_type, defaults or {}) if env_type is not None else []
    choices: dict[str, Sequence[str]] = {
        "env_type": list(catalog.types),
        "release": [r.version for r in releases],
    }
    return {
        "type": "modal",
        "callback_id": CREATE_VIEW,
        "title": {"type": "plain_text", "text": "Create an environment"},
        "submit": {"type": "plain_text", "text": "Create"},
        "blocks": create_form.argument_blocks(
            arguments, choices, {"env_type": env_type.name} if env_type else {}, own
        ),
    }


def reject_modal(approval: Approval) -> Block:
    return {
        "type": "modal",
        "callback_id": REJECT_VIEW,
        "private_metadata": str(approval.id),
        "title": {"type": "plain_text", "text": f"Reject request #{approval.id}"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "blocks": [
            _section(
                f"{approval.kind.capitalize()} *{approval.release}* → *{approval.environment}*"
            ),
            _input(
                "reason",
                "Why not? (shown to the requester)",
                {"type": "plain_text_input", "action_id": "value", "multiline": True},
            ),
        ],
    }


def _matrix_line(catalog: Catalog, row: MatrixRow) -> str:
    line = f"*{row.environment}* ({row.type}) · {row.release or '-'} since {render.when(row.since)}"
    line += f" by {who(catalog, row.by) if row.by else '-'}"
    if row.approved_by:
        line += f" · approved by {', '.join(who(catalog, p) for p in row.approved_by)}"
    return line


def home(
    catalog: Catalog,
    matrix: Sequence[MatrixRow],
    mine: Sequence[Environment],
    waiting: Sequence[Approval],
) -> Block:
    """App Home: the release matrix, my environments with Extend, approvals waiting for me."""
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Which release runs where"}}
    ]
    if matrix:
        blocks.extend(_packed([_matrix_line(catalog, row) for row in matrix]))
    else:
        blocks.append(_section("No environments yet."))
    blocks.append({"type": "header", "text": {"type": "plain_text", "text": "Your environments"}})
    for env in mine[:20]:
        line = (
            f"*{env.name}* ({env.type}, {env.state}) · {env.release or '-'} · "
            f"{render.health(env)} · "
            f"expires {render.when(env.expires_at) if env.expires_at else 'never'}"
        )
        block = _section(line)
        if env.expires_at is not None:
            block["accessory"] = _button("Extend 4h", EXTEND, env.name)
        blocks.append(block)
    if not mine:
        blocks.append(_section("You own no environments. Try `/env create`."))
    blocks.append(
        {"type": "header", "text": {"type": "plain_text", "text": "Waiting for your approval"}}
    )
    shown = 0
    for approval in waiting:
        more = approval_message(catalog, approval)[1]
        if len(blocks) + len(more) > HOME_BLOCKS - 1:
            break
        blocks.extend(more)
        shown += 1
    if shown < len(waiting):
        blocks.append(_context(f"{len(waiting) - shown} more wait for you: `/env approvals`"))
    if not waiting:
        blocks.append(_section("Nothing waits for you."))
    return {"type": "home", "blocks": blocks}


# Slack refuses a section whose text passes 3,000 characters and a Home tab of over 100 blocks.
SECTION_TEXT = 3000
HOME_BLOCKS = 100
MATRIX_SECTIONS = 6


def _packed(lines: Sequence[str]) -> list[Block]:
    """Lines in as few sections as fit Slack's limit; past MATRIX_SECTIONS, a count of the rest."""
    sections: list[list[str]] = [[]]
    size = 0
    for line in lines:
        line = line[: SECTION_TEXT - 1]
        if sections[-1] and size + 1 + len(line) > SECTION_TEXT:
            if len(sections) == MATRIX_SECTIONS:
                break
            sections.append([])
            size = 0
        size += len(line) + (1 if sections[-1] else 0)
        sections[-1].append(line)
    blocks = [_section("\n".join(chunk)) for chunk in sections if chunk]
    rest = len(lines) - sum(len(chunk) for chunk in sections)
    if rest:
        blocks.append(_context(f"{rest} more environments: see `/env matrix` or the dashboard"))
    return blocks
