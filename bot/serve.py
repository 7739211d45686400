"""`shipyard serve`: the Slack app over HTTP (uvicorn) or Socket Mode, and the worker."""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time

from starlette.routing import BaseRoute

from bot.app import build_app, web_client
from bot.dedupe import RequestLog
from bot.directory import SlackDirectory
from bot.health_leader import lead_and_probe
from bot.pipeline_bridge import PipelineBridge
from bot.runtime import Runtime
from bot.scheduler import STATE, lead_and_run, supervise
from bot.settings import SlackSettings
from bot.slack_notifier import SlackNotifier
from bot.web import create_web_app
from environments.registry import chat as chat_record
from environments.registry import outbox

log = logging.getLogger(__name__)


def background_worker(
    runtime: Runtime,
    stop: threading.Event,
    interval: float = 2.0,
    bridge: PipelineBridge | None = None,
    poll_every: float = 60.0,
) -> None:
    """Sweep expiry, run queued or abandoned operations, and poll Azure DevOps, until stopped."""
    last_poll = 0.0
    while not stop.is_set():
        try:
            runtime.lifecycle.expire()
            runtime.worker.run_pending()
            if bridge is not None and time.monotonic() - last_poll >= poll_every:
                last_poll = time.monotonic()
                bridge.poll()
        except Exception:
            log.exception("background worker pass failed; trying again")
        stop.wait(interval)


def dashboard_routes(runtime: Runtime, api_url: str, public_url: str) -> list[BaseRoute]:
    """The dashboard at / and the API at /api/v1 (with the steps' routes), Sign in with Slack."""
    from bot.api import RecordReader
    from bot.api_pipeline import pipeline_routes
    from bot.dashboard import Dashboard
    from bot.dashboard.auth import SignIn, SignInSettings

    settings = SignInSettings.from_environment(runtime.catalog, api_url, public_url)
    dashboard = Dashboard(RecordReader(runtime), SignIn(settings, runtime.catalog))
    return [*pipeline_routes(runtime), *dashboard.routes()]


def health(runtime: Runtime, notifier: SlackNotifier) -> dict[str, object]:
    """/healthz: does this replica lead the scheduler, and is the outbox flowing?"""
    with runtime.database.read() as conn:
        flow = outbox.flow(conn)
        unclaimed, arrived = chat_record.unclaimed(conn)
    now = notifier.timing.now()
    oldest = (now - flow.oldest_waiting).total_seconds() if flow.oldest_waiting else None
    passed = notifier.last_pass
    return {
        # Acknowledged Slack deliveries no replica acted on yet (replayed 15 s after the ack).
        "slack_deliveries": {
            "unclaimed": unclaimed,
            "oldest_unclaimed_seconds": (now - arrived).total_seconds() if arrived else None,
        },
        "scheduler": {
            "leader": STATE.leading,
            "running": STATE.alive,
            "restarts": STATE.restarts,
            "last_error": STATE.last_error,
        },
        "outbox": {
            "waiting": flow.waiting,
            "oldest_waiting_seconds": oldest,
            "last_delivered": flow.last_delivered.isoformat() if flow.last_delivered else None,
            "delivering": passed is not None and (now - passed).total_seconds() < 30,
            "flowing": (oldest is None or oldest < 60)
            and passed is not None
            and (now - passed).total_seconds() < 30,
        },
    }


def serve(
    config: str | None, *, port: int | None, host: str, socket_mode: bool, interval: float = 2.0
) -> int:
    settings = SlackSettings()
    token, secret = settings.require(socket_mode=socket_mode)
    client = web_client(token, settings.api_url)
    runtime = Runtime.open(config, directory=SlackDirectory(client))
    # Slack hears of everything through the outbox (whoever caused it), not as a live notifier.
    notifier = SlackNotifier(client, runtime.catalog, runtime.database, runtime.lifecycle.clock)
    bridge = PipelineBridge.from_environment(runtime, client)
    requests = RequestLog(runtime.database)
    app, _ = build_app(
        runtime,
        client,
        signing_secret=secret or "socket-mode",
        notifier=notifier,
        extra=bridge.register if bridge else None,
        requests=requests,
    )
    stop = threading.Event()
    # Deliveries another replica acknowledged and never acted on (it died): acted on here.
    redelivery = threading.Thread(
        target=requests.run, args=(app.dispatch, stop), name="shipyard-redelivery", daemon=True
    )
    redelivery.start()
    worker = threading.Thread(
        target=background_worker,
        args=(runtime, stop, interval, bridge),
        name="shipyard-worker",
        daemon=True,
    )
    worker.start()
    delivery = threading.Thread(
        target=notifier.run, args=(stop,), name="shipyard-outbox", daemon=True
    )
    delivery.start()
    leader = threading.Thread(
        target=supervise,
        args=(lambda: lead_and_run(runtime, stop), stop),
        name="shipyard-scheduler",
        daemon=True,
    )
    leader.start()
    prober = threading.Thread(
        target=lead_and_probe, args=(runtime, stop), name="shipyard-health", daemon=True
    )
    prober.start()
    try:
        if socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            assert settings.app_token is not None
            handler = SocketModeHandler(app, settings.app_token.get_secret_value())
            handler.start()  # type: ignore[no-untyped-call]
        else:
            import uvicorn

            print(f"shipyard: serving Slack on http://{host}:{port}/slack/events", flush=True)
            # Everything loaded so far lives as long as the process: keep the collector from
            # walking it again and again (full collections paused every request in flight).
            gc.collect()
            gc.freeze()
            # An ack waits for the record's group commit (bot/dedupe.py) on another thread:
            # hand the interpreter over sooner than every 5 ms while acks compete for it.
            sys.setswitchinterval(0.001)
            routes: list[BaseRoute] = [bridge.route()] if bridge else []
            routes += dashboard_routes(runtime, settings.api_url, f"http://{host}:{port or 3000}")
            uvicorn.run(
                create_web_app(app, routes, health=lambda: health(runtime, notifier)),
                host=host,
                port=port or 3000,
                log_level="warning",
            )
    finally:
        stop.set()
        worker.join(timeout=10)
        delivery.join(timeout=10)
        redelivery.join(timeout=10)
        leader.join(timeout=10)
        prober.join(timeout=10)
        runtime.close()
    return 0
