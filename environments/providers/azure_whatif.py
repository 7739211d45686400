"""ARM what-if for the azure provider: the changes a deployment would make, nothing deployed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from azure.mgmt.resource.deployments import models as arm_models

from environments.errors import ProviderError
from environments.model import Environment
from environments.providers import arm_template as arm
from environments.providers import whatif
from environments.providers.azure_arm import ResourceManager, calling, nested


def what_if(
    rm: ResourceManager,
    environment: Environment,
    *,
    group: str,
    name: str,
    template: arm.Template,
    rendered: dict[str, dict[str, Any]],
    tags: Mapping[str, str],
) -> whatif.WhatIf:
    """What ARM would change deploying `template` as `name` into `group` (created if missing)."""
    resources, deployments = rm.clients()
    with calling(f"asking ARM what deployment {name} would change", rm.settings):
        exists = resources.resource_groups.check_existence(group)
        properties = {"mode": "Incremental", "template": template.body, "parameters": rendered}
        if exists:
            poller = deployments.deployments.begin_what_if(
                group, name, arm_models.DeploymentWhatIf({"properties": properties})
            )
        else:
            wrapper = _subscription_template(group, rm.settings.location, name, properties)
            wrapper["resources"][0]["tags"] = dict(tags)
            scoped = {
                "location": rm.settings.location,
                "properties": {"mode": "Incremental", "template": wrapper},
            }
            poller = deployments.deployments.begin_what_if_at_subscription_scope(
                name, arm_models.DeploymentWhatIf(scoped)
            )
        result = rm.wait(poller, f"what-if of {name}", lambda _: None)
    if str(result.get("status", "")).lower() == "failed":
        raise ProviderError(
            f"ARM what-if of {name} failed: " + "; ".join(nested(result.get("error") or {})),
            hint=f"fix {template.name} or the parameters",
        )
    changes = tuple(_change(c) for c in result.get("properties", {}).get("changes", []))
    return whatif.WhatIf(
        environment=environment.name,
        provider="azure",
        summary=f"ARM deployment {name} of {template.name} into resource group {group}"
        + ("" if exists else " (to be created)"),
        changes=changes,
    )


def _change(raw: Mapping[str, Any]) -> whatif.ResourceChange:
    def props(deltas: Sequence[Mapping[str, Any]], prefix: str = "") -> list[whatif.PropertyChange]:
        found: list[whatif.PropertyChange] = []
        for delta in deltas:
            path = f"{prefix}{delta.get('path', '')}"
            if delta.get("children"):
                found.extend(props(delta["children"], f"{path}."))
            else:
                found.append(
                    whatif.PropertyChange(
                        path=path,
                        change=str(delta.get("propertyChangeType", "Modify")),
                        before=delta.get("before"),
                        after=delta.get("after"),
                    )
                )
        return found

    return whatif.ResourceChange(
        change=str(raw.get("changeType", "Unsupported")),
        resource_id=str(raw.get("resourceId", "")),
        properties=tuple(props(raw.get("delta") or [])),
    )


def _subscription_template(
    group: str, location: str, name: str, properties: Mapping[str, Any]
) -> dict[str, Any]:
    """A subscription-scope template that creates the group and deploys into it (for what-if)."""
    return {
        "$schema": "https://schema.management.azure.com/schemas/2018-05-01/"
        "subscriptionDeploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.Resources/resourceGroups",
                "apiVersion": "2022-09-01",
                "name": group,
                "location": location,
            },
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": name,
                "resourceGroup": group,
                "dependsOn": [f"[resourceId('Microsoft.Resources/resourceGroups', '{group}')]"],
                "properties": {**properties, "expressionEvaluationOptions": {"scope": "inner"}},
            },
        ],
    }
