"""ARM parameters without Azure: Shipyard's string values checked and typed against a template."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from environments.errors import InvalidInput, ShipyardError
from environments.providers.arm_template import SECURE, UNIQUE_MAX_LENGTH, Template, unique_name
from environments.secrets import EnvRef, KeyVaultRef, parse_reference

INTEGER = re.compile(r"^[+-]?\d+$")

# The resource id of a Key Vault named in a reference (by id, or by name in the shared group).
VaultId = Callable[[KeyVaultRef], str]


@dataclass(frozen=True)
class Problem:
    """One way the parameters do not fit the template; `missing` ones may come at create time."""

    key: str
    text: str
    missing: bool = False

    def __str__(self) -> str:
        return f"{self.key}: {self.text}"


def render_parameters(
    template: Template,
    supplied: Mapping[str, str],
    *,
    file_values: Mapping[str, dict[str, Any]] | None = None,
    unique: tuple[str, ...] = (),
    suffix: str = "",
    fallback_base: str = "",
    vault_id: VaultId,
    file_name: str = "the parameters file",
    origins: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Shipyard's string parameters → an ARM parameters object, typed as the template declares.

    Every problem is collected and reported at once, naming the template's file. A value still
    holding `{{ … }}` (filled in only when a release is deployed) counts as supplied, unchecked.
    """
    values, problems = check_parameters(
        template,
        supplied,
        file_values=file_values,
        unique=unique,
        suffix=suffix,
        fallback_base=fallback_base,
        vault_id=vault_id,
        file_name=file_name,
        origins=origins,
    )
    if problems:
        count = f"{len(problems)} parameter problem{'s' if len(problems) > 1 else ''}"
        raise InvalidInput(
            f"{template.name}: {count}: " + "; ".join(map(str, problems)),
            hint="fix the parameters (shipyard.yaml or --set KEY=VALUE) to match the template's "
            f"parameters: {', '.join(sorted(template.parameters)) or '(none)'}",
        )
    return values


def check_parameters(
    template: Template,
    supplied: Mapping[str, str],
    *,
    file_values: Mapping[str, dict[str, Any]] | None = None,
    unique: tuple[str, ...] = (),
    suffix: str = "",
    fallback_base: str = "",
    vault_id: VaultId,
    file_name: str = "the parameters file",
    origins: Mapping[str, str] | None = None,
) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """The ARM parameters object and every problem found on the way (none means it is usable).

    Names match the template's case-insensitively, as ARM matches them, and are passed on in the
    template's own spelling. A literal value for a `securestring`/`secureObject` parameter is
    refused wherever it comes from (`origins` names where each supplied key was written).
    """
    declared = template.parameters
    spelled = {key.lower(): key for key in declared}
    problems: list[Problem] = []
    values: dict[str, dict[str, Any]] = {}

    def where(key: str) -> str:
        return (origins or {}).get(key, "shipyard.yaml or --set")

    for raw, entry in sorted((file_values or {}).items()):
        key = spelled.get(raw.lower())
        if key is None:
            problems.append(Problem(raw, f"set by {file_name} but not declared by the template"))
            continue
        if "value" in entry and template.kind(key) in SECURE:
            # Refused when it would reach ARM; a Key Vault reference set above it replaces it.
            if key.lower() not in {k.lower() for k in supplied}:
                problems.append(Problem(key, _literal_secret(template.kind(key), file_name)))
            continue
        values[key] = dict(entry)
    for raw in sorted(supplied):
        key = spelled.get(raw.lower())
        if key is None:
            problems.append(Problem(raw, "supplied but not a parameter of the template"))
            continue
        text = supplied[raw]
        try:
            reference = parse_reference(key, text)
        except ShipyardError as exc:
            problems.append(Problem(key, exc.reason.removeprefix(f"parameter {key}: ")))
            continue
        if isinstance(reference, KeyVaultRef):
            values[key] = {"reference": _reference(reference, vault_id)}
            continue
        if isinstance(reference, EnvRef):
            problems.append(
                Problem(key, f"{text} is for local environments; use @keyvault(VAULT, SECRET)")
            )
            continue
        if template.kind(key) in SECURE:
            problems.append(Problem(key, _literal_secret(template.kind(key), where(raw))))
            continue
        if "{{" in text:
            values[key] = {"value": text, "deferred": True}
            continue
        try:
            values[key] = {"value": _convert(text, template.kind(key))}
        except ValueError as exc:
            problems.append(Problem(key, str(exc)))
    given = {spelled.get(k.lower(), k) for k in [*supplied, *(file_values or {})]}
    for raw in unique:
        key = spelled.get(raw.lower(), raw)
        if key not in declared or template.kind(key) not in ("string", "securestring"):
            problems.append(
                Problem(raw, "marked unique but not a string parameter of the template")
            )
            continue
        base = values.get(key, {}).get("value")
        if not isinstance(base, str):
            default = declared[key].get("defaultValue")
            literal = isinstance(default, str) and not default.startswith("[")
            base = default if literal else fallback_base
        limit = declared[key].get("maxLength", UNIQUE_MAX_LENGTH)
        values[key] = {"value": unique_name(str(base), suffix, int(limit))}
    for key, spec in declared.items():
        if key not in values and key not in given and "defaultValue" not in spec:
            problems.append(
                Problem(key, "required by the template (no default) but not supplied", True)
            )
    for key, entry in values.items():
        if "value" in entry and not entry.pop("deferred", False):
            problems.extend(Problem(key, p) for p in _check(entry["value"], declared[key]))
    return dict(sorted(values.items())), problems


def _literal_secret(kind: str, where: str) -> str:
    return (
        f"{where} gives a literal value for this {kind} parameter; a secret reaches ARM only "
        "as a Key Vault reference: write @keyvault(VAULT, SECRET) in shipyard.yaml, or a "
        '{"reference": …} in the parameters file'
    )


def _reference(ref: KeyVaultRef, vault_id: VaultId) -> dict[str, Any]:
    reference: dict[str, Any] = {"keyVault": {"id": vault_id(ref)}, "secretName": ref.name}
    if ref.version:
        reference["secretVersion"] = ref.version
    return reference


def _convert(text: str, kind: str) -> Any:
    """One string → the JSON value the declared type asks for, or ValueError saying why not."""
    if kind in ("string", "securestring"):
        return text
    if kind == "int":
        if not INTEGER.fullmatch(text.strip()):
            raise ValueError(f"must be an int, got '{text}'")
        return int(text)
    if kind == "bool":
        if text.strip().lower() not in ("true", "false"):
            raise ValueError(f"must be true or false, got '{text}'")
        return text.strip().lower() == "true"
    wanted = list if kind == "array" else dict
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, wanted):
        raise ValueError(f"must be a JSON {'array' if wanted is list else 'object'}, got '{text}'")
    return parsed


def _check(value: Any, spec: Mapping[str, Any]) -> list[str]:
    """The declared type and constraints a typed value breaks (none for a literal default)."""
    kind = str(spec.get("type", "string")).lower()
    expected: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "securestring": str,
        "int": int,
        "bool": bool,
        "object": dict,
        "secureobject": dict,
        "array": list,
    }
    if not isinstance(value, expected[kind]) or (kind == "int" and isinstance(value, bool)):
        return [f"must be of type {spec.get('type')}, got {json.dumps(value)}"]
    problems = []
    allowed = spec.get("allowedValues")
    if isinstance(allowed, list):
        outside = [v for v in value if v not in allowed] if isinstance(value, list) else []
        if (kind != "array" and value not in allowed) or outside:
            problems.append(
                f"{json.dumps(value)} is not allowed (allowed: "
                f"{', '.join(json.dumps(a) for a in allowed)})"
            )
    if isinstance(value, str | list):
        if "minLength" in spec and len(value) < int(spec["minLength"]):
            problems.append(f"is shorter than minLength {spec['minLength']} ({len(value)})")
        if "maxLength" in spec and len(value) > int(spec["maxLength"]):
            problems.append(f"is longer than maxLength {spec['maxLength']} ({len(value)})")
    if isinstance(value, int):
        if "minValue" in spec and value < int(spec["minValue"]):
            problems.append(f"{value} is below minValue {spec['minValue']}")
        if "maxValue" in spec and value > int(spec["maxValue"]):
            problems.append(f"{value} is above maxValue {spec['maxValue']}")
    return problems
