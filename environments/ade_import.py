"""A whole ADE catalog looked over, and turned into the `types:` entries of shipyard.yaml."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from environments import ade
from environments.errors import ConfigError, InvalidInput, ShipyardError
from environments.model import check_environment_name
from environments.providers import ade_templates
from environments.yamlsource import load_yaml

TYPES_LINE = re.compile(r"^types:\s*(#.*)?$", re.M)


@dataclass(frozen=True)
class Item:
    """One catalog item and every problem Shipyard has with it (manifest, runner, template)."""

    definition: ade.Definition
    problems: tuple[str, ...]
    template: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def survey(root: Path, *, compile_bicep: bool = True) -> list[Item]:
    """Every item under `root`, each checked as `ade:` would check it."""
    items = []
    for folder in ade.find_definitions(root):
        try:
            definition = ade.load_definition(folder)
        except ConfigError as exc:
            blank = ade.Definition(folder=folder, manifest=folder, name=folder.name)
            items.append(Item(blank, (exc.one_line(),)))
            continue
        if definition.problems:
            items.append(Item(definition, tuple(map(str, definition.problems))))
            continue
        try:
            template = ade_templates.template_of(definition, compile_bicep=compile_bicep)
        except ShipyardError as exc:
            items.append(Item(definition, (exc.one_line(),)))
            continue
        if template is None:
            items.append(Item(definition, ()))
            continue
        problems = tuple(map(str, ade_templates.cross_check(definition, template)))
        items.append(Item(definition, problems, template.path.name))
    return items


def type_name(definition: ade.Definition, prefix: str = "") -> str:
    """`WebApp` → `webapp`, `My Function_App` → `my-function-app`, with the prefix in front."""
    base = re.sub(r"[^a-z0-9]+", "-", definition.name.lower()).strip("-")
    name = f"{prefix}{base}"
    try:
        check_environment_name(name)
    except ShipyardError:
        raise InvalidInput(
            f"{definition.manifest}: '{definition.name}' does not make a type name ('{name}')",
            hint="type names are 3-40 lowercase letters, digits and hyphens starting with a "
            "letter: choose a --type-prefix (e.g. ade-)",
        ) from None
    return name


def types_block(items: list[Item], config: Path, prefix: str = "") -> tuple[str, list[str]]:
    """The `types:` entries for the usable items, with `ade:` paths relative to `config`'s
    folder; and a line for each item left out, saying why."""
    entries: dict[str, dict[str, object]] = {}
    skipped = []
    for item in items:
        if not item.ok:
            skipped.append(
                f"{item.definition.name or item.definition.folder.name}: left out, "
                f"{len(item.problems)} problem(s): {item.problems[0]}"
            )
            continue
        name = type_name(item.definition, prefix)
        if name in entries:
            raise InvalidInput(
                f"two catalog items become type '{name}'",
                hint="rename one of them in its manifest, or import them separately",
            )
        relative = Path(os.path.relpath(item.definition.folder.resolve(), config.parent.resolve()))
        entries[name] = {
            "provider": "azure",
            "ade": relative.as_posix(),
            "ttl": {"default": "8h", "max": "72h"},
        }
    if not entries:
        return "", skipped
    text = yaml.safe_dump({"types": entries}, sort_keys=False, default_flow_style=False)
    return text, skipped


def write_types(config: Path, block: str) -> list[str]:
    """Add the block's types to shipyard.yaml (a new file when there is none); refuse a type
    it already has. Comments and layout of the existing file are kept: the entries are inserted
    as text under its `types:` line. Returns the names added."""
    added = yaml.safe_load(block)["types"]
    if not config.exists():
        config.write_text(
            "# Written by 'shipyard catalog import'. Set azure.subscription_id before use.\n"
            "version: 1\nazure:\n  subscription_id: ''\n" + block,
            encoding="utf-8",
        )
        load_yaml(config)
        return list(added)
    source = load_yaml(config)
    existing = source.data.get("types") if isinstance(source.data, dict) else None
    clash = sorted(set(added) & set(existing or {}))
    if clash:
        raise InvalidInput(
            f"{config}: already has type(s) {', '.join(clash)}",
            hint="choose a --type-prefix, or remove those types first",
        )
    text = config.read_text(encoding="utf-8")
    entries = block.split("\n", 1)[1]  # without the leading "types:" line
    found = TYPES_LINE.search(text)
    if found is None:
        updated = text + ("" if text.endswith("\n") else "\n") + block
    elif not isinstance(existing, dict):
        raise ConfigError(
            f"{source.where(('types',))}: 'types' is not a mapping", hint="fix shipyard.yaml"
        )
    else:
        indent = _indent(text[found.end() :])
        shifted = "".join(
            (indent + line[2:] if line.strip() else line)
            for line in entries.splitlines(keepends=True)
        )
        updated = text[: found.end()] + "\n" + shifted.rstrip("\n") + text[found.end() :]
    scratch = config.with_name(f".{config.name}.import")
    scratch.write_text(updated, encoding="utf-8")
    try:
        load_yaml(scratch)
    except ConfigError:
        scratch.unlink()
        raise
    scratch.replace(config)
    return list(added)


def _indent(rest: str) -> str:
    """The indentation of the first entry under `types:` (two spaces when unknown)."""
    for line in rest.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line[: len(line) - len(line.lstrip())] or "  "
    return "  "
