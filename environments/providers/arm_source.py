"""Where an azure type's ARM deployment comes from: its template, parameters file and unique
names, whether shipyard.yaml names the template or an ADE environment definition does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from environments.catalog import Catalog, EnvironmentType
from environments.errors import ConfigError
from environments.providers import ade_templates
from environments.providers import arm_template as arm


@dataclass(frozen=True)
class ArmSource:
    """A type's template, the values of its ARM parameters file, and its unique-name params."""

    template: arm.Template
    file_values: dict[str, dict[str, Any]]
    unique: tuple[str, ...] = ()
    file_name: str = ""  # the parameters file's path, for messages ("" when there is none)


def arm_source(catalog: Catalog, type_name: str) -> ArmSource:
    """The type's ARM source; a problem (missing file, Bicep that cannot be compiled, manifest
    and template disagreeing) is a ConfigError saying what to do."""
    env_type: EnvironmentType = catalog.type(type_name)
    if env_type.definition is not None:
        return ArmSource(ade_templates.checked_template(env_type.definition), {})
    settings = env_type.azure
    if settings is None:
        raise ConfigError(
            f"{catalog.source}: type '{type_name}' uses provider azure but has no 'azure:' section",
            hint="add types.<type>.azure.template: path/to/azuredeploy.json, or "
            "types.<type>.ade: path/to/catalog/item",
        )
    base = Path(catalog.base_dir)
    file_values = (
        arm.load_parameters_file(base / settings.parameters_file)
        if settings.parameters_file
        else {}
    )
    return ArmSource(
        arm.load_template(base / settings.template),
        file_values,
        settings.unique,
        str(base / settings.parameters_file) if settings.parameters_file else "",
    )
