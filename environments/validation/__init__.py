"""The whole check of shipyard.yaml, files it names included; every command loads through it.

`catalog.read_catalog` checks the structure (types of values, unknown keys, the promotion path,
literal secrets); this package adds what needs the files the configuration points at and the
links between sections, one concept a module: people, roles and Slack (`people`), environment
types with their ARM / ADE templates and Service Fabric manifests (`types`), Azure DevOps and
the engines that use it (`azure_devops`), load-test plans and schedules (`loadtests`), and
parameter values' references (`values`). All problems are collected, each with file and line;
`load` refuses a configuration with any, so nothing reaches a worker that `shipyard config
check` would refuse.
"""

from __future__ import annotations

from pathlib import Path

from environments.catalog import Catalog, read_catalog
from environments.errors import ConfigError, ConfigProblem
from environments.validation.azure_devops import check_azure_devops
from environments.validation.common import Problems
from environments.validation.loadtests import CRON_HINT, check_plan, check_schedule, cron_problem
from environments.validation.people import check_people
from environments.validation.types import check_type
from environments.validation.values import check_references
from environments.yamlsource import SourcedYaml

__all__ = ["CRON_HINT", "Checks", "check_file", "cron_problem", "load"]


def load(path: Path) -> Catalog:
    """The catalog at `path`, or ConfigError listing every problem (what commands use)."""
    catalog, problems = check_file(path)
    if problems or catalog is None:
        raise ConfigError.of(str(path), problems)
    return catalog


def check_file(path: Path) -> tuple[Catalog | None, list[ConfigProblem]]:
    """Everything wrong with the configuration at `path` (its YAML must at least parse)."""
    catalog, source, problems = read_catalog(path)
    if catalog is not None:
        problems = [*problems, *Checks(catalog, source).run()]
    return catalog, sorted(problems, key=lambda p: (p.file, p.line or 0))


class Checks:
    """The checks beyond structure, each adding problems rather than stopping at the first."""

    def __init__(self, catalog: Catalog, source: SourcedYaml) -> None:
        self.found = Problems(catalog, source)

    def run(self) -> list[ConfigProblem]:
        p = self.found
        check_people(p)
        check_azure_devops(p)
        for name, env_type in p.catalog.types.items():
            check_type(p, name, env_type)
        for name, plan in p.catalog.loadtests.items():
            check_plan(p, name, plan)
        for name, schedule in p.catalog.schedules.items():
            check_schedule(p, name, schedule)
        check_references(p)
        return p.problems
