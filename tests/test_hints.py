"""Each surface speaks its own language: hints are commands of the table, said per surface."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest

from bot.command import Surface
from bot.speech import command_text, for_chat, for_cli, in_chat, on_cli
from bot.table import BY_KEY, TABLE, parse_text, parser
from environments.errors import InvalidInput, NotFound, ShipyardError
from environments.outcome import Hint

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    path
    for package in ("environments", "bot", "pipelines")
    for path in (ROOT / package).rglob("*.py")
    if "migrations" not in path.parts
)
# What chat must never show: command-line syntax and options only the command line has.
NOT_CHAT = ("shipyard ", "[-h]", "--json", "--as ", "--config", "--no-wait")


def _literal(node: ast.AST) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None  # a value computed at run time; the person's own input in the real path


def hint_sites() -> list[tuple[str, Hint]]:
    """Every `Hint(label, command, {arguments})` written in the source, as written."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Hint"
                and len(node.args) >= 2
            ):
                continue
            label, command = _literal(node.args[0]), _literal(node.args[1])
            arguments: dict[str, object] = {}
            if len(node.args) > 2 and isinstance(node.args[2], ast.Dict):
                for key, value in zip(node.args[2].keys, node.args[2].values, strict=True):
                    assert isinstance(key, ast.Constant), path
                    arguments[str(key.value)] = _literal(value)
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if not isinstance(command, str):
                # A hint naming a command computed at run time (`table.execute`'s process
                # commands): checked by the table walk below.
                continue
            found.append((where, Hint(str(label or "do it"), command, arguments)))  # type: ignore[arg-type]
    return found


SITES = hint_sites()


def test_the_source_has_its_hints() -> None:
    assert len(SITES) >= 12, SITES


@pytest.mark.parametrize(("where", "hint"), SITES, ids=[w for w, _ in SITES])
def test_every_hint_names_a_command_of_the_table_and_its_arguments(where: str, hint: Hint) -> None:
    command = BY_KEY.get((hint.group, hint.verb))
    assert command is not None, f"{where}: no command '{hint.command}'"
    grammar = parser(Surface.CLI).verbs[command.key]
    known = {action.dest for action in grammar._actions}
    assert set(hint.arguments) <= known, f"{where}: {hint.command} takes {sorted(known)}"
    cli = on_cli(hint)
    assert f"'shipyard {hint.command}" in cli, cli


@pytest.mark.parametrize(("where", "hint"), SITES, ids=[w for w, _ in SITES])
def test_chat_says_every_hint_without_command_line_syntax(where: str, hint: Hint) -> None:
    said = in_chat(hint)
    for syntax in NOT_CHAT:
        assert syntax not in said, f"{where}: {said}"
    command = BY_KEY[(hint.group, hint.verb)]
    if command.offered_on(Surface.SLACK):
        assert "`/env " in said, f"{where}: chat offers {hint.command}: {said}"
    else:
        assert "`" not in said and said.startswith(hint.label), f"{where}: {said}"


def _strings_outside_docstrings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


# A file Shipyard writes for the command line to read back, not a message to anyone.
WRITTEN_FOR_THE_COMMAND_LINE = {"environments/ade_import.py"}


def test_the_core_never_spells_a_command_line() -> None:
    spelled = re.compile(r"(?:^|[\s'`(])shipyard\s+[a-z]")
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in SOURCES
        if path.relative_to(ROOT).parts[0] == "environments"
        and str(path.relative_to(ROOT)) not in WRITTEN_FOR_THE_COMMAND_LINE
        for line, text in _strings_outside_docstrings(path)
        if spelled.search(text)
    ]
    assert not found, "\n".join(found)


# Modules whose every string is for Slack readers.
CHAT_MODULES = ("bot/views.py", "bot/create_form.py", "bot/slack_")


def test_nothing_chat_says_spells_a_command_line() -> None:
    """Slack's own modules, and the handler of every command chat runs."""
    spelled = re.compile(r"(?:^|[\s'`(])shipyard\s+[a-z]")
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in SOURCES
        if str(path.relative_to(ROOT)).startswith(CHAT_MODULES)
        for line, text in _strings_outside_docstrings(path)
        if spelled.search(text)
    ]
    for command in TABLE:
        if not command.offered_on(Surface.SLACK) or command.handler is None:
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(command.handler)))
        found += [
            f"{command.name}: {node.value!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and spelled.search(node.value)
        ]
    assert not found, "\n".join(found)


def test_every_env_command_chat_mentions_is_one_chat_accepts() -> None:
    mentioned = {
        (f"{path.relative_to(ROOT)}:{line}", match.group(1))
        for path in SOURCES
        if str(path.relative_to(ROOT)).startswith(CHAT_MODULES)
        for line, text in _strings_outside_docstrings(path)
        for match in re.finditer(r"`/env ([a-z][a-z -]*)`", text)
    }
    assert mentioned, "Slack's modules name commands"
    for where, text in mentioned:
        try:
            args = parse_text(text)
        except InvalidInput as refused:
            # `/env create` alone opens the form: its arguments are missing, not the command.
            assert refused.advice().startswith(f"usage: /env {text}"), where
            continue
        assert BY_KEY[(args.group, args.verb or "")].offered_on(Surface.SLACK), where


def test_a_hint_is_a_command_line_on_the_cli_and_env_text_in_chat() -> None:
    approve = Hint("approve", "env approve", {"ref": 12})
    assert on_cli(approve) == "approve with 'shipyard env approve 12'"
    assert in_chat(approve) == "approve with `/env approve 12`"
    params = Hint("see its own parameters", "params show", {"name": "pr-1"})
    assert command_text(params, Surface.SLACK) == "/env params show pr-1"
    deploy = Hint("deploy into it", "env deploy", {"name": "pr-1", "release": None})
    assert command_text(deploy, Surface.CLI) == "shipyard env deploy pr-1 --release RELEASE"
    assert command_text(deploy, Surface.SLACK) == "/env deploy pr-1 --release RELEASE"


def test_a_hint_chat_cannot_follow_is_said_in_words() -> None:
    add = Hint("add it", "release add", {"version": None, "artifact": None})
    assert on_cli(add) == "add it with 'shipyard release add VERSION --artifact ARTIFACT'"
    assert in_chat(add) == "add it (from the command line or a pipeline, not in chat)"
    # An argument chat does not take (only the command line has --json) is words as well.
    listed = Hint("list them", "env list", {"json": True})
    assert command_text(listed, Surface.SLACK) is None
    assert in_chat(listed).startswith("list them (")


def test_an_error_says_its_words_then_each_step_per_surface() -> None:
    refused = NotFound(
        "there is no environment 'x'",
        hint="check the name",
        hints=(Hint("see the environments", "env list"), Hint("create it", "env create")),
    )
    assert for_cli(refused) == (
        "there is no environment 'x' — check the name, or see the environments with "
        "'shipyard env list', or create it with 'shipyard env create'"
    )
    assert for_chat(refused) == (
        "there is no environment 'x' — check the name, or see the environments with "
        "`/env list`, or create it with `/env create`"
    )
    assert ShipyardError("nothing to do").one_line() == "nothing to do"


def test_hints_travel_through_the_outbox_as_data() -> None:
    hint = Hint("see where it is", "env show", {"name": "pr-1"})
    assert Hint.of(hint.as_dict()) == hint
