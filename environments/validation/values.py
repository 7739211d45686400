"""Checks of parameter values: secret references and the `{{ … }}` fields they may use."""

from __future__ import annotations

import re

from environments.errors import ShipyardError, clip
from environments.secrets import parse_reference
from environments.validation.common import Problems, text_of
from environments.yamlsource import Loc

TEMPLATE_REF = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
KNOWN_FIELDS = ("env.name", "env.type", "env.owner", "release.version")


def check_references(p: Problems) -> None:
    layers: list[tuple[Loc, dict[str, object]]] = [(("parameters",), dict(p.catalog.parameters))]
    for name, env_type in p.catalog.types.items():
        layers.append((("types", name, "parameters"), dict(env_type.parameters)))
    for where, values in layers:
        for key, value in values.items():
            text = text_of(value)
            try:
                parse_reference(key, text)
            except ShipyardError as exc:
                p.add((*where, key), exc.reason, exc.hint)
            for found in TEMPLATE_REF.findall(text):
                if found not in KNOWN_FIELDS and not re.fullmatch(
                    r"env\.outputs\.[A-Za-z0-9_.-]+", found
                ):
                    p.add(
                        (*where, key),
                        f"parameter {key} refers to '{{{{ {clip(found)} }}}}', which "
                        "Shipyard does not know",
                        "use env.name, env.type, env.owner, env.outputs.NAME or release.version",
                    )
