"""One ASGI app: /slack/events (Bolt), /healthz, and the routes serve adds (dashboard, API)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.ackfirst import ACKS


def create_web_app(
    bolt: App,
    extra_routes: Sequence[BaseRoute] = (),
    *,
    health: Callable[[], dict[str, Any]] | None = None,
) -> Starlette:
    async def slack_events(request: Request) -> Response:
        with ACKS:
            body = await request.body()
            # Bolt's listeners are synchronous: run them off the event loop so requests overlap.
            response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
            return to_starlette_response(response)

    async def healthz(_: Request) -> Response:
        # The record is read for the outbox's figures: off the event loop.
        facts = await run_in_threadpool(health) if health is not None else {}
        return JSONResponse({"status": "ok", **facts})

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *extra_routes,
        ]
    )
