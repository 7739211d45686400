"""The Slack create form for an ADE type, through the real Bolt app over signed HTTP: the type's
parameters become the form's inputs, errors stay inside the form, the environment is deployed
through the real ARM client against the fake ARM."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import create_form
from bot.runtime import Runtime
from environments.model import EnvironmentState
from tests.conftest import EXAMPLES, MovableClock, person
from tests.fakes.arm import FakeArm
from tests.fakes.slack import FakeSlack
from tests.slackbot import USERS, Bot, running_bot
from tests.test_azure_provider import provider_for
from tests.test_slack_bot import env_state, eventually

CONFIG = Path(__file__).parent / "data" / "ade" / "shipyard.yaml"
RUNTIMES = ["dotnet", "dotnet-isolated", "java", "node", "powershell", "python"]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def fake_arm() -> Iterator[FakeArm]:
    with FakeArm(deployment_seconds=0.2, delete_seconds=0.1) as server:
        yield server


@pytest.fixture
def bot(
    home: Path, tmp_path: Path, clock: MovableClock, slack: FakeSlack, fake_arm: FakeArm
) -> Iterator[Bot]:
    made: list[Runtime] = []

    def factory(directory: Any) -> Runtime:
        rt = Runtime.open(
            str(CONFIG),
            database_url=f"sqlite:///{tmp_path / 'bot.db'}",
            clock=clock,
            directory=directory,
        )
        rt.worker.providers = {**rt.worker.providers, "azure": provider_for(rt, fake_arm)}
        rt.lifecycle.add_release(person("ci"), "1.0.0", str(EXAMPLES / "game/releases/1.0.0"))
        made.append(rt)
        return rt

    with running_bot(factory, slack) as running:
        yield running
    for rt in made:
        rt.close()


def choose_type(bot: Bot, view: dict[str, Any], env_type: str) -> Any:
    """Slack's block_actions when a person picks a type in the open form."""
    payload = {
        "type": "block_actions",
        "user": {"id": USERS["alice"], "username": "alice", "name": "alice", "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "verification_token",
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": "7.7.trigger",
        "team": {"id": "T0001", "domain": "test"},
        "view": view,
        "actions": [
            {
                "type": "static_select",
                "action_id": create_form.TYPE_ACTION,
                "block_id": "type",
                "selected_option": {
                    "text": {"type": "plain_text", "text": env_type},
                    "value": env_type,
                },
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return bot.post(urllib.parse.urlencode({"payload": json.dumps(payload)}))


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    (found,) = [b for b in view["blocks"] if b.get("block_id") == block_id]
    return found


def submission(name: str, fn_name: str | None, runtime: str, https: bool) -> dict[str, Any]:
    checked = [{"text": {"type": "plain_text", "text": "x"}, "value": "true"}] if https else []
    return {
        "name": {"value": {"type": "plain_text_input", "value": name}},
        "type": {
            create_form.TYPE_ACTION: {
                "type": "static_select",
                "selected_option": {"value": "functionapp"},
            }
        },
        "param:name": {"value": {"type": "plain_text_input", "value": fn_name}},
        "param:supportsHttpsTrafficOnly": {
            "value": {"type": "checkboxes", "selected_options": checked}
        },
        "param:runtime": {
            "value": {"type": "static_select", "selected_option": {"value": runtime}}
        },
        "release": {"value": {"type": "static_select", "selected_option": {"value": "1.0.0"}}},
        "ttl": {"value": {"type": "plain_text_input", "value": None}},
        "set": {"value": {"type": "plain_text_input", "value": None}},
    }


def test_the_function_app_form_offers_its_parameters_and_checks_them_inside_the_form(
    bot: Bot, slack: FakeSlack, fake_arm: FakeArm
) -> None:
    assert bot.command("alice", "create").status == 200
    eventually(lambda: slack.calls("views.open"))
    (opened_view,) = slack.modals()
    assert block(opened_view, "type")["dispatch_action"] is True
    assert not [b for b in opened_view["blocks"] if str(b.get("block_id", "")).startswith("param:")]

    assert choose_type(bot, opened_view, "functionapp").status == 200
    eventually(lambda: slack.calls("views.update"))
    form = slack.view(opened_view["id"])
    assert "FunctionApp 1.0.0 — Azure Function App Environment" in json.dumps(
        form["blocks"], ensure_ascii=False
    )

    runtime = block(form, "param:runtime")
    assert runtime["element"]["type"] == "static_select"
    assert [o["value"] for o in runtime["element"]["options"]] == RUNTIMES
    assert runtime["element"]["initial_option"]["value"] == "dotnet-isolated"
    assert runtime["hint"]["text"] == "The language worker runtime to load in the function app."
    https = block(form, "param:supportsHttpsTrafficOnly")
    assert https["element"]["type"] == "checkboxes" and https["optional"] is True
    assert https["element"]["initial_options"][0]["value"] == "true"  # the template's default
    name = block(form, "param:name")
    assert name["optional"] is False and name["label"]["text"] == "Name"
    assert name["hint"]["text"] == "Name of the Function App."

    missing = bot.submit("alice", form, submission("fn-1", None, "python", True)).json()
    assert missing["response_action"] == "errors"
    assert missing["errors"] == {"param:name": "Name is required"}
    no_env_name = bot.submit("alice", form, submission("", "shop", "python", True)).json()
    assert "name" in no_env_name["errors"]
    bad_choice = bot.submit("alice", form, submission("fn-1", "shop", "cobol", True)).json()
    assert "'cobol' is not allowed" in bad_choice["errors"]["param:runtime"]
    assert env_state(bot, "fn-1") is None and fake_arm.requests == []

    assert bot.submit("alice", form, submission("fn-1", "shop", "python", False)).status == 200
    ready = eventually(
        lambda: env_state(bot, "fn-1").state is EnvironmentState.READY and env_state(bot, "fn-1"),
        timeout=30,
    )
    assert ready.overrides == {
        "name": "shop",
        "runtime": "python",
        "supportsHttpsTrafficOnly": "false",
    }
    sent = fake_arm.deployment_puts()[0].body["properties"]["parameters"]
    assert sent == {
        "name": {"value": "shop"},
        "runtime": {"value": "python"},
        "supportsHttpsTrafficOnly": {"value": False},
    }


def test_help_names_each_type_with_its_summary_and_parameters(bot: Bot) -> None:
    text = bot.command("alice", "help").body  # a text-only ack comes back as text/plain
    assert "• `functionapp` — FunctionApp 1.0.0 — Azure Function App Environment" in text
    assert "`--set` name (required), supportsHttpsTrafficOnly, runtime" in text
    assert "• `sandbox` — Sandbox 1.0.0 — Empty sandbox environment" in text
