"""Parameters: layers, secret references, templates, renderings checked against real schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from lxml import etree
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from environments import parameters, renderings, servicefabric
from environments.catalog import Catalog, load_catalog
from environments.errors import InvalidInput, ProviderError
from environments.parameters import Context, Layer
from environments.secrets import EnvRef, KeyVaultRef, looks_secret, parse_reference
from tests.reference import REFERENCE

SF = REFERENCE / "service-fabric"
GETTING_STARTED = SF / "getting-started"
ARM_SCHEMAS = REFERENCE / "arm" / "schemas"


def catalog_from(tmp_path: Path, text: str) -> Catalog:
    path = tmp_path / "shipyard.yaml"
    path.write_text(text)
    return load_catalog(path)


BASE = """\
version: 1
parameters:
  A: defaults
  B: defaults
  C: defaults
  D: defaults
types:
  test:
    parameters:
      B: type
      C: type
      D: type
"""


def test_the_highest_layer_wins_and_says_which_it_is(tmp_path: Path) -> None:
    catalog = catalog_from(tmp_path, BASE)
    resolved = parameters.resolve(
        catalog,
        catalog.type("test"),
        {"C": "environment", "D": "environment"},
        {"D": "override"},
        file_layer={"A": "file", "E": "file"},
    )
    assert {k: (p.value, p.layer) for k, p in resolved.items()} == {
        "A": ("file", Layer.FILE),
        "B": ("type", Layer.TYPE),
        "C": ("environment", Layer.ENVIRONMENT),
        "D": ("override", Layer.OVERRIDE),
        "E": ("file", Layer.FILE),
    }


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("GAME_DB_PASSWORD", True),
        ("ApiKey", True),
        ("connectionString", True),
        ("Storage_Connection_String", True),
        ("AUTH_TOKEN", True),
        ("ClientSecret", True),
        ("sql.password", True),
        ("adminPassword", True),
        ("PFX_KEY", True),
        ("APIKEY", True),
        ("AUTHTOKEN", True),
        ("ACCESSTOKEN", True),
        ("AWS_SECRETKEY", True),
        ("apikeys", True),
        ("GAME_MOTD", False),
        ("HOCKEY_TEAM", False),
        ("KEYBOARD_LAYOUT", False),
        ("MONKEY_COUNT", False),
        ("WebService_InstanceCount", False),
        ("TOKENIZER_MODE", False),
    ],
)
def test_keys_that_name_a_secret_are_recognised(key: str, secret: bool) -> None:
    assert looks_secret(key) is secret


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("@keyvault(game-kv, db-password)", KeyVaultRef("game-kv", "db-password")),
        (
            "@keyvault(game-kv, db-password, 0123abcd)",
            KeyVaultRef("game-kv", "db-password", "0123abcd"),
        ),
        (
            "@keyvault(/subscriptions/s/resourceGroups/r/providers/Microsoft.KeyVault/vaults/v,pw)",
            KeyVaultRef(
                "/subscriptions/s/resourceGroups/r/providers/Microsoft.KeyVault/vaults/v", "pw"
            ),
        ),
        ("@env(GAME_DB_PASSWORD)", EnvRef("GAME_DB_PASSWORD")),
        ("plain text", None),
    ],
)
def test_references_parse(value: str, expected: object) -> None:
    assert parse_reference("K", value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("@keyvault(game-kv)", "needs a vault and a secret name"),
        ("@keyvault(g, pw)", "is not a Key Vault name"),
        ("@keyvault(game-kv, bad name!)", "is not a Key Vault secret name"),
        ("@env()", "needs one variable name"),
        ("@vault(x, y)", "is not a secret reference"),
    ],
)
def test_malformed_references_are_refused(value: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as refused:
        parse_reference("DB_PASSWORD", value)
    assert "DB_PASSWORD" in refused.value.reason


@pytest.mark.parametrize("where", ["environment", "override"])
def test_a_literal_secret_is_refused_naming_the_key(tmp_path: Path, where: str) -> None:
    catalog = catalog_from(tmp_path, BASE)
    literal = {"GAME_DB_PASSWORD": "hunter2"}
    with pytest.raises(InvalidInput) as refused:
        parameters.resolve(
            catalog,
            catalog.type("test"),
            literal if where == "environment" else {},
            literal if where == "override" else None,
        )
    assert "GAME_DB_PASSWORD looks like a secret" in refused.value.reason
    assert "hunter2" not in refused.value.one_line()
    assert "@keyvault" in refused.value.hint


def test_a_literal_secret_in_shipyard_yaml_names_file_and_line(tmp_path: Path) -> None:
    from environments.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        catalog_from(tmp_path, BASE + "  staging:\n    parameters:\n      ApiKey: abc123\n")
    assert f"{tmp_path / 'shipyard.yaml'}:15" in refused.value.reason
    assert "ApiKey looks like a secret" in refused.value.reason


def test_values_may_name_the_environment_itself(tmp_path: Path) -> None:
    catalog = catalog_from(tmp_path, BASE)
    resolved = parameters.resolve(
        catalog,
        catalog.type("test"),
        {
            "ENDPOINT": "https://{{ env.outputs.clusterEndpoint }}/api",
            "NAME": "{{env.name}}-{{ env.type }}@{{ release.version }}",
        },
    )
    context = Context(
        "pr-7", "test", "alice", {"clusterEndpoint": "pr-7.westeurope.cloudapp.azure.com"}, "1.2.0"
    )
    rendered = parameters.render(resolved, context)
    assert rendered["ENDPOINT"].value == "https://pr-7.westeurope.cloudapp.azure.com/api"
    assert rendered["NAME"].value == "pr-7-test@1.2.0"
    with pytest.raises(InvalidInput, match="refers to output 'missing', which pr-7 does not have"):
        parameters.render(
            {"X": parameters.Parameter("X", "{{ env.outputs.missing }}", Layer.TYPE)}, context
        )
    with pytest.raises(InvalidInput, match="which Shipyard does not know"):
        parameters.render(
            {"X": parameters.Parameter("X", "{{ env.password }}", Layer.TYPE)}, context
        )


def test_diff_shows_only_what_differs_and_summarises_keys() -> None:
    changes = parameters.diff({"A": "1", "B": "2", "C": "3"}, {"A": "1", "B": "20", "D": "4"})
    assert [(c.mark, c.key) for c in changes] == [("~", "B"), ("-", "C"), ("+", "D")]
    assert parameters.summary(changes) == "~B -C +D"
    assert parameters.summary([]) == "unchanged"


# --- Service Fabric ---------------------------------------------------------------------------


def test_a_real_application_parameters_file_loads_as_a_layer() -> None:
    name, values = servicefabric.read_application_parameters(
        GETTING_STARTED / "ApplicationParameters/Cloud.xml"
    )
    assert name == "fabric:/GettingStartedApplication"
    assert values["StatefulBackendService_PartitionCount"] == "6"
    assert values["MyActorService_PartitionCount"] == "9"


def sf_catalog(tmp_path: Path, extra: str = "") -> Catalog:
    return catalog_from(
        tmp_path,
        f"""\
version: 1
types:
  test:
    service_fabric:
      manifest: {GETTING_STARTED}/ApplicationPackageRoot/ApplicationManifest.xml
      parameters_file: {GETTING_STARTED}/ApplicationParameters/Cloud.xml
    parameters:
      WebService_InstanceCount: 2
{extra}""",
    )


def test_rendered_application_parameters_validate_against_the_xsd(tmp_path: Path) -> None:
    catalog = sf_catalog(tmp_path)
    env_type = catalog.type("test")
    resolved = parameters.resolve(
        catalog,
        env_type,
        {"WebService_GuestExeBackendServiceName": 'Guest<&"Exe>'},
        file_layer=renderings.file_layer(catalog, env_type),
    )
    rendered = renderings.sf_xml(catalog, env_type, "pr-1", resolved)
    schema = etree.XMLSchema(etree.parse(str(SF / "ServiceFabricServiceModel.xsd")))
    document = etree.fromstring(rendered.xml.encode())
    assert schema.validate(document), schema.error_log.last_error
    written = {p.get("Name"): p.get("Value") for p in document.iter("{*}Parameter")}
    assert written["WebService_GuestExeBackendServiceName"] == 'Guest<&"Exe>'
    assert written["WebService_InstanceCount"] == "2"
    assert written["StatefulBackendService_PartitionCount"] == "6"
    manifest = servicefabric.read_manifest(
        GETTING_STARTED / "ApplicationPackageRoot/ApplicationManifest.xml"
    )
    assert set(written) <= set(manifest.defaults)
    assert "WebService_ReverseProxyPort" in rendered.defaulted
    assert document.get("Name") == "fabric:/GettingStartedApplication"


def test_a_name_the_manifest_does_not_declare_is_refused(tmp_path: Path) -> None:
    catalog = sf_catalog(tmp_path)
    env_type = catalog.type("test")
    resolved = parameters.resolve(catalog, env_type, {"WebService_Typo": "1"})
    with pytest.raises(InvalidInput) as refused:
        renderings.sf_xml(catalog, env_type, "pr-1", resolved)
    assert "WebService_Typo (environment layer) not declared in" in refused.value.reason
    assert "ApplicationManifest.xml" in refused.value.reason


def test_a_malformed_manifest_is_refused_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "ApplicationManifest.xml"
    broken.write_text("<ApplicationManifest><Parameters>")
    with pytest.raises(InvalidInput, match="not well-formed XML"):
        servicefabric.read_manifest(broken)
    other = tmp_path / "Other.xml"
    other.write_text('<Foo xmlns="http://schemas.microsoft.com/2011/01/fabric"/>')
    with pytest.raises(InvalidInput, match="expected a Service Fabric <ApplicationManifest>"):
        servicefabric.read_manifest(other)


def test_key_vault_references_become_secret_uris_in_service_fabric_xml() -> None:
    reference = KeyVaultRef("game-kv", "db-password", "abc")
    rendered = servicefabric.render(
        "fabric:/Game",
        {
            "DbPassword": parameters.Parameter("DbPassword", reference.text, Layer.TYPE, reference),
        },
        None,
    )
    assert 'Value="https://game-kv.vault.azure.net/secrets/db-password/abc"' in rendered.xml


# --- ARM ---------------------------------------------------------------------------------------


def arm_validator() -> jsonschema.protocols.Validator:
    base = "https://schema.management.azure.com/schemas/"
    resources = {}
    for path in ARM_SCHEMAS.rglob("*.json"):
        relative = path.relative_to(ARM_SCHEMAS).as_posix()
        document: Any = json.loads(path.read_text(encoding="utf-8-sig"))
        resources[base + relative] = Resource.from_contents(document, default_specification=DRAFT4)
    # Not shipped (4 MB): resolve to an empty schema, as the reference README says.
    empty = Resource.from_contents({}, default_specification=DRAFT4)
    resources[base + "common/autogeneratedResources.json"] = empty
    registry: Registry[Any] = Registry().with_resources(resources.items())
    schema = json.loads(
        (ARM_SCHEMAS / "2019-04-01/deploymentParameters.json").read_text(encoding="utf-8-sig")
    )
    return jsonschema.Draft4Validator(schema, registry=registry)


def test_arm_parameters_validate_and_keep_key_vault_references(tmp_path: Path) -> None:
    catalog = catalog_from(
        tmp_path, BASE.replace("version: 1\n", "version: 1\nazure:\n  subscription_id: 0000-sub\n")
    )
    resolved = parameters.resolve(
        catalog,
        catalog.type("test"),
        {
            "adminPassword": "@keyvault(game-kv, vm-admin)",
            "certificateThumbprint": "ABCDEF",
        },
    )
    document = json.loads(renderings.arm_json(catalog, resolved))
    arm_validator().validate(document)
    assert document["parameters"]["adminPassword"] == {
        "reference": {
            "keyVault": {
                "id": "/subscriptions/0000-sub/resourceGroups/shipyard-shared"
                "/providers/Microsoft.KeyVault/vaults/game-kv"
            },
            "secretName": "vm-admin",
        }
    }
    assert document["parameters"]["A"] == {"value": "defaults"}


def test_the_arm_validator_rejects_a_bad_document() -> None:
    with pytest.raises(jsonschema.ValidationError):
        arm_validator().validate({"$schema": "x", "contentVersion": "1.0", "parameters": {}})


def test_env_references_are_refused_for_arm(tmp_path: Path) -> None:
    catalog = catalog_from(tmp_path, BASE)
    resolved = parameters.resolve(catalog, catalog.type("test"), {"DB_PASSWORD": "@env(X)"})
    with pytest.raises(InvalidInput, match="only local environments can use"):
        renderings.arm_json(catalog, resolved)


def test_dotenv_escapes_and_keeps_references(tmp_path: Path) -> None:
    catalog = catalog_from(tmp_path, "version: 1\ntypes:\n  test: {}\n")
    resolved = parameters.resolve(
        catalog,
        catalog.type("test"),
        {
            "MOTD": 'say "hi"\nthere',
            "DB_PASSWORD": "@env(DBPW)",
        },
    )
    assert renderings.dotenv(resolved) == 'DB_PASSWORD="@env(DBPW)"\nMOTD="say \\"hi\\"\\nthere"\n'


def test_env_references_resolve_only_at_deploy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBPW", "s3cret")
    assert EnvRef("DBPW").resolve("DB_PASSWORD") == "s3cret"
    monkeypatch.delenv("DBPW")
    with pytest.raises(ProviderError, match=r"DB_PASSWORD refers to \$DBPW, which is not set"):
        EnvRef("DBPW").resolve("DB_PASSWORD")
