"""The Bolt app: signature checks, retry deduplication, and the listeners wired to SlackFace."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot import views
from bot.ackfirst import ACKS, AckFirstExecutor
from bot.dedupe import RequestLog
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


def request_key(body: str) -> str:
    """A retry carries the very same body as the first delivery, so its digest identifies it."""
    return hashlib.sha256(body.encode()).hexdigest()


def build_app(
    runtime: Runtime,
    client: WebClient,
    *,
    signing_secret: str,
    notifier: SlackNotifier,
    extra: Callable[[App], None] | None = None,
) -> tuple[App, SlackFace]:
    # Acks run inline in the request's thread; lazy work goes to one thread that yields to
    # acknowledgements, and long operations from there to the worker pool (SlackFace).
    app = App(
        client=client,
        signing_secret=signing_secret,
        process_before_response=True,
        listener_executor=AckFirstExecutor(ACKS),
    )
    face = SlackFace(runtime, notifier)
    requests = RequestLog(runtime.database, runtime.lifecycle.clock)

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
        retry = bool(req.headers.get("x-slack-retry-num"))
        if not requests.first_time(request_key(req.raw_body), retry=retry):
            log.info("duplicate delivery ignored (retry %s)", req.headers.get("x-slack-retry-num"))
            return BoltResponse(status=200, body="")
        return next()

    app.command("/env")(ack=face.ack_command, lazy=[face.run_command])
    app.action(views.APPROVE)(ack=face.ack_approve, lazy=[face.run_approve])
    app.action(views.REJECT)(face.ack_reject)
    app.action(views.EXTEND)(ack=_ack, lazy=[face.run_extend])
    app.action(views.DESTROY)(ack=_ack, lazy=[face.run_destroy])
    app.view(views.REJECT_VIEW)(face.on_reject_reason)
    app.view(views.CREATE_VIEW)(ack=face.ack_create_form, lazy=[face.run_create_form])

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") == "home":
            face.publish_home(client, event["user"])

    if extra is not None:
        extra(app)
    return app, face


def _ack(ack: Callable[..., None]) -> None:
    ack()
