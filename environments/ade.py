"""Azure Deployment Environments catalog items (environment definitions) read and checked.

An item is a folder holding a manifest (`environment.yaml`, older catalogs `manifest.yaml`) and
the template it names. Every problem of a manifest is collected and reported at once, each naming
the manifest's file and line, so a team moving a catalog fixes it in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from environments.errors import ConfigError, ConfigProblem
from environments.inputs import KINDS, Input, as_text
from environments.yamlsource import Loc, SourcedYaml, load_yaml

MANIFESTS = ("environment.yaml", "environment.yml", "manifest.yaml", "manifest.yml")
FIELDS = ("name", "version", "summary", "description", "runner", "templatePath", "parameters")
PARAMETER_FIELDS = (
    "id",
    "name",
    "description",
    "type",
    "required",
    "allowed",
    "default",
    "readOnly",
)
RUNNERS = {"arm": "ARM", "bicep": "Bicep"}
ID_RULE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
PYTHON_KINDS: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "number": (int, float),
    "integer": int,
    "boolean": bool,
    "object": dict,
    "array": list,
}


@dataclass(frozen=True)
class Definition:
    """One ADE environment definition: what its manifest says, and what is wrong with it."""

    folder: Path
    manifest: Path
    name: str
    version: str = ""
    summary: str = ""
    description: str = ""
    runner: str = ""
    template_path: str = ""
    inputs: tuple[Input, ...] = ()
    problems: tuple[ConfigProblem, ...] = ()
    lines: Mapping[str, int] = field(default_factory=dict, compare=False)

    @property
    def template_file(self) -> Path:
        return self.folder / self.template_path

    def where(self, parameter: str | None = None) -> str:
        """`manifest:line` of a parameter (or of the manifest's top)."""
        return f"{self.manifest}:{self.lines.get(parameter or '', 1)}"

    def headline(self) -> str:
        """`name version — summary`, for help texts and forms."""
        text = f"{self.name} {self.version}".strip()
        return f"{text} — {self.summary}" if self.summary else text

    def require_usable(self) -> None:
        """Refuse a definition with problems, listing every one of them."""
        if self.problems:
            raise ConfigError.of(str(self.manifest), list(self.problems))


def find_manifest(folder: Path) -> Path | None:
    for name in MANIFESTS:
        if (folder / name).is_file():
            return folder / name
    return None


def load_definition(folder: Path) -> Definition:
    """Read one catalog item. Problems in the manifest are collected, not raised; a folder with
    no manifest at all, or YAML that does not parse, is a ConfigError."""
    manifest = find_manifest(folder)
    if manifest is None:
        raise ConfigError(
            f"{folder}: no environment definition here (no {' or '.join(MANIFESTS[::2])})",
            hint="point 'ade:' at a catalog item's folder, e.g. catalog/Environments/WebApp",
        )
    return _read(folder, load_yaml(manifest))


def find_definitions(root: Path) -> Iterator[Path]:
    """Every catalog item's folder under `root` (itself included), in a stable order."""
    if not root.is_dir():
        raise ConfigError(f"{root}: no such folder", hint="give the folder of an ADE catalog")
    if find_manifest(root):
        yield root
        return
    for path in sorted(root.rglob("*")):
        # One manifest per folder: the first of MANIFESTS that is there.
        if path.name in MANIFESTS and path.is_file() and find_manifest(path.parent) == path:
            yield path.parent


class _Reader:
    """Collects problems with the line they were found on."""

    def __init__(self, source: SourcedYaml) -> None:
        self.source = source
        self.problems: list[ConfigProblem] = []

    def problem(self, loc: Loc, text: str) -> None:
        self.problems.append(ConfigProblem(self.source.where(loc), text))

    def text(self, data: Mapping[str, Any], loc: Loc, key: str, *, required: bool) -> str:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(loc, f"'{key}' is required")
            return ""
        if isinstance(value, bool | list | dict):
            self.problem((*loc, key), f"'{key}' must be text")
            return ""
        return str(value)

    def flag(self, data: Mapping[str, Any], loc: Loc, key: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            self.problem((*loc, key), f"'{key}' must be true or false, got {value!r}")
            return False
        return value


def _read(folder: Path, source: SourcedYaml) -> Definition:
    reader = _Reader(source)
    data = source.data
    if not isinstance(data, dict):
        reader.problem((), "expected a mapping (name, runner, templatePath, parameters)")
        data = {}
    for key in data:
        if key not in FIELDS:
            reader.problem((key,), f"'{key}' is not a field of an environment definition")
    name = reader.text(data, (), "name", required=True)
    runner_text = reader.text(data, (), "runner", required=True)
    runner = RUNNERS.get(runner_text.lower(), runner_text)
    template_path = reader.text(data, (), "templatePath", required=runner in RUNNERS.values())
    if runner_text and runner not in RUNNERS.values():
        what = (
            "Terraform"
            if runner.lower() == "terraform"
            else f"'{runner}' (a custom container image)"
        )
        reader.problem(
            ("runner",),
            f"runner {what} is not supported by Shipyard; it deploys ARM templates (runner ARM, "
            "or Bicep compiled to ARM): convert this item, or keep it in ADE until it is",
        )
    elif template_path and not (folder / template_path).is_file():
        reader.problem(("templatePath",), f"templatePath '{template_path}' is not a file here")
    elif runner == "Bicep" and template_path and not template_path.endswith(".bicep"):
        reader.problem(("templatePath",), "runner Bicep needs templatePath to name a .bicep file")
    inputs, lines = _parameters(reader, data.get("parameters"))
    return Definition(
        folder=folder,
        manifest=source.path,
        name=name,
        version=reader.text(data, (), "version", required=False),
        summary=reader.text(data, (), "summary", required=False),
        description=reader.text(data, (), "description", required=False),
        runner=runner,
        template_path=template_path,
        inputs=tuple(inputs),
        problems=tuple(reader.problems),
        lines={"": 1, **lines},
    )


def _parameters(reader: _Reader, raw: Any) -> tuple[list[Input], dict[str, int]]:
    if raw is None:
        return [], {}
    if not isinstance(raw, list):
        reader.problem(("parameters",), "'parameters' must be a list of parameters")
        return [], {}
    inputs: list[Input] = []
    lines: dict[str, int] = {}
    for index, entry in enumerate(raw):
        loc: Loc = ("parameters", index)
        if not isinstance(entry, dict):
            reader.problem(loc, "a parameter must be a mapping with id and type")
            continue
        for key in entry:
            if key not in PARAMETER_FIELDS:
                reader.problem((*loc, key), f"'{key}' is not a field of a parameter")
        ident = reader.text(entry, loc, "id", required=True)
        if ident and not ID_RULE.fullmatch(ident):
            reader.problem((*loc, "id"), f"id '{ident}' is not a parameter name")
        if ident in lines:
            reader.problem(
                (*loc, "id"),
                f"parameter id '{ident}' is given twice (first on line {lines[ident]})",
            )
        kind = reader.text(entry, loc, "type", required=True)
        if kind and kind not in KINDS:
            reader.problem(
                (*loc, "type"), f"type '{kind}' is not one of: {', '.join(KINDS)} ({ident})"
            )
            kind = ""
        required = reader.flag(entry, loc, "required")
        read_only = reader.flag(entry, loc, "readOnly")
        allowed = entry.get("allowed")
        if allowed is not None and (not isinstance(allowed, list) or not allowed):
            reader.problem((*loc, "allowed"), "'allowed' must be a non-empty list")
            allowed = None
        default = entry.get("default")
        if kind:
            for position, value in enumerate(allowed or []):
                if not _fits(value, kind):
                    reader.problem(
                        (*loc, "allowed", position), f"allowed value {value!r} is not a {kind}"
                    )
            if default is not None and not _fits(default, kind):
                reader.problem((*loc, "default"), f"default {default!r} is not a {kind}")
            elif default is not None and allowed and default not in allowed:
                reader.problem((*loc, "default"), f"default {default!r} is not in 'allowed'")
        if read_only and default is None:
            reader.problem((*loc, "readOnly"), f"read-only parameter '{ident}' needs a default")
        if not ident or ident in lines:
            continue
        lines[ident] = reader.source.line_of(loc)
        inputs.append(
            Input(
                id=ident,
                label=reader.text(entry, loc, "name", required=False) or ident,
                kind=kind or "string",
                description=reader.text(entry, loc, "description", required=False),
                required=required,
                allowed=tuple(allowed or ()),
                default=default,
                read_only=read_only,
            )
        )
    return inputs, lines


def _fits(value: Any, kind: str) -> bool:
    if kind in ("number", "integer") and isinstance(value, bool):
        return False
    return isinstance(value, PYTHON_KINDS[kind])


def describe(definition: Definition) -> dict[str, Any]:
    """A definition as plain data (for --json and tables)."""
    return {
        "folder": str(definition.folder),
        "name": definition.name,
        "version": definition.version,
        "summary": definition.summary,
        "description": definition.description,
        "runner": definition.runner,
        "templatePath": definition.template_path,
        "parameters": [
            {
                "id": i.id,
                "name": i.label,
                "type": i.kind,
                "required": i.required,
                "allowed": list(i.allowed),
                "default": i.default,
                "readOnly": i.read_only,
                "description": i.description,
            }
            for i in definition.inputs
        ],
        "problems": [str(p) for p in definition.problems],
    }


def parameter_summary(definition: Definition) -> str:
    """`name*, runtime=dotnet-isolated [6], …` — ids, * when required, defaults and choices."""
    parts = []
    for i in definition.inputs:
        text = i.id + ("*" if i.required and i.default is None else "")
        if i.default is not None:
            text += f"={as_text(i.default)}"
        if i.allowed:
            text += f" [{len(i.allowed)} choices]"
        if i.read_only:
            text += " (read-only)"
        parts.append(text)
    return ", ".join(parts) or "-"
