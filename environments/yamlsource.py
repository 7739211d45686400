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
    """Load one YAML file; every way it can be malformed becomes one ConfigError with file:line.

    Syntax errors, duplicate keys, unknown tags, keys that are not plain text, aliases that
    refer to themselves or expand beyond any real configuration (a "billion laughs" bomb is
    refused in milliseconds, not expanded), nesting too deep, NUL bytes, files too large.
    """
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(
                f"{path}: is {size / 1e6:.1f} MB; a configuration is a few kilobytes",
                hint="point --config at shipyard.yaml, not at a data file",
            )
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file",
            hint="pass --config PATH, set SHIPYARD_CONFIG, or run from a folder with shipyard.yaml",
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path}: is not UTF-8 text", hint="save it as UTF-8 (it looks binary)"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot be read ({exc.strerror or exc})", hint="check the file"
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError(
            f"{path}:{line}: not valid YAML ({exc.problem or exc.context})",
            hint="fix the syntax at that line",
        ) from None
    except yaml.YAMLError as exc:  # e.g. a NUL byte or another unprintable character
        detail = str(exc).splitlines()[0][:120]
        raise ConfigError(f"{path}: not valid YAML ({detail})", hint="fix the file") from None
    except RecursionError:
        raise ConfigError(
            f"{path}: nested too deeply to be a configuration", hint="flatten the file"
        ) from None
    sourced = SourcedYaml(path=path, data=None)
    if node is not None:
        sourced.data = _Converter(sourced).convert(node, (), ())
    else:
        sourced.data = {}
    return sourced


MAX_BYTES = 1_000_000
MAX_VALUES = 20_000
MAX_DEPTH = 64
STANDARD_TAG = "tag:yaml.org,2002:"


class _Converter:
    """Nodes → plain data and lines, within budgets an alias cannot multiply its way past."""

    def __init__(self, out: SourcedYaml) -> None:
        self.out = out
        self.count = 0

    def fail(self, node: yaml.Node, message: str, hint: str) -> ConfigError:
        return ConfigError(f"{self.out.path}:{node.start_mark.line + 1}: {message}", hint=hint)

    def convert(self, node: yaml.Node, loc: Loc, path: tuple[int, ...]) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise self.fail(
                node,
                f"expands to more than {MAX_VALUES:,} values (aliases of aliases?)",
                "write the configuration out; it should be a few hundred values",
            )
        if id(node) in path:
            raise self.fail(node, "an alias refers to itself", "remove the recursive alias")
        if len(path) > MAX_DEPTH:
            raise self.fail(node, "nested too deeply to be a configuration", "flatten it")
        if not node.tag.startswith(STANDARD_TAG):
            raise self.fail(
                node, f"the tag {node.tag[:40]} is not allowed", "remove it; plain YAML only"
            )
        out = self.out
        out.lines.setdefault(loc, node.start_mark.line + 1)
        inside = (*path, id(node))
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(key_node, "a key must be plain text", "write KEY: VALUE")
                key = str(key_node.value)
                if key == "<<":
                    raise self.fail(
                        key_node, "merge keys (<<) are not supported", "write the keys out"
                    )
                if key in result:
                    raise self.fail(key_node, f"'{key[:60]}' is given twice", "keep one of them")
                out.lines[(*loc, key)] = key_node.start_mark.line + 1
                result[key] = self.convert(value_node, (*loc, key), inside)
            return result
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                out.lines[(*loc, index)] = item.start_mark.line + 1
                items.append(self.convert(item, (*loc, index), inside))
            return items
        loader = yaml.SafeLoader("")
        try:
            return loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            detail = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise self.fail(node, f"cannot read this value ({detail[:120]})", "fix it") from None
        finally:
            loader.dispose()
