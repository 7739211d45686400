"""Parameters rendered for their consumers: Service Fabric XML, ARM JSON, dotenv, JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from environments import servicefabric
from environments.catalog import Catalog, EnvironmentType, resolve_path
from environments.errors import InvalidInput
from environments.parameters import Layer, Parameter
from environments.secrets import EnvRef, KeyVaultRef

FORMATS = ("table", "sf-xml", "arm-json", "dotenv", "json")
ARM_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"


def file_layer(catalog: Catalog, env_type: EnvironmentType) -> dict[str, str]:
    """The type's Service Fabric ApplicationParameters file, or its ADE manifest's defaults, as
    the layer below the type's own parameters."""
    defaults = {i.id: i.default_text for i in env_type.inputs if i.default_text is not None}
    if defaults:
        return defaults
    settings = env_type.service_fabric
    if settings is None or settings.parameters_file is None:
        return {}
    return servicefabric.read_application_parameters(
        resolve_path(catalog, settings.parameters_file)
    )[1]


def arm_file_layer(catalog: Catalog, env_type: EnvironmentType) -> dict[str, Parameter]:
    """The azure type's ARM parameters file as the layer ARM sees below Shipyard's own.

    Shown by `params show` so every layer is visible; a `reference` entry reads as the
    `@keyvault(…)` it stands for. (Its values reach ARM as the file's, not through Shipyard.)
    """
    settings = env_type.azure
    if env_type.provider != "azure" or settings is None or not settings.parameters_file:
        return {}
    from environments.providers.arm_template import load_parameters_file

    shown: dict[str, Parameter] = {}
    for key, entry in load_parameters_file(resolve_path(catalog, settings.parameters_file)).items():
        reference = entry.get("reference")
        if isinstance(reference, dict):
            vault = str((reference.get("keyVault") or {}).get("id", "?"))
            ref = KeyVaultRef(
                vault, str(reference.get("secretName", "?")), reference.get("secretVersion")
            )
            shown[key] = Parameter(key, ref.text, Layer.FILE, ref)
        else:
            value = entry.get("value")
            text = value if isinstance(value, str) else json.dumps(value)
            shown[key] = Parameter(key, text, Layer.FILE)
    return shown


def layer_origin(catalog: Catalog, env_type: EnvironmentType, layer: Layer) -> str:
    """Where a layer's values are written, for messages that name it."""
    settings = env_type.service_fabric
    return {
        Layer.MANIFEST: "the ApplicationManifest's default",
        Layer.DEFAULTS: f"{catalog.source} parameters",
        Layer.FILE: str(resolve_path(catalog, settings.parameters_file))
        if settings and settings.parameters_file
        else f"{env_type.definition.manifest} (its defaults)"
        if env_type.definition
        else "the parameters file",
        Layer.TYPE: f"{catalog.source} types.{env_type.name}.parameters",
        Layer.ENVIRONMENT: "the environment's own parameters (env create --set, params set)",
        Layer.OVERRIDE: "this deployment's --set",
    }[layer]


def check_declared(
    catalog: Catalog, env_type: EnvironmentType, resolved: Mapping[str, Parameter]
) -> None:
    """With a Service Fabric manifest, every name must be one it declares (refused when set)."""
    settings = env_type.service_fabric
    if settings is None:
        return
    manifest = servicefabric.read_manifest(resolve_path(catalog, settings.manifest))
    unknown = [p for key, p in resolved.items() if key not in manifest.defaults]
    if unknown:
        named = "; ".join(
            f"{p.key} (from {layer_origin(catalog, env_type, p.layer)})" for p in unknown
        )
        raise InvalidInput(
            f"not declared in {manifest.path}: {named}",
            hint="remove them, or declare them in the ApplicationManifest's <Parameters>",
        )


def manifest_defaults(catalog: Catalog, env_type: EnvironmentType) -> dict[str, Parameter]:
    """The manifest's declared parameters with their defaults: what applies when unset."""
    settings = env_type.service_fabric
    if settings is None:
        return {}
    manifest = servicefabric.read_manifest(resolve_path(catalog, settings.manifest))
    return {k: Parameter(k, v, Layer.MANIFEST) for k, v in manifest.defaults.items()}


def sf_xml(
    catalog: Catalog, env_type: EnvironmentType, env_name: str, parameters: Mapping[str, Parameter]
) -> servicefabric.Rendered:
    settings = env_type.service_fabric
    manifest = (
        servicefabric.read_manifest(resolve_path(catalog, settings.manifest))
        if (settings)
        else None
    )
    application = (settings.application if settings and settings.application else None) or (
        f"fabric:/{manifest.type_name.removesuffix('Type') if manifest else 'Application'}"
    )
    return servicefabric.render(application, parameters, manifest)


def arm_json(catalog: Catalog, parameters: Mapping[str, Parameter]) -> str:
    """An ARM deploymentParameters document; Key Vault references in ARM's `reference` form."""
    shared = f"{catalog.azure.resource_group_prefix}-shared"
    body: dict[str, Any] = {}
    for key, parameter in parameters.items():
        reference = parameter.reference
        if isinstance(reference, KeyVaultRef):
            entry: dict[str, Any] = {
                "keyVault": {"id": reference.vault_id(catalog.azure.subscription_id, shared)},
                "secretName": reference.name,
            }
            if reference.version:
                entry["secretVersion"] = reference.version
            body[key] = {"reference": entry}
        elif isinstance(reference, EnvRef):
            raise InvalidInput(
                f"parameter {key} is {reference.text}, which only local environments can use",
                hint="give ARM a Key Vault reference: @keyvault(VAULT, SECRET)",
            )
        else:
            body[key] = {"value": parameter.value}
    document = {"$schema": ARM_SCHEMA, "contentVersion": "1.0.0.0", "parameters": body}
    return json.dumps(document, indent=2) + "\n"


def dotenv(parameters: Mapping[str, Parameter]) -> str:
    """KEY="value" lines; references stay references (the local provider resolves @env)."""
    lines = []
    for key, parameter in parameters.items():
        escaped = parameter.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'{key}="{escaped}"')
    return "\n".join(lines) + ("\n" if lines else "")


def as_json(parameters: Mapping[str, Parameter]) -> str:
    return (
        json.dumps(
            {
                k: {"value": p.value, "layer": p.layer.value, "secret": p.secret}
                for k, p in parameters.items()
            },
            indent=2,
        )
        + "\n"
    )
