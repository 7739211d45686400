"""Table tests for the one command grammar (CLI and Slack) and for --set KEY=VALUE."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from bot.grammar import as_dict
from bot.table import parse, parse_text
from environments.errors import InvalidInput
from environments.parameters import parse_assignments


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "env create pr-1 --type test --release 1.0.0 --ttl 8h --set A=1 --set B=2",
            {
                "group": "env",
                "verb": "create",
                "name": "pr-1",
                "env_type": "test",
                "release": "1.0.0",
                "ttl": "8h",
                "overrides": ["A=1", "B=2"],
                "no_wait": False,
                "person": None,
            },
        ),
        (
            "env create pr-1 --type test --release 1.0.0 --no-wait",
            {"ttl": None, "overrides": [], "no_wait": True},
        ),
        (
            "env promote staging --release 1.0.0",
            {"verb": "promote", "target": "staging", "release": "1.0.0", "source": None},
        ),
        ("env promote staging --from test-pr-1", {"source": "test-pr-1", "release": None}),
        ("env approve 12 --comment ok", {"verb": "approve", "ref": "12", "comment": "ok"}),
        ("env approve 12", {"comment": ""}),
        ("env reject 3 --reason 'too slow'", {"verb": "reject", "ref": "3", "reason": "too slow"}),
        ("env extend pr-1", {"verb": "extend", "name": "pr-1", "by": "4h"}),
        ("env destroy pr-1 --force", {"verb": "destroy", "name": "pr-1", "force": True}),
        ("env history pr-1 --limit 5", {"verb": "history", "limit": 5}),
        (
            "release add 1.0.0 --artifact x",
            {
                "group": "release",
                "verb": "add",
                "version": "1.0.0",
                "artifact": "x",
                "build_id": "",
                "commit": "",
            },
        ),
        ("--as alice env list --json", {"verb": "list", "person": "alice", "json": True}),
        ("env list --as alice --json", {"verb": "list", "person": "alice", "json": True}),
        ("env list", {"person": None, "json": False, "mine": False}),
        ("--config a.yaml env show pr-1", {"config": "a.yaml", "name": "pr-1"}),
        ("env show pr-1 --config a.yaml", {"config": "a.yaml"}),
        ("config check", {"group": "config", "verb": "check"}),
    ],
)
def test_valid_command_lines_parse(command: str, expected: dict[str, Any]) -> None:
    parsed = as_dict(parse(shlex.split(command)))
    assert {key: parsed.get(key, "<missing>") for key in expected} == expected


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("", "the following arguments are required: COMMAND"),
        ("env frob", "invalid choice: 'frob'"),
        ("env create pr-1 --type test", "the following arguments are required: --release"),
        ("env create --type test --release 1.0.0", "the following arguments are required: name"),
        ("env list --bogus", "unrecognized arguments: --bogus"),
        ("env reject 3", "the following arguments are required: --reason"),
        ("env history pr-1 --limit many", "invalid int value: 'many'"),
        ("release add 1.0.0", "the following arguments are required: --artifact"),
    ],
)
def test_invalid_command_lines_say_what_and_show_usage(command: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse(shlex.split(command))
    assert refused.value.reason.startswith("I couldn't parse that: ")
    assert problem in refused.value.reason
    assert refused.value.hint.startswith("usage: shipyard")


def test_unknown_option_shows_the_usage_of_the_verb() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse(["env", "list", "--bogus"])
    assert refused.value.hint.startswith("usage: shipyard env list")


def test_usage_hint_has_no_runs_of_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps the usage to the terminal's width
    with pytest.raises(InvalidInput) as refused:
        parse(["env", "create", "pr-1", "--type", "test"])
    assert "  " not in refused.value.hint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "create pr-1 --type test --release 1.0.0",
            {
                "group": "env",
                "verb": "create",
                "name": "pr-1",
                "env_type": "test",
                "release": "1.0.0",
                "person": None,
            },
        ),
        ('reject 3 --reason "too slow"', {"verb": "reject", "reason": "too slow"}),
        ("list", {"verb": "list", "json": False}),
        ("loadtest pr-1 --users 5", {"group": "env", "verb": "loadtest", "users": 5}),
        ("loadtest history", {"group": "loadtest", "verb": "history"}),
        ("loadtest compare 1 2", {"group": "loadtest", "verb": "compare", "first": 1}),
        ("params show pr-1", {"group": "params", "verb": "show", "name": "pr-1"}),
    ],
)
def test_slack_text_parses_as_env_commands(text: str, expected: dict[str, Any]) -> None:
    parsed = as_dict(parse_text(text))
    assert {key: parsed.get(key, "<missing>") for key in expected} == expected


@pytest.mark.parametrize(
    "text",
    [
        "list --as alice",
        "list --as=alice",
        "create pr-1 --as alice --type test --release 1.0.0",
        "list --a alice",
    ],
)
def test_slack_text_refuses_acting_as_someone_else(text: str) -> None:
    try:
        parsed = parse_text(text)
    except InvalidInput as refused:
        assert refused.reason == "--as is not available in chat"
        assert "yourself" in refused.hint
    else:
        pytest.fail(f"chat accepted {text!r} as person={parsed.person!r}")


def test_slack_text_with_an_unbalanced_quote_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_text('reject 3 --reason "too slow')
    assert refused.value.reason.startswith("I couldn't parse that: ")
    assert "quotation" in refused.value.reason
    assert "quotes" in refused.value.hint


def test_slack_usage_names_the_slash_command_once() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_text("create pr-1 --type test")
    assert refused.value.hint.startswith("usage: /env create")


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], {}),
        (["A=1"], {"A": "1"}),
        (["A=1", "B=2"], {"A": "1", "B": "2"}),
        (["A="], {"A": ""}),
        (["URL=a=b"], {"URL": "a=b"}),
        (["_X=y"], {"_X": "y"}),
        (["GAME_MOTD=hello world"], {"GAME_MOTD": "hello world"}),
        (["A=1", "A=2"], {"A": "2"}),
    ],
)
def test_parse_assignments(items: list[str], expected: dict[str, str]) -> None:
    assert parse_assignments(items) == expected


@pytest.mark.parametrize(
    "item",
    [
        "A",
        "=1",
        "",
        "1A=x",
        "A-B=1",
        "A B=1",
        "A.B=1",
        "K" * 129 + "=1",
        "A\n=1",
    ],
)
def test_parse_assignments_refuses_with_an_example(item: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_assignments(["OK=1", item])
    assert refused.value.reason == f"'{item}' is not a parameter assignment"
    assert "KEY=VALUE" in refused.value.hint
