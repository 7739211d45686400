"""The outbox's deliverer to Slack: every event kind, and what is told in an environment's
thread or to one person (expiry warnings, load-test verdicts, pipeline deployments, health)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from bot import views
from bot.slack_approval_messages import ApprovalMessages
from bot.slack_delivery import Sent
from bot.slack_files import upload_chart
from bot.slack_operation_messages import OperationMessages
from bot.slack_text import for_slack
from environments.model import HealthStatus
from environments.providers.base import HealthReport
from environments.registry import chat as chat_record
from environments.registry import record as rec
from environments.registry.outbox import Event, Pending

__all__ = ["SlackNotifier"]

log = logging.getLogger(__name__)
MARKS = {"passed": "✅", "failed": "❌", "regressed": "📉", "errored": "⚠️", "inconclusive": "❔"}


class SlackNotifier(OperationMessages, ApprovalMessages):
    """The outbox's deliverer to Slack (serve runs it); every Slack error is logged or
    retried, never raised."""

    def deliver(self, row: Pending) -> str | Sent:
        """Send one event; returns where it went. Raises Later to try again later."""
        handler: dict[Event, Callable[[Pending], str | Sent]] = {
            Event.APPROVAL_REQUESTED: self._approval_requested,
            Event.APPROVAL_DM: self._approval_dm,
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
        }
        return handler[row.event](row)

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
