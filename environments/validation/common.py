"""What every check shares: the catalog, where each value came from, and the problems found."""

from __future__ import annotations

from pathlib import Path

from environments.catalog import Catalog
from environments.errors import ConfigProblem
from environments.yamlsource import Loc, SourcedYaml


class Problems:
    """The problems found so far in one configuration, each placed at its file and line."""

    def __init__(self, catalog: Catalog, source: SourcedYaml) -> None:
        self.catalog = catalog
        self.source = source
        self.base = Path(catalog.base_dir)
        self.problems: list[ConfigProblem] = []

    def add(self, loc: Loc, message: str, hint: str = "") -> None:
        self.problems.append(ConfigProblem(self.source.where(loc), message, hint))


def text_of(value: object) -> str:
    """A parameter value as the text it becomes (YAML booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
