"""The shape of the code: the core imports no edge; the edges meet only in the composition root."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EDGE_LIBRARIES = (
    "slack_bolt",
    "slack_sdk",
    "azure",
    "starlette",
    "fastapi",
    "uvicorn",
    "httpx",
    "requests",
    "aiohttp",
    "flask",
)
# The Azure adapters of the core are edges that happen to live beside what they adapt.
CORE_ADAPTERS = {"environments/providers/azure.py", "environments/loadtests/azure.py"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", modules("environments"), ids=rel)
def test_the_core_imports_no_slack_azure_or_web_library(path: Path) -> None:
    if rel(path) in CORE_ADAPTERS:
        pytest.skip("an Azure adapter")
    bad = {m for m in imports(path) if m.split(".")[0] in EDGE_LIBRARIES}
    assert not bad, f"{rel(path)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", modules("environments"), ids=rel)
def test_the_core_imports_no_edge_package(path: Path) -> None:
    bad = {m for m in imports(path) if m.split(".")[0] in ("bot", "pipelines")}
    assert not bad, f"{rel(path)} imports {sorted(bad)}"


@pytest.mark.parametrize(("package", "other"), [("bot", "pipelines"), ("pipelines", "bot")])
def test_edges_do_not_import_each_other_outside_the_composition_root(
    package: str, other: str
) -> None:
    for path in modules(package):
        # The composition root: where the Slack and Azure DevOps edges are wired together.
        if rel(path) in ("bot/runtime.py", "bot/cli_pipelines.py", "bot/pipeline_bridge.py"):
            continue
        bad = {m for m in imports(path) if m.split(".")[0] == other}
        assert not bad, f"{rel(path)} imports {sorted(bad)}"


@pytest.mark.parametrize(
    "path", [*modules("environments"), *modules("bot"), *modules("pipelines")], ids=rel
)
def test_every_module_says_what_it_owns_in_one_line(path: Path) -> None:
    if "migrations/versions" in rel(path):
        pytest.skip("generated migration")
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring, f"{rel(path)} has no module docstring"
    assert len(docstring.splitlines()[0]) <= 100


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from slack_sdk import WebClient\nimport azure.mgmt.resource\n")
    assert imports(sample) == {"slack_sdk", "azure.mgmt.resource"}
