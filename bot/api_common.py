"""What every `/api/v1` route shares: the prefix and the one shape of a refusal."""

from __future__ import annotations

import dataclasses

from pydantic import TypeAdapter
from starlette.responses import JSONResponse

PREFIX = "/api/v1"


@dataclasses.dataclass(frozen=True)
class Problem:
    """A refusal: one line saying why, and what to do instead."""

    error: str
    hint: str


PROBLEM = TypeAdapter(Problem)


def problem(status: int, reason: str, hint: str) -> JSONResponse:
    return JSONResponse(PROBLEM.dump_python(Problem(reason, hint), mode="json"), status_code=status)


def bearer(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer …` header, else None."""
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None
