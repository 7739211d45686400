"""Delivers the outbox to Slack: approvals kept up to date, progress in one message, answers.

Every event the core wrote (whoever caused it) is sent once: it is claimed under a lease, sent,
and marked. A message posted for an event carries the event's id in its metadata, so when a
deliverer died between posting and marking, the next one finds the message (channel history or
thread replies) instead of posting it again. Slack's 429s are retried by the WebClient's
RetryHandlers after `Retry-After`; whatever still fails is tried again later, in order per
environment.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot import views
from bot.slack_files import upload_chart
from bot.slack_text import for_slack
from bot.speech import in_chat
from environments.catalog import Catalog
from environments.clock import Clock, SystemClock
from environments.model import HealthStatus, OperationKind
from environments.outcome import Hint
from environments.providers.base import HealthReport
from environments.registry import Database, outbox
from environments.registry import chat as chat_record
from environments.registry import loadtests as loadtest_runs
from environments.registry import operations as ops
from environments.registry import record as rec
from environments.registry.outbox import Event, Pending

log = logging.getLogger(__name__)
MARKS = {"passed": "✅", "failed": "❌", "regressed": "📉", "errored": "⚠️", "inconclusive": "❔"}
METADATA_TYPE = "shipyard_outbox"
# The bot cannot post here (a DM between people, a private channel it is not in): answer the
# requester through the command's response_url or a direct message instead.
CLOSED = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action"})
ELSEWHERE = ("", "")  # chat_messages entry of an operation answered outside any channel
RESPONSE_URL, DIRECT = "response_url", "dm"  # outbox intents: where an answer is going


class Later(Exception):
    """Slack is unavailable for now (rate limit after retries, 5xx, no connection)."""


class NotYet(Later):
    """The Slack face may still be recording where its requester waits: look again shortly."""


# A surface records where to answer right after queueing its operation; an operation that
# started meanwhile waits this long for that before its first message goes to the team channel.
ROUTE_GRACE = 1.0  # seconds


class SlackNotifier:
    """The outbox's deliverer to Slack; every Slack error is logged or retried, never raised."""

    def __init__(
        self,
        client: WebClient,
        catalog: Catalog,
        database: Database,
        clock: Clock,
        *,
        lease: timedelta = timedelta(seconds=60),
        backoff: float = 2.0,
        route_grace: float = ROUTE_GRACE,
    ) -> None:
        self.client = client
        self.catalog = catalog
        self.db = database
        self.clock = clock
        self.lease = lease
        self.backoff = backoff
        self.route_grace = route_grace
        # Leases, retries and delivery times run on the wall clock, whatever clock the core
        # uses (tests move theirs by hours to reach an expiry).
        self.timing = SystemClock()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._first_seen: dict[int, float] = {}
        self.last_pass: datetime | None = None
        self._lock = threading.Lock()

    # --- what the Slack face tells about the requester -----------------------------------------

    def answer_to(
        self,
        operation: int,
        *,
        user: str,
        channel: str | None,
        thread_ts: str | None = None,
        response_url: str | None = None,
    ) -> None:
        """The operation was started in Slack: its progress and outcome go back there."""
        with self.db.write() as conn:
            outbox.remember_route(
                conn,
                operation,
                user=user,
                channel=channel or None,
                thread_ts=thread_ts,
                response_url=response_url,
                at=self.clock.now(),
            )

    def approval_thread(self, approval_id: int) -> tuple[str, str] | None:
        with self.db.read() as conn:
            return chat_record.message(conn, f"approval:{approval_id}")

    # --- delivering ---------------------------------------------------------------------------

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Deliver until `stop` is set (serve's delivery thread)."""
        while not stop.is_set():
            try:
                self.deliver_pending()
            except Exception:
                log.exception("outbox delivery pass failed; trying again")
            stop.wait(interval)

    def deliver_pending(self, limit: int = 200) -> int:
        """Deliver every event that may go now (in order per environment); how many went."""
        with self._lock:
            sent = 0
            while True:
                with self.db.read() as conn:
                    rows = outbox.due(conn, self.timing.now(), limit)
                went = sum(self._one(row) for row in rows)
                sent += went
                self.last_pass = self.timing.now()
                if not went:
                    return sent

    def _one(self, row: Pending) -> bool:
        now = self.timing.now()
        with self.db.write() as conn:
            if not outbox.claim(conn, row.id, owner=self.owner, now=now, lease=self.lease):
                return False
        attempt = Pending(**{**row.__dict__, "attempts": row.attempts + 1})
        try:
            to = self.deliver(attempt)
            note = ""
        except Later as exc:
            log.info("outbox event #%s (%s) waits: %s", row.id, row.event, exc)
            wait = (
                0.2
                if isinstance(exc, NotYet)
                else min(300.0, self.backoff * 2 ** min(attempt.attempts, 8))
            )
            with self.db.write() as conn:
                outbox.retry_later(
                    conn,
                    row.id,
                    owner=self.owner,
                    at=self.timing.now() + timedelta(seconds=wait),
                    error=str(exc),
                )
            return False
        except SlackApiError as exc:
            # Slack refused it for good (bad blocks, unknown user): say so and move on, rather
            # than hold back every later event of the environment.
            to, note = "refused", str(exc.response.get("error"))
            log.warning("Slack refused outbox event #%s (%s): %s", row.id, row.event, note)
        with self.db.write() as conn:
            outbox.delivered(
                conn, row.id, owner=self.owner, now=self.timing.now(), to=to, note=note
            )
        self._first_seen.pop(row.id, None)
        return True

    def deliver(self, row: Pending) -> str:
        """Send one event; returns where it went. Raises Later to try again later."""
        handler = {
            Event.APPROVAL_REQUESTED: self._approval_requested,
            Event.APPROVAL_DECIDED: self._approval_changed,
            Event.APPROVAL_EXPIRED: self._approval_changed,
            Event.PROGRESS: self._progress,
            Event.READY: self._outcome,
            Event.FAILED: self._outcome,
            Event.DESTROYED: self._outcome,
            Event.EXPIRY_WARNING: self._expiry_warning,
            Event.LOADTEST_FINISHED: self._loadtest_finished,
            Event.HEALTH_CHANGED: self._health_changed,
            Event.PIPELINE_DEPLOYMENT: self._pipeline_deployment,
        }[row.event]
        return handler(row)

    # --- operations: one message updated, the outcome in its thread ---------------------------

    def _progress(self, row: Pending) -> str:
        assert row.operation is not None
        with self.db.read() as conn:
            if outbox.outcome_before(conn, row.operation, row.id):
                return "after the outcome"  # the message shows the outcome already
        where = self._operation_message(row)
        if where is None:
            return "nowhere"
        if where == ELSEWHERE:
            return "held for the outcome"  # the requester gets the outcome, not every step
        with self.db.read() as conn:
            steps = outbox.progress_steps(conn, row.operation, row.id)
        self._call(
            "chat_update",
            channel=where[0],
            ts=where[1],
            text=f"⏳ {self._title(row.operation)}",
            blocks=views.progress_message(
                self._title(row.operation), [for_slack(s) for s in steps], done=None
            ),
        )
        return f"{where[0]}/{where[1]}"

    def _outcome(self, row: Pending) -> str:
        assert row.operation is not None
        title = self._title(row.operation)
        text, blocks, last = self._outcome_text(row)
        where = self._operation_message(row)
        if where is None:
            return "nowhere"
        if where == ELSEWHERE:
            return self._answer_requester(row, text, blocks)
        with self.db.read() as conn:
            steps = [for_slack(s) for s in outbox.progress_steps(conn, row.operation, row.id)]
        self._call(
            "chat_update",
            channel=where[0],
            ts=where[1],
            text=title,
            blocks=views.progress_message(
                title, [*steps, last], done=row.event is not Event.FAILED
            ),
        )
        posted = self._post_once(row, where[0], thread_ts=where[1], text=text, blocks=blocks)
        if row.event is Event.READY and row.environment:
            with self.db.write() as conn:
                chat_record.remember_message(
                    conn, f"environment:{row.environment}", where[0], where[1], self.clock.now()
                )
        return f"{posted[0]}/{posted[1]}"

    def _outcome_text(self, row: Pending) -> tuple[str, list[dict[str, Any]], str]:
        name = row.environment or "?"
        if row.event is Event.FAILED:
            reason = for_slack(str(row.payload.get("reason", "")))
            steps = [Hint.of(h) for h in row.payload.get("hints") or ()]
            words = for_slack(str(row.payload.get("hint", "")))
            hint = ", or ".join([*([words] if words else []), *map(in_chat, steps)])
            text, blocks = views.failure(name, reason, hint)
            return text, blocks, f"failed: {reason}"
        if row.event is Event.DESTROYED:
            text = f"🗑️ *{name}* destroyed"
            return text, [views.section(text)], "destroyed"
        release = row.payload.get("release", "")
        endpoint = for_slack(str(row.payload.get("endpoint") or ""))
        at = f" at {endpoint}" if endpoint and endpoint != "(local)" else ""
        run_url = row.payload.get("run_url")
        run = f" (<{run_url}|pipeline run>)" if run_url else ""
        if row.payload.get("not_promoted"):
            reason = for_slack(str(row.payload.get("reason", "")))
            serving = f"; it keeps serving {release}" if release else ""
            text = f"⚪ *{row.payload['not_promoted']}* not promoted into *{name}*{serving}{run}"
            return text, [views.section(f"{text}\n{reason}")], f"not promoted: {reason}"
        text = f"✅ *{name}* is ready with {release}{at}{run}"
        return text, [views.section(text)], f"ready: {release}{at}"

    def _operation_message(self, row: Pending) -> tuple[str, str] | None:
        """The operation's message, posted now if it has none; ELSEWHERE when the requester
        must be answered outside a channel; None when nobody is to be told in Slack."""
        assert row.operation is not None
        with self.db.read() as conn:
            where = chat_record.message(conn, f"operation:{row.operation}")
            route = outbox.route(conn, row.operation)
        if where is not None:
            return where
        if route is None:
            first = self._first_seen.setdefault(row.id, time.monotonic())
            if time.monotonic() - first < self.route_grace:
                raise NotYet(f"operation #{row.operation}: where to answer is not known yet")
        channel = route.channel if route and route.channel else self._channel_for(row)
        if channel is None:
            return ELSEWHERE if route else None
        title = self._title(row.operation)
        try:
            posted = self._post_once(
                row,
                channel,
                thread_ts=route.thread_ts if route else None,
                text=f"⏳ {title}",
                blocks=views.progress_message(title, [], done=None),
            )
        except SlackApiError as exc:
            if exc.response.get("error") not in CLOSED or route is None:
                raise
            log.info("cannot post in %s (%s): answering the requester", channel, exc)
            posted = ELSEWHERE
        with self.db.write() as conn:
            chat_record.remember_message(
                conn, f"operation:{row.operation}", posted[0], posted[1], self.clock.now()
            )
        return posted

    def _answer_requester(self, row: Pending, text: str, blocks: list[dict[str, Any]]) -> str:
        """Through the command's response_url (valid 30 minutes), else a direct message.

        A post to a response_url cannot be read back, so the intent is recorded before it: a
        deliverer that died between that post and the mark leaves the intent behind, and the
        next one does not post again (at most one answer there). When the post fails (the URL
        used up or expired, no answer) the intent becomes a direct message, which can be read
        back (metadata), so it too is sent once.
        """
        assert row.operation is not None
        with self.db.read() as conn:
            route = outbox.route(conn, row.operation)
        if route is None:
            return "nowhere"
        if row.intent == RESPONSE_URL:
            log.info("outbox event #%s went to the response_url before a crash: not again", row.id)
            return "response_url (sent before its mark)"
        if route.response_url and row.intent != DIRECT:
            with self.db.write() as conn:
                if not outbox.intend(conn, row.id, owner=self.owner, intent=RESPONSE_URL):
                    raise Later("taken over by another deliverer")
            try:
                answer = WebhookClient(route.response_url, timeout=10).send(
                    text=text, blocks=blocks, response_type="ephemeral", replace_original=False
                )
                if answer.status_code == 200:
                    return RESPONSE_URL
            except OSError as exc:
                log.info("response_url failed (%s): sending a direct message", exc)
            # From here on the answer goes by direct message, on this attempt and any later.
            with self.db.write() as conn:
                outbox.intend(conn, row.id, owner=self.owner, intent=DIRECT)
        dm = self._dm_channel(route.user)
        posted = self._post_once(row, dm, text=text, blocks=blocks)
        return f"dm {posted[0]}/{posted[1]}"

    def _channel_for(self, row: Pending) -> str | None:
        """Operations nobody started from Slack are told in the team's channel."""
        return self.catalog.slack.channel

    def _title(self, op_id: int) -> str:
        with self.db.read() as conn:
            op = ops.get_operation(conn, op_id)
            release = (
                rec.get_deployment(conn, op.deployment_id).release
                if op.deployment_id is not None
                else None
            )
        if op.kind is OperationKind.CREATE:
            return f"create {op.environment} with {release}"
        if op.kind is OperationKind.DEPLOY:
            return f"deploy {release} into {op.environment}"
        return f"destroy {op.environment}"

    # --- approvals ----------------------------------------------------------------------------

    def _approval_requested(self, row: Pending) -> str:
        approval_id = int(row.payload["approval"])
        with self.db.read() as conn:
            approval = rec.get_approval(conn, approval_id)
            where = chat_record.message(conn, f"approval:{approval_id}")
        if where is not None:
            return self._approval_changed(row)
        channel = self._approval_channel(approval.environment)
        if channel is None:
            log.warning("approval #%s has no Slack channel (set slack.channel)", approval.id)
            return "nowhere"
        text, blocks = views.approval_message(
            self.catalog, approval, details=self._details(approval_id)
        )
        posted = self._post_once(row, channel, text=text, blocks=blocks)
        with self.db.write() as conn:
            chat_record.remember_message(
                conn, f"approval:{approval_id}", posted[0], posted[1], self.clock.now()
            )
        return f"{posted[0]}/{posted[1]}"

    def _approval_changed(self, row: Pending) -> str:
        approval_id = int(row.payload["approval"])
        with self.db.read() as conn:
            where = chat_record.message(conn, f"approval:{approval_id}")
            approval = rec.get_approval(conn, approval_id)
        if where is None:
            return "nowhere"
        text, blocks = views.approval_message(
            self.catalog, approval, details=self._details(approval_id)
        )
        self._call("chat_update", channel=where[0], ts=where[1], text=text, blocks=blocks)
        return f"{where[0]}/{where[1]}"

    def _details(self, approval_id: int) -> list[str]:
        """What changes besides the release: the parameters, compared with what runs now."""
        with self.db.read() as conn:
            approval = rec.get_approval(conn, approval_id)
            deployment = rec.get_deployment(conn, approval.deployment_id)
            asked = deployment.parameters_fingerprint
            env = rec.find_environment(conn, approval.environment)
            current = rec.current_deployment(conn, env.id) if env else None
            tested = loadtest_runs.last_verdict(conn, approval.release)
        lines = []
        if current is None:
            lines.append(f"New environment; parameters `{asked}`")
        else:
            running = f"{current.release} with parameters `{current.parameters_fingerprint}`"
            change = (
                "unchanged" if current.parameters_fingerprint == asked else f"change to `{asked}`"
            )
            lines.append(f"Runs {running} now; parameters {change}")
        if tested is not None:
            lines.append(
                f"Last load test of {approval.release}: *{tested.outcome}* "
                f"(#{tested.id} on {tested.environment})"
                + (f"\n{tested.verdict}" if tested.verdict else "")
            )
        if deployment.override_reason:
            lines.append(f"⚠️ {deployment.override_reason}")
        if deployment.run_url:
            lines.append(
                f"Azure DevOps run waiting at the gate: <{deployment.run_url}|open the run>"
            )
        return lines

    def _approval_channel(self, environment: str) -> str | None:
        with self.db.read() as conn:
            env = rec.find_environment(conn, environment)
        gate = self.catalog.type(env.type).approval if env else None
        return (gate.channel if gate else None) or self.catalog.slack.channel

    # --- people -------------------------------------------------------------------------------

    def _expiry_warning(self, row: Pending) -> str:
        with self.db.read() as conn:
            env = rec.find_environment(conn, row.environment or "")
        owner = self.catalog.slack_id(str(row.payload.get("owner", "")))
        if env is None or owner is None:
            return "nowhere"
        text, blocks = views.expiry_warning(self.catalog, env)
        posted = self._post_once(row, self._dm_channel(owner), text=text, blocks=blocks)
        return f"{posted[0]}/{posted[1]}"

    def _loadtest_finished(self, row: Pending) -> str:
        """The verdict, figures and chart in the environment's thread (or the default channel);
        a nightly run's in its schedule's channel."""
        with self.db.read() as conn:
            thread = chat_record.message(conn, f"environment:{row.environment}")
        if row.payload.get("channel"):
            thread = (str(row.payload["channel"]), "")
        channel = thread[0] if thread else self.catalog.slack.channel
        if channel is None:
            return "nowhere"
        outcome = str(row.payload.get("outcome", ""))
        text = f"{MARKS.get(outcome, '')} {for_slack(str(row.payload.get('text', '')))}"
        thread_ts = (thread[1] or None) if thread else None
        # The text first, exactly once: when the chart's upload is refused, the verdict has
        # still arrived. (A crash between the two can upload the chart again on the retry.)
        posted = self._post_once(row, channel, thread_ts=thread_ts, text=text)
        chart = row.payload.get("chart")
        if chart and os.path.exists(chart):
            upload_chart(
                self.client,
                channel=posted[0],
                thread_ts=thread_ts,
                path=Path(chart),
                title=f"load test #{row.payload.get('run')}: {row.payload.get('release', '')} "
                f"on {row.environment}",
                alt=str(row.payload.get("verdict") or outcome),
            )
        return f"{posted[0]}/{posted[1]}"

    def _pipeline_deployment(self, row: Pending) -> str:
        """A deployment an Azure DevOps run made, with the run to open, in the environment's
        thread (or the default channel)."""
        with self.db.read() as conn:
            thread = chat_record.message(conn, f"environment:{row.environment}")
        channel = thread[0] if thread else self.catalog.slack.channel
        if channel is None:
            return "nowhere"
        p = row.payload
        mark = {"succeeded": "✅", "failed": "❌", "cancelled": "⚪"}.get(
            str(p.get("status")), "⏳"
        )
        text = (
            f"{mark} *{p.get('release')}* → *{row.environment}* by a pipeline run "
            f"({p.get('status')}, asked by {p.get('by')}): <{p.get('run_url')}|open the run>"
        )
        posted = self._post_once(row, channel, thread_ts=thread[1] if thread else None, text=text)
        return f"{posted[0]}/{posted[1]}"

    def _health_changed(self, row: Pending) -> str:
        """A change of health, in the environment's thread (or the default channel)."""
        with self.db.read() as conn:
            thread = chat_record.message(conn, f"environment:{row.environment}")
            env = rec.find_environment(conn, row.environment or "")
        channel = thread[0] if thread else self.catalog.slack.channel
        if channel is None or env is None:
            return "nowhere"
        previous = row.payload.get("previous")
        report = HealthReport(
            HealthStatus(row.payload["status"]), for_slack(str(row.payload.get("reason", "")))
        )
        text, blocks = views.health_changed(
            env, HealthStatus(previous) if previous else None, report
        )
        posted = self._post_once(
            row, channel, thread_ts=thread[1] if thread else None, text=text, blocks=blocks
        )
        return f"{posted[0]}/{posted[1]}"

    # --- Slack calls --------------------------------------------------------------------------

    def _dm_channel(self, user: str) -> str:
        opened = self._call("conversations_open", users=user)
        channel = opened.get("channel")
        return str(channel["id"]) if isinstance(channel, dict) else user

    def _post_once(
        self, row: Pending, channel: str, *, thread_ts: str | None = None, **message: Any
    ) -> tuple[str, str]:
        """Post the event's one message, unless an earlier attempt already did (found by the
        event id in the message's metadata)."""
        if row.attempts > 1:
            found = self._find_posted(row, channel, thread_ts)
            if found is not None:
                log.info("outbox event #%s was posted before its mark: not posting again", row.id)
                return found
        answer = self._call(
            "chat_postMessage",
            channel=channel,
            thread_ts=thread_ts,
            metadata={"event_type": METADATA_TYPE, "event_payload": {"outbox_id": row.id}},
            **message,
        )
        return str(answer["channel"]), str(answer["ts"])

    def _find_posted(
        self, row: Pending, channel: str, thread_ts: str | None
    ) -> tuple[str, str] | None:
        if thread_ts:
            answer = self._call(
                "conversations_replies",
                channel=channel,
                ts=thread_ts,
                include_all_metadata=True,
                limit=200,
            )
        else:
            answer = self._call(
                "conversations_history",
                channel=channel,
                oldest=f"{self._first_try(row) - 60:.6f}",
                include_all_metadata=True,
                limit=200,
            )
        for message in answer.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == METADATA_TYPE and payload.get("outbox_id") == row.id:
                return channel, str(message["ts"])
        return None

    def _first_try(self, row: Pending) -> float:
        """No earlier than this (epoch seconds) can an attempt have posted the event."""
        return min(row.created_at.timestamp(), self.timing.now().timestamp() - 3600)

    def _call(self, method: str, **arguments: Any) -> dict[str, Any]:
        """One Web API call; SlackApiError for refusals, Later for what may pass with time."""
        try:
            response = getattr(self.client, method)(**arguments)
        except SlackApiError as exc:
            status = exc.response.status_code
            if status == 429 or status >= 500 or exc.response.get("error") == "ratelimited":
                raise Later(f"Slack {method}: HTTP {status}") from None
            raise
        except OSError as exc:
            raise Later(f"Slack {method}: {exc}") from None
        return dict(response.data) if isinstance(response.data, dict) else {}
