"""What every `/api/v1` route shares: the prefix and the one shape of a refusal."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pydantic import TypeAdapter
from starlette.responses import JSONResponse

from environments.outcome import Hint

PREFIX = "/api/v1"


@dataclasses.dataclass(frozen=True)
class NextStep:
    """A next step as data: what it does, the command (`group verb`), its arguments by name
    (null: the caller fills it in)."""

    label: str
    command: str
    arguments: dict[str, str | int | bool | None] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Problem:
    """A refusal: one line saying why, what to do instead (as command lines), and the next
    steps as data."""

    error: str
    hint: str
    next: list[NextStep] = dataclasses.field(default_factory=list)


PROBLEM = TypeAdapter(Problem)


def problem(status: int, reason: str, hint: str, hints: Sequence[Hint] = ()) -> JSONResponse:
    steps = [NextStep(h.label, h.command, dict(h.arguments)) for h in hints]
    return JSONResponse(
        PROBLEM.dump_python(Problem(reason, hint, steps), mode="json"), status_code=status
    )


def bearer(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer …` header, else None."""
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None
