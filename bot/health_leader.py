"""The health probes of `shipyard serve`: one replica leads them (advisory lock, like schedules)."""

from __future__ import annotations

import logging
import os
import threading

from bot.runtime import Runtime
from bot.scheduler import Leadership
from environments.health import HealthProbes, run_probes

log = logging.getLogger(__name__)
HEALTH_LOCK = 0x5348_4845  # "SHHE": distinct from the schedules' lock, so either may lead alone


def probe_settings() -> tuple[float, float]:
    """(seconds between rounds, seconds one probe may take): SHIPYARD_HEALTH_EVERY/_TIMEOUT."""
    every = float(os.environ.get("SHIPYARD_HEALTH_EVERY", "60"))
    timeout = float(os.environ.get("SHIPYARD_HEALTH_TIMEOUT", "5"))
    return max(every, 0.2), max(timeout, 0.1)


def lead_and_probe(runtime: Runtime, stop: threading.Event, *, retry: float = 10.0) -> None:
    """Keep trying to lead; while leading, probe every live environment until `stop` is set."""
    leadership = Leadership(runtime, key=HEALTH_LOCK, lockfile="health.lock")
    if not leadership.wait_to_lead(stop, retry):
        return
    every, timeout = probe_settings()
    probes = HealthProbes(
        runtime.database,
        runtime.worker.provider_for,
        clock=runtime.clock,
        notifier=runtime.notifiers,
        timeout=timeout,
    )
    log.info("leading the health probes: every %gs, %gs per probe", every, timeout)
    try:
        run_probes(probes, stop, every=every)
    finally:
        probes.close()
        leadership.release()
