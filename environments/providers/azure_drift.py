"""Drift between Azure and the record: tagged resource groups nobody owns, groups that vanished."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from environments.catalog import Catalog
from environments.model import Environment, EnvironmentState
from environments.providers.azure_arm import ResourceManager, calling, wire

TAG = "shipyard-env"
"""The tag on every resource group Shipyard creates; its value is the environment's name."""


@dataclass(frozen=True)
class OrphanGroup:
    """A resource group tagged by Shipyard that no live environment in the record owns."""

    name: str
    location: str
    tags: dict[str, str]


@dataclass(frozen=True)
class Drift:
    """Where Azure and the record disagree, both ways."""

    orphans: tuple[OrphanGroup, ...]
    vanished: tuple[Environment, ...]

    @property
    def clean(self) -> bool:
        return not self.orphans and not self.vanished


def drift(
    rm: ResourceManager,
    catalog: Catalog,
    environments: Sequence[Environment],
    resource_group: Callable[[Environment], str],
) -> Drift:
    """Tagged resource groups the record does not know, and azure environments whose group
    vanished."""
    resources, _ = rm.clients()
    prefix = f"{rm.settings.resource_group_prefix}-".lower()
    with calling("listing resource groups tagged shipyard-env", rm.settings):
        tagged = [wire(g) for g in resources.resource_groups.list(filter=f"tagName eq '{TAG}'")]
    ours = {str(g["name"]).lower(): g for g in tagged if str(g["name"]).lower().startswith(prefix)}
    live = [
        e
        for e in environments
        if e.is_live and e.type in catalog.types and catalog.types[e.type].provider == "azure"
    ]
    known = {resource_group(e).lower() for e in live}
    orphans = tuple(
        OrphanGroup(name=g["name"], location=g.get("location", ""), tags=g.get("tags") or {})
        for key, g in sorted(ours.items())
        if key not in known
    )
    built = (EnvironmentState.READY, EnvironmentState.DEPLOYING, EnvironmentState.FAILED)
    vanished = []
    for env in live:
        group = resource_group(env)
        if env.state not in built or "resourceGroup" not in env.outputs:
            continue
        if group.lower() in ours:
            continue
        with calling(f"checking resource group {group}", rm.settings):
            if not resources.resource_groups.check_existence(group):
                vanished.append(env)
    return Drift(orphans=orphans, vanished=tuple(vanished))
