"""What every `/api/v1` route shares: the prefix and the one shape of a refusal."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.speech import on_cli
from environments.errors import (
    Conflict,
    NotAuthenticated,
    NotFound,
    PolicyRefused,
    ShipyardError,
)
from environments.outcome import Hint

PREFIX = "/api/v1"
STATUS = {NotAuthenticated: 401, PolicyRefused: 403, NotFound: 404, Conflict: 409}


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


def endpoint(handler: Callable[[Request, bytes], Response]) -> Callable[..., Any]:
    """A route's handler on a worker thread; a refusal is its status and the one Problem shape."""

    async def answer(request: Request) -> Response:
        body = await request.body()
        try:
            return await run_in_threadpool(handler, request, body)
        except ShipyardError as exc:
            status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
            return problem(status, exc.reason, exc.advice(on_cli), exc.hints)

    return answer
