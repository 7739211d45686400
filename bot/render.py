"""Plain-text and JSON renderings of the record for the terminal (and chat code blocks)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from environments import parameters
from environments.model import Approval, Deployment, Environment, MatrixRow, Release
from environments.registry.health import HealthCheck


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the largest whole unit ("3m", "5h", "2d"); "-" for never."""
    if moment is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def health(env: Environment) -> str:
    """The latest probe: "healthy (2m ago)", or "not probed yet"."""
    if env.health is None:
        return "not probed yet"
    return f"{env.health} ({age(env.health_at)} ago)"


def environments_table(envs: Sequence[Environment]) -> str:
    return table(
        ["environment", "type", "state", "release", "health", "owner", "expires", "endpoint"],
        [
            [
                e.name,
                e.type,
                e.state,
                e.release or "-",
                health(e),
                e.owner,
                when(e.expires_at),
                e.endpoint or "-",
            ]
            for e in envs
        ],
    )


def environment_detail(
    env: Environment,
    waiting: Sequence[Approval],
    live: str,
    override: str | None = None,
    about: str = "",
) -> str:
    lines = [
        f"{env.name}  ({env.type}, {env.state})",
        *([f"  type      {about}"] if about else []),
        f"  release   {env.release or '-'}"
        + (f"  since {when(env.release_since)} by {env.release_by}" if env.release else ""),
        f"  endpoint  {env.endpoint or '-'}  [{live}]",
        f"  health    {health(env)}" + (f": {env.health_reason}" if env.health_reason else ""),
        f"  owner     {env.owner}, created {when(env.created_at)}",
        f"  expires   {when(env.expires_at) if env.expires_at else 'never'}",
    ]
    if env.overrides:
        lines.append("  overrides " + ", ".join(sorted(env.overrides)))
    shown = {k: v for k, v in env.outputs.items() if k not in ("folder", "ports")}
    if shown:
        lines.append("  outputs   " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    if env.reason:
        lines.append(f"  note      {env.reason}")
    if override:
        lines.append(f"  ⚠ release went past its load test: {override}")
    for approval in waiting:
        lines.append("  waiting   " + approval_line(approval))
    return "\n".join(lines)


def approval_line(a: Approval) -> str:
    what = f"{a.release} → {a.environment}"
    if a.source_environment:
        what = f"{a.release} from {a.source_environment} → {a.environment}"
    got = len(a.approvals)
    return (
        f"#{a.id} {a.kind} {what}, asked by {a.requested_by}: {a.state}, "
        f"{got}/{a.required} approval(s)"
        + (f" ({', '.join(a.approvals)})" if a.approvals else "")
        + (f", expires {when(a.expires_at)}" if a.state == "pending" else "")
        + (f"\n    ⚠ {a.override_reason}" if a.override_reason else "")
    )


def matrix_table(rows: Sequence[MatrixRow]) -> str:
    return table(
        ["environment", "type", "release", "since", "by", "approved by", "state"],
        [
            [
                r.environment,
                r.type,
                r.release or "-",
                when(r.since),
                r.by or "-",
                ", ".join(r.approved_by) or "-",
                r.state,
            ]
            for r in rows
        ],
    )


def parameter_changes(rows: Sequence[Deployment]) -> list[str]:
    """Per deployment (newest first): which parameters changed since the one before it."""
    changes = []
    for index, row in enumerate(rows):
        if row.parameters is None:
            changes.append("-")
            continue
        older = next((r for r in rows[index + 1 :] if r.parameters is not None), None)
        if older is None or older.parameters is None:
            changes.append("initial")
        else:
            changes.append(parameters.summary(parameters.diff(older.parameters, row.parameters)))
    return changes


def history_table(rows: Sequence[Deployment]) -> str:
    return table(
        ["#", "when", "release", "kind", "status", "by", "approved by", "parameters"],
        [
            [
                str(d.id),
                when(d.requested_at),
                d.release,
                d.kind + (f" from {d.source_environment}" if d.source_environment else ""),
                d.status,
                d.requested_by,
                ", ".join(d.approved_by) or "-",
                change,
            ]
            for d, change in zip(rows, parameter_changes(rows), strict=True)
        ],
    )


def releases_table(rows: Sequence[Release]) -> str:
    return table(
        ["version", "added", "by", "build", "ref", "commit", "artifact"],
        [
            [
                r.version,
                when(r.added_at),
                r.added_by,
                f"run {r.build_run}" if r.build_run else r.build_id or "-",
                r.source_ref or "-",
                r.commit or "-",
                r.artifact,
            ]
            for r in rows
        ],
    )


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(value: Any) -> str:
    return json.dumps(_plain(value), indent=2, sort_keys=False)


def health_table(checks: Sequence[HealthCheck]) -> str:
    return table(
        ["when", "status", "reason"],
        [[when(c.at), c.status.value, c.reason] for c in checks],
    )
