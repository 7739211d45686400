"""The command table: each surface's grammar and help list exactly the commands it accepts."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot import create_form, views
from bot.command import Command, Surface
from bot.table import BY_KEY, TABLE, chat_help, offered, parse, parse_text, parser
from environments.catalog import load_catalog
from environments.errors import InvalidInput
from environments.model import Person, Release
from tests.slackbot import CONFIG

TEMPLATES = Path(__file__).resolve().parents[1] / "pipelines" / "templates"


def _words(command: Command) -> list[str]:
    return [command.group, *([command.verb] if command.verb else [])]


def _reaches(command: Command, run: Callable[[], argparse.Namespace], prog: str) -> bool:
    """Does this input reach this command (missing arguments aside)?"""
    try:
        args = run()
    except InvalidInput as refused:
        # Missing arguments: the usage shown is the command's own.
        return "invalid choice" not in refused.reason and refused.hint.startswith(f"usage: {prog} ")
    return bool((args.group, args.verb or "") == command.key)


def _chat_accepts(command: Command) -> bool:
    """Does `/env …` know this command?"""
    words = _words(command)
    text = " ".join(words[1:] if command.group == "env" else words)
    return _reaches(command, lambda: parse_text(text), f"/env {text}")


def _cli_accepts(command: Command) -> bool:
    words = _words(command)
    return _reaches(command, lambda: parse(words), f"shipyard {' '.join(words)}")


def test_every_command_has_one_entry() -> None:
    assert len(BY_KEY) == len(TABLE)


@pytest.mark.parametrize("command", TABLE, ids=lambda c: c.name)
def test_each_surface_accepts_exactly_the_commands_offered_on_it(command: Command) -> None:
    assert _chat_accepts(command) == command.offered_on(Surface.SLACK)
    cli = command.offered_on(Surface.CLI) or command.offered_on(Surface.PIPELINE)
    assert _cli_accepts(command) == cli


def test_chat_help_lists_exactly_what_chat_accepts() -> None:
    listed = {
        line.split("`")[1].removeprefix("/env ")
        for line in chat_help().splitlines()
        if line.startswith("• ")
    }
    # `/env VERB` for env verbs, `/env GROUP VERB` for the others; the usage follows the name.
    names = {
        " ".join(word for word in usage.split() if not word.startswith(("[", "-")))
        for usage in listed
    }
    accepted = [c for c in TABLE if _chat_accepts(c)]
    assert len(listed) == len(accepted)
    for command in accepted:
        head = command.verb if command.group == "env" else command.name
        assert any(name == head or name.startswith(f"{head} ") for name in names), head


def test_chat_help_and_usage_speak_chat_not_command_line() -> None:
    text = chat_help()
    for flag in ("[-h]", "--json", "--as", "--config", "shipyard "):
        assert flag not in text
    with pytest.raises(InvalidInput) as refused:
        parse_text("create pr-1 --type test")
    assert "[-h]" not in refused.value.hint
    assert "--json" not in refused.value.hint
    with pytest.raises(InvalidInput):
        parse_text("list --json")


def test_command_line_help_lists_exactly_the_command_line_commands() -> None:
    grammar = parser(Surface.CLI)
    top = grammar.format_help()
    groups = {c.group for c in offered(Surface.CLI)}
    listed = set(re.findall(r"^    ([a-z-]+)", top, flags=re.M))
    assert listed == groups
    for group in groups - {c.group for c in TABLE if c.verb is None}:
        help_text = parse_group_help(group)
        verbs = set(re.findall(r"^    ([a-z-]+)", help_text, flags=re.M))
        assert verbs == {c.verb for c in offered(Surface.CLI) if c.group == group}


def parse_group_help(group: str) -> str:
    grammar = parser(Surface.CLI)
    some = next(c for c in TABLE if c.group == group and c.verb)
    sub = grammar.verbs[some.key]
    assert sub.prog.endswith(f" {group} {some.verb}")
    # the group's own parser is the one whose prog is `shipyard GROUP`
    for action in grammar._subparsers._group_actions:  # type: ignore[union-attr]
        choice = action.choices[group]  # type: ignore[index]
        return str(choice.format_help())
    raise AssertionError(group)


def test_pipeline_templates_call_only_pipeline_commands() -> None:
    calls = set()
    for template in TEMPLATES.rglob("*.yml"):
        for line in template.read_text(encoding="utf-8").splitlines():
            code = line.split("#", 1)[0]
            for match in re.finditer(r"\bshipyard ((?:[a-z][a-z-]* ?){1,2})", code):
                words = shlex.split(match.group(1))
                if words[0].startswith("-"):
                    continue  # `shipyard --version`: an option of the program, no command
                key = (words[0], words[1] if len(words) > 1 else "")
                if key not in BY_KEY:
                    key = (words[0], "")
                calls.add(key)
    assert calls, "the templates call shipyard"
    for key in calls:
        assert key in BY_KEY, key
        assert BY_KEY[key].offered_on(Surface.PIPELINE), key


def _form(arguments: list[argparse.Action]) -> dict[str, Any]:
    catalog = load_catalog(CONFIG)
    release = Release("1.0.0", "/releases/1.0.0", "", "", Person("ci"), datetime.now(UTC))
    return views.create_modal(catalog, [release], arguments, chosen="test")


def test_the_create_form_is_env_create_as_the_table_declares_it() -> None:
    arguments = parser(Surface.SLACK).verbs[("env", "create")]._actions
    modal = _form(arguments)
    inputs = [b["block_id"] for b in modal["blocks"] if b["type"] == "input"]
    declared = [create_form.block_id(a) for a in arguments if a.dest != "help" and a.nargs != 0]
    assert inputs == declared == ["name", "type", "release", "ttl", "set"]
    by_id = {b["block_id"]: b for b in modal["blocks"] if b["type"] == "input"}
    assert [b["optional"] for b in by_id.values()] == [False, False, False, True, True]
    assert by_id["type"]["dispatch_action"] is True
    assert by_id["type"]["element"]["initial_option"]["value"] == "test"
    assert [o["value"] for o in by_id["release"]["element"]["options"]] == ["1.0.0"]
    assert by_id["set"]["element"]["multiline"] is True


def test_an_argument_added_to_env_create_reaches_the_form() -> None:
    grammar = argparse.ArgumentParser()
    grammar.add_argument("name")
    grammar.add_argument("--owner", required=True, help="who answers for it, e.g. carol")
    grammar.add_argument("--what-if", action="store_true")
    modal = _form(grammar._actions)
    (owner,) = [b for b in modal["blocks"] if b.get("block_id") == "owner"]
    assert owner["optional"] is False
    assert owner["element"]["placeholder"]["text"] == "carol"
    assert "what-if" not in json.dumps(modal)


def test_pipeline_help_lists_exactly_what_pipeline_steps_may_call() -> None:
    text = parse_group_help("pipeline")
    listed = set(re.findall(r"^  shipyard ([a-z-]+(?: [a-z-]+)?)  ", text, flags=re.M))
    assert listed == {c.name for c in TABLE if c.offered_on(Surface.PIPELINE)}
    # the pipeline group's own steps are among them, and its help lists them as verbs too
    steps = set(re.findall(r"^    ([a-z-]+)", text, flags=re.M))
    assert {f"pipeline {s}" for s in steps} <= listed


def test_the_create_form_reads_back_as_the_command_receives_its_arguments() -> None:
    arguments = parser(Surface.SLACK).verbs[("env", "create")]._actions
    values = {
        "name": {"value": {"type": "plain_text_input", "value": "pr-7"}},
        "type": {"x": {"type": "static_select", "selected_option": {"value": "test"}}},
        "release": {"value": {"type": "static_select", "selected_option": {"value": "1.0.0"}}},
        "ttl": {"value": {"type": "plain_text_input", "value": None}},
        "set": {"value": {"type": "plain_text_input", "value": "A=1\n\nB=2"}},
    }
    assert create_form.read_arguments(arguments, values) == {
        "name": "pr-7",
        "env_type": "test",
        "release": "1.0.0",
        "ttl": None,
        "overrides": ["A=1", "B=2"],
    }
