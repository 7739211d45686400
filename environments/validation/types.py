"""Checks of environment types: the load-test plan they name, their ARM or ADE template against
the parameters shipyard.yaml sets (secure ones included), their Service Fabric manifest and
ApplicationParameters file."""

from __future__ import annotations

from environments import inputs, servicefabric
from environments.catalog import EnvironmentType
from environments.errors import ShipyardError, clip
from environments.providers import ade_templates, arm_parameters
from environments.providers import arm_template as arm
from environments.validation.common import Problems, text_of
from environments.yamlsource import Loc


def check_type(p: Problems, name: str, env_type: EnvironmentType) -> None:
    loc = ("types", name)
    if env_type.loadtest is not None and env_type.loadtest not in p.catalog.loadtests:
        p.add(
            (*loc, "loadtest"),
            f"type '{name}' names load-test plan '{clip(env_type.loadtest)}', which loadtests: "
            "does not declare",
            f"declare it, or use one of: {', '.join(p.catalog.loadtests) or '(none)'}",
        )
    if env_type.provider == "azure":
        _azure_type(p, name, env_type)
    elif env_type.azure is not None:
        p.add(
            (*loc, "azure"),
            f"type '{name}' has an azure: section but provider {env_type.provider}",
            "set provider: azure, or remove the azure: section",
        )
    if env_type.service_fabric is not None:
        _service_fabric(p, name, env_type)


def _azure_type(p: Problems, name: str, env_type: EnvironmentType) -> None:
    loc = ("types", name)
    if env_type.ade is not None:
        _ade_type(p, name, env_type)
        return
    if env_type.azure is None:
        p.add(
            loc,
            f"type '{name}' uses provider azure but has no 'azure:' section",
            "add types.<type>.azure.template: path/to/azuredeploy.json",
        )
        return
    if not p.catalog.azure.with_environment().subscription_id:
        p.add(
            ("azure",),
            f"type '{name}' uses provider azure but azure.subscription_id is not set",
            "set azure.subscription_id (or SHIPYARD_AZURE_SUBSCRIPTION_ID)",
        )
    try:
        template = arm.load_template(p.base / env_type.azure.template)
        parameters_file = (
            p.base / env_type.azure.parameters_file if env_type.azure.parameters_file else None
        )
        file_values = arm.load_parameters_file(parameters_file) if parameters_file else {}
    except ShipyardError as exc:
        p.add((*loc, "azure"), exc.reason, exc.hint)
        return
    path = env_type.azure.endpoint_output
    declared = {str(k).lower() for k in template.body.get("outputs") or {}}
    if path and path.split(".")[0].lower() not in declared:
        p.add(
            (*loc, "azure", "endpoint_output"),
            f"type '{name}': endpoint_output '{clip(path)}' is not an output of {template.name}",
            f"its outputs are: {', '.join(sorted(declared)) or '(none)'}",
        )
    supplied: dict[str, str] = {}
    origins: dict[str, str] = {}
    for key, value in p.catalog.parameters.items():
        supplied[key] = text_of(value)
        origins[key] = p.source.where(("parameters", key))
    for key, value in env_type.parameters.items():
        supplied[key] = text_of(value)
        origins[key] = p.source.where((*loc, "parameters", key))
    _, problems = arm_parameters.check_parameters(
        template,
        supplied,
        file_values=file_values,
        unique=env_type.azure.unique,
        suffix="0" * arm.SUFFIX_LENGTH,
        fallback_base=name,
        vault_id=lambda ref: ref.vault_id(p.catalog.azure.subscription_id, "shared"),
        file_name=str(parameters_file or ""),
        origins=origins,
    )
    for problem in problems:
        if not problem.missing:  # each environment may still supply those
            p.add(
                (*loc, "azure", "template"),
                f"type '{name}': {template.name}: {problem}",
                "make the parameters match the template's",
            )


def _ade_type(p: Problems, name: str, env_type: EnvironmentType) -> None:
    """An ADE environment definition: its template against its manifest, then shipyard.yaml's
    values against both. The manifest's own problems came with the structure; a Bicep
    template that needs compiling is compiled (and checked) by `config check` and at use."""
    loc = ("types", name)
    definition = env_type.definition
    if definition is None or definition.problems:
        return
    if not p.catalog.azure.with_environment().subscription_id:
        p.add(
            ("azure",),
            f"type '{name}' uses provider azure but azure.subscription_id is not set",
            "set azure.subscription_id (or SHIPYARD_AZURE_SUBSCRIPTION_ID)",
        )
    try:
        template = ade_templates.template_of(definition, compile_bicep=False)
    except ShipyardError as exc:
        p.add((*loc, "ade"), exc.reason, exc.hint)
        return
    if template is None:
        return
    mismatches = ade_templates.cross_check(definition, template)
    p.problems.extend(mismatches)
    for given in env_type.inputs:
        if given.id in env_type.parameters:
            wrong = inputs.value_problem(given, text_of(env_type.parameters[given.id]))
            if wrong:
                p.add((*loc, "parameters", given.id), f"type '{name}': {wrong}")
    if mismatches:
        return
    supplied = {i.id: i.default_text for i in env_type.inputs if i.default_text is not None}
    origins = {key: str(definition.where(key)) for key in supplied}
    for key, value in [*p.catalog.parameters.items(), *env_type.parameters.items()]:
        supplied[key] = text_of(value)
        origins[key] = p.source.where(
            (*loc, "parameters", key) if key in env_type.parameters else ("parameters", key)
        )
    _, found = arm_parameters.check_parameters(
        template,
        supplied,
        vault_id=lambda ref: ref.vault_id(p.catalog.azure.subscription_id, "shared"),
        origins=origins,
    )
    for problem in found:
        if not problem.missing:
            p.add(
                (*loc, "ade"),
                f"type '{name}': {template.name}: {problem}",
                "make the parameters match the template's",
            )


def _service_fabric(p: Problems, name: str, env_type: EnvironmentType) -> None:
    settings = env_type.service_fabric
    assert settings is not None
    loc = ("types", name, "service_fabric")
    try:
        manifest = servicefabric.read_manifest(p.base / settings.manifest)
    except ShipyardError as exc:
        p.add((*loc, "manifest"), exc.reason, exc.hint)
        return
    declared = set(manifest.defaults)
    if settings.parameters_file:
        path = p.base / settings.parameters_file
        try:
            _, values = servicefabric.read_application_parameters(path)
        except ShipyardError as exc:
            p.add((*loc, "parameters_file"), exc.reason, exc.hint)
            values = {}
        undeclared = sorted(set(values) - declared)
        if undeclared:
            p.add(
                (*loc, "parameters_file"),
                f"{path} sets {', '.join(undeclared)}, which {manifest.path.name} does not declare",
                "remove them from the file or declare them in the ApplicationManifest",
            )
    layers: list[tuple[Loc, dict[str, object]]] = [
        (("parameters",), dict(p.catalog.parameters)),
        (("types", name, "parameters"), dict(env_type.parameters)),
    ]
    for where, values_of_layer in layers:
        for key in sorted(set(values_of_layer) - declared):
            p.add(
                (*where, key),
                f"{key} (for type '{name}') is not declared in {manifest.path}",
                "remove it or declare it in the ApplicationManifest's <Parameters>",
            )
