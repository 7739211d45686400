"""Table tests for loading shipyard.yaml: the example loads, every mistake names file:line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from environments.catalog import config_path, load_catalog
from environments.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shipyard.yaml"


def test_the_example_loads() -> None:
    catalog = load_catalog(EXAMPLE)
    assert list(catalog.types) == ["test", "staging", "production"]
    assert catalog.promotion == ("test", "staging", "production")
    assert [t.name for t in catalog.types.values()] == ["test", "staging", "production"]
    test = catalog.type("test")
    assert test.ttl is not None
    assert (test.ttl.default, test.ttl.max) == (timedelta(hours=8), timedelta(hours=72))
    assert catalog.type("staging").ttl is None
    assert catalog.type("production").protected
    production_gate = catalog.type("production").approval
    assert production_gate is not None
    assert production_gate.required == 2
    assert catalog.members(production_gate.approvers) == {"carol", "dave", "erin"}
    assert catalog.next_on_path("test") == "staging"
    assert catalog.base_dir == str(EXAMPLE.parent)


BROKEN = [
    pytest.param(
        """\
types:
  test:
    description: a: b
""",
        3,
        "not valid YAML (mapping values are not allowed here)",
        id="yaml-syntax",
    ),
    pytest.param(
        """\
types:
  test: {}
  staging: {}
  test: {}
""",
        4,
        "'test' is given twice",
        id="duplicate-key",
    ),
    pytest.param(
        """\
types:
  test: {}
  staging: {}
promtion: [test, staging]
""",
        4,
        "promtion: is not a known setting",
        id="unknown-top-level-setting",
    ),
    pytest.param(
        """\
types:
  test:
    descripton: short-lived
""",
        3,
        "types.test.descripton: is not a known setting",
        id="unknown-type-setting",
    ),
    pytest.param(
        """\
types:
  test:
    ttl: {default: 8x, max: 72h}
""",
        3,
        "types.test.ttl.default: '8x' is not a duration",
        id="bad-duration",
    ),
    pytest.param(
        """\
types:
  test:
    description: short-lived
    ttl: {default: 80h, max: 72h}
""",
        4,
        "type 'test': ttl.default is longer than ttl.max",
        id="ttl-default-above-max",
    ),
    pytest.param(
        """\
types:
  test: {}
  staging: {}
promotion:
  - test
  - stagin
""",
        6,
        "promotion path names unknown type 'stagin'",
        id="promotion-unknown-type",
    ),
    pytest.param(
        """\
types:
  test: {}
  staging: {}
promotion: [test, staging, test]
""",
        4,
        "promotion path names a type twice",
        id="promotion-type-twice",
    ),
    pytest.param(
        """\
roles:
  managers: [carol, dave]
types:
  production:
    approval:
      required: 3
      approvers: [managers]
""",
        6,
        "type 'production' needs 3 approvals but only 2 approver(s) can give one",
        id="required-above-approvers",
    ),
    pytest.param(
        """\
types:
  test: {}
  Test_Env: {}
""",
        3,
        "type name 'Test_Env' is not valid",
        id="invalid-type-name",
    ),
    pytest.param(
        """\
types:
  test:
    provider: gcp
""",
        3,
        "types.test.provider: Input should be 'local'",
        id="unknown-provider",
    ),
    pytest.param(
        """\
version: 1
admins: [dave]
""",
        1,
        "types: is required",
        id="missing-types",
    ),
    pytest.param("", 1, "types: is required", id="empty-file"),
    pytest.param(
        """\
- test
- staging
""",
        1,
        "expected a mapping at the top",
        id="not-a-mapping",
    ),
    pytest.param(
        """\
types:
  test: {}
parameters:
  GAME_MOTD: [hello, world]
""",
        4,
        "parameters.GAME_MOTD: must be a text, a number or true/false",
        id="parameter-not-a-scalar",
    ),
]


@pytest.mark.parametrize(("text", "line", "phrase"), BROKEN)
def test_malformed_config_names_file_line_and_problem(
    tmp_path: Path, text: str, line: int, phrase: str
) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_catalog(path)
    assert refused.value.reason.startswith(f"{path}:{line}: ")
    assert phrase in refused.value.reason
    assert refused.value.hint


def test_every_problem_is_listed_at_once_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text("types:\n  test:\n    protectd: true\npromtion: []\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_catalog(path)
    assert refused.value.reason.startswith(f"{path}: 2 problems: ")
    assert [str(p).split(" — ")[0] for p in refused.value.problems] == [
        f"{path}:3: types.test.protectd: is not a known setting",
        f"{path}:4: promtion: is not a known setting",
    ]
    assert [hint.command for hint in refused.value.hints] == ["config check"]


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError) as refused:
        load_catalog(path)
    assert refused.value.reason == f"{path}: no such file"
    assert "--config PATH" in refused.value.hint
    assert "SHIPYARD_CONFIG" in refused.value.hint


@pytest.mark.parametrize(
    ("explicit", "environment", "expected"),
    [
        ("given.yaml", "from-env.yaml", "given.yaml"),
        (None, "from-env.yaml", "from-env.yaml"),
        (None, None, "shipyard.yaml"),
        (None, "", "shipyard.yaml"),
        ("sub/given.yaml", None, "sub/given.yaml"),
    ],
)
def test_config_path_precedence(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    explicit: str | None,
    environment: str | None,
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    if environment is None:
        monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    else:
        monkeypatch.setenv("SHIPYARD_CONFIG", environment)
    assert config_path(explicit) == tmp_path.resolve() / expected
