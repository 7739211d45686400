"""`shipyard config check` finds every problem at once, with file and line; so does every load."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import EXAMPLES

DATA = Path(__file__).parent / "data"
GETTING_STARTED = DATA / "reference/service-fabric/getting-started"
SECURE_SF = DATA / "reference/arm/templates/service-fabric-secure-cluster-5-node-1-nodetype"

BROKEN = """\
version: 1
people: {alice: bob}
slack: {channel: "Not A Channel"}
parameters:
  GAME_MOTD: "{{ env.nme }}"
types:
  test:
    ttl: {default: 8h, max: 72h}
    loadtest: nope
  piped:
    engine: azure-pipelines
loadtests:
  login:
    engine: lucust
    file: nothere.py
    duration: 5x
    criteria: ["p95(foo) >> 3"]
schedules:
  a: {cron: "99 * * * *", type: test, plan: login}
  b: {cron: "0 2 * * *", timezone: Mars/Olympus, type: nosuch}
"""

EXPECTED = [
    (2, "'bob' is not a Slack user id"),
    (3, "'Not A Channel' is not a Slack channel"),
    (5, "refers to '{{ env.nme }}'"),
    (9, "names load-test plan 'nope'"),
    (11, "engine azure-pipelines, but azure_devops has no organization_url"),
    (14, "no load engine 'lucust'"),
    (15, "nothere.py does not exist"),
    (16, "'5x' is not a duration"),
    (17, "'p95(foo) >> 3' is not a criterion"),
    (19, "cron '99 * * * *' is not valid"),
    (20, "'Mars/Olympus' is not a timezone"),
    (20, "names type 'nosuch'"),
]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", f"sqlite:///{tmp_path / 'record.db'}")
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)


def check(path: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--config", str(path), *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_every_problem_is_reported_at_once_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text(BROKEN)
    code, _, err = check(path, "config", "check", capsys=capsys)
    assert code == 3
    lines = err.splitlines()
    assert lines[0] == f"shipyard: {path}: {len(EXPECTED)} problems"
    for (line, phrase), shown in zip(EXPECTED, lines[1:], strict=True):
        assert shown.startswith(f"  {path}:{line}: ") and phrase in shown, shown
    timezone = next(x for x in lines if "Mars/Olympus" in x)
    assert "timezone" in timezone and "cron" not in timezone

    code, out, _ = check(path, "config", "check", "--json", capsys=capsys)
    report = json.loads(out)
    assert code == 3 and report["ok"] is False
    assert [(p["line"], p["file"]) for p in report["problems"]] == [
        (line, str(path)) for line, _ in EXPECTED
    ]

    code, _, err = check(path, "env", "list", capsys=capsys)
    assert code == 3 and f"{len(EXPECTED)} problems" in err, "every command loads the same way"


def test_the_sample_configuration_is_clean_and_says_so_as_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = check(EXAMPLES / "shipyard.yaml", "config", "check", "--json", capsys=capsys)
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and report["problems"] == []
    assert set(report["types"]) == {"test", "staging", "production"}


def test_service_fabric_names_are_checked_against_the_manifest_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stray = tmp_path / "Stray.xml"
    stray.write_text(
        (GETTING_STARTED / "ApplicationParameters/Cloud.xml")
        .read_text(encoding="utf-8-sig")
        .replace("</Parameters>", '<Parameter Name="Not_Declared" Value="1" /></Parameters>')
    )
    path = tmp_path / "shipyard.yaml"
    path.write_text(
        f"""\
version: 1
types:
  test:
    service_fabric:
      manifest: {GETTING_STARTED}/ApplicationPackageRoot/ApplicationManifest.xml
      parameters_file: {stray}
    parameters:
      WebService_InstanceCount: 2
      WebService_Typo: 3
  other:
    service_fabric:
      manifest: {tmp_path}/missing/ApplicationManifest.xml
"""
    )
    code, out, _ = check(path, "config", "check", "--json", capsys=capsys)
    problems = json.loads(out)["problems"]
    assert code == 3
    messages = [(p["line"], p["message"]) for p in problems]
    assert any(line == 6 and f"{stray} sets Not_Declared" in m for line, m in messages)
    assert any(line == 9 and "WebService_Typo (for type 'test')" in m for line, m in messages)
    assert any(line == 12 and "cannot be read" in m for line, m in messages)


def test_a_literal_secret_in_the_types_arm_parameters_file_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text(
        f"""\
version: 1
azure: {{subscription_id: 00000000-0000-0000-0000-000000000000}}
types:
  fabric:
    provider: azure
    azure:
      template: {SECURE_SF}/azuredeploy.json
      parameters_file: {SECURE_SF}/azuredeploy.parameters.json
"""
    )
    code, out, _ = check(path, "config", "check", "--json", capsys=capsys)
    (problem,) = json.loads(out)["problems"]
    assert code == 3 and problem["line"] == 7
    assert "adminPassword" in problem["message"] and "securestring" in problem["message"]
    assert f"{SECURE_SF}/azuredeploy.parameters.json gives a literal" in problem["message"]


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("a: &a [*a]\n", "an alias refers to itself"),
        ("a: !!python/object:os.system x\n", "cannot read this value"),
        ("a: !custom {b: 1}\n", "the tag !custom is not allowed"),
        ("a: 1\x00\n", "not valid YAML"),
        ("a: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
        ("a: " + "[" * 80 + "]" * 80 + "\n", "nested too deeply"),
        ("a: 1\na: 2\n", "'a' is given twice"),
        ("? [a, b]\n: 1\n", "a key must be plain text"),
        ("", "types: is required"),
        ("- a\n- b\n", "expected a mapping at the top"),
        ("a: b: c\n", "not valid YAML"),
    ],
)
def test_malformed_yaml_is_one_line_never_a_traceback(
    tmp_path: Path, text: str, phrase: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text(text)
    code, _, err = check(path, "config", "check", capsys=capsys)
    assert code == 3 and phrase in err
    assert len(err.strip().splitlines()) == 1, err


def test_an_alias_bomb_is_refused_quickly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, 10):
        lines.append(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]")
    path = tmp_path / "shipyard.yaml"
    path.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    code, _, err = check(path, "config", "check", capsys=capsys)
    assert code == 3 and "aliases of aliases" in err
    assert time.monotonic() - started < 5


def test_binary_and_huge_files_are_refused_without_reading_them_as_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    code, _, err = check(binary, "config", "check", capsys=capsys)
    assert code == 3 and "is not UTF-8 text" in err
    huge = tmp_path / "huge.yaml"
    huge.write_text("a: " + "x" * 10_000_000 + "\n")
    code, _, err = check(huge, "config", "check", capsys=capsys)
    assert code == 3 and "10.0 MB" in err and len(err) < 300


DM_APPROVERS = """\
version: 1
people: {carol: U0CAROL}
types:
  test:
    ttl: {default: 8h, max: 72h}
  staging:
    approval: {required: 1, approvers: [carol, zed, S0RELMGR, U0ERIN], dm: true}
promotion: [test, staging]
"""


def test_approvers_reached_by_dm_need_a_slack_user_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text(DM_APPROVERS)
    code, _, err = check(path, "config", "check", capsys=capsys)
    assert code == 3
    (problem,) = err.splitlines()  # one problem: S0RELMGR is a user group, U0ERIN an id
    assert problem.startswith(f"shipyard: {path}:7: "), err
    assert "approver 'zed' has no Slack user id" in problem and "dm: false" in problem
    path.write_text(DM_APPROVERS.replace(", zed", ""))
    assert check(path, "config", "check", capsys=capsys)[0] == 0


def test_a_pipeline_gated_type_needs_shipyards_identity_and_a_known_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text(
        "version: 1\n"
        "azure_devops: {organization_url: 'https://dev.azure.com/f', project: p, pipeline_id: 3}\n"
        "types:\n"
        "  staging:\n"
        "    engine: azure-pipelines\n"
        "    azure_devops: {source: branch}\n"
        "    approval: {required: 1, approvers: [bob]}\n",
        encoding="utf-8",
    )
    code, _, err = check(path, "config", "check", capsys=capsys)
    path.write_text(path.read_text().replace("source: branch", "source: tag"), encoding="utf-8")
    again, _, later = check(path, "config", "check", capsys=capsys)

    assert code == 3
    assert "shipyard.yaml:6: types.staging.azure_devops.source: Input should be 'build' or" in err
    assert again == 3
    assert "shipyard.yaml:7: type 'staging' is gated in its pipeline" in later
    assert "approver_identity" in later
