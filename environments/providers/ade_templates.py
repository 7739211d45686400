"""The ARM template behind an ADE definition (runner ARM, or Bicep compiled) and the cross-check
of the manifest's parameters against the template's own declarations."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

from environments.ade import Definition
from environments.errors import ConfigError, ConfigProblem
from environments.providers import arm_template as arm

COMPILE_TIMEOUT = 180.0
INSTALL = "https://aka.ms/bicep-install"
# ADE kinds → the ARM kinds a template may declare for them.
ARM_KINDS = {
    "string": ("string", "securestring"),
    "number": ("int",),
    "integer": ("int",),
    "boolean": ("bool",),
    "object": ("object", "secureobject"),
    "array": ("array",),
}

# Compiled Bicep templates of this process, by (file, mtime, size): `bicep build` takes seconds.
_compiled: dict[tuple[str, int, int], arm.Template] = {}
_lock = threading.Lock()


def compiled_beside(bicep: Path) -> Path | None:
    """`azuredeploy.json` (or `bicep build`'s own `<name>.json`) beside the .bicep file, when it
    is at least as new as the .bicep file; None otherwise."""
    for candidate in (bicep.parent / "azuredeploy.json", bicep.with_suffix(".json")):
        if candidate.is_file() and candidate.stat().st_mtime >= bicep.stat().st_mtime:
            return candidate
    return None


def bicep_command(bicep: Path) -> list[str] | None:
    """The Bicep CLI's command line that prints the compiled template, or None if none is on
    PATH: the standalone `bicep`, else the Azure CLI's `az bicep`."""
    if shutil.which("bicep"):
        return ["bicep", "build", str(bicep), "--stdout"]
    if shutil.which("az"):
        return ["az", "bicep", "build", "--file", str(bicep), "--stdout"]
    return None


def template_of(definition: Definition, *, compile_bicep: bool = True) -> arm.Template | None:
    """The definition's ARM template. A Bicep item uses its compiled template beside it, else is
    compiled with the Bicep CLI (None when `compile_bicep` is False and that would be needed)."""
    definition.require_usable()
    if definition.runner == "ARM":
        return arm.load_template(definition.template_file)
    bicep = definition.template_file
    ready = compiled_beside(bicep)
    if ready is not None:
        return arm.load_template(ready)
    if not compile_bicep:
        return None
    return _compile(bicep)


def _compile(bicep: Path) -> arm.Template:
    stat = bicep.stat()
    key = (str(bicep.resolve()), stat.st_mtime_ns, stat.st_size)
    with _lock:
        if key in _compiled:
            return _compiled[key]
    command = bicep_command(bicep)
    if command is None:
        raise ConfigError(
            f"{bicep}: runner Bicep needs a compiled template, and there is none: no "
            f"azuredeploy.json newer than {bicep.name} beside it, and no Bicep CLI (bicep or az) "
            "on PATH",
            hint=f"compile it once: az bicep build --file {bicep} --outfile "
            f"{bicep.parent / 'azuredeploy.json'} (or install the Bicep CLI: {INSTALL})",
        )
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(
            f"{bicep}: {' '.join(command[:3])} could not compile it: {exc}",
            hint=f"compile it by hand into {bicep.parent / 'azuredeploy.json'}",
        ) from None
    if done.returncode != 0:
        first = (done.stderr.strip() or done.stdout.strip() or "no message").splitlines()[0]
        raise ConfigError(
            f"{bicep}: '{' '.join(command)}' failed: {first}",
            hint="fix the Bicep file (the line is in the message) and try again",
        )
    try:
        body = json.loads(done.stdout)
    except ValueError:
        raise ConfigError(
            f"{bicep}: '{' '.join(command)}' did not print a JSON template",
            hint=f"compile it by hand into {bicep.parent / 'azuredeploy.json'}",
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("resources"), list | dict):
        raise ConfigError(
            f"{bicep}: the compiled template has no 'resources'",
            hint="check the Bicep file",
        )
    template = arm.Template(path=bicep.with_suffix(".json"), body=body)
    with _lock:
        _compiled[key] = template
    return template


def cross_check(definition: Definition, template: arm.Template) -> list[ConfigProblem]:
    """Each way the manifest and the template disagree, naming the manifest's line: parameters
    the template does not declare or types it declares otherwise, choices it does not allow,
    and template parameters without a default that the manifest does not offer."""
    declared = {name.lower(): (name, spec) for name, spec in template.parameters.items()}
    problems: list[ConfigProblem] = []
    offered = set()
    for item in definition.inputs:
        offered.add(item.id.lower())
        where = definition.where(item.id)
        found = declared.get(item.id.lower())
        if found is None:
            problems.append(
                ConfigProblem(
                    where,
                    f"parameter '{item.id}' is not declared by {template.name} "
                    f"(it declares: {', '.join(sorted(template.parameters)) or 'none'})",
                )
            )
            continue
        name, spec = found
        kind = str(spec.get("type", "string")).lower()
        if kind not in ARM_KINDS[item.kind]:
            problems.append(
                ConfigProblem(
                    where,
                    f"parameter '{item.id}' is a {item.kind} here but {template.name} "
                    f"declares '{name}' as {spec.get('type')}",
                )
            )
        allowed = spec.get("allowedValues")
        if isinstance(allowed, list):
            outside = [v for v in item.allowed if v not in allowed]
            if outside:
                problems.append(
                    ConfigProblem(
                        where,
                        f"parameter '{item.id}' allows {outside} which {template.name} "
                        "does not allow",
                    )
                )
    for key, (name, spec) in sorted(declared.items()):
        if key not in offered and "defaultValue" not in spec:
            problems.append(
                ConfigProblem(
                    definition.where(),
                    f"{template.name} requires parameter '{name}' (no defaultValue) but the "
                    "manifest does not offer it",
                    "add it to the manifest's 'parameters'",
                )
            )
    return problems


def checked_template(definition: Definition) -> arm.Template:
    """The template, refused with every problem when the manifest and it disagree."""
    template = template_of(definition)
    assert template is not None
    problems = cross_check(definition, template)
    if problems:
        raise ConfigError.of(str(definition.manifest), problems)
    return template
