"""The Bolt app: signature checks, retry deduplication, and the listeners wired to SlackFace."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot import create_form, views
from bot.ackfirst import ACKS, ORDERING, AckFirstExecutor
from bot.dedupe import REPLAY, RequestLog, request_key
from bot.runtime import Runtime
from bot.slack_listeners import SlackFace
from bot.slack_notifier import SlackNotifier
from environments.errors import clip

log = logging.getLogger(__name__)


def web_client(token: str, base_url: str) -> WebClient:
    """A WebClient that retries 429 (honouring Retry-After), 5xx and dropped connections."""
    client = WebClient(token=token, base_url=base_url, timeout=10)
    client.retry_handlers.extend(
        [
            RateLimitErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=1),
        ]
    )
    return client


# Verbs whose first argument names the environment (or approval) the work is about.
_TARGETED = frozenset({"create", "deploy", "promote", "destroy", "extend", "approve", "reject"})


def ordering_key(body: dict[str, Any]) -> str | None:
    """What a request's lazy work must stay in order with: its environment, when it has one."""
    if body.get("command"):
        words = [w for w in str(body.get("text") or "").split() if not w.startswith("-")]
        if words and words[0] == "params" and len(words) > 2:
            return f"env:{words[2]}"
        return f"env:{words[1]}" if len(words) > 1 and words[0] in _TARGETED else None
    actions = body.get("actions") or []
    if actions and actions[0].get("value"):
        action, value = actions[0].get("action_id"), actions[0]["value"]
        return f"env:{value}" if action in (views.EXTEND, views.DESTROY) else f"{action}:{value}"
    return None


def lazy_workers() -> int:
    """Threads for Slack follow-up work (SHIPYARD_LAZY_WORKERS, default 4)."""
    try:
        return max(1, int(os.environ.get("SHIPYARD_LAZY_WORKERS", "4")))
    except ValueError:
        return 4


class ShipyardApp(App):
    """Bolt's App, plus: a recorded delivery whose listeners left no follow-up work is taken
    at once (through the lazy pool, off the ack), so no replica replays it later."""

    def __init__(self, *, listener_executor: AckFirstExecutor, **kwargs: Any) -> None:
        super().__init__(listener_executor=listener_executor, **kwargs)
        self.lazy_pool = listener_executor

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        ORDERING.key = ORDERING.delivery = None
        ORDERING.submitted = False
        response = super().dispatch(req)
        if ORDERING.delivery is not None and not ORDERING.submitted:
            self.lazy_pool.submit(_nothing)
        return response


def _nothing() -> None:
    """The follow-up work of a delivery that has none: taking it is all."""


def build_app(
    runtime: Runtime,
    client: WebClient,
    *,
    signing_secret: str,
    notifier: SlackNotifier,
    extra: Callable[[App], None] | None = None,
    requests: RequestLog | None = None,
) -> tuple[App, SlackFace]:
    # Acks run inline in the request's thread; lazy work goes to one thread that yields to
    # acknowledgements, and long operations from there to the worker pool (SlackFace).
    requests = requests or RequestLog(runtime.database)
    app = ShipyardApp(
        client=client,
        signing_secret=signing_secret,
        process_before_response=True,
        listener_executor=AckFirstExecutor(ACKS, workers=lazy_workers(), once=requests.take),
    )
    face = SlackFace(runtime, notifier)

    @app.error
    def malformed(error: Exception) -> BoltResponse:
        # A signed request whose payload lacks what its type promises (no actions, no view
        # state, …) ends here: one log line and a 400, not a 500 with a traceback.
        log.warning(
            "slack request not handled: %s: %s", type(error).__name__, clip(str(error), 200)
        )
        return BoltResponse(status=400, body="this request could not be understood")

    @app.middleware
    def handle_once(req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> Any:
        # Runs after Bolt has checked the signature and timestamp, so forgeries never get here.
        replay = req.context.get(REPLAY)
        key = replay or request_key(req.raw_body, req.body)
        retry = req.headers.get("x-slack-retry-num")
        form = req.body.get("type") == "view_submission"
        if not replay:
            # Into the record before the ack: a retry (here or on another replica) finds it,
            # and if this replica dies after acking, another one replays it (bot/dedupe.py).
            # A form acts in its ack (it must answer with field errors): taken at once.
            try:
                first = requests.record(key, req.body, acts_in_ack=form)
            except (sa.exc.SQLAlchemyError, TimeoutError) as exc:
                log.warning("delivery not recorded (%s): Slack will retry it", type(exc).__name__)
                return BoltResponse(status=503, body="the record is unavailable; retrying")
            if not first:
                log.info("duplicate delivery ignored (retry %s)", retry)
                return BoltResponse(status=200, body="")
        # Lazy work of one environment runs in order; of different ones, side by side; and it
        # acts only if it takes the delivery first (AckFirstExecutor's `once`).
        # Bolt runs the listeners after every middleware has returned, on this same thread:
        # the values stay until the thread's next dispatch resets them.
        ORDERING.key = ordering_key(req.body)
        ORDERING.delivery = None if form else key
        return next()

    app.command("/env")(ack=face.ack_command, lazy=[face.run_command])
    app.action(views.APPROVE)(ack=face.ack_approve, lazy=[face.run_approve])
    app.action(views.REJECT)(face.ack_reject)
    app.action(views.EXTEND)(ack=_ack, lazy=[face.run_extend])
    app.action(views.DESTROY)(ack=_ack, lazy=[face.run_destroy])
    app.view(views.REJECT_VIEW)(face.on_reject_reason)
    app.view(views.CREATE_VIEW)(ack=face.ack_create_form, lazy=[face.run_create_form])
    app.action(create_form.TYPE_ACTION)(ack=_ack, lazy=[face.run_type_chosen])

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") == "home":
            face.publish_home(client, event["user"])

    if extra is not None:
        extra(app)
    return app, face


def _ack(ack: Callable[..., None]) -> None:
    ack()
