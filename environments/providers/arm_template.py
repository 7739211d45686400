"""ARM templates without Azure: load them, check and render parameters, name deployments."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from environments.errors import ConfigError, InvalidInput, ShipyardError
from environments.model import Environment
from environments.secrets import EnvRef, KeyVaultRef, parse_reference

TYPES = ("string", "securestring", "int", "bool", "object", "secureobject", "array")
SECURE = ("securestring", "secureobject")
INTEGER = re.compile(r"^[+-]?\d+$")
DEPLOYMENT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.()-]")
UNIQUE_MAX_LENGTH = 24  # storage accounts: 3-24 lowercase letters and digits
SUFFIX_LENGTH = 8

# The resource id of a Key Vault named in a reference (by id, or by name in the shared group).
VaultId = Callable[[KeyVaultRef], str]


@dataclass(frozen=True)
class Template:
    """An ARM deployment template read from a file: its body and its declared parameters."""

    path: Path
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        declared = self.body.get("parameters") or {}
        return {str(k): v for k, v in declared.items() if isinstance(v, dict)}

    def kind(self, parameter: str) -> str:
        return str(self.parameters[parameter].get("type", "string")).lower()


def load_template(path: Path) -> Template:
    """Read a template; a missing or malformed file is a configuration problem."""
    body = _read_json(path, "ARM template")
    if not isinstance(body.get("resources"), list | dict):
        raise ConfigError(
            f"{path}: is not an ARM deployment template (no 'resources')",
            hint="point types.<type>.azure.template at an azuredeploy.json",
        )
    for name, spec in (body.get("parameters") or {}).items():
        if not isinstance(spec, dict) or str(spec.get("type", "")).lower() not in TYPES:
            raise ConfigError(
                f"{path}: parameter '{name}' has no valid type",
                hint=f"declare one of: {', '.join(TYPES)}",
            )
    return Template(path=path, body=body)


def load_parameters_file(path: Path) -> dict[str, dict[str, Any]]:
    """An ARM parameters file's entries: {"name": {"value": …} or {"reference": …}}."""
    body = _read_json(path, "ARM parameters file")
    entries = body.get("parameters", {})
    if not isinstance(entries, dict) or not all(
        isinstance(v, dict) and ("value" in v or "reference" in v) for v in entries.values()
    ):
        raise ConfigError(
            f'{path}: \'parameters\' must map names to {{"value": …}} or {{"reference": …}}',
            hint="see https://aka.ms/resource-manager-parameter-files",
        )
    return {str(k): dict(v) for k, v in entries.items()}


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: {what} not found", hint="check the path in shipyard.yaml"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}", hint="fix the JSON") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: {what} must be a JSON object", hint="fix the JSON")
    return loaded


def unique_suffix(environment: Environment) -> str:
    """Different for every environment ever created, even one re-created with the same name."""
    created = environment.created_at.astimezone(UTC).isoformat(timespec="microseconds")
    digest = hashlib.sha256(f"{environment.id}|{created}".encode()).hexdigest()
    return digest[:SUFFIX_LENGTH]


def unique_name(base: str, suffix: str, max_length: int = UNIQUE_MAX_LENGTH) -> str:
    """`<base><suffix>` in lowercase letters and digits, cut to fit `max_length`."""
    cleaned = re.sub(r"[^a-z0-9]", "", base.lower()) or "sy"
    return cleaned[: max(1, max_length - len(suffix))] + suffix


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


def deployment_name(environment: Environment, release: str, parameters: Mapping[str, Any]) -> str:
    """Deterministic per (environment, release, parameters): a resumed step finds its deployment."""
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{environment.id}|{release}|{canonical}".encode()).hexdigest()[:8]
    stem = DEPLOYMENT_NAME_CHARS.sub("-", f"shipyard-{environment.name}-{release}")[:55]
    return f"{stem}-{digest}"


def flatten_outputs(outputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """ARM's {"name": {"type": …, "value": v}} → {"name": v}."""
    flat: dict[str, Any] = {}
    for key, entry in (outputs or {}).items():
        flat[str(key)] = entry.get("value") if isinstance(entry, dict) else entry
    return flat


def pick_endpoint(outputs: Mapping[str, Any], path: str | None = None) -> str | None:
    """The output that is the environment's endpoint.

    With `path` (a type's `endpoint_output`, e.g. `clusterProperties.managementEndpoint`), that
    output, walking into objects; matched case-insensitively as ARM names are. Without it, an
    output named `*Endpoint`, at the top or one object down (the Service Fabric quickstarts
    output only `clusterProperties`): https first, then http, then anything else (a managed
    cluster's `clientConnectionEndpoint` is a bare host:port), and by name endpoint,
    clusterEndpoint, managementEndpoint, then alphabetically.
    """
    if path:
        found: Any = outputs
        for part in path.split("."):
            if not isinstance(found, Mapping):
                return None
            by_lower = {str(k).lower(): k for k in found}
            if part.lower() not in by_lower:
                return None
            found = found[by_lower[part.lower()]]
        return found if isinstance(found, str) else None
    candidates: list[tuple[str, str]] = []
    for key, value in outputs.items():
        if isinstance(value, str):
            candidates.append((str(key), value))
        elif isinstance(value, Mapping):
            candidates += [(f"{key}.{k}", v) for k, v in value.items() if isinstance(v, str)]
    named = [(k, v) for k, v in candidates if k.rsplit(".", 1)[-1].lower().endswith("endpoint")]
    if not named:
        return None
    order = ("endpoint", "clusterendpoint", "managementendpoint")

    def rank(item: tuple[str, str]) -> tuple[int, int, str]:
        key, value = item
        scheme = 0 if value.startswith("https://") else 1 if value.startswith("http://") else 2
        leaf = key.rsplit(".", 1)[-1].lower()
        return scheme, order.index(leaf) if leaf in order else len(order), key

    return min(named, key=rank)[1]


@dataclass(frozen=True)
class PropertyChange:
    """One property a what-if says would change: path, before → after, and how."""

    path: str
    change: str
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class ResourceChange:
    """One resource a what-if says would be created, modified, deleted or left alone."""

    change: str
    resource_id: str
    properties: tuple[PropertyChange, ...] = ()


@dataclass(frozen=True)
class WhatIf:
    """What a create or deploy would do, without doing it."""

    environment: str
    provider: str
    summary: str
    changes: tuple[ResourceChange, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
