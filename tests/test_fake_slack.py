"""The fake Slack Web API answers the real slack_sdk WebClient the way Slack does."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.webhook import WebhookClient

from tests.fakes.slack import FakeSlack
from tests.reference import REFERENCE

PAYLOADS = REFERENCE / "slack/payloads"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*qa-1* is being created"}}]


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test-token", base_url=fake.base_url)


def test_post_then_update_changes_the_stored_message(fake: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="C1", text="creating qa-1", blocks=BLOCKS)
    assert posted["ok"] and posted["channel"] == "C1"
    assert posted["message"]["blocks"] == BLOCKS
    ts = posted["ts"]
    assert fake.message("C1", ts)["text"] == "creating qa-1"

    ready = [{"type": "section", "text": {"type": "mrkdwn", "text": "*qa-1* is ready"}}]
    updated = client.chat_update(channel="C1", ts=ts, text="qa-1 ready", blocks=ready)
    assert updated["ts"] == ts and updated["text"] == "qa-1 ready"
    assert fake.message("C1", ts)["text"] == "qa-1 ready"
    assert fake.message("C1", ts)["blocks"] == ready

    call = fake.calls("chat.postMessage")[0]
    assert call.params["blocks"] == BLOCKS
    assert call.headers["authorization"] == "Bearer xoxb-test-token"
    second = client.chat_postMessage(channel="C1", text="again", thread_ts=ts)
    assert float(second["ts"]) > float(ts)
    assert second["message"]["thread_ts"] == ts


def test_updating_an_unknown_message_is_message_not_found(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        client.chat_update(channel="C1", ts="1.000001", text="nope")
    assert raised.value.response["error"] == "message_not_found"


def test_blocks_sent_as_a_json_string_in_a_form_are_recorded_decoded(
    fake: FakeSlack, client: WebClient
) -> None:
    form = {"channel": "C1", "text": "hi", "blocks": json.dumps(BLOCKS)}
    posted = client.api_call("chat.postMessage", data=form)
    assert fake.calls("chat.postMessage")[0].params["blocks"] == BLOCKS
    assert fake.message("C1", posted["ts"])["blocks"] == BLOCKS


def test_a_wrong_token_is_invalid_auth(fake: FakeSlack) -> None:
    wrong = WebClient(token="xoxb-wrong", base_url=fake.base_url)
    with pytest.raises(SlackApiError) as raised:
        wrong.auth_test()
    assert raised.value.response["error"] == "invalid_auth"
    assert [c.method for c in fake.calls()] == ["auth.test"]


def test_auth_users_and_conversations(client: WebClient) -> None:
    assert client.auth_test()["user_id"] == "UBOT"
    assert client.users_info(user="U7")["user"]["id"] == "U7"
    assert client.conversations_open(users="U7")["channel"]["id"] == "DU7"


def test_usergroup_members(fake: FakeSlack, client: WebClient) -> None:
    fake.usergroups["S123"] = ["U1", "U2"]
    assert client.usergroups_users_list(usergroup="S123")["users"] == ["U1", "U2"]
    with pytest.raises(SlackApiError) as raised:
        client.usergroups_users_list(usergroup="S999")
    assert raised.value.response["error"] == "no_such_subteam"


def test_views_open_then_update(fake: FakeSlack, client: WebClient) -> None:
    modal = {
        "type": "modal",
        "callback_id": "create_env",
        "title": {"type": "plain_text", "text": "New environment"},
        "blocks": BLOCKS,
        "private_metadata": "C1",
    }
    opened = client.views_open(trigger_id="111.222.valid", view=modal)
    view = opened["view"]
    assert view["id"].startswith("V")
    assert view["callback_id"] == "create_env" and view["blocks"] == BLOCKS
    assert fake.calls("views.open")[0].params["view"] == modal

    changed = client.views_update(view_id=view["id"], view={**modal, "blocks": []})
    assert changed["view"]["id"] == view["id"]
    assert fake.view(view["id"])["blocks"] == []


def test_a_rate_limit_is_retried_after_retry_after(fake: FakeSlack, client: WebClient) -> None:
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    fake.rate_limit("chat.postMessage", times=1, retry_after=1)

    assert client.chat_postMessage(channel="C1", text="hi")["ok"]

    first, second = fake.calls("chat.postMessage")
    assert first.limited and first.status == 429
    assert not second.limited and second.status == 200
    assert second.at - first.at >= 1


def test_a_rate_limit_without_a_handler_raises(fake: FakeSlack, client: WebClient) -> None:
    fake.rate_limit("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="hi")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7"
    assert raised.value.response["error"] == "ratelimited"
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]


def test_a_server_error_is_retried(fake: FakeSlack, client: WebClient) -> None:
    fast = FixedValueRetryIntervalCalculator(fixed_internal=0.01)
    client.retry_handlers.append(ServerErrorRetryHandler(interval_calculator=fast))
    fake.fail("users.info", status=500)

    assert client.users_info(user="U1")["ok"]
    assert [c.status for c in fake.calls("users.info")] == [500, 200]


def test_response_url_posts_are_recorded(fake: FakeSlack) -> None:
    source = PAYLOADS / "block_actions.json"
    payload = json.loads(source.read_text())
    payload["response_url"] = fake.response_url("actions")

    def reply() -> None:
        WebhookClient(payload["response_url"]).send(text="done", replace_original=True)

    threading.Thread(target=reply, daemon=True).start()
    (call,) = fake.wait_for("response_url")
    assert call.path == "/response/actions"
    assert call.params == {"text": "done", "replace_original": True}


def test_wait_for_times_out_with_what_it_saw(fake: FakeSlack, client: WebClient) -> None:
    client.auth_test()
    with pytest.raises(AssertionError, match=r"auth\.test"):
        fake.wait_for("chat.postMessage", timeout=0.1)


def test_files_upload_v2_goes_through_the_fake(fake: FakeSlack, client: WebClient) -> None:
    done = client.files_upload_v2(channel="C1", content="log line\n", filename="deploy.log")
    assert done["file"]["id"].startswith("F")
    assert fake.calls("file_upload")[0].params["content"] == b"log line\n"
