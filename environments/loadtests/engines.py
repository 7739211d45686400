"""The local load engines: Locust as a subprocess, JMeter where one is configured."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from environments.errors import InvalidInput, ProviderError
from environments.loadtests.aggregate import aggregate
from environments.loadtests.engine import EngineRun, Load, Progress
from environments.loadtests.readers import read_result

PROGRESS_EVERY = 3.0


def _execute(
    command: list[str],
    folder: Path,
    timeout: float,
    engine: str,
    env: dict[str, str] | None = None,
    watch: Callable[[float], None] | None = None,
) -> None:
    """Run the engine to its end; `watch(elapsed)` is called every few seconds meanwhile."""
    log = folder / f"{engine}.log"
    began = time.monotonic()
    with log.open("wb") as output:
        try:
            process = subprocess.Popen(
                command,
                cwd=folder,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except FileNotFoundError:
            raise ProviderError(
                f"{command[0]} is not installed", hint=f"install {engine}"
            ) from None
        try:
            while True:
                elapsed = time.monotonic() - began
                if elapsed > timeout:
                    raise ProviderError(
                        f"{engine} did not finish within {timeout:.0f}s", hint=f"see {log}"
                    )
                try:
                    returncode = process.wait(min(PROGRESS_EVERY, timeout - elapsed + 0.1))
                    break
                except subprocess.TimeoutExpired:
                    if watch is not None:
                        watch(time.monotonic() - began)
        finally:
            if process.poll() is None:  # timed out, or interrupted (SIGTERM, Ctrl-C): stop it
                process.kill()
                process.wait()
    if returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise ProviderError(
            f"{engine} exited with {returncode}: {' | '.join(tail)}", hint=f"see {log}"
        )


def locust_progress(history: Path, load: Load, elapsed: float) -> str:
    """`12s of 30s: 10 users, 84.2 req/s, p95 21 ms, errors 0.0%` from Locust's live history."""
    head = f"{elapsed:.0f}s of {load.duration.total_seconds():.0f}s"
    try:
        with history.open(newline="", encoding="utf-8") as handle:
            rows = [r for r in csv.DictReader(handle) if r.get("Name") == "Aggregated"]
    except OSError:
        rows = []
    if not rows:
        return f"{head}: starting"
    last = rows[-1]

    def number(column: str) -> float | None:
        try:
            return float(last.get(column) or "")
        except ValueError:
            return None  # Locust writes N/A before the first response

    rps, failures, p95 = number("Requests/s"), number("Failures/s"), number("95%")
    users = last.get("User Count", "?")
    errors = 100.0 * failures / rps if rps and failures is not None else 0.0
    return (
        f"{head}: {users} users, {rps or 0:.1f} req/s, "
        + (f"p95 {p95:,.0f} ms" if p95 else "p95 -")
        + f", errors {errors:.1f}%"
    )


SAMPLES_PLUGIN = Path(__file__).with_name("locust_samples.py")


class LocustEngine:
    """Locust headless against the environment's endpoint; its CSV statistics are the result."""

    name = "locust"

    def command(self, plan: Path, endpoint: str, load: Load, folder: Path) -> list[str]:
        seconds = max(1, int(load.duration.total_seconds()))
        return [
            sys.executable,
            "-m",
            "locust",
            "-f",
            f"{plan},{SAMPLES_PLUGIN}",
            "--headless",
            "-u",
            str(load.users),
            "-r",
            f"{load.spawn_rate:g}",
            "-t",
            f"{seconds}s",
            "--host",
            endpoint,
            "--csv",
            str(folder / "locust"),
            "--csv-full-history",
            "--only-summary",
            "--exit-code-on-error",
            "0",
            "--loglevel",
            "WARNING",
            "--stop-timeout",
            "2",
        ]

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
        timeout = load.duration.total_seconds() + 60
        samples = folder / "samples.jtl"
        stats = folder / "locust_stats.csv"
        history = folder / "locust_stats_history.csv"
        env = {**os.environ, "SHIPYARD_LOCUST_SAMPLES": str(samples)}

        def watch(elapsed: float) -> None:
            if progress is not None:
                progress(locust_progress(history, load, elapsed))

        command = self.command(plan, endpoint, load, folder)
        _execute(command, folder, timeout, self.name, env, watch)
        return EngineRun(
            aggregate(read_result(stats)),
            stats,
            history if history.exists() else None,
            samples if samples.exists() else None,
        )


class JMeterEngine:
    """JMeter in non-GUI mode; the plan reads host, port, threads and duration via ${__P(…)}."""

    name = "jmeter"

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or os.environ.get("SHIPYARD_JMETER") or shutil.which("jmeter")

    def command(self, plan: Path, endpoint: str, load: Load, folder: Path) -> list[str]:
        if not self.binary:
            raise InvalidInput(
                "no JMeter binary is configured",
                hint="set SHIPYARD_JMETER to the jmeter executable",
            )
        url = urlsplit(endpoint)
        port = url.port or (443 if url.scheme == "https" else 80)
        ramp = max(1, int(load.users / max(load.spawn_rate, 0.001)))
        return [
            self.binary,
            "-n",
            "-t",
            str(plan),
            "-l",
            str(folder / "results.jtl"),
            f"-Jprotocol={url.scheme or 'http'}",
            f"-Jhost={url.hostname}",
            f"-Jport={port}",
            f"-Jthreads={load.users}",
            f"-Jrampup={ramp}",
            f"-Jduration={max(1, int(load.duration.total_seconds()))}",
            "-Jjmeter.save.saveservice.output_format=csv",
            "-Jjmeter.save.saveservice.print_field_names=true",
        ]

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
        timeout = load.duration.total_seconds() + 120

        def watch(elapsed: float) -> None:
            if progress is not None:  # JMeter's non-GUI summariser is in its log, not parsed
                progress(f"{elapsed:.0f}s of {load.duration.total_seconds():.0f}s: running")

        _execute(
            self.command(plan, endpoint, load, folder), folder, timeout, self.name, None, watch
        )
        results = folder / "results.jtl"
        return EngineRun(aggregate(read_result(results)), results, None, results)
