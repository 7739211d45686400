"""The create form, Extend and Destroy buttons: environments from Slack's clicks."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import create_form, render, views
from bot.command import Outcome, Surface
from bot.slack_home import HomeFlow
from bot.speech import for_chat
from bot.table import parser
from environments import parameters
from environments.errors import NotFound, PolicyRefused, ShipyardError
from environments.model import check_environment_name, parse_duration
from environments.registry import record as rec

log = logging.getLogger(__name__)
EXTEND_BY = timedelta(hours=4)


class EnvironmentFlow(HomeFlow):
    """The create form, Extend and Destroy buttons: environments from Slack's clicks."""

    @staticmethod
    def _create_arguments() -> list[argparse.Action]:
        """`env create`'s arguments as chat's grammar declares them in the command table."""
        return parser(Surface.SLACK).verbs[("env", "create")]._actions

    def _create_modal(self, channel: str, chosen: str | None = None) -> dict[str, Any]:
        with self.rt.database.read() as conn:
            releases = rec.list_releases(conn)
        env_type = self.rt.catalog.types.get(chosen) if chosen else None
        defaults = create_form.known_defaults(env_type) if env_type is not None else {}
        modal = views.create_modal(
            self.rt.catalog, releases, self._create_arguments(), chosen=chosen, defaults=defaults
        )
        modal["private_metadata"] = channel
        return modal

    def run_type_chosen(self, body: dict[str, Any], client: WebClient) -> None:
        """A type was chosen in the create form: the form grows that type's parameters."""
        view = body["view"]
        chosen = (body["actions"][0].get("selected_option") or {}).get("value")
        modal = self._create_modal(view.get("private_metadata", ""), chosen)
        try:
            client.views_update(view_id=view["id"], hash=view.get("hash"), view=modal)
        except SlackApiError as exc:
            # hash_conflict: the person changed the form meanwhile; their next choice updates it.
            log.warning("views.update failed: %s", exc.response.get("error"))

    def ack_create_form(
        self, ack: Callable[..., None], body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        values = view["state"]["values"]
        # Read back through the same declared arguments the form was built from.
        arguments = {a.dest: a for a in create_form.form_arguments(self._create_arguments())}
        given = create_form.read_arguments(list(arguments.values()), values)
        name, type_name = given["name"] or "", given["env_type"] or ""

        def block(dest: str) -> str:
            return create_form.block_id(arguments[dest])

        errors: dict[str, str] = {}
        try:
            check_environment_name(name)
        except ShipyardError as exc:
            errors[block("name")] = for_chat(exc)[:150]
        ttl = None
        try:
            ttl = parse_duration(given["ttl"]) if given["ttl"] else None
        except ShipyardError as exc:
            errors[block("ttl")] = for_chat(exc)[:150]
        overrides: dict[str, str] = {}
        try:
            overrides = parameters.parse_assignments(given["overrides"])
        except ShipyardError as exc:
            errors[block("overrides")] = for_chat(exc)[:150]
        env_type = self.rt.catalog.types.get(type_name)
        if env_type is not None and env_type.inputs:
            own, wrong = create_form.read_parameters(
                env_type, values, create_form.known_defaults(env_type)
            )
            errors.update(wrong)
            overrides.update(own)
        if errors:
            self._created.put(view["id"], None)
            ack(response_action="errors", errors=errors)
            return
        try:
            requested = self.rt.lifecycle.create(
                self.actor(body["user"]["id"]),
                name,
                env_type=type_name,
                release=given["release"] or "",
                ttl=ttl,
                overrides=overrides,
            )
        except ShipyardError as exc:
            where = (
                "ttl"
                if "TTL" in exc.reason or "expire" in exc.reason
                else (
                    "release"
                    if "release" in exc.reason
                    else "env_type"
                    if isinstance(exc, NotFound | PolicyRefused)
                    or exc.reason.startswith(f"type {type_name}:")
                    else "name"
                )
            )
            self._created.put(view["id"], None)
            ack(response_action="errors", errors={block(where): for_chat(exc)[:150]})
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
        self._report(lambda **_: None, body, channel, outcome)

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
            respond(text=for_chat(exc), response_type="ephemeral", replace_original=False)
            return
        respond(delete_original=True)
        channel = body.get("channel", {}).get("id") or body["user"]["id"]
        self._report(respond, body, channel, Outcome(text="", operation=op_id))

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
