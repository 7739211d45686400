"""ARM templates as they really are: secure parameters, names matched as ARM matches them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from environments.config.azure import AzureSettings
from environments.providers import arm_outputs, arm_parameters
from environments.providers import arm_template as arm
from environments.secrets import KeyVaultRef

VAULT = "/subscriptions/0/resourceGroups/sy-shared/providers/Microsoft.KeyVault/vaults/v"


def vault_id(ref: KeyVaultRef) -> str:
    return VAULT


def template(tmp_path: Path, parameters: dict[str, object]) -> arm.Template:
    path = tmp_path / "azuredeploy.json"
    path.write_text(json.dumps({"parameters": parameters, "resources": []}))
    return arm.load_template(path)


def test_a_literal_for_a_secure_parameter_in_the_parameters_file_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    t = template(
        tmp_path,
        {"adminPassword": {"type": "securestring"}, "settings": {"type": "secureObject"}},
    )
    file = tmp_path / "azuredeploy.parameters.json"
    file.write_text(
        json.dumps(
            {
                "parameters": {
                    "adminPassword": {"value": "GEN-PASSWORD"},
                    "settings": {"value": {"a": 1}},
                }
            }
        )
    )
    _, problems = arm_parameters.check_parameters(
        t,
        {},
        file_values=arm.load_parameters_file(file),
        vault_id=vault_id,
        file_name=str(file),
    )
    texts = {p.key: p.text for p in problems}
    assert str(file) in texts["adminPassword"] and "securestring" in texts["adminPassword"]
    assert str(file) in texts["settings"] and "secureobject" in texts["settings"]


def test_a_literal_for_a_secure_parameter_from_shipyard_is_refused_naming_where(
    tmp_path: Path,
) -> None:
    t = template(tmp_path, {"clusterBlob": {"type": "securestring"}})
    _, problems = arm_parameters.check_parameters(
        t,
        {"clusterBlob": "plain-text"},
        vault_id=vault_id,
        origins={"clusterBlob": "shipyard.yaml:12"},
    )
    (problem,) = problems
    assert "shipyard.yaml:12" in problem.text and "@keyvault" in problem.text
    values, problems = arm_parameters.check_parameters(
        t, {"clusterBlob": "@keyvault(v-vault, blob)"}, vault_id=vault_id
    )
    assert not problems and "reference" in values["clusterBlob"]


def test_parameter_names_match_case_insensitively_in_the_templates_spelling(
    tmp_path: Path,
) -> None:
    t = template(
        tmp_path,
        {"adminUserName": {"type": "string"}, "vmCount": {"type": "int"}},
    )
    file = {"VMCOUNT": {"value": 5}}
    values, problems = arm_parameters.check_parameters(
        t, {"adminUsername": "shipyard"}, file_values=file, vault_id=vault_id
    )
    assert not problems
    assert values == {"adminUserName": {"value": "shipyard"}, "vmCount": {"value": 5}}


SECURE_SF_OUTPUTS = {
    "clusterProperties": {
        "managementEndpoint": "https://game.westeurope.cloudapp.azure.com:19080",
        "clientConnectionEndpoint": "game.westeurope.cloudapp.azure.com:19000",
        "clusterEndpoint": "https://westeurope.servicefabric.azure.com/runtime/clusters/1",
    }
}


@pytest.mark.parametrize(
    ("outputs", "path", "endpoint"),
    [
        # The secure quickstarts output only clusterProperties: one object down, https first.
        (SECURE_SF_OUTPUTS, None, "https://westeurope.servicefabric.azure.com/runtime/clusters/1"),
        (
            SECURE_SF_OUTPUTS,
            "clusterProperties.managementEndpoint",
            "https://game.westeurope.cloudapp.azure.com:19080",
        ),
        (
            SECURE_SF_OUTPUTS,
            "CLUSTERPROPERTIES.ManagementEndpoint",
            SECURE_SF_OUTPUTS["clusterProperties"]["managementEndpoint"],
        ),
        (SECURE_SF_OUTPUTS, "clusterProperties.nothing", None),
        # A managed cluster: the bare host:port loses to an https endpoint.
        (
            {"clientConnectionEndpoint": "h:19000", "httpGatewayEndpoint": "https://h:19080"},
            None,
            "https://h:19080",
        ),
        ({"clientConnectionEndpoint": "h:19000"}, None, "h:19000"),
        ({"endpoint": "https://a", "clusterEndpoint": "https://b"}, None, "https://a"),
        ({"name": "x"}, None, None),
    ],
)
def test_the_endpoint_output(outputs: dict[str, Any], path: str | None, endpoint: str) -> None:
    assert arm_outputs.pick_endpoint(outputs, path) == endpoint


@pytest.mark.parametrize(
    ("url", "scope"),
    [
        ("https://management.azure.com", "https://management.azure.com/.default"),
        ("https://management.chinacloudapi.cn/", "https://management.chinacloudapi.cn/.default"),
        ("https://management.usgovcloudapi.net", "https://management.usgovcloudapi.net/.default"),
    ],
)
def test_the_credential_scope_follows_the_resource_manager_url(url: str, scope: str) -> None:
    assert AzureSettings(resource_manager_url=url).scope == scope
    explicit = AzureSettings(resource_manager_url=url, credential_scope="https://x/.default")
    assert explicit.scope == "https://x/.default"
