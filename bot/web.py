"""One ASGI app: /slack/events (Bolt), /healthz, and the routes serve adds (dashboard, API)."""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.ackfirst import ACKS
from environments.errors import clip

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # Slack's payloads are a few kilobytes; a view with many blocks stays far below


def _malformed(request: Request, body: bytes) -> Response | None:
    """What Bolt would trip over before checking the signature: answered 4xx, one line."""
    if len(body) > MAX_BODY:
        return PlainTextResponse("request body too large", status_code=413)
    stamp = request.headers.get("x-slack-request-timestamp")
    if stamp is not None and not (stamp.isascii() and stamp.strip().isdigit() and len(stamp) < 16):
        return PlainTextResponse("X-Slack-Request-Timestamp is not a number", status_code=400)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return PlainTextResponse("request body is not UTF-8", status_code=400)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        document = _json(text)
        if not isinstance(document, dict):
            return PlainTextResponse("request body is not a JSON object", status_code=400)
    elif kind == "application/x-www-form-urlencoded":
        form = urllib.parse.parse_qs(text, keep_blank_values=True)
        if "payload" in form and not isinstance(_json(form["payload"][0]), dict):
            return PlainTextResponse("payload is not a JSON object", status_code=400)
    else:
        return PlainTextResponse("unsupported content type", status_code=415)
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def create_web_app(
    bolt: App,
    extra_routes: Sequence[BaseRoute] = (),
    *,
    health: Callable[[], dict[str, Any]] | None = None,
) -> Starlette:
    async def slack_events(request: Request) -> Response:
        with ACKS:
            body = await request.body()
            refused = _malformed(request, body)
            if refused is not None:
                return refused
            # Bolt's listeners are synchronous: run them off the event loop so requests overlap.
            try:
                response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
            except Exception as exc:  # Bolt's own parsing trips over some malformed payloads
                log.warning(
                    "slack request not understood: %s: %s",
                    type(exc).__name__,
                    clip(str(exc), 200),
                )
                return PlainTextResponse("this request could not be understood", status_code=400)
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
