"""Operations in Slack: one message updated step by step, the outcome in its thread; the
requester answered by response_url or direct message where the bot cannot post."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot import views
from bot.slack_delivery import Deliverer, Later, NotYet
from bot.slack_text import for_slack
from bot.speech import in_chat
from environments.model import OperationKind
from environments.outcome import Hint
from environments.registry import chat as chat_record
from environments.registry import operations as ops
from environments.registry import outbox
from environments.registry import record as rec
from environments.registry.outbox import Event, Pending

log = logging.getLogger(__name__)
# The bot cannot post here (a DM between people, a private channel it is not in): answer the
# requester through the command's response_url or a direct message instead.
CLOSED = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action"})
ELSEWHERE = ("", "")  # chat_messages entry of an operation answered outside any channel
RESPONSE_URL, DIRECT = "response_url", "dm"  # outbox intents: where an answer is going


class OperationMessages(Deliverer):
    """Progress, ready, failed and destroyed events of operations."""

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
                title,
                [*steps, last],
                done=row.event is not Event.FAILED,
                neutral=bool(row.payload.get("not_promoted")),
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
            next_steps = [Hint.of(h) for h in row.payload.get("hints") or ()]
            words = for_slack(str(row.payload.get("hint", "")))
            hint = ", or ".join([*([words] if words else []), *map(in_chat, next_steps)])
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
