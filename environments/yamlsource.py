"""Read YAML keeping where every value came from, so errors can name file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from environments.errors import ConfigError

Loc = tuple[str | int, ...]


@dataclass
class SourcedYaml:
    """A YAML document as plain data plus the line (1-based) of every mapping key and item."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int:
        """The line of the deepest known location on the way to `loc`."""
        for end in range(len(loc), -1, -1):
            found = self.lines.get(tuple(loc[:end]))
            if found is not None:
                return found
        return 1

    def where(self, loc: Loc) -> str:
        return f"{self.path}:{self.line_of(loc)}"


def load_yaml(path: Path) -> SourcedYaml:
    """Load one YAML file; syntax errors and duplicate keys become ConfigError with file:line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file",
            hint="pass --config PATH, set SHIPYARD_CONFIG, or run from a folder with shipyard.yaml",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})", hint="check the file") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError(
            f"{path}:{line}: not valid YAML ({exc.problem or exc.context})",
            hint="fix the syntax at that line",
        ) from None
    sourced = SourcedYaml(path=path, data=None)
    sourced.data = _convert(node, (), sourced) if node is not None else {}
    return sourced


def _convert(node: yaml.Node, loc: Loc, out: SourcedYaml) -> Any:
    out.lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in result:
                raise ConfigError(
                    f"{out.path}:{key_node.start_mark.line + 1}: '{key}' is given twice",
                    hint="keep one of them",
                )
            out.lines[(*loc, key)] = key_node.start_mark.line + 1
            result[key] = _convert(value_node, (*loc, key), out)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            out.lines[(*loc, index)] = item.start_mark.line + 1
            items.append(_convert(item, (*loc, index), out))
        return items
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
