"""The real Bolt app over HTTP: signed requests in, a fake Slack Web API out, the record between."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot import views
from bot.runtime import Runtime
from environments.model import ApprovalState, EnvironmentState
from environments.policy import Actor
from environments.registry import chat as chat_record
from environments.registry import operations as ops
from environments.registry import record as rec
from tests.conftest import EXAMPLES, ROOT, MovableClock, destroy_everything, person
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack
from tests.slackbot import CONFIG, SIGNING_SECRET, Bot, running_bot


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.grant_manifest_scopes(ROOT / "manifest.yml")
        fake.usergroups["S0RELMGR"] = ["U0DAVE", "U0ERIN"]
        yield fake


@pytest.fixture
def bot(home: Path, tmp_path: Path, clock: MovableClock, slack: FakeSlack) -> Iterator[Bot]:
    made: list[Runtime] = []

    def factory(directory: Any) -> Runtime:
        rt = Runtime.open(
            str(CONFIG),
            database_url=f"sqlite:///{tmp_path / 'bot.db'}",
            clock=clock,
            directory=directory,
        )
        for version in ("1.0.0", "1.1.0"):
            rt.lifecycle.add_release(
                person("ci"), version, str(EXAMPLES / f"game/releases/{version}")
            )
        made.append(rt)
        return rt

    with running_bot(factory, slack) as running:
        yield running
    for rt in made:
        destroy_everything(rt)
        rt.close()


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (AssertionError, LookupError, AttributeError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def env_state(bot: Bot, name: str) -> Any:
    with bot.runtime.database.read() as conn:
        return rec.find_environment(conn, name)


def approval_message(slack: FakeSlack, channel: str = "C0RELEASES") -> dict[str, Any]:
    (call,) = (
        slack.wait_for("chat.postMessage")[:1]
        if False
        else [c for c in slack.calls("chat.postMessage") if c.params.get("channel") == channel][:1]
    )
    return call.params


def texts(slack: FakeSlack, method: str) -> str:
    return json.dumps([c.params for c in slack.calls(method)])


def ready_test_env(bot: Bot, name: str = "pr-1") -> None:
    assert bot.command("alice", f"create {name} --type test --release 1.0.0").status == 200
    eventually(lambda: env_state(bot, name).state is EnvironmentState.READY)


def test_create_from_slack_acks_fast_then_reports_progress_in_one_message(
    bot: Bot, slack: FakeSlack
) -> None:
    answer = bot.command("alice", "create pr-1 --type test --release 1.0.0")
    assert answer.status == 200 and answer.seconds < 1.0
    eventually(lambda: env_state(bot, "pr-1").state is EnvironmentState.READY)

    (posted,) = [c for c in slack.calls("chat.postMessage") if "thread_ts" not in c.params]
    assert posted.params["channel"] == "C0DEPLOYS" and "create pr-1" in posted.params["text"]
    thread_ts = eventually(
        lambda: [c for c in slack.calls("chat.postMessage") if c.params.get("thread_ts")]
    )
    assert "is ready with 1.0.0" in thread_ts[0].params["text"]
    sent = json.dumps([c.params for c in slack.calls()])
    assert "127.0.0.1" not in sent and "port " not in sent, "no server addresses in Slack"
    assert str(bot.runtime.home) not in sent, "no server paths in Slack"
    final = slack.messages("C0DEPLOYS")[0]
    assert "✅" in json.dumps(final["blocks"], ensure_ascii=False)
    assert len(slack.calls("chat.update")) >= 3, "progress updates the one message"
    with bot.runtime.database.read() as conn:
        assert rec.get_environment(conn, "pr-1").owner == "alice", "Slack ids map to people"


def test_promotion_approved_in_slack_by_the_right_people(bot: Bot, slack: FakeSlack) -> None:
    ready_test_env(bot)
    assert bot.command("carol", "promote staging").status == 200
    request = eventually(
        lambda: [c for c in slack.calls("chat.postMessage") if c.params["channel"] == "C0RELEASES"]
    )[0]
    blocks = json.dumps(request.params["blocks"])
    assert "1.0.0" in blocks and "pr-1" in blocks and "<@U0CAROL>" in blocks
    assert "New environment; parameters" in blocks
    approve = [e for b in request.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [e["action_id"] for e in approve] == [views.APPROVE, views.REJECT]
    ts = eventually(lambda: slack.messages("C0RELEASES"))[0]["ts"]
    approval_id = approve[0]["value"]

    # The requester's own click and an outsider's click are refused and change nothing.
    bot.click("carol", views.APPROVE, approval_id, message=("C0RELEASES", ts))
    refused = eventually(lambda: slack.calls("chat.postEphemeral"))
    assert refused[0].params["user"] == "U0CAROL"
    assert "cannot approve your own request" in refused[0].params["text"]
    bot.click("bob", views.APPROVE, approval_id, message=("C0RELEASES", ts))
    refused = eventually(lambda: slack.calls("chat.postEphemeral")[1:])
    assert "bob is not an approver" in refused[0].params["text"]
    with bot.runtime.database.read() as conn:
        assert rec.get_approval(conn, int(approval_id)).decisions == ()

    # dave is a release manager through the Slack user group S0RELMGR.
    bot.click("dave", views.APPROVE, approval_id, message=("C0RELEASES", ts))
    eventually(
        lambda: (
            (env_state(bot, "staging") or None)
            and env_state(bot, "staging").state is EnvironmentState.READY
        )
    )
    eventually(lambda: "approved" in slack.message("C0RELEASES", ts)["text"])
    updated = slack.message("C0RELEASES", ts)
    assert "approved" in updated["text"] and "<@U0DAVE>" in json.dumps(updated["blocks"])
    assert not [b for b in updated["blocks"] if b["type"] == "actions"], "buttons go once decided"
    assert slack.calls("usergroups.users.list")[0].params["usergroup"] == "S0RELMGR"


def test_production_needs_two_approvers_and_a_double_click_counts_once(
    bot: Bot, slack: FakeSlack
) -> None:
    ready_test_env(bot)
    bot.command("carol", "promote staging")
    eventually(lambda: slack.messages("C0RELEASES"))
    bot.command("dave", "approve staging")
    eventually(
        lambda: (
            env_state(bot, "staging") and env_state(bot, "staging").state is EnvironmentState.READY
        )
    )

    bot.command("carol", "promote production")
    message = eventually(
        lambda: [m for m in slack.messages("C0DEPLOYS") if "production" in m.get("text", "")]
    )[0]
    approval_id = next(
        e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
    )
    where = ("C0DEPLOYS", message["ts"])
    bot.click("dave", views.APPROVE, approval_id, message=where)
    bot.click("dave", views.APPROVE, approval_id, message=where)
    eventually(
        lambda: any(
            "already decided" in c.params["text"] for c in slack.calls("chat.postEphemeral")
        )
    )
    with bot.runtime.database.read() as conn:
        approval = rec.get_approval(conn, int(approval_id))
    assert approval.approvals == ("dave",) and approval.state is ApprovalState.PENDING
    eventually(lambda: "1/2" in json.dumps(slack.message(*where)["blocks"]))

    bot.click("erin", views.APPROVE, approval_id, message=where)
    eventually(
        lambda: (
            env_state(bot, "production")
            and env_state(bot, "production").state is EnvironmentState.READY
        )
    )
    with bot.runtime.database.read() as conn:
        (row,) = rec.matrix(conn, env_type="production")
    assert set(row.approved_by) == {"dave", "erin"}


def test_reject_asks_for_a_reason_and_ends_as_not_promoted(bot: Bot, slack: FakeSlack) -> None:
    ready_test_env(bot)
    bot.command("carol", "promote staging")
    message = eventually(lambda: slack.messages("C0RELEASES"))[0]
    approval_id = next(
        e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
    )
    bot.click("erin", views.REJECT, approval_id, message=("C0RELEASES", message["ts"]))
    (opened,) = eventually(lambda: slack.calls("views.open"))
    view = opened.params["view"]
    assert view["callback_id"] == views.REJECT_VIEW

    empty = bot.submit(
        "erin", view, {"reason": {"value": {"type": "plain_text_input", "value": " "}}}
    )
    assert (
        empty.json()["response_action"] == "errors"
        and "needs a reason" in empty.json()["errors"]["reason"]
    )
    done = bot.submit(
        "erin", view, {"reason": {"value": {"type": "plain_text_input", "value": "p95 regressed"}}}
    )
    assert done.status == 200
    eventually(lambda: "not promoted" in slack.message("C0RELEASES", message["ts"])["text"])
    assert env_state(bot, "staging") is None


def test_an_unanswered_request_expires_as_not_promoted(
    bot: Bot, slack: FakeSlack, clock: MovableClock
) -> None:
    ready_test_env(bot)
    bot.command("carol", "promote staging")
    message = eventually(lambda: slack.messages("C0RELEASES"))[0]
    clock.advance(timedelta(hours=25))
    bot.runtime.lifecycle.expire()
    eventually(
        lambda: "expired — not promoted" in slack.message("C0RELEASES", message["ts"])["text"]
    )
    updated = slack.message("C0RELEASES", message["ts"])
    assert not [b for b in updated["blocks"] if b["type"] == "actions"]


def test_bad_signature_and_stale_timestamp_get_401_and_touch_nothing(
    bot: Bot, slack: FakeSlack
) -> None:
    body = bot.command_body("alice", "create pr-9 --type test --release 1.0.0")
    assert bot.post(body, secret="not-the-secret").status == 401
    assert bot.post(body, timestamp=int(time.time()) - 6 * 60).status == 401
    time.sleep(0.3)
    assert env_state(bot, "pr-9") is None
    assert slack.calls("chat.postMessage") == [] and slack.calls("response_url") == []


def test_a_retried_delivery_has_exactly_one_effect(bot: Bot, slack: FakeSlack) -> None:
    body = bot.command_body("alice", "create pr-2 --type test --release 1.0.0")
    assert bot.post(body).status == 200
    assert (
        bot.post(
            body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        ).status
        == 200
    )
    eventually(lambda: env_state(bot, "pr-2").state is EnvironmentState.READY)
    time.sleep(0.5)
    with bot.runtime.database.read() as conn:
        assert len(rec.history(conn, "pr-2")) == 1
    assert len([c for c in slack.calls("chat.postMessage") if "thread_ts" not in c.params]) == 1
    assert slack.calls("response_url") == [], "the retry was not handled a second time"


def test_a_delivery_the_record_cannot_take_is_refused_so_slack_retries_it(
    bot: Bot, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = bot.command_body("alice", "create pr-3 --type test --release 1.0.0")

    def unavailable(*_: object, **__: object) -> set[str]:
        raise sa.exc.OperationalError("insert", {}, Exception("database is locked"))

    # Not recorded, not acknowledged: a 503, so Slack sends it again (nothing acted).
    monkeypatch.setattr(chat_record, "record_deliveries", unavailable)
    answer = bot.post(body)
    assert answer.status == 503 and "Traceback" not in answer.body
    monkeypatch.undo()
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
    assert bot.post(body, headers=retry).status == 200
    eventually(lambda: env_state(bot, "pr-3").state is EnvironmentState.READY)
    with bot.runtime.database.read() as conn:
        assert len(rec.history(conn, "pr-3")) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("frobnicate", "I couldn't parse that: argument VERB: invalid choice"),
        ("create pr-1 --type test", "the following arguments are required: --release"),
        ("create pr-1 --type test --release 1.0.0 --as dave", "--as is not available in chat"),
        ("help", "/env create"),
    ],
)
def test_unknown_or_malformed_commands_get_the_usage_not_a_trace(
    bot: Bot, text: str, expected: str
) -> None:
    answer = bot.command("alice", text)
    assert answer.status == 200
    body = answer.body  # Bolt answers a text-only ack as text/plain, which Slack shows privately
    assert expected in body and "Traceback" not in body
    if text != "help":
        assert "usage: /env" in body or "yourself" in body


def test_refusals_from_the_core_reach_the_person_privately(bot: Bot, slack: FakeSlack) -> None:
    bot.command("mallory", "create pr-3 --type test --release 1.0.0")
    (reply,) = eventually(lambda: slack.calls("response_url"))
    assert reply.params["response_type"] == "ephemeral"
    assert "U0MALLORY may not create test environments" in reply.params["text"]
    assert env_state(bot, "pr-3") is None


def test_app_home_shows_the_matrix_my_environments_and_waiting_approvals(
    bot: Bot, slack: FakeSlack
) -> None:
    ready_test_env(bot)
    bot.command("carol", "promote staging")
    eventually(lambda: slack.messages("C0RELEASES"))
    bot.event({"type": "app_home_opened", "user": "U0DAVE", "tab": "home"})
    view = eventually(lambda: slack.home_view("U0DAVE"))
    shown = json.dumps(view)
    assert "pr-1" in shown and "1.0.0" in shown and views.APPROVE in shown

    bot.event({"type": "app_home_opened", "user": "U0ALICE", "tab": "home"}, event_id="Ev2")
    mine = json.dumps(eventually(lambda: slack.home_view("U0ALICE")))
    assert views.EXTEND in mine and "pr-1" in mine


def test_create_without_arguments_opens_a_form_that_checks_its_fields(
    bot: Bot, slack: FakeSlack
) -> None:
    assert bot.command("alice", "create").status == 200
    (opened,) = eventually(lambda: slack.calls("views.open"))
    view = opened.params["view"]
    assert view["callback_id"] == views.CREATE_VIEW

    def values(name: str, ttl: str) -> dict[str, Any]:
        return {
            "name": {"value": {"type": "plain_text_input", "value": name}},
            "type": {"value": {"type": "static_select", "selected_option": {"value": "test"}}},
            "release": {"value": {"type": "static_select", "selected_option": {"value": "1.0.0"}}},
            "ttl": {"value": {"type": "plain_text_input", "value": ttl}},
            "set": {"value": {"type": "plain_text_input", "value": "GAME_MOTD=from the form"}},
        }

    bad = bot.submit("alice", view, values("Bad_Name", "9d")).json()
    assert bad["response_action"] == "errors"
    assert "not a valid environment name" in bad["errors"]["name"]
    assert env_state(bot, "bad-name") is None
    too_long = bot.submit("alice", view, values("pr-4", "9d")).json()
    assert "longer than test allows" in too_long["errors"]["ttl"]
    assert bot.submit("alice", view, values("pr-4", "2h")).status == 200
    ready = eventually(
        lambda: env_state(bot, "pr-4").state is EnvironmentState.READY and env_state(bot, "pr-4")
    )
    assert ready.overrides == {"GAME_MOTD": "from the form"}


def test_destroy_asks_first_and_production_is_refused_in_chat(bot: Bot, slack: FakeSlack) -> None:
    ready_test_env(bot, "pr-5")
    answer = bot.command("alice", "destroy pr-5").json()
    button = answer["blocks"][1]["elements"][0]
    assert button["action_id"] == views.DESTROY and button["confirm"]
    assert env_state(bot, "pr-5").state is EnvironmentState.READY
    bot.click("alice", views.DESTROY, "pr-5")
    eventually(lambda: env_state(bot, "pr-5") is None)
    # The destroy started in Slack ends in Slack: its message done, "destroyed" in its thread.
    (message,) = eventually(
        lambda: [
            m
            for m in slack.messages("C0DEPLOYS")
            if m["text"].startswith("destroy pr-5")
            and "✅" in json.dumps(m["blocks"], ensure_ascii=False)
        ]
    )
    replies = eventually(
        lambda: [m for m in slack.messages("C0DEPLOYS") if m.get("thread_ts") == message["ts"]]
    )
    assert [r["text"] for r in replies] == ["🗑️ *pr-5* destroyed"]


def test_rate_limited_slack_is_retried_after_retry_after(bot: Bot, slack: FakeSlack) -> None:
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    bot.command("alice", "create pr-6 --type test --release 1.0.0")
    eventually(lambda: env_state(bot, "pr-6").state is EnvironmentState.READY)
    posts = eventually(
        lambda: [
            c
            for c in slack.calls("chat.postMessage")
            if "thread_ts" not in c.params and not c.limited
        ]
    )
    limited = [c for c in slack.calls("chat.postMessage") if c.limited]
    assert limited and posts[0].at - limited[0].at >= 1.0


def test_no_secret_reaches_slack(bot: Bot, slack: FakeSlack) -> None:
    ready_test_env(bot, "pr-7")
    sent = json.dumps([c.params for c in slack.calls()])
    assert SIGNING_SECRET not in sent and DEFAULT_TOKEN not in sent


def test_the_owner_is_warned_an_hour_ahead_and_can_extend_from_the_message(
    bot: Bot, slack: FakeSlack, clock: MovableClock
) -> None:
    ready_test_env(bot, "pr-8")
    before = env_state(bot, "pr-8").expires_at
    clock.advance(timedelta(hours=7, minutes=30))
    assert bot.runtime.lifecycle.expire().warned == ("pr-8",)
    (warning,) = eventually(
        lambda: [c for c in slack.calls("chat.postMessage") if c.params["channel"] == "DU0ALICE"]
    )
    button = warning.params["blocks"][1]["elements"][0]
    assert button["action_id"] == views.EXTEND and button["text"]["text"] == "Extend 4h"

    bot.click("alice", views.EXTEND, "pr-8", message=("DU0ALICE", "1.1"))
    eventually(lambda: env_state(bot, "pr-8").expires_at == before + timedelta(hours=4))
    told = eventually(
        lambda: [
            c for c in slack.calls("chat.postMessage") if "now expires" in c.params.get("text", "")
        ]
    )
    assert told[0].params["channel"] == "U0ALICE"


def test_a_failure_says_why_and_what_to_do_in_the_thread(bot: Bot, slack: FakeSlack) -> None:
    ready_test_env(bot, "pr-9")
    bot.runtime.lifecycle.add_release(
        person("ci"), "9.9.9-broken", str(Path(__file__).parent / "apps/broken")
    )
    bot.command("alice", "deploy pr-9 --release 9.9.9-broken")
    failed = eventually(
        lambda: [c for c in slack.calls("chat.postMessage") if "failed" in c.params.get("text", "")]
    )
    assert failed[0].params.get("thread_ts"), "the failure is a reply in the operation's thread"
    shown = json.dumps(failed[0].params["blocks"])
    assert "GAME_DATABASE is not reachable" in shown and "What to do" in shown
    assert env_state(bot, "pr-9").release == "1.0.0", "the old release keeps serving"


def test_parameters_from_slack_show_references_never_secret_values(
    bot: Bot, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "tr0ub4dor-and-3-slack"
    monkeypatch.setenv("GAME_DB_SECRET", secret)
    ready_test_env(bot, "pr-10")
    bot.command("alice", "params set pr-10 GAME_DB_PASSWORD=@env(GAME_DB_SECRET) GAME_MOTD=hey")
    eventually(lambda: env_state(bot, "pr-10").overrides.get("GAME_MOTD") == "hey")
    bot.command("alice", "params show pr-10")
    shown = eventually(
        lambda: [
            c for c in slack.calls("response_url") if "GAME_DB_PASSWORD" in c.params.get("text", "")
        ]
    )
    assert "@env(GAME_DB_SECRET)" in shown[0].params["text"]
    assert "usage: /env params show" in bot.command("alice", "params show").body
    assert secret not in json.dumps([c.params for c in slack.calls()])


def test_a_secret_the_app_prints_when_it_crashes_is_masked_in_slack(
    bot: Bot, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "hunter2-in-the-thread"
    monkeypatch.setenv("GAME_DB_SECRET", secret)
    ready_test_env(bot, "pr-11")
    bot.command("alice", "params set pr-11 GAME_DB_PASSWORD=@env(GAME_DB_SECRET)")
    eventually(lambda: env_state(bot, "pr-11").overrides.get("GAME_DB_PASSWORD"))
    bot.runtime.lifecycle.add_release(
        person("ci"), "9.9.9-leaky", str(Path(__file__).parent / "apps/leaky_crash")
    )
    bot.command("alice", "deploy pr-11 --release 9.9.9-leaky")
    failed = eventually(
        lambda: [c for c in slack.calls("chat.postMessage") if "refused" in json.dumps(c.params)]
    )
    assert "•••" in json.dumps(failed[0].params, ensure_ascii=False)
    assert secret not in json.dumps([c.params for c in slack.calls()])
    with bot.runtime.database.read() as conn:
        assert secret not in json.dumps(ops.audit_log(conn, limit=500), default=str)


def test_a_retry_reaching_another_replica_answers_once(
    home: Path, tmp_path: Path, clock: MovableClock, slack: FakeSlack
) -> None:
    def factory(directory: Any) -> Runtime:
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        return Runtime.open(str(CONFIG), database_url=url, clock=clock, directory=directory)

    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    with running_bot(factory, slack) as first, running_bot(factory, slack) as second:
        bodies = [first.command_body("bob", text) for text in ("list", "matrix", "list")]
        for body in bodies:
            assert first.post(body).status == 200
            assert second.post(body, headers=retry).status == 200
        eventually(lambda: len(slack.calls("response_url")) >= 3)
        time.sleep(1.0)  # time for a second answer, were there one
    answered = sorted(c.path for c in slack.calls("response_url"))
    assert answered == sorted({c.path for c in slack.calls("response_url")}), "each answered once"
    assert len(answered) == 3


@pytest.mark.parametrize(
    ("person", "text", "refusal"),
    [
        ("alice", "expire", "alice may not expire — ask one of: an admin"),
        ("alice", "loadtest production", "alice may not loadtest production environments"),
        ("alice", "schedule pause nightly", "alice may not schedule pause"),
    ],
)
def test_chat_actions_without_a_rule_of_their_own_are_checked_by_the_table(
    bot: Bot, slack: FakeSlack, person: str, text: str, refusal: str
) -> None:
    """`/env expire` and `/env loadtest production` were open to anyone in chat."""
    bot.runtime.lifecycle.create(
        Actor("dave"), "production", env_type="production", release="1.0.0"
    )
    bot.command(person, text)
    (reply,) = eventually(
        lambda: [c for c in slack.calls("response_url") if refusal in c.params.get("text", "")]
    )
    assert reply.params["response_type"] == "ephemeral"


def test_chat_help_lists_only_what_chat_accepts(bot: Bot) -> None:
    body = bot.command("alice", "help").body
    assert "/env loadtest history" in body
    assert "loadtest report" not in body and "[-h]" not in body and "--json" not in body


def test_refusals_in_chat_name_chat_commands_never_the_command_line(
    bot: Bot, slack: FakeSlack
) -> None:
    said = {
        "show nowhere": "see the environments with `/env list`",
        "approve 7": "see waiting requests with `/env approvals`",
        "loadtest compare 998 999": "see the runs with `/env loadtest history`",
        "create pr-5 --type test --release 7.0.0": "add it (from the command line",
    }
    for text, expected in said.items():
        bot.command("alice", text)
        eventually(
            lambda expected=expected: [
                c for c in slack.calls("response_url") if expected in c.params.get("text", "")
            ]
        )
    bot.command("alice", "frobnicate")
    everything = json.dumps([c.params for c in slack.calls()])
    for syntax in ("shipyard ", "[-h]", "--json", "--no-wait", "--config"):
        assert syntax not in everything, syntax
