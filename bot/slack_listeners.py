"""Slack listeners, kept thin: ack → parse → call the core → render; slow work after the ack."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import render, views
from bot.commands import Outcome, execute
from bot.grammar import build_parser, one_line_usage, parse_text
from bot.runtime import Runtime
from bot.slack_notifier import SlackNotifier
from bot.slack_progress import LiveMessage
from environments import parameters, policy
from environments.errors import InvalidInput, NotFound, PolicyRefused, ShipyardError
from environments.lifecycle import Requested
from environments.model import check_environment_name, parse_duration
from environments.policy import Actor, Channel
from environments.registry import chat as chat_record
from environments.registry import record as rec

log = logging.getLogger(__name__)
READ_VERBS = {"list", "show", "where", "matrix", "history", "approvals", "diff", "report"}
EXTEND_BY = timedelta(hours=4)
SLOW = {("env", "loadtest"), ("schedule", "run")}


@functools.cache
def help_text() -> str:
    parser = build_parser("/env", chat=True)
    env = parser.verbs
    lines = ["*Shipyard* — `/env VERB …` (the same grammar as `shipyard env …`):"]
    for (group, _), sub in env.items():
        if group == "env":
            lines.append(f"• `{one_line_usage(sub).removeprefix('usage: ')}` — {sub.description}")
    lines.append("`/env create` with no arguments opens a form.")
    return "\n".join(lines)


class Handoff:
    """Passes what an ack listener decided to the lazy listener Bolt starts beside it."""

    def __init__(self, wait: float = 10.0) -> None:
        self.wait = wait
        self._results: dict[str, Requested | None] = {}
        self._ready: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def _event(self, key: str) -> threading.Event:
        with self._lock:
            return self._ready.setdefault(key, threading.Event())

    def put(self, key: str, result: Requested | None) -> None:
        with self._lock:
            self._results[key] = result
        self._event(key).set()

    def take(self, key: str) -> Requested | None:
        self._event(key).wait(self.wait)
        with self._lock:
            self._ready.pop(key, None)
            return self._results.pop(key, None)


class SlackFace:
    """Everything a person does in Slack, translated into lifecycle calls as that person."""

    def __init__(self, runtime: Runtime, notifier: SlackNotifier) -> None:
        self.rt = runtime
        self.notifier = notifier
        self._created = Handoff()
        # Operations take seconds to minutes: they run here, never in the lazy-listener thread.
        self.operations = ThreadPoolExecutor(max_workers=4, thread_name_prefix="shipyard-op")

    def actor(self, user_id: str) -> Actor:
        return Actor(person=self.rt.catalog.person_for_slack(user_id), channel=Channel.CHAT)

    # --- /env -----------------------------------------------------------------------------------

    def ack_command(
        self, ack: Callable[..., None], body: dict[str, Any], client: WebClient
    ) -> None:
        text = (body.get("text") or "").strip()
        words = text.split()
        if not words or words[0] in ("help", "-h", "--help"):
            ack(text=help_text())
            return
        if words == ["create"]:
            ack()
            self._open(client, body["trigger_id"], self._create_modal(body.get("channel_id", "")))
            return
        if words[0] == "reject" and len(words) == 2 and "--reason" not in text:
            self._ack_with_reject_modal(ack, client, body["trigger_id"], body["user_id"], words[1])
            return
        try:
            args = parse_text(text)
        except InvalidInput as exc:
            ack(text=f"{exc.reason}\n{exc.hint}")
            return
        if args.verb == "destroy" and not getattr(args, "confirmed", False):
            ack(blocks=self._destroy_confirmation(args.name), text=f"Destroy {args.name}?")
            return
        ack()

    def run_command(
        self, body: dict[str, Any], respond: Callable[..., Any], client: WebClient
    ) -> None:
        text = (body.get("text") or "").strip()
        words = text.split()
        if not words or words[0] in ("help", "-h", "--help") or words == ["create"]:
            return
        if words[0] == "reject" and len(words) == 2 and "--reason" not in text:
            return
        try:
            args = parse_text(text)
        except InvalidInput:
            return
        if args.verb == "destroy":
            return
        actor = self.actor(body["user_id"])
        if (args.group, args.verb) in SLOW:
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
            respond(text=f"{exc.one_line()}", response_type="ephemeral")
            return
        if args.verb in READ_VERBS:
            respond(text=f"```{outcome.text}```", response_type="ephemeral")
            return
        self._report(client, respond, body.get("channel_id", ""), f"/env {text}", outcome)

    def _report(
        self,
        client: WebClient,
        respond: Callable[..., Any],
        channel: str,
        title: str,
        outcome: Outcome,
        thread_ts: str | None = None,
    ) -> None:
        """Post one message that the operation then updates; or say where the request waits."""
        if outcome.operation is None:
            respond(text=outcome.text, response_type="ephemeral")
            return
        posted = self._post(
            client,
            channel=channel,
            text=f"⏳ {title}",
            thread_ts=thread_ts,
            blocks=views.progress_message(title, [], done=None),
        )
        if posted is not None:
            self.notifier.track(outcome.operation, posted[0], posted[1], title)
        else:
            respond(text=f"⏳ {title} (operation #{outcome.operation})", response_type="ephemeral")
        self.operations.submit(self._run_operation, outcome.operation)

    def _slow(self, actor: Actor, args: Any, respond: Callable[..., Any]) -> None:
        live = getattr(args, "progress", None)
        try:
            outcome = execute(self.rt, actor, args)
        except ShipyardError as exc:
            if isinstance(live, LiveMessage) and live.ts is not None:
                live.close(f"stopped: {exc.one_line()}")
            respond(text=exc.one_line(), response_type="ephemeral")
            return
        if isinstance(live, LiveMessage) and live.ts is not None:
            live.close("done: the verdict follows in this thread")
        respond(text=f"```{outcome.text}```", response_type="ephemeral")

    def _live(self, client: WebClient, environment: str, channel: str) -> LiveMessage:
        """Live figures go to the environment's thread, where its verdict will be posted."""
        with self.rt.database.read() as conn:
            thread = chat_record.message(conn, f"environment:{environment}")
        where, thread_ts = thread if thread else (channel, None)
        return LiveMessage(
            client, channel=where, thread_ts=thread_ts, title=f"load test of {environment}"
        )

    def _run_operation(self, op_id: int) -> None:
        try:
            self.rt.worker.run(op_id)
        except Exception:
            log.exception("operation #%s could not be run; the worker will retry it", op_id)

    # --- approvals ------------------------------------------------------------------------------

    def ack_approve(self, ack: Callable[..., None]) -> None:
        ack()

    def run_approve(
        self, body: dict[str, Any], client: WebClient, respond: Callable[..., Any]
    ) -> None:
        user = body["user"]["id"]
        approval_id = body["actions"][0]["value"]
        try:
            approval, op_id = self.rt.lifecycle.approve(self.actor(user), approval_id)
        except ShipyardError as exc:
            self._explain(client, body, exc)
            return
        if op_id is None:
            return
        where = self.notifier.approval_thread(approval.id)
        title = f"{approval.kind} {approval.release} → {approval.environment}"
        outcome = Outcome(text=title, operation=op_id)
        channel = where[0] if where else body.get("channel", {}).get("id", "")
        self._report(
            client, respond, channel, title, outcome, thread_ts=where[1] if where else None
        )

    def ack_reject(self, ack: Callable[..., None], body: dict[str, Any], client: WebClient) -> None:
        self._ack_with_reject_modal(
            ack,
            client,
            body["trigger_id"],
            body["user"]["id"],
            body["actions"][0]["value"],
            body=body,
        )

    def _ack_with_reject_modal(
        self,
        ack: Callable[..., None],
        client: WebClient,
        trigger_id: str,
        user: str,
        ref: str,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Ask for a reason, but only someone who may decide gets the form."""
        try:
            with self.rt.database.read() as conn:
                approval = self.rt.lifecycle.find_approval(conn, ref)
            policy.require_approver(
                self.rt.catalog,
                self.actor(user).person,
                approvers=approval.approvers,
                requested_by=approval.requested_by,
                state=approval.state,
                decisions=approval.decisions,
            )
        except ShipyardError as exc:
            ack() if body is not None else ack(text=exc.one_line())
            if body is not None:
                self._explain(client, body, exc)
            return
        ack()
        self._open(client, trigger_id, views.reject_modal(approval))

    def on_reject_reason(
        self, ack: Callable[..., None], body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        reason = view["state"]["values"]["reason"]["value"]["value"] or ""
        try:
            self.rt.lifecycle.reject(
                self.actor(body["user"]["id"]), view["private_metadata"], reason=reason
            )
        except ShipyardError as exc:
            ack(response_action="errors", errors={"reason": exc.one_line()[:150]})
            return
        ack()

    # --- environments: create form, extend, destroy ---------------------------------------------

    def _create_modal(self, channel: str) -> dict[str, Any]:
        with self.rt.database.read() as conn:
            releases = rec.list_releases(conn)
        modal = views.create_modal(self.rt.catalog, releases)
        modal["private_metadata"] = channel
        return modal

    def ack_create_form(
        self, ack: Callable[..., None], body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        values = view["state"]["values"]

        def field(block: str) -> str:
            element = values.get(block, {}).get("value", {})
            chosen = element.get("selected_option") or {}
            return str(chosen.get("value") or element.get("value") or "").strip()

        errors: dict[str, str] = {}
        try:
            check_environment_name(field("name"))
        except ShipyardError as exc:
            errors["name"] = exc.one_line()[:150]
        ttl = None
        try:
            ttl = parse_duration(field("ttl")) if field("ttl") else None
        except ShipyardError as exc:
            errors["ttl"] = exc.one_line()[:150]
        overrides: dict[str, str] = {}
        try:
            overrides = parameters.parse_assignments(field("overrides").splitlines())
        except ShipyardError as exc:
            errors["overrides"] = exc.one_line()[:150]
        if errors:
            self._created.put(view["id"], None)
            ack(response_action="errors", errors=errors)
            return
        try:
            requested = self.rt.lifecycle.create(
                self.actor(body["user"]["id"]),
                field("name"),
                env_type=field("type"),
                release=field("release"),
                ttl=ttl,
                overrides=overrides,
            )
        except ShipyardError as exc:
            block = (
                "ttl"
                if "TTL" in exc.reason or "expire" in exc.reason
                else (
                    "release"
                    if "release" in exc.reason
                    else "type"
                    if isinstance(exc, NotFound | PolicyRefused)
                    else "name"
                )
            )
            self._created.put(view["id"], None)
            ack(response_action="errors", errors={block: exc.one_line()[:150]})
            return
        self._created.put(view["id"], requested)
        ack()

    def run_create_form(
        self, body: dict[str, Any], client: WebClient, view: dict[str, Any]
    ) -> None:
        requested = self._created.take(view["id"])
        if requested is None:
            return
        user = body["user"]["id"]
        channel = view.get("private_metadata") or user
        if requested.operation_id is None:
            self._post(client, channel=user, text=f"{requested.environment}: waiting for approval")
            return
        title = f"create {requested.environment} with {requested.release}"
        outcome = Outcome(text=title, operation=requested.operation_id)
        self._report(client, lambda **_: None, channel, title, outcome)

    def run_extend(self, body: dict[str, Any], client: WebClient) -> None:
        user = body["user"]["id"]
        name = body["actions"][0]["value"]
        try:
            env = self.rt.lifecycle.extend(self.actor(user), name, by=EXTEND_BY)
        except ShipyardError as exc:
            self._explain(client, body, exc)
            return
        self._post(
            client, channel=user, text=f"{env.name} now expires {render.when(env.expires_at)}"
        )
        self.publish_home(client, user)

    def run_destroy(
        self, body: dict[str, Any], client: WebClient, respond: Callable[..., Any]
    ) -> None:
        name = body["actions"][0]["value"]
        try:
            op_id = self.rt.lifecycle.destroy(self.actor(body["user"]["id"]), name)
        except ShipyardError as exc:
            respond(text=exc.one_line(), response_type="ephemeral", replace_original=False)
            return
        respond(delete_original=True)
        channel = body.get("channel", {}).get("id") or body["user"]["id"]
        self._report(client, respond, channel, f"destroy {name}", Outcome(text="", operation=op_id))

    def _destroy_confirmation(self, name: str) -> list[dict[str, Any]]:
        with self.rt.database.read() as conn:
            env = rec.find_environment(conn, name)
        if env is None:
            return [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"There is no environment '{name}'."},
                }
            ]
        return views.destroy_confirmation(env)

    # --- App Home -------------------------------------------------------------------------------

    def publish_home(self, client: WebClient, user: str) -> None:
        person = self.actor(user).person
        with self.rt.database.read() as conn:
            matrix = rec.matrix(conn)
            mine = rec.list_environments(conn, owner=person)
            waiting = [
                a
                for a in rec.list_approvals(conn)
                if person in self.rt.catalog.members(a.approvers)
                and person != a.requested_by
                and person not in {d.person for d in a.decisions}
            ]
        try:
            client.views_publish(
                user_id=user, view=views.home(self.rt.catalog, matrix, mine, waiting)
            )
        except SlackApiError as exc:
            log.warning("views.publish failed: %s", exc.response.get("error"))

    # --- helpers --------------------------------------------------------------------------------

    def _explain(self, client: WebClient, body: dict[str, Any], exc: ShipyardError) -> None:
        """A refused click: an ephemeral explanation to the clicker, nothing else changes."""
        channel = (body.get("channel") or {}).get("id")
        user = body["user"]["id"]
        if channel:
            try:
                client.chat_postEphemeral(channel=channel, user=user, text=exc.one_line())
                return
            except SlackApiError:
                pass
        self._post(client, channel=user, text=exc.one_line())

    def _post(self, client: WebClient, **arguments: Any) -> tuple[str, str] | None:
        try:
            response = client.chat_postMessage(**arguments)
        except SlackApiError as exc:
            log.warning("chat.postMessage failed: %s", exc.response.get("error"))
            return None
        return str(response["channel"]), str(response["ts"])

    def _open(self, client: WebClient, trigger_id: str, view: dict[str, Any]) -> None:
        try:
            client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            log.warning("views.open failed: %s", exc.response.get("error"))
