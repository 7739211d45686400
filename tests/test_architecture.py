"""The shape of the code: the core imports no edge; the edges meet only in the composition root."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def lint_imports(*config: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache", *config],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=300,
    )


def test_the_import_contracts_hold() -> None:
    """pyproject.toml's import-linter contracts (indirect imports included): the core imports no
    edge and no SDK outside its named adapters; bot and pipelines meet only in the composition
    root; no cycles. `make test` runs lint-imports too."""
    result = lint_imports()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr


def test_the_contracts_see_an_indirect_forbidden_import(tmp_path: Path) -> None:
    """A domain module that reaches Slack through another module breaks a contract."""
    package = tmp_path / "sandbox"
    for name in ("environments", "bot", "pipelines"):
        shutil.copytree(
            ROOT / name, package / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    shutil.copy(ROOT / "pyproject.toml", package / "pyproject.toml")
    # parameters -> secrets -> (new) slack_sdk: two hops from the domain.
    secrets = package / "environments" / "secrets.py"
    secrets.write_text(secrets.read_text(encoding="utf-8") + "\nimport slack_sdk  # noqa\n")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=package,
        text=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(package)},
    )
    assert result.returncode != 0
    assert "environments.secrets -> slack_sdk" in result.stdout


@pytest.mark.parametrize(
    "path", [*modules("environments"), *modules("bot"), *modules("pipelines")], ids=rel
)
def test_every_module_says_what_it_owns_in_one_line(path: Path) -> None:
    if "migrations/versions" in rel(path):
        pytest.skip("generated migration")
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring, f"{rel(path)} has no module docstring"
    assert len(docstring.splitlines()[0]) <= 100
