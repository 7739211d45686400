"""Tests carry their own data: no test refers to a path outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from tests.reference import REFERENCE

TESTS = Path(__file__).resolve().parent
# Ways a test could reach beyond the clone: a folder beside it, a parent of the repo root.
OUTSIDE = re.compile(r"shared/reference|[\"']shared[\"']|ROOT\.parent|parents\[[2-9]\]|(\.\./){4,}")


def test_no_test_refers_to_a_path_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(TESTS)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*"))
        if path.suffix in {".py", ".yaml", ".yml", ".json", ".toml", ".cfg"}
        and path.name != Path(__file__).name
        and REFERENCE not in path.parents
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []


def test_the_reference_data_is_inside_the_repository_with_its_attribution() -> None:
    assert REFERENCE.is_dir()
    assert REFERENCE.resolve().is_relative_to(TESTS.parent)
    readme = (TESTS / "data" / "README.md").read_text(encoding="utf-8")
    for folder in sorted(p.name for p in REFERENCE.iterdir()):
        assert f"reference/{folder}" in readme, f"{folder} has no source/license line"
