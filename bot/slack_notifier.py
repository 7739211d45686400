"""Tells people in Slack: approval requests kept up to date, progress, expiry, failures."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import views
from bot.slack_files import upload_chart
from environments.catalog import Catalog
from environments.clock import Clock
from environments.loadtests.summary import LoadTestSummary
from environments.model import Approval, Environment
from environments.registry import Database
from environments.registry import chat as chat_record
from environments.registry import loadtests as loadtest_runs
from environments.registry import record as rec

log = logging.getLogger(__name__)
MARKS = {"passed": "✅", "failed": "❌", "regressed": "📉", "errored": "⚠️", "inconclusive": "❔"}


@dataclass
class _Progress:
    title: str
    channel: str
    ts: str
    steps: list[str] = field(default_factory=list)


class SlackNotifier:
    """Posts once, then updates the same message; every Slack error is logged, never raised."""

    def __init__(
        self, client: WebClient, catalog: Catalog, database: Database, clock: Clock
    ) -> None:
        self.client = client
        self.catalog = catalog
        self.db = database
        self.clock = clock
        self._progress: dict[int, _Progress] = {}
        self._lock = threading.Lock()

    # --- following an operation in one message ------------------------------------------------

    def track(self, operation: int, channel: str, ts: str, title: str) -> None:
        """Updates about `operation` go to this message (and its thread)."""
        with self._lock:
            self._progress[operation] = _Progress(title, channel, ts)
        with self.db.write() as conn:
            chat_record.remember_message(
                conn, f"operation:{operation}", channel, ts, self.clock.now()
            )

    def progress(self, environment: str, message: str, *, operation: int) -> None:
        with self._lock:
            tracked = self._progress.get(operation)
            if tracked is None:
                return
            tracked.steps.append(message)
        self._update(tracked, done=None)

    def environment_ready(self, environment: Environment, *, operation: int) -> None:
        tracked = self._finish(operation)
        if tracked is None:
            return
        tracked.steps.append(f"ready: {environment.release} at {environment.endpoint}")
        self._update(tracked, done=True)
        with self.db.write() as conn:
            chat_record.remember_message(
                conn,
                f"environment:{environment.name}",
                tracked.channel,
                tracked.ts,
                self.clock.now(),
            )
        self._call(
            "chat_postMessage",
            channel=tracked.channel,
            thread_ts=tracked.ts,
            text=f"✅ *{environment.name}* is ready with {environment.release} at "
            f"{environment.endpoint}",
        )

    def failed(self, environment: str, reason: str, hint: str, *, operation: int) -> None:
        text, blocks = views.failure(environment, reason, hint)
        tracked = self._finish(operation)
        if tracked is not None:
            tracked.steps.append(f"failed: {reason}")
            self._update(tracked, done=False)
            self._call(
                "chat_postMessage",
                channel=tracked.channel,
                thread_ts=tracked.ts,
                text=text,
                blocks=blocks,
            )
        elif self.catalog.slack.channel:
            self._call(
                "chat_postMessage", channel=self.catalog.slack.channel, text=text, blocks=blocks
            )

    def _finish(self, operation: int) -> _Progress | None:
        with self._lock:
            return self._progress.pop(operation, None)

    def _update(self, tracked: _Progress, *, done: bool | None) -> None:
        self._call(
            "chat_update",
            channel=tracked.channel,
            ts=tracked.ts,
            text=tracked.title,
            blocks=views.progress_message(tracked.title, tracked.steps, done=done),
        )

    # --- approvals ------------------------------------------------------------------------------

    def approval_requested(self, approval: Approval) -> None:
        channel = self._approval_channel(approval)
        if channel is None:
            log.warning("approval #%s has no Slack channel (set slack.channel)", approval.id)
            return
        text, blocks = views.approval_message(
            self.catalog, approval, details=self._details(approval)
        )
        response = self._call("chat_postMessage", channel=channel, text=text, blocks=blocks)
        if response is not None:
            with self.db.write() as conn:
                chat_record.remember_message(
                    conn,
                    f"approval:{approval.id}",
                    str(response["channel"]),
                    str(response["ts"]),
                    self.clock.now(),
                )

    def approval_changed(self, approval: Approval) -> None:
        with self.db.read() as conn:
            where = chat_record.message(conn, f"approval:{approval.id}")
        if where is None:
            return
        text, blocks = views.approval_message(
            self.catalog, approval, details=self._details(approval)
        )
        self._call("chat_update", channel=where[0], ts=where[1], text=text, blocks=blocks)

    def _details(self, approval: Approval) -> list[str]:
        """What changes besides the release: the parameters, compared with what runs now."""
        with self.db.read() as conn:
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
        return lines

    def approval_thread(self, approval_id: int) -> tuple[str, str] | None:
        with self.db.read() as conn:
            return chat_record.message(conn, f"approval:{approval_id}")

    def _approval_channel(self, approval: Approval) -> str | None:
        with self.db.read() as conn:
            env = rec.get_environment(conn, approval.environment)
        gate = self.catalog.type(env.type).approval
        return (gate.channel if gate else None) or self.catalog.slack.channel

    # --- people ---------------------------------------------------------------------------------

    def expiry_warning(self, environment: Environment) -> None:
        owner = self.catalog.slack_id(environment.owner)
        if owner is None:
            return
        text, blocks = views.expiry_warning(self.catalog, environment)
        self._call("chat_postMessage", channel=owner, text=text, blocks=blocks)

    def loadtest_finished(self, summary: LoadTestSummary) -> None:
        """The verdict, figures and chart in the environment's thread (or the default channel)."""
        with self.db.read() as conn:
            thread = chat_record.message(conn, f"environment:{summary.environment}")
        channel = thread[0] if thread else self.catalog.slack.channel
        if channel is None:
            return
        mark = {
            "passed": "✅",
            "failed": "❌",
            "regressed": "📉",
            "errored": "⚠️",
            "inconclusive": "❔",
        }
        text = f"{mark.get(summary.outcome.value, '')} {summary.text()}"
        thread_ts = thread[1] if thread else None
        # The text first: when the chart's upload is refused, the verdict has still arrived.
        self._call("chat_postMessage", channel=channel, thread_ts=thread_ts, text=text)
        if summary.chart is not None and summary.chart.exists():
            upload_chart(
                self.client,
                channel=channel,
                thread_ts=thread_ts,
                path=summary.chart,
                title=f"load test #{summary.run_id}: {summary.release} on {summary.environment}",
                alt=summary.verdict or summary.outcome.value,
            )

    def _call(self, method: str, **arguments: object) -> dict[str, object] | None:
        try:
            response = getattr(self.client, method)(**arguments)
        except SlackApiError as exc:
            log.warning("Slack %s failed: %s", method, exc.response.get("error"))
            return None
        return dict(response.data) if isinstance(response.data, dict) else None
