"""`/env TEXT`: parsed once by the ack, run through the command table by the lazy listener."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient

from bot import create_form
from bot.slack_approvals import ApprovalFlow
from bot.slack_environments import EnvironmentFlow
from bot.slack_progress import LiveMessage
from bot.speech import for_chat, in_chat
from bot.table import chat_help, command_of, execute, parse_text
from environments.errors import InvalidInput, ShipyardError
from environments.policy import Actor
from environments.registry import chat as chat_record


class CommandFlow(ApprovalFlow, EnvironmentFlow):
    """`/env TEXT`: parsed once by the ack, run through the command table by the lazy listener."""

    def ack_command(
        self, ack: Callable[..., None], body: dict[str, Any], client: WebClient
    ) -> None:
        args = self._ack_command(ack, body, client)
        self._parsed.put(body["trigger_id"], args)

    def _ack_command(
        self, ack: Callable[..., None], body: dict[str, Any], client: WebClient
    ) -> argparse.Namespace | None:
        """Ack `/env TEXT`; the parsed command when the lazy listener has work to do."""
        text = (body.get("text") or "").strip()
        words = text.split()
        if not words or words[0] in ("help", "-h", "--help"):
            ack(text=f"{chat_help()}\n{create_form.types_help(self.rt.catalog)}")
            return None
        if words == ["create"] or (words[:2] == ["create", "--type"] and len(words) == 3):
            ack()
            chosen = words[2] if len(words) == 3 else None
            modal = self._create_modal(body.get("channel_id", ""), chosen)
            self._open(client, body["trigger_id"], modal)
            return None
        if words[0] == "reject" and len(words) == 2 and "--reason" not in text:
            self._ack_with_reject_modal(ack, client, body["trigger_id"], body["user_id"], words[1])
            return None
        try:
            args = parse_text(text)
        except InvalidInput as exc:
            ack(text=f"{exc.reason}\n{exc.advice(in_chat)}")
            return None
        if args.verb == "destroy":
            ack(blocks=self._destroy_confirmation(args.name), text=f"Destroy {args.name}?")
            return None
        ack()
        return args

    def run_command(
        self, body: dict[str, Any], respond: Callable[..., Any], client: WebClient
    ) -> None:
        text = (body.get("text") or "").strip()
        args = self._parsed.take(body["trigger_id"])
        if args is None:
            return
        actor = self.actor(body["user_id"])
        command = command_of(args)
        if command.slow:
            # Seconds to minutes of work: not on the lazy thread. The result is posted by the
            # notifier (a load test's verdict and chart go to the environment's thread).
            respond(text=f"⏳ `/env {text}` started", response_type="ephemeral")
            if (args.group, args.verb) == ("env", "loadtest"):
                args.progress = self._live(client, args.name, body.get("channel_id", ""))
            self.operations.submit(self._slow, actor, args, respond)
            return
        try:
            outcome = execute(self.rt, actor, args)
        except ShipyardError as exc:
            respond(text=f"{for_chat(exc)}", response_type="ephemeral")
            return
        if command.read_only:
            respond(text=f"```{outcome.text}```", response_type="ephemeral")
            return
        self._report(respond, body, body.get("channel_id", ""), outcome)

    def _slow(self, actor: Actor, args: Any, respond: Callable[..., Any]) -> None:
        live = getattr(args, "progress", None)
        try:
            outcome = execute(self.rt, actor, args)
        except ShipyardError as exc:
            if isinstance(live, LiveMessage) and live.ts is not None:
                live.close(f"stopped: {for_chat(exc)}")
            respond(text=for_chat(exc), response_type="ephemeral")
            return
        if isinstance(live, LiveMessage) and live.ts is not None:
            live.close("done: the verdict follows in this thread")
        respond(text=f"```{outcome.text}```", response_type="ephemeral")

    def _live(self, client: WebClient, environment: str, channel: str) -> LiveMessage:
        """A load test's live figures go to the environment's thread, where its verdict will."""
        with self.rt.database.read() as conn:
            thread = chat_record.message(conn, f"environment:{environment}")
        where, thread_ts = thread if thread else (channel, None)
        return LiveMessage(
            client, channel=where, thread_ts=thread_ts, title=f"load test of {environment}"
        )
