"""An ARM deployment's name (deterministic, so a resumed step finds it) and what it returned."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from environments.model import Environment

DEPLOYMENT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.()-]")


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
