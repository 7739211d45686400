"""The load-engine contract: how hard to push (Load), what an engine leaves (EngineRun), Engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from environments.loadtests.results import AggregateReport


@dataclass(frozen=True)
class Load:
    """How hard and how long: users (threads), their spawn rate, and the duration."""

    users: int
    spawn_rate: float
    duration: timedelta


@dataclass(frozen=True)
class EngineRun:
    """What an engine left behind: the aggregate report and the files it came from.

    `samples_file` is a JTL (CSV or XML) with one line per request: what the verdict and the
    chart's time series are made of.
    """

    report: AggregateReport
    result_file: Path
    history_file: Path | None
    samples_file: Path | None = None


class Engine(Protocol):
    name: str

    def command(self, plan: Path, endpoint: str, load: Load, folder: Path) -> list[str]: ...

    def run(
        self,
        plan: Path,
        endpoint: str,
        load: Load,
        folder: Path,
        progress: Progress | None = None,
        *,
        name: str = "",
        criteria: tuple[str, ...] = (),
    ) -> EngineRun:
        """`name` (plan and environment type) and `criteria` are for engines that keep a test
        of their own (Azure Load Testing); the others judge criteria after the run."""
        ...


Progress = Callable[[str], None]
"""Told one line of live figures every few seconds while an engine runs."""
