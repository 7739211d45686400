"""Service Fabric: ApplicationManifest parameters, ApplicationParameters files read and written."""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from environments.errors import InvalidInput
from environments.parameters import Parameter
from environments.secrets import KeyVaultRef

NS = "http://schemas.microsoft.com/2011/01/fabric"


@dataclass(frozen=True)
class Manifest:
    """An ApplicationManifest's declared parameters and their defaults."""

    path: Path
    type_name: str
    defaults: dict[str, str]


BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
DECLARED_ENCODING = re.compile(r"""^(<\?xml[^>]*?)\s+encoding=["'][^"']*["']""")


def read_xml_text(path: Path) -> str:
    """The file's text, whatever byte-order mark it starts with.

    Visual Studio writes UTF-8 with a BOM; PowerShell 5's `>` writes UTF-16 LE with a BOM while
    the text still declares encoding="utf-8". The BOM decides, and the declaration is dropped
    so the XML parser does not contradict it.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(
            f"{path}: cannot be read ({exc.strerror})", hint="check the path in shipyard.yaml"
        ) from None
    encoding = next((name for bom, name in BOMS if data.startswith(bom)), None)
    try:
        if encoding is not None:
            text = data.decode(encoding).removeprefix("\ufeff")
        else:
            text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(
            f"{path}: is neither UTF-8 nor text with a byte-order mark",
            hint="save it as UTF-8 (or UTF-16 with a BOM)",
        ) from None
    return DECLARED_ENCODING.sub(r"\1", text, count=1)


def _root(path: Path, expected: str) -> ET.Element:
    text = read_xml_text(path)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InvalidInput(
            f"{path}: not well-formed XML ({exc})",
            hint="fix the file; Visual Studio can re-create it",
        ) from None
    if root.tag != f"{{{NS}}}{expected}":
        raise InvalidInput(
            f"{path}: expected a Service Fabric <{expected}>, found <{root.tag}>",
            hint=f"point shipyard.yaml at the {expected} file",
        )
    return root


def read_manifest(path: Path) -> Manifest:
    root = _root(path, "ApplicationManifest")
    defaults = {}
    for parameter in root.iterfind(f"{{{NS}}}Parameters/{{{NS}}}Parameter"):
        name = parameter.get("Name")
        if not name:
            raise InvalidInput(f"{path}: a <Parameter> has no Name", hint="give every one a Name")
        defaults[name] = parameter.get("DefaultValue", "")
    return Manifest(path, root.get("ApplicationTypeName", ""), defaults)


def read_application_parameters(path: Path) -> tuple[str, dict[str, str]]:
    """(application name, parameters) of an ApplicationParameters file such as Cloud.xml."""
    root = _root(path, "Application")
    values = {}
    for parameter in root.iterfind(f"{{{NS}}}Parameters/{{{NS}}}Parameter"):
        name = parameter.get("Name")
        if not name or parameter.get("Value") is None:
            raise InvalidInput(f"{path}: a <Parameter> lacks Name or Value", hint="each needs both")
        values[name] = parameter.get("Value", "")
    return root.get("Name", ""), values


@dataclass(frozen=True)
class Rendered:
    """An ApplicationParameters document and what was filled in from the manifest's defaults."""

    xml: str
    defaulted: tuple[str, ...]


def render(
    application: str, parameters: Mapping[str, Parameter], manifest: Manifest | None
) -> Rendered:
    """ApplicationParameters XML; with a manifest, unknown names are refused, missing reported.

    A Key Vault reference is written as its secret URI (what Service Fabric's
    KeyVaultReference parameters take); Shipyard never reads the secret.
    """
    if manifest is not None:
        unknown = sorted(set(parameters) - set(manifest.defaults))
        if unknown:
            named = ", ".join(f"{key} ({parameters[key].layer.value} layer)" for key in unknown)
            raise InvalidInput(
                f"{named} not declared in {manifest.path}",
                hint="remove them or declare them in the ApplicationManifest's <Parameters>",
            )
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<Application xmlns="{NS}" Name={quoteattr(application)}>',
        "  <Parameters>",
    ]
    for key, parameter in parameters.items():
        value = (
            parameter.reference.uri
            if isinstance(parameter.reference, KeyVaultRef)
            else (parameter.reference.text if parameter.reference else parameter.value)
        )
        lines.append(f"    <Parameter Name={quoteattr(key)} Value={quoteattr(value)} />")
    lines += ["  </Parameters>", "</Application>", ""]
    defaulted = tuple(sorted(set(manifest.defaults) - set(parameters))) if manifest else ()
    return Rendered("\n".join(lines), defaulted)
