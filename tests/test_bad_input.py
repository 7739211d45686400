"""A table of malformed inputs: each gets a non-zero exit or a 4xx, one short line naming the
problem, no traceback, and no change to the record's state tables.

Most command-line cases run in-process through the CLI's `main()` (a subprocess each would take
minutes); a few run as real subprocesses, the way a person runs them.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.cli import main
from bot.runtime import Runtime
from environments.model import EnvironmentState, OperationState
from environments.registry import operations as ops
from environments.registry import record as rec
from tests.conftest import APPS, CONFIG, EXAMPLES, person
from tests.fakes.slack import FakeSlack
from tests.slackbot import CONFIG as SLACK_CONFIG
from tests.slackbot import Bot, running_bot, sign

# Tables that hold state; request_keys (deduplication of deliveries) and audit rows of refusals
# are not state a refusal may change either, so every table is compared.
ROOT = Path(__file__).resolve().parents[1]
DELIVERY_KEYS = {"request_keys", "slack_deliveries"}  # a delivery is recorded before its ack
LONG = "x" * 5000

NAMES = [
    "",
    "a",
    "ab",
    "PR-1",
    "pr_1",
    "1pr",
    "-pr",
    "pr-",
    "pr--1",
    "pr 1",
    " pr-1",
    "pr-1 ",
    "pr/1",
    "../etc",
    "pr;rm",
    "$(whoami)",
    "`id`",
    "pr'1",
    'pr"1',
    "pr.1",
    "%s%s%n",
    "{{ env.name }}",
    "@env(X)",
    "名前",
    "prü",
    "pr\t1",
    "pr\n1",
    "x" * 41,
    LONG,
    "\u202epr",
]
NAME_COMMANDS = [
    ("env", "create", "{}", "--type", "test", "--release", "1.0.0"),
    ("env", "deploy", "{}", "--release", "1.0.0"),
    ("env", "destroy", "{}"),
    ("env", "show", "{}"),
    ("env", "extend", "{}", "--by", "4h"),
    ("env", "history", "{}"),
    ("params", "show", "{}"),
    ("params", "set", "{}", "GAME_MOTD=x"),
]
TYPES = ["", "Test", "tests", "prod", "test ", "t" * 200, LONG, "../test", "test;", "名前"]
RELEASES = [
    "",
    "1.0.0 ",
    " 1.0.0",
    "1/0",
    "1.0.0\n",
    "../1.0.0",
    "1" + "0" * 64,
    LONG,
    "$(id)",
    "名前",
    "1.0.0;rm",
]
TTLS = [
    "",
    "0h",
    "-1h",
    "8",
    "h",
    "8x",
    "8 h",
    "1.5h",
    "99999999999999999999h",
    "9" * 5000 + "h",
    "999999999999w",
    "inf",
    "nan",
    "8h8m",
    "0x10h",
    "٣h",
    "1e9h",
    "8H",
]
APPROVAL_IDS = [
    "99999999999999999999999",
    "9" * 5000,
    "0",
    "-1",
    "#",
    "#x",
    "²",
    "1.5",
    "1e3",
    "0x1",
    "",
    " ",
    "pr-1;drop",
    LONG,
]
SET_PAIRS = [
    "",
    "=",
    "=x",
    "KEY",
    "1KEY=x",
    "KE Y=x",
    "KEY-1=x",
    "KEY.1=x",
    "ключ=x",
    "K" * 200 + "=x",
    "GAME_DB_PASSWORD=hunter2",
    "APIKEY=abc",
    "AUTHTOKEN=abc",
    "ACCESSTOKEN=abc",
    "AWS_SECRETKEY=abc",
    "ConnectionString=Server=x",
    "GAME_SECRET=@env()",
    "GAME_SECRET=@env(1X)",
    "GAME_SECRET=@keyvault(v)",
    "GAME_SECRET=@keyvault(v, s, t, u)",
    "GAME_SECRET=@nope(x)",
    "GAME_MOTD={{ env.nothing }}",
]
MISC = [
    ("release", "add", "9.9.9", "--artifact", ""),
    ("release", "add", "9.9.9", "--artifact", "/does/not/exist"),
    ("release", "add", "9.9.9", "--artifact", str(APPS / "broken" / "server.py")),
    ("release", "add", "1.0.0", "--artifact", str(EXAMPLES / "game/releases/1.0.0")),
    ("serve", "--port", "99999"),
    ("serve", "--port", "0"),
    ("serve", "--port", "-1"),
    ("serve", "--port", "http"),
    ("serve", "--port", "9" * 5000),
    ("worker", "--interval=-1"),
    ("worker", "--interval=0"),
    ("worker", "--interval=nan"),
    ("worker", "--interval=inf"),
    ("worker", "--interval=soon"),
    ("env", "create"),
    ("env", "frobnicate"),
    ("frobnicate",),
    ("env", "list", "--format", "yaml"),
    ("env", "create", "pr-9", "--type", "test", "--release", "1.0.0", "--bogus"),
    ("env", "promote", "nowhere"),
    ("env", "promote", "staging", "--from", "nowhere"),
    ("env", "reject", "1"),
    ("params", "diff", "pr-1", "nowhere"),
    ("params", "show", "pr-1", "--format", "toml"),
    ("params", "set", "pr-1", "--unset", "NOT_SET_HERE"),
    ("schedule", "run", "nowhere"),
    ("schedule", "pause", LONG),
    ("env", "destroy", "pr-1", "--as", "mallory"),
    ("env", "create", "pr-9", "--type", "production", "--release", "1.0.0", "--as", "alice"),
    ("loadtest", "report", "/does/not/exist.jtl"),
]


def cli_cases() -> list[Any]:
    cases: list[Any] = []
    for command in NAME_COMMANDS:
        for name in NAMES:
            argv = tuple(name if part == "{}" else part for part in command)
            cases.append(pytest.param(argv, id=f"name-{command[1]}-{NAMES.index(name)}"))
    for i, type_name in enumerate(TYPES):
        argv = ("env", "create", "pr-9", "--type", type_name, "--release", "1.0.0")
        cases.append(pytest.param(argv, id=f"type-{i}"))
    for i, release in enumerate(RELEASES):
        cases.append(
            pytest.param(
                ("env", "create", "pr-9", "--type", "test", "--release", release),
                id=f"release-create-{i}",
            )
        )
        cases.append(
            pytest.param(
                ("release", "add", release, "--artifact", str(APPS / "slow")),
                id=f"release-add-{i}",
            )
        )
        cases.append(
            pytest.param(("env", "deploy", "pr-1", "--release", release), id=f"release-deploy-{i}")
        )
        cases.append(pytest.param(("env", "where", release), id=f"release-where-{i}"))
    for i, ttl in enumerate(TTLS):
        cases.append(
            pytest.param(
                ("env", "create", "pr-9", "--type", "test", "--release", "1.0.0", "--ttl", ttl),
                id=f"ttl-create-{i}",
            )
        )
        cases.append(pytest.param(("env", "extend", "pr-1", "--by", ttl), id=f"ttl-extend-{i}"))
    for i, ref in enumerate(APPROVAL_IDS):
        cases.append(pytest.param(("env", "approve", ref), id=f"approve-{i}"))
        cases.append(pytest.param(("env", "reject", ref, "--reason", "no"), id=f"reject-{i}"))
    for i, pair in enumerate(SET_PAIRS):
        cases.append(
            pytest.param(
                ("env", "create", "pr-9", "--type", "test", "--release", "1.0.0", "--set", pair),
                id=f"set-create-{i}",
            )
        )
        cases.append(pytest.param(("params", "set", "pr-1", pair), id=f"set-params-{i}"))
        cases.append(
            pytest.param(
                ("env", "deploy", "pr-1", "--release", "1.0.0", "--set", pair),
                id=f"set-deploy-{i}",
            )
        )
    for i, argv in enumerate(MISC):
        cases.append(pytest.param(argv, id=f"misc-{i}"))
    return cases


def dump(database_url: str) -> dict[str, list[tuple[str, ...]]]:
    engine = sa.create_engine(database_url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {
                name: sorted(tuple(map(str, row)) for row in conn.execute(sa.select(table)))
                for name, table in meta.tables.items()
                if name != "apscheduler_jobs"
            }
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A record with releases and environments, none of them running (nothing is started)."""
    folder = tmp_path_factory.mktemp("bad-input")
    url = f"sqlite:///{folder / 'record.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHIPYARD_HOME", str(folder / "home"))
        mp.setenv("SHIPYARD_DATABASE_URL", url)
        mp.setenv("SHIPYARD_CONFIG", str(CONFIG))
        rt = Runtime.open(str(CONFIG), database_url=url)
        try:
            ci = person("alice")
            rt.lifecycle.add_release(ci, "1.0.0", str(EXAMPLES / "game/releases/1.0.0"))
            rt.lifecycle.add_release(ci, "1.1.0", str(EXAMPLES / "game/releases/1.1.0"))
            created = rt.lifecycle.create(ci, "pr-1", env_type="test", release="1.0.0")
            rt.lifecycle.create(ci, "staging", env_type="staging", release="1.0.0")
            # pr-1 stands in the record as ready with no process behind it: the table's cases
            # are all refused before anything would run, and none may wait on its creation.
            with rt.database.write() as conn:
                assert created.operation_id is not None
                ops.finish(conn, created.operation_id, OperationState.SUCCEEDED, rt.clock.now())
                rec.update_environment(
                    conn, rec.get_environment(conn, "pr-1").id, state=EnvironmentState.READY
                )
        finally:
            rt.close()
        yield url


@pytest.fixture
def shipyard_env(record: str, monkeypatch: pytest.MonkeyPatch) -> str:
    home = Path(record.removeprefix("sqlite:///")).parent / "home"
    monkeypatch.setenv("SHIPYARD_HOME", str(home))
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", record)
    monkeypatch.setenv("SHIPYARD_CONFIG", str(CONFIG))
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    for variable in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    return record


def assert_refused_cleanly(code: int, out: str, err: str) -> None:
    assert code != 0, f"accepted: {out[:300]}"
    assert "Traceback" not in out + err, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[0].startswith("shipyard:"), err[:500]
    assert len(lines[0]) < 600, f"over-long message ({len(lines[0])} characters)"
    assert "unexpected error" not in err, err


@pytest.mark.parametrize("argv", cli_cases())
def test_the_command_line_refuses_cleanly(
    argv: tuple[str, ...], shipyard_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = dump(shipyard_env)
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert_refused_cleanly(code, out, err)
    assert dump(shipyard_env) == before


@pytest.mark.parametrize(
    "argv",
    [
        ("env", "create", "PR_1", "--type", "test", "--release", "1.0.0"),
        ("env", "approve", "99999999999999999999999"),
        ("env", "create", "pr-9", "--type", "test", "--release", "1.0.0", "--ttl", "9" * 30 + "h"),
        ("release", "add", "9.9.9", "--artifact", ""),
        ("serve", "--port", "99999"),
        ("worker", "--interval=-1"),
        ("loadtest", "report", "/does/not/exist.jtl"),
    ],
)
def test_as_a_real_process_too(argv: tuple[str, ...], shipyard_env: str) -> None:
    before = dump(shipyard_env)
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ),
        timeout=60,
    )
    assert_refused_cleanly(done.returncode, done.stdout, done.stderr)
    assert dump(shipyard_env) == before


# --- configuration files ------------------------------------------------------------------------

SAMPLE = CONFIG.read_text()
CONFIGS: list[tuple[str, str | bytes]] = [
    ("empty", ""),
    ("whitespace", "   \n\n"),
    ("a list", "- a\n- b\n"),
    ("a scalar", "hello\n"),
    ("tabs", "version: 1\ntypes:\n\ttest: {}\n"),
    ("unclosed bracket", "types: [\n"),
    ("unclosed quote", 'types: "test\n'),
    ("bad indent", "types:\n  test:\n ttl: 8h\n"),
    ("colon in key", "a: b: c\n"),
    ("duplicate top key", SAMPLE + "\nversion: 1\n"),
    ("duplicate type", SAMPLE.replace("  staging:", "  test:")),
    ("unknown top key", SAMPLE + "\nfrobnicate: 1\n"),
    ("unknown type key", SAMPLE.replace("    protected: true", "    protectd: true")),
    ("wrong version", SAMPLE.replace("version: 1", "version: 2")),
    ("version text", SAMPLE.replace("version: 1", "version: one")),
    ("types a list", "version: 1\ntypes: [test]\n"),
    ("types empty", "version: 1\ntypes: {}\n"),
    ("ttl text", SAMPLE.replace("default: 8h", "default: eight")),
    ("ttl overflow", SAMPLE.replace("default: 8h", "default: 99999999999999999999h")),
    ("ttl default above max", SAMPLE.replace("default: 8h", "default: 100h")),
    ("instances 0", SAMPLE.replace("instances: 1", "instances: 0")),
    ("instances text", SAMPLE.replace("instances: 1", "instances: many")),
    ("command a text", SAMPLE.replace('command: ["{python}"', 'command: "{python}" #')),
    ("approval required 0", SAMPLE.replace("required: 1", "required: 0")),
    ("approval too many", SAMPLE.replace("required: 1", "required: 9")),
    (
        "approvers empty",
        SAMPLE.replace(
            "approvers: [release-managers], timeout: 24h, c", "approvers: [], timeout: 24h, c"
        ),
    ),
    ("provider unknown", SAMPLE.replace("description: players are here", "provider: gcp")),
    ("promotion unknown", SAMPLE.replace("promotion: [test,", "promotion: [qa,")),
    ("promotion twice", SAMPLE.replace("promotion: [test,", "promotion: [test, test,")),
    ("parameters a list", SAMPLE.replace("GAME_MAX_PLAYERS: 100000", "GAME_MAX_PLAYERS: [1, 2]")),
    (
        "literal secret",
        SAMPLE + "\n"
        if False
        else SAMPLE.replace("GAME_MAX_PLAYERS: 100000", "GAME_DB_PASSWORD: hunter2"),
    ),
    ("one-word secret", SAMPLE.replace("GAME_MAX_PLAYERS: 100000", "APIKEY: abc")),
    ("bad reference", SAMPLE.replace("GAME_MAX_PLAYERS: 100000", "GAME_X: '@keyvault(v)'")),
    (
        "unknown template field",
        SAMPLE.replace('"Welcome to the sample game"', '"{{ env.nothing }}"'),
    ),
    ("engine misspelled", SAMPLE.replace("engine: locust", "engine: lucust")),
    ("plan file missing", SAMPLE.replace("file: loadtests/login.py", "file: loadtests/nope.py")),
    ("duration 5x", SAMPLE.replace("duration: 8s", "duration: 5x")),
    ("criterion garbage", SAMPLE.replace('"percentage(error) > 5"', '"p95(foo) >> 3"')),
    ("cron 99", SAMPLE.replace('cron: "0 2 * * *"', 'cron: "99 * * * *"')),
    ("cron words", SAMPLE.replace('cron: "0 2 * * *"', 'cron: "every night"')),
    ("timezone", SAMPLE.replace("timezone: Europe/Stockholm", "timezone: Mars/Olympus")),
    (
        "schedule type",
        SAMPLE.replace("    type: test\n    plan: login", "    type: qa\n    plan: login"),
    ),
    ("people not ids", SAMPLE.replace("alice: U0000ALICE", "alice: alice")),
    ("channel", SAMPLE.replace('channel: "#deploys"', 'channel: "not a channel"')),
    (
        "alias bomb",
        "a: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"b{n}: &b{n} [{', '.join(['*a' if n == 0 else f'*b{n - 1}'] * 9)}]\n" for n in range(9)
        ),
    ),
    ("recursive alias", "a: &a [*a]\n"),
    ("custom tag", "a: !!python/object/apply:os.system [id]\n"),
    ("local tag", "types: !include other.yaml\n"),
    ("deep nesting", "a: " + "[" * 2000 + "]" * 2000 + "\n"),
    ("NUL byte", "version: 1\x00\n"),
    ("binary", bytes(range(256)) * 8),
    ("latin-1", "version: 1\nparameters: {MOTD: 'caf\xe9'}\n".encode("latin-1")),
    ("10 MB", "a: " + "x" * 10_000_000 + "\n"),
    ("merge key", "base: &b {ttl: 8h}\ntypes:\n  test:\n    <<: *b\n"),
    ("key a list", "? [a, b]\n: 1\n"),
]


@pytest.mark.parametrize(("label", "content"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_a_malformed_configuration_is_one_line_and_exit_3(
    label: str,
    content: str | bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = EXAMPLES / f".bad-input-{os.getpid()}-{abs(hash(label))}.yaml"
    try:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("SHIPYARD_DATABASE_URL", f"sqlite:///{tmp_path / 'record.db'}")
        code = main(["--config", str(path), "config", "check"])
    finally:
        path.unlink(missing_ok=True)
    out, err = capsys.readouterr()
    assert code == 3
    assert "Traceback" not in out + err and "unexpected error" not in err
    assert err.startswith("shipyard: ") and len(err) < 4000, err[:500]


def test_the_sample_itself_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(CONFIG), "config", "check"]) == 0


# --- result files for `loadtest report` ----------------------------------------------------------

HEADER = "timeStamp,elapsed,label,responseCode,success,bytes\n"
RESULTS: list[tuple[str, str | bytes]] = [
    ("empty", ""),
    ("blank lines", "\n\n\n"),
    ("garbage", "garbage\nmore garbage,,\n"),
    ("binary", bytes(range(256)) * 16),
    ("NUL bytes", b"\x00" * 1000),
    ("header only", HEADER),
    ("header only, CRLF", HEADER.replace("\n", "\r\n")),
    ("truncated row", HEADER + "1700000000000,5,lo"),
    ("missing columns", "a,b,c\n1,2,3\n"),
    ("no success column", "timeStamp,elapsed,label\n1700000000000,5,login\n"),
    ("negative elapsed", HEADER + "1700000000000,-5,login,200,true,10\n"),
    ("text elapsed", HEADER + "1700000000000,fast,login,200,true,10\n"),
    ("text timestamp", HEADER + "yesterday,5,login,200,true,10\n"),
    ("headerless", "1700000000000,5,login,200,true,10\n"),
    ("XML cut short", '<?xml version="1.0"?><testResults><httpSample t="x"'),
    ("XML other root", '<?xml version="1.0"?><html><body/></html>'),
    ("XML plan", '<?xml version="1.0"?><jmeterTestPlan version="1.2"/>'),
    (
        "XML billion laughs",
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        '<testResults><httpSample t="1" lb="&c;" s="true"/></testResults>',
    ),
    ("locust failures", "Method,Name,Error,Occurrences\nGET,/,boom,1\n"),
    ("50 MB line", "x" * 50_000_000),
    ("50 MB label", HEADER + "1700000000000,5," + "y" * 50_000_000 + ",200,true,10\n"),
]


@pytest.mark.parametrize(("label", "content"), RESULTS, ids=[r[0] for r in RESULTS])
def test_a_bad_result_file_is_refused_in_one_line(
    label: str, content: str | bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "results.jtl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    code = main(["loadtest", "report", str(path)])
    out, err = capsys.readouterr()
    assert code != 0, out[:300]
    assert "Traceback" not in out + err
    assert err.startswith("shipyard: ") and len(err.splitlines()) == 1 and len(err) < 600, err


# --- signed but malformed Slack requests ----------------------------------------------------------


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    folder = tmp_path_factory.mktemp("bad-slack")
    with pytest.MonkeyPatch.context() as mp, FakeSlack() as slack:
        mp.setenv("SHIPYARD_HOME", str(folder / "home"))
        made: list[Runtime] = []

        def factory(directory: Any) -> Runtime:
            rt = Runtime.open(
                str(SLACK_CONFIG),
                database_url=f"sqlite:///{folder / 'bot.db'}",
                directory=directory,
            )
            rt.lifecycle.add_release(person("ci"), "1.0.0", str(EXAMPLES / "game/releases/1.0.0"))
            rt.lifecycle.create(person("alice"), "pr-1", env_type="test", release="1.0.0")
            made.append(rt)
            return rt

        with running_bot(factory, slack) as running:
            yield running
        for rt in made:
            rt.close()


def payload(kind: str, **fields: Any) -> str:
    body = {
        "type": kind,
        "user": {"id": "U0ALICE", "username": "alice", "team_id": "T0001"},
        "team": {"id": "T0001", "domain": "test"},
        "api_app_id": "A0001",
        "token": "verification_token",
        **fields,
    }
    return urllib.parse.urlencode({"payload": json.dumps(body)})


def command(text: str, **fields: str) -> str:
    base = {
        "team_id": "T0001",
        "channel_id": "C0DEPLOYS",
        "user_id": "U0ALICE",
        "user_name": "alice",
        "command": "/env",
        "text": text,
        "api_app_id": "A0001",
        "response_url": "http://127.0.0.1:9/response",
        "trigger_id": "1.1.trigger",
    }
    return urllib.parse.urlencode({**base, **fields})


CLICK = {"action_id": "approve", "block_id": "b", "type": "button", "action_ts": "1.1"}
SIGNED: list[tuple[str, str, str]] = [
    ("payload not JSON", "payload=%7Bnot-json", "application/x-www-form-urlencoded"),
    (
        "payload a list",
        urllib.parse.urlencode({"payload": "[1, 2]"}),
        "application/x-www-form-urlencoded",
    ),
    (
        "payload a string",
        urllib.parse.urlencode({"payload": '"x"'}),
        "application/x-www-form-urlencoded",
    ),
    ("payload empty", "payload=", "application/x-www-form-urlencoded"),
    ("unknown type", payload("frobnicate"), "application/x-www-form-urlencoded"),
    ("actions missing", payload("block_actions"), "application/x-www-form-urlencoded"),
    ("actions empty", payload("block_actions", actions=[]), "application/x-www-form-urlencoded"),
    (
        "actions a dict",
        payload("block_actions", actions={"a": 1}),
        "application/x-www-form-urlencoded",
    ),
    (
        "action without value",
        payload("block_actions", actions=[CLICK]),
        "application/x-www-form-urlencoded",
    ),
    (
        "action value a number",
        payload("block_actions", actions=[{**CLICK, "value": 12}]),
        "application/x-www-form-urlencoded",
    ),
    (
        "action value huge",
        payload("block_actions", actions=[{**CLICK, "value": "9" * 5000}]),
        "application/x-www-form-urlencoded",
    ),
    (
        "unknown action",
        payload("block_actions", actions=[{**CLICK, "action_id": "nope", "value": "1"}]),
        "application/x-www-form-urlencoded",
    ),
    (
        "user missing",
        urllib.parse.urlencode(
            {"payload": json.dumps({"type": "block_actions", "actions": [{**CLICK, "value": "1"}]})}
        ),
        "application/x-www-form-urlencoded",
    ),
    (
        "view without state",
        payload("view_submission", view={"callback_id": "create", "id": "V1"}),
        "application/x-www-form-urlencoded",
    ),
    (
        "view state garbage",
        payload(
            "view_submission", view={"callback_id": "create", "id": "V1", "state": {"values": "x"}}
        ),
        "application/x-www-form-urlencoded",
    ),
    (
        "view unknown callback",
        payload(
            "view_submission", view={"callback_id": "nope", "id": "V1", "state": {"values": {}}}
        ),
        "application/x-www-form-urlencoded",
    ),
    ("event not JSON", "{not json", "application/json"),
    ("event a list", "[1, 2, 3]", "application/json"),
    (
        "event without event",
        json.dumps({"type": "event_callback", "event_id": "Ev9"}),
        "application/json",
    ),
    (
        "event a string",
        json.dumps({"type": "event_callback", "event_id": "Ev8", "event": "x"}),
        "application/json",
    ),
    (
        "url_verification without challenge",
        json.dumps({"type": "url_verification"}),
        "application/json",
    ),
    (
        "command without text",
        command("").replace("&text=", "&nothing="),
        "application/x-www-form-urlencoded",
    ),
    ("command unknown verb", command("frobnicate"), "application/x-www-form-urlencoded"),
    ("command huge text", command("create " + "x" * 5000), "application/x-www-form-urlencoded"),
    (
        "command overflowing ttl",
        command("create pr-9 --type test --release 1.0.0 --ttl 99999999999999999999h"),
        "application/x-www-form-urlencoded",
    ),
    (
        "command approval overflow",
        command("approve 99999999999999999999999"),
        "application/x-www-form-urlencoded",
    ),
    ("command unbalanced quote", command('create "pr-9'), "application/x-www-form-urlencoded"),
    (
        "command without user",
        command("list").replace("user_id=U0ALICE", "user_id="),
        "application/x-www-form-urlencoded",
    ),
    ("form body garbage", "%%%%", "application/x-www-form-urlencoded"),
    ("no content type", "payload=x", "text/plain"),
]


@pytest.mark.parametrize(("label", "body", "content_type"), SIGNED, ids=[s[0] for s in SIGNED])
def test_a_signed_but_malformed_slack_request_is_answered_without_a_crash(
    label: str, body: str, content_type: str, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    before = dump(str(bot.runtime.database.engine.url))
    answer = bot.post(body, content_type=content_type)
    assert answer.status < 500, (answer.status, answer.body[:300])
    assert "Traceback" not in answer.body and len(answer.body) < 3000
    assert "Traceback" not in caplog.text, caplog.text[-2000:]
    after = dump(str(bot.runtime.database.engine.url))
    assert {k: v for k, v in after.items() if k not in DELIVERY_KEYS} == {
        k: v for k, v in before.items() if k not in DELIVERY_KEYS
    }


@pytest.mark.parametrize(
    ("label", "body", "headers"),
    [
        ("timestamp not a number", b"payload=x", {"X-Slack-Request-Timestamp": "soon"}),
        ("timestamp huge", b"payload=x", {"X-Slack-Request-Timestamp": "9" * 400}),
        ("timestamp superscript digits", b"payload=x", {"X-Slack-Request-Timestamp": "¹²³"}),
        ("body not UTF-8", b"payload=\xff\xfe\xfd", {}),
        ("body latin-1", "text=café".encode("latin-1"), {}),
        ("no signature", b"payload=x", {"X-Slack-Signature": ""}),
        ("body too large", b"a=" + b"x" * (2 << 20), {}),
    ],
)
def test_malformed_slack_requests_get_4xx_before_anything(
    label: str, body: bytes, headers: dict[str, str], bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    import time as clock
    import urllib.error
    import urllib.request

    stamp = str(int(clock.time()))
    signature = sign(body.decode("latin-1"), int(stamp))
    request = urllib.request.Request(
        f"{bot.url}/slack/events",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
            **headers,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert 400 <= status < 500, status
    assert "Traceback" not in caplog.text


# --- authenticated but malformed Azure DevOps webhook bodies --------------------------------------

WEBHOOK_SECRET = "hook-secret-for-the-bad-input-table"
WEBHOOK_BODIES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("not JSON", b"{not json"),
    ("a list", b"[1, 2]"),
    ("a string", b'"event"'),
    ("a number", b"12"),
    ("null", b"null"),
    ("no id", json.dumps({"eventType": "ms.vss-pipelines.run-state-changed-event"}).encode()),
    ("no eventType", json.dumps({"id": "e1"}).encode()),
    ("resource a list", json.dumps({"id": "e2", "eventType": "x", "resource": [1]}).encode()),
    ("unknown eventType", json.dumps({"id": "e3", "eventType": "nope", "resource": {}}).encode()),
    (
        "run event without run",
        json.dumps(
            {"id": "e4", "eventType": "ms.vss-pipelines.run-state-changed-event", "resource": {}}
        ).encode(),
    ),
    (
        "run id text",
        json.dumps(
            {
                "id": "e5",
                "eventType": "ms.vss-pipelines.run-state-changed-event",
                "resource": {"run": {"id": "x"}, "pipeline": {"id": "y"}},
            }
        ).encode(),
    ),
    (
        "run id huge",
        json.dumps(
            {
                "id": "e6",
                "eventType": "ms.vss-pipelines.run-state-changed-event",
                "resource": {
                    "run": {"id": 10**40, "state": "completed", "result": "succeeded"},
                    "pipeline": {"id": 10**40},
                },
            }
        ).encode(),
    ),
    (
        "stage event garbage",
        json.dumps(
            {
                "id": "e7",
                "eventType": "ms.vss-pipelines.stage-state-changed-event",
                "resource": {"stage": "x", "run": 5},
            }
        ).encode(),
    ),
    (
        "approval event garbage",
        json.dumps(
            {
                "id": "e8",
                "eventType": "ms.vss-pipelinechecks-events.approval-pending",
                "resource": {"approval": "x"},
            }
        ).encode(),
    ),
    (
        "approval completed garbage",
        json.dumps(
            {
                "id": "e9",
                "eventType": "ms.vss-pipelinechecks-events.approval-completed",
                "resource": {"approval": {"id": None}},
            }
        ).encode(),
    ),
    ("non-UTF-8", b'{"id": "\xff\xfe", "eventType": "x"}'),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
    (
        "10 MB field",
        json.dumps({"id": "e10", "eventType": "x" * 10_000_000, "resource": {}}).encode(),
    ),
    ("id an object", json.dumps({"id": {"a": 1}, "eventType": "x", "resource": {}}).encode()),
]


@pytest.fixture(scope="module")
def webhook(record: str) -> Iterator[Any]:
    from pipelines.webhooks import WebhookHandler

    rt = Runtime.open(str(CONFIG), database_url=record)
    try:
        yield WebhookHandler(
            secret=WEBHOOK_SECRET,
            database=rt.database,
            catalog=rt.catalog,
            source=None,  # type: ignore[arg-type]  # a malformed body never reaches Azure DevOps
            clock=rt.lifecycle.clock,
        )
    finally:
        rt.close()


@pytest.mark.parametrize(("label", "body"), WEBHOOK_BODIES, ids=[w[0] for w in WEBHOOK_BODIES])
def test_an_authenticated_but_malformed_webhook_body_gets_4xx_and_changes_nothing(
    label: str, body: bytes, webhook: Any, record: str
) -> None:
    before = dump(record)
    auth = "Basic " + base64.b64encode(f"hook:{WEBHOOK_SECRET}".encode()).decode()
    result = webhook.handle({"Authorization": auth}, body)
    assert 400 <= result.status < 500 or (result.status == 200 and result.recorded == ())
    assert len(result.message) < 400, f"echoes the input ({len(result.message)} characters)"
    after = dump(record)
    assert {k: v for k, v in after.items() if k not in DELIVERY_KEYS} == {
        k: v for k, v in before.items() if k not in DELIVERY_KEYS
    }


def test_the_table_is_large_enough() -> None:
    total = (
        len(cli_cases()) + 7 + len(CONFIGS) + len(RESULTS) + len(SIGNED) + 7 + len(WEBHOOK_BODIES)
    )
    assert total >= 500, total
