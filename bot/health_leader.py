"""The health probes of `shipyard serve`: one replica leads them (advisory lock, like schedules)."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from bot.runtime import Runtime
from bot.scheduler import Leadership
from environments.health import HealthProbes
from environments.registry import operations as ops
from environments.registry import record as rec

if TYPE_CHECKING:
    from environments.providers.azure_drift import Drift

log = logging.getLogger(__name__)
HEALTH_LOCK = 0x5348_4845  # "SHHE": distinct from the schedules' lock, so either may lead alone


def probe_settings() -> tuple[float, float, float]:
    """Seconds between health rounds, for one probe, between reconciles (SHIPYARD_HEALTH_EVERY,
    SHIPYARD_HEALTH_TIMEOUT, SHIPYARD_RECONCILE_EVERY)."""
    every = float(os.environ.get("SHIPYARD_HEALTH_EVERY", "60"))
    timeout = float(os.environ.get("SHIPYARD_HEALTH_TIMEOUT", "5"))
    reconcile = float(os.environ.get("SHIPYARD_RECONCILE_EVERY", "900"))
    return max(every, 0.2), max(timeout, 0.1), max(reconcile, 1.0)


def record_drift(runtime: Runtime, actor: str) -> Drift | None:
    """Reconcile Azure with the record and keep what it found (the dashboard's orphans banner).

    None when no type uses Azure. The finding is an audit event: orphan names, locations, tags.
    """
    provider = runtime.worker.providers.get("azure")
    if provider is None:
        return None
    from environments.providers.azure import AzureProvider

    assert isinstance(provider, AzureProvider)
    with runtime.database.read() as conn:
        live = rec.list_environments(conn)
    drift = provider.drift(live)
    orphans = [{"name": o.name, "location": o.location, "tags": o.tags} for o in drift.orphans]
    with runtime.database.write() as conn:
        ops.audit(
            conn,
            at=runtime.clock.now(),
            actor=actor,
            action="reconcile.drift",
            environment=None,
            orphans=orphans,
            vanished=[e.name for e in drift.vanished],
        )
    return drift


def lead_and_probe(runtime: Runtime, stop: threading.Event, *, retry: float = 10.0) -> None:
    """Keep trying to lead; while leading, probe every live environment until `stop` is set."""
    leadership = Leadership(runtime, key=HEALTH_LOCK, lockfile="health.lock")
    if not leadership.wait_to_lead(stop, retry):
        return
    every, timeout, reconcile_every = probe_settings()
    probes = HealthProbes(
        runtime.database,
        runtime.worker.provider_for,
        clock=runtime.clock,
        notifier=runtime.notifiers,
        timeout=timeout,
    )
    log.info("leading the health probes: every %gs, %gs per probe", every, timeout)
    last_reconcile = float("-inf")
    try:
        while not stop.is_set():
            try:
                probes.probe_all()
                if time.monotonic() - last_reconcile >= reconcile_every:
                    last_reconcile = time.monotonic()
                    record_drift(runtime, "schedule")
            except Exception:
                log.exception("health round failed; trying again")
            stop.wait(every)
    finally:
        probes.close()
        leadership.release()
