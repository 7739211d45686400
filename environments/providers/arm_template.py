"""ARM templates without Azure: read a template or parameters file; per-environment unique names."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from environments.errors import ConfigError
from environments.model import Environment

TYPES = ("string", "securestring", "int", "bool", "object", "secureobject", "array")
SECURE = ("securestring", "secureobject")
UNIQUE_MAX_LENGTH = 24  # storage accounts: 3-24 lowercase letters and digits
SUFFIX_LENGTH = 8


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
