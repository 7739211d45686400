"""Service Fabric names are checked when they are set, naming the layer and the file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.runtime import Runtime
from bot.table import execute, parse
from environments import servicefabric
from environments.errors import InvalidInput
from environments.registry import record as rec
from tests.conftest import APPS, person

GETTING_STARTED = Path(__file__).parent / "data/reference/service-fabric/getting-started"
MANIFEST = GETTING_STARTED / "ApplicationPackageRoot/ApplicationManifest.xml"
CLOUD = GETTING_STARTED / "ApplicationParameters/Cloud.xml"
ALICE = person("alice")


@pytest.fixture
def rt(home: Path, tmp_path: Path) -> Iterator[Runtime]:
    # What PowerShell 5's `Get-Content Cloud.xml > Cloud.utf16.xml` leaves behind.
    utf16 = tmp_path / "Cloud.utf16.xml"
    utf16.write_bytes(CLOUD.read_text(encoding="utf-8-sig").encode("utf-16"))
    config = tmp_path / "shipyard.yaml"
    config.write_text(
        f"""\
version: 1
types:
  fabric:
    service_fabric:
      manifest: {MANIFEST}
      parameters_file: {utf16}
    parameters:
      WebService_InstanceCount: 2
"""
    )
    runtime = Runtime.open(str(config), database_url=f"sqlite:///{tmp_path / 'record.db'}")
    runtime.lifecycle.add_release(ALICE, "1.0.0", str(APPS / "slow"))
    yield runtime
    runtime.close()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "utf-8-sig", "utf-8"])
def test_parameters_files_in_any_bom_marked_encoding_are_read(
    tmp_path: Path, encoding: str
) -> None:
    text = CLOUD.read_text(encoding="utf-8-sig")
    bom = b"\xff\xfe" if encoding == "utf-16-le" else b""
    path = tmp_path / "Cloud.xml"
    path.write_bytes(bom + text.encode(encoding))
    assert servicefabric.read_application_parameters(path) == (
        servicefabric.read_application_parameters(CLOUD)
    )


def test_an_undeclared_name_is_refused_when_set_naming_layer_and_manifest(rt: Runtime) -> None:
    with rt.database.read() as conn:
        before = rec.list_environments(conn)
    with pytest.raises(InvalidInput) as refused:
        rt.lifecycle.create(
            ALICE, "sf-1", env_type="fabric", release="1.0.0", overrides={"WebService_Typo": "1"}
        )
    reason = refused.value.reason
    assert f"not declared in {MANIFEST}" in reason
    assert "WebService_Typo (from the environment's own parameters" in reason
    with rt.database.read() as conn:
        assert rec.list_environments(conn) == before

    rt.lifecycle.create(ALICE, "sf-1", env_type="fabric", release="1.0.0")
    with pytest.raises(InvalidInput, match="Another_Typo \\(from this deployment's --set\\)"):
        rt.lifecycle.deploy(ALICE, "sf-1", release="1.0.0", overrides={"Another_Typo": "x"})
    with pytest.raises(InvalidInput, match="Third_Typo \\(from the environment's own"):
        rt.lifecycle.set_parameters(ALICE, "sf-1", {"Third_Typo": "x"}, [])


def test_params_show_lists_the_manifest_default_where_one_applies(rt: Runtime) -> None:
    rt.lifecycle.create(ALICE, "sf-2", env_type="fabric", release="1.0.0")
    shown = execute(rt, ALICE, parse(["params", "show", "sf-2", "--json"]))
    data = json.loads(json.dumps(shown.data))
    assert data["WebService_InstanceCount"] == {"value": "2", "layer": "type", "secret": False}
    assert data["StatefulBackendService_PartitionCount"]["layer"] == "file"
    assert data["WebService_ReverseProxyPort"]["layer"] == "manifest"
    xml = execute(rt, ALICE, parse(["params", "show", "sf-2", "--format", "sf-xml"]))
    assert any(
        n.startswith("WebService_ReverseProxyPort: not set, the ApplicationManifest's default")
        and "'" in n
        for n in xml.notes
    )
