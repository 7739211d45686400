"""Health probes as recorded facts: probe every live environment, record, tell on a change."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from environments.clock import Clock
from environments.model import Environment, EnvironmentState, HealthStatus
from environments.notify import Notifier
from environments.providers.base import HealthReport, Provider
from environments.registry import Database, outbox
from environments.registry import record as rec
from environments.registry.health import HealthCheck, record_health

log = logging.getLogger(__name__)

# Environments in these states have something running to probe; the others are still being
# built or torn down, and their operation reports on them.
PROBED = frozenset({EnvironmentState.READY, EnvironmentState.DEPLOYING, EnvironmentState.FAILED})


@dataclass(frozen=True)
class HealthChange:
    """A probe whose status differs from the environment's previous one."""

    environment: Environment
    previous: HealthStatus | None
    report: HealthReport


class HealthProbes:
    """Probes run on a pool of their own with a deadline, so a hung endpoint blocks nothing else.

    A probe still running at the deadline is recorded as `unknown` ("no answer within …"); its
    thread finishes on its own (every call it makes has the same timeout) and is not waited for.
    """

    def __init__(
        self,
        database: Database,
        provider_for: Callable[[str], Provider],
        *,
        clock: Clock,
        notifier: Notifier,
        timeout: float = 5.0,
        parallel: int = 8,
    ) -> None:
        self.database = database
        self.provider_for = provider_for
        self.clock = clock
        self.notifier = notifier
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(parallel, thread_name_prefix="shipyard-health")

    def probe_all(self) -> list[HealthChange]:
        """One round: every live environment with something running, probed in parallel."""
        with self.database.read() as conn:
            envs = [e for e in rec.list_environments(conn) if e.state in PROBED]
        futures = {self._pool.submit(self._probe, env): env for env in envs}
        wait(futures, timeout=self.timeout + 1.0)
        changes = []
        for future, env in futures.items():
            report = self._outcome(future)
            change = self._record(env, report)
            if change is not None:
                changes.append(change)
        for change in changes:
            self.notifier.health_changed(change.environment, change.previous, change.report)
        return changes

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _probe(self, env: Environment) -> HealthReport:
        return self.provider_for(env.type).probe(env, timeout=self.timeout)

    def _outcome(self, future: Future[HealthReport]) -> HealthReport:
        if not future.done():
            future.cancel()
            return HealthReport(HealthStatus.UNKNOWN, f"no answer within {self.timeout:g}s")
        try:
            return future.result()
        except Exception as exc:  # a provider bug is a fact about the probe, not a crash
            log.exception("health probe failed")
            return HealthReport(HealthStatus.UNKNOWN, f"probe failed: {type(exc).__name__}")

    def _record(self, env: Environment, report: HealthReport) -> HealthChange | None:
        now = self.clock.now()
        with self.database.write() as conn:
            current = rec.environment_by_id(conn, env.id)
            if not current.is_live:
                return None  # destroyed while it was probed
            previous = record_health(conn, HealthCheck(env.id, now, report.status, report.reason))
            if previous == report.status or (
                previous is None and report.status is HealthStatus.HEALTHY
            ):
                return None
            outbox.add(
                conn,
                outbox.Event.HEALTH_CHANGED,
                at=now,
                environment=current.name,
                status=report.status.value,
                previous=previous.value if previous else None,
                reason=report.reason,
            )
        return HealthChange(current, previous, report)
