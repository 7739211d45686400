"""Layered application parameters: defaults < file < type < environment < one-off overrides."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from environments.catalog import Catalog, EnvironmentType
from environments.errors import InvalidInput, clip
from environments.secrets import SecretRef, check_not_literal_secret, parse_reference

KEY_RULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
CONTEXT_FIELDS = ("env.name", "env.type", "env.owner", "release.version")
TEMPLATE = re.compile(r"\{\{\s*([a-z_.A-Z0-9-]+)\s*\}\}")


class Layer(StrEnum):
    """Where a parameter's value came from, lowest first."""

    MANIFEST = "manifest"  # shown only: a Service Fabric manifest's default for an unset name
    DEFAULTS = "defaults"
    FILE = "file"
    TYPE = "type"
    ENVIRONMENT = "environment"
    OVERRIDE = "override"


@dataclass(frozen=True)
class Parameter:
    """One key's value and the layer it came from; a secret is only ever a reference."""

    key: str
    value: str
    layer: Layer
    reference: SecretRef | None = None

    @property
    def secret(self) -> bool:
        return self.reference is not None


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`--set KEY=VALUE` arguments → dict; a malformed one is refused with an example."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not KEY_RULE.fullmatch(key):
            raise InvalidInput(
                f"'{item}' is not a parameter assignment",
                hint="write KEY=VALUE with a key of letters, digits and '_' (e.g. GAME_MOTD=hi)",
            )
        result[key] = value
    return result


def check(values: Mapping[str, object], where: str) -> None:
    """Refuse bad keys, malformed references and literal secrets before anything is written."""
    for key, value in values.items():
        if not KEY_RULE.fullmatch(key):
            raise InvalidInput(
                f"{where}: '{key}' is not a parameter name",
                hint="use letters, digits, '_' and '.', starting with a letter",
            )
        check_not_literal_secret(key, _text(value), where)
        for path in TEMPLATE.findall(_text(value)):
            if path not in CONTEXT_FIELDS and not path.startswith("env.outputs."):
                raise InvalidInput(
                    f"{where}: {key} refers to '{{{{ {clip(path)} }}}}', which Shipyard does "
                    "not know",
                    hint="use env.name, env.type, env.owner, env.outputs.NAME or release.version",
                )


def resolve(
    catalog: Catalog,
    env_type: EnvironmentType,
    environment: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
    *,
    file_layer: Mapping[str, str] | None = None,
) -> dict[str, Parameter]:
    """Merge the layers; the highest layer that sets a key wins. Literal secrets are refused."""
    merged: dict[str, Parameter] = {}
    layers: list[tuple[Layer, Mapping[str, object], str]] = [
        (Layer.DEFAULTS, catalog.parameters, f"{catalog.source} parameters"),
        (Layer.FILE, file_layer or {}, "application parameters file"),
        (Layer.TYPE, env_type.parameters, f"{catalog.source} types.{env_type.name}.parameters"),
        (Layer.ENVIRONMENT, environment, "environment parameters"),
        (Layer.OVERRIDE, overrides or {}, "one-off override"),
    ]
    for layer, values, where in layers:
        check(values, where)
        for key, value in values.items():
            text = _text(value)
            merged[key] = Parameter(key, text, layer, parse_reference(key, text))
    return dict(sorted(merged.items()))


@dataclass(frozen=True)
class Context:
    """What `{{ … }}` in a value may name: the environment and the release being deployed."""

    name: str
    type: str
    owner: str
    outputs: Mapping[str, Any]
    release: str | None = None

    def lookup(self, key: str, path: str) -> str:
        fields = {"env.name": self.name, "env.type": self.type, "env.owner": self.owner}
        if path in fields:
            return fields[path]
        if path == "release.version" and self.release is not None:
            return self.release
        if path.startswith("env.outputs."):
            output = path.removeprefix("env.outputs.")
            if output in self.outputs:
                return _text(self.outputs[output])
            known = ", ".join(sorted(self.outputs)) or "none yet"
            raise InvalidInput(
                f"parameter {key} refers to output '{output}', which {self.name} does not have",
                hint=f"its outputs are: {known}",
            )
        raise InvalidInput(
            f"parameter {key} refers to '{{{{ {path} }}}}', which Shipyard does not know",
            hint="use env.name, env.type, env.owner, env.outputs.NAME or release.version",
        )


def render(parameters: Mapping[str, Parameter], context: Context) -> dict[str, Parameter]:
    """Fill in `{{ env.name }}`-style references to the environment itself."""
    rendered = {}
    for key, parameter in parameters.items():
        if parameter.secret or "{{" not in parameter.value:
            rendered[key] = parameter
            continue

        def fill(match: re.Match[str], key: str = key) -> str:
            return context.lookup(key, match.group(1))

        rendered[key] = replace(parameter, value=TEMPLATE.sub(fill, parameter.value))
    return rendered


def values(parameters: Mapping[str, Parameter]) -> dict[str, str]:
    """Key → value, with secrets as their reference text: safe to store, show and hand over."""
    return {key: p.value for key, p in parameters.items()}


def secret_names(parameters: Mapping[str, Parameter]) -> list[str]:
    return sorted(key for key, p in parameters.items() if p.secret)


def fingerprint(parameters: Mapping[str, str]) -> str:
    """A stable short digest of the rendered parameters, kept with each deployment."""
    canonical = json.dumps(dict(sorted(parameters.items())), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Change:
    """One difference between two parameter sets; None means absent on that side."""

    key: str
    before: str | None
    after: str | None
    before_layer: str | None = None
    after_layer: str | None = None

    @property
    def mark(self) -> str:
        return "+" if self.before is None else "-" if self.after is None else "~"


def diff(
    before: Mapping[str, Parameter | str], after: Mapping[str, Parameter | str]
) -> list[Change]:
    """What differs, key by key (values of secrets are references, never secret values)."""

    def split(item: Parameter | str | None) -> tuple[str | None, str | None]:
        if item is None:
            return None, None
        if isinstance(item, Parameter):
            return item.value, item.layer.value
        return item, None

    changes = []
    for key in sorted(set(before) | set(after)):
        old, old_layer = split(before.get(key))
        new, new_layer = split(after.get(key))
        if old != new:
            changes.append(Change(key, old, new, old_layer, new_layer))
    return changes


def summary(changes: list[Change]) -> str:
    """'+A ~B -C' — keys only, for history tables and chat."""
    return " ".join(f"{c.mark}{c.key}" for c in changes) or "unchanged"
