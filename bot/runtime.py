"""The composition root: wires the catalog, record, providers, lifecycle and worker together."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from environments import validation
from environments.catalog import Catalog, Directory, config_path
from environments.clock import Clock, SystemClock
from environments.lifecycle import Lifecycle
from environments.notify import Notifier, Notifiers
from environments.providers.base import Provider
from environments.providers.local import LocalProvider
from environments.registry import Database, open_database, shipyard_home
from environments.secrets import remember_env_values
from environments.worker import Worker

if TYPE_CHECKING:
    from environments.loadtests.engine import Engine
    from environments.loadtests.service import LoadTesting


def load_engines() -> dict[str, Callable[[], Engine]]:
    """The load engines by the name a plan gives: the composition root picks the adapters
    (Azure Load Testing's SDK is imported only when a plan uses it)."""
    from environments.loadtests.engines import JMeterEngine, LocustEngine

    def azure_load_testing() -> Engine:
        from environments.loadtests.azure import AzureLoadTestingEngine

        return AzureLoadTestingEngine()

    return {
        "locust": LocustEngine,
        "jmeter": JMeterEngine,
        "azure-load-testing": azure_load_testing,
    }


@dataclass
class Runtime:
    """Everything one Shipyard process needs, built once from configuration."""

    catalog: Catalog
    database: Database
    lifecycle: Lifecycle
    worker: Worker
    home: Path
    notifiers: Notifiers
    clock: Clock

    @classmethod
    def open(
        cls,
        config: str | None = None,
        *,
        database_url: str | None = None,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        directory: Directory | None = None,
    ) -> Runtime:
        # The full check: nothing reaches a worker that `shipyard config check` would refuse.
        catalog = validation.load(config_path(config))
        if directory is not None:
            catalog = catalog.with_directory(directory)
        remember_env_values(catalog.parameters)
        for env_type in catalog.types.values():
            remember_env_values(env_type.parameters)
        home = shipyard_home()
        database = open_database(database_url)
        clock = clock or SystemClock()
        notifiers = Notifiers(*([notifier] if notifier else []))
        providers: dict[str, Provider] = {
            "local": LocalProvider(home / "environments", catalog.application),
        }
        if any(env_type.provider == "azure" for env_type in catalog.types.values()):
            # Imported only when needed; its clients and credential are built on first use.
            from environments.providers.azure import AzureProvider

            providers["azure"] = AzureProvider(catalog)
        piped = {k.provider for k in catalog.types.values() if k.engine == "azure-pipelines"}
        if piped:
            # Composition root: the Azure DevOps edge becomes the deploy engine of these types.
            from pipelines.azure_devops import AzureDevOps
            from pipelines.engine import PipelineEngine

            # Built on first use, by a deploy that runs a pipeline: `env list` needs no PAT.
            connect = functools.cache(lambda: AzureDevOps.from_environment(catalog))
            for name in piped:
                providers[f"{name}+azure-pipelines"] = PipelineEngine(
                    providers[name], connect, catalog=catalog, timeout=timedelta(hours=2)
                )
        worker = Worker(catalog, database, providers, clock=clock, notifier=notifiers)
        return cls(
            catalog=catalog,
            database=database,
            lifecycle=Lifecycle(
                catalog, database, clock=clock, notifier=notifiers, preflight=worker.preflight
            ),
            worker=worker,
            home=home,
            notifiers=notifiers,
            clock=clock,
        )

    @functools.cached_property
    def loadtesting(self) -> LoadTesting:
        """Built on first use: its engines and readers bring numpy and polars along."""
        from environments.loadtests.service import LoadTesting

        return LoadTesting(
            self.catalog,
            self.database,
            clock=self.clock,
            notifier=self.notifiers,
            home=self.home,
            engines=load_engines(),
        )

    def close(self) -> None:
        self.database.dispose()
