"""`config check` on the `azure_devops:` section and the types that deploy through it: each
problem once, with file and line, and a configuration Azure DevOps would accept passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main

PEOPLE = """\
version: 1
people: {carol: U0000CAROL, dave: U00000DAVE}
types:
  staging:
    engine: azure-pipelines
    approval: {required: 1, approvers: [carol, dave], timeout: 24h}
"""
GOOD = (
    PEOPLE
    + """\
azure_devops:
  organization_url: https://dev.azure.com/fabrikam
  project: Game
  pipeline_id: 12
  watch: [13]
  identities:
    carol: 3b3db741-9d03-4e32-a7c0-6c3dfc2013c1
    dave: 7f2a1c3e-9d03-4e32-a7c0-6c3dfc2013c2
  approver_identity: 5e1f0c2a-1111-4aaa-8bbb-5417a2d0c0de
  variable_group: shipyard
"""
)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", f"sqlite:///{tmp_path / 'record.db'}")
    for name in ("SHIPYARD_CONFIG", "AZURE_DEVOPS_ORG_URL", "AZURE_DEVOPS_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AZURE_DEVOPS_PIPELINE_ID", raising=False)


def check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    path = tmp_path / "shipyard.yaml"
    path.write_text(text, encoding="utf-8")
    code = main(["--config", str(path), "config", "check"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, [line.replace(str(path), "shipyard.yaml") for line in err.splitlines()]


def test_a_configuration_azure_devops_accepts_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for url in (
        "https://dev.azure.com/fabrikam",
        "https://dev.azure.com/fabrikam/",
        "https://fabrikam.visualstudio.com",
        "https://fabrikam.visualstudio.com/DefaultCollection",
        "https://tfs.example.com/tfs/Collection",  # Azure DevOps Server
    ):
        text = GOOD.replace("https://dev.azure.com/fabrikam", url)
        assert check(tmp_path, text, capsys) == (0, []), url


BAD = [
    # (line in the file, what is wrong, the phrase the problem says)
    (
        "organization_url: https://dev.azure.com/fabrikam/Game",
        8,
        "names more than the organization",
    ),
    (
        "organization_url: https://fabrikam.visualstudio.com/Game",
        8,
        "names more than the organization",
    ),
    ("organization_url: https://dev.azure.com", 8, "names no organization"),
    ("organization_url: http://dev.azure.com/fabrikam", 8, "answers on https only"),
    ("organization_url: https://me:hunter2@dev.azure.com/fabrikam", 8, "carries credentials"),
    ("organization_url: dev.azure.com/fabrikam", 8, "is not a URL"),
    ("organization_url: https://dev.azure.com/fabrikam?x=1", 8, "has a query or fragment"),
    ("project: 'Game/Backend'", 9, "'Game/Backend' contains /: no Azure DevOps project"),
    ("project: _Game", 9, "starts with _ or . or ends with ."),
    ("pipeline_id: 0", 10, "azure_devops.pipeline_id 0 is not a pipeline id"),
    ("watch: [13, 13]", 11, "azure_devops.watch lists pipeline 13 again"),
    ("watch: [12]", 11, "azure_devops.watch lists pipeline 12 again"),
    ("variable_group: ' shipyard'", 16, "' shipyard' is not a variable group's name"),
]


@pytest.mark.parametrize(("line", "number", "phrase"), BAD, ids=[b[0] for b in BAD])
def test_each_wrong_setting_is_one_problem_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, number: int, phrase: str
) -> None:
    key = line.split(":")[0]
    lines = GOOD.splitlines()
    (at,) = [i for i, text in enumerate(lines) if text.startswith(f"  {key}:")]
    lines[at] = f"  {line}"
    code, said = check(tmp_path, "\n".join(lines) + "\n", capsys)
    assert code == 3
    (one,) = said  # one problem: one line, file:line, what is wrong — what to do
    assert one.startswith(f"shipyard: shipyard.yaml:{number}: "), one
    assert phrase in one and " — " in one
    assert "hunter2" not in one


def test_identities_are_shipyard_people_each_with_their_own_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace(
        "    dave: 7f2a1c3e-9d03-4e32-a7c0-6c3dfc2013c2\n",
        "    dave: 3B3DB741-9D03-4E32-A7C0-6C3DFC2013C1\n"
        "    zed: 0c6b3a8e-0000-4000-8000-00000000ca01\n"
        "    erin: carol@example.com\n",
    )
    code, said = check(tmp_path, text, capsys)
    assert code == 3
    assert said[1:] == [
        "  shipyard.yaml:14: azure_devops.identities: carol and dave have the same identity — "
        "map each Azure DevOps identity to one person, or Shipyard cannot tell who acted",
        "  shipyard.yaml:15: azure_devops.identities names 'zed', who is not a Shipyard person "
        "— use a name under people: (carol, dave)",
        "  shipyard.yaml:16: azure_devops.identities names 'erin', who is not a Shipyard person "
        "— use a name under people: (carol, dave)",
        "  shipyard.yaml:16: azure_devops.identities.erin: 'carol@example.com' is not an Azure "
        "DevOps identity id — identity ids are GUIDs (Organization settings → Users, or the "
        "REST API)",
    ]


def test_an_approval_timeout_an_azure_devops_check_cannot_take_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, said = check(tmp_path, GOOD.replace("timeout: 24h", "timeout: 45d"), capsys)
    assert code == 3
    (one,) = said
    assert one.startswith("shipyard: shipyard.yaml:6: type 'staging': an approval timeout of")
    assert "is not one an Azure DevOps check takes" in one


def test_a_value_from_the_environment_is_named_by_its_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_DEVOPS_ORG_URL", "https://dev.azure.com/fabrikam/Game")
    code, said = check(tmp_path, GOOD, capsys)
    assert code == 3
    (one,) = said
    assert "AZURE_DEVOPS_ORG_URL 'https://dev.azure.com/fabrikam/Game' names more" in one


def test_shipyards_identity_is_an_identity_and_nobodys_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipyard = "5e1f0c2a-1111-4aaa-8bbb-5417a2d0c0de"
    code, said = check(tmp_path, GOOD.replace(shipyard, "shipyard@fabrikam.com"), capsys)
    assert code == 3
    (one,) = said
    assert one.startswith("shipyard: shipyard.yaml:15: azure_devops.approver_identity ")
    assert "is not an Azure DevOps identity id" in one

    carols = "3b3db741-9d03-4e32-a7c0-6c3dfc2013c1"
    code, said = check(tmp_path, GOOD.replace(shipyard, carols.upper()), capsys)
    assert code == 3
    (one,) = said
    assert "approver_identity is carol's identity: carol could answer every gate" in one


def test_a_types_pipeline_settings_go_with_the_pipeline_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace(
        "    engine: azure-pipelines\n",
        "    engine: azure-pipelines\n    azure_devops: {source: tag}\n",
    )
    assert check(tmp_path, text, capsys) == (0, [])
    code, said = check(tmp_path, text.replace("engine: azure-pipelines", "engine: direct"), capsys)
    assert code == 3
    (one,) = said
    assert one.startswith(
        "shipyard: shipyard.yaml:6: type 'staging' has an azure_devops: section but deploys "
        "with engine direct"
    )


def test_a_type_may_start_a_pipeline_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = GOOD.replace(
        "    engine: azure-pipelines\n",
        "    engine: azure-pipelines\n    azure_devops: {source: tag, pipeline_id: 14}\n",
    ).replace("  pipeline_id: 12\n", "")
    # The type names its pipeline, so the section needs none.
    assert check(tmp_path, own, capsys) == (0, [])
    code, said = check(tmp_path, own.replace("pipeline_id: 14", "pipeline_id: 0"), capsys)
    assert code == 3 and len(said) == 1 and said[0].startswith("shipyard: shipyard.yaml:6:"), said
    # Without either, the type has no pipeline to start.
    code, said = check(tmp_path, own.replace(", pipeline_id: 14", ""), capsys)
    assert code == 3 and any("no pipeline_id" in line for line in said), said


def test_a_gated_direct_type_needs_the_approver_identity_sync_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `pipelines sync` writes every gated type's approval as a check, whatever its engine.
    direct = GOOD.replace("engine: azure-pipelines", "engine: direct")
    assert check(tmp_path, direct, capsys) == (0, [])
    without = direct.replace("  approver_identity: 5e1f0c2a-1111-4aaa-8bbb-5417a2d0c0de\n", "")
    assert without != direct
    code, said = check(tmp_path, without, capsys)
    assert code == 3
    (one,) = said
    assert one.startswith(
        "shipyard: shipyard.yaml:6: type 'staging' is gated in Slack, and syncing pipelines "
        "makes that an Azure DevOps check, but azure_devops has no approver_identity"
    )
    assert "set azure_devops.approver_identity" in one
    # Without azure_devops: there is nothing to sync, so nothing to ask for.
    assert check(tmp_path, PEOPLE.replace("engine: azure-pipelines", "engine: direct"), capsys) == (
        0,
        [],
    )
