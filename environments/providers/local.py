"""Provider `local`: an environment is a folder plus real processes of the release on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from environments.catalog import Application
from environments.errors import ProviderError
from environments.model import Environment, HealthStatus, Release
from environments.providers.base import HealthReport, Progress, ProviderResult
from environments.secrets import EnvRef, KeyVaultRef, parse_reference

STATE_FILE = "instances.json"
FOLDER_MARK = "SHIPYARD_ENV_FOLDER"
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "TMPDIR")


@dataclass(frozen=True)
class Instance:
    """One running process of a release: pid, port, command line, and when the kernel started it."""

    pid: int
    port: int
    cmdline: str
    started: str = ""

    def alive(self) -> bool:
        """True only while this very process runs (a recycled pid is another process)."""
        stat = _stat(self.pid)
        if stat is None:
            return _pid_alive(self.pid) if not Path("/proc").exists() else False
        state, started = stat
        return state != "Z" and (not self.started or started == self.started)


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) from /proc/PID/stat, or None when there is no such pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], fields[19]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


class LocalProvider:
    """Environments as folders under SHIPYARD_HOME/environments with processes on 127.0.0.1.

    The processes are started in their own session so they outlive the `shipyard` command that
    started them: an environment stays up until it is destroyed (by a person or by expiry).
    """

    name = "local"

    def __init__(self, root: Path, application: Application, *, host: str = "127.0.0.1") -> None:
        self.root = root
        self.application = application
        self.host = host

    def folder(self, environment: Environment) -> Path:
        return self.root / f"{environment.name}-{environment.id}"

    def provision(self, environment: Environment, *, progress: Progress) -> ProviderResult:
        folder = self.folder(environment)
        for sub in ("data", "logs"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        progress(f"folder {folder}")
        return ProviderResult(outputs={"folder": str(folder)})

    def deploy(
        self,
        environment: Environment,
        release: Release,
        parameters: Mapping[str, str],
        *,
        progress: Progress,
    ) -> ProviderResult:
        """Start the new release beside the old one, switch when healthy, then stop the old."""
        folder = self.folder(environment)
        if not folder.exists():
            self.provision(environment, progress=progress)
        state = self._read(folder)
        # Leftovers of a deploy that crashed half-way are stopped before starting again: those
        # it recorded, and those it started but had no time to record (found by their folder).
        serving = {int(i["pid"]) for i in state.get("instances", [])}
        leftovers = [_instance(i) for i in state.get("starting", [])]
        leftovers += [i for i in processes_of(folder) if i.pid not in serving]
        _stop(leftovers)
        artifact = Path(release.artifact)
        if not artifact.is_dir():
            raise ProviderError(
                f"release {release.version}'s artifact folder {artifact} does not exist",
                hint="re-add the release with the right --artifact path",
            )
        started: list[Instance] = []
        state["starting"] = []
        for number in range(self.application.instances):
            instance = self._start(environment, release, parameters, folder, number)
            started.append(instance)
            state["starting"].append(instance.__dict__)
            self._write(folder, state)
            progress(
                f"started instance {number + 1}/{self.application.instances} "
                f"(pid {instance.pid}, port {instance.port})"
            )
        try:
            for number, instance in enumerate(started):
                self._wait_healthy(instance, folder / "logs" / f"instance-{number}.log")
                progress(f"instance {number + 1} healthy on port {instance.port}")
        except ProviderError:
            _stop(started)
            state["starting"] = []
            self._write(folder, state)
            raise
        _stop([_instance(i) for i in state.get("instances", [])])
        state.update(release=release.version, instances=[i.__dict__ for i in started], starting=[])
        self._write(folder, state)
        endpoint = f"http://{self.host}:{started[0].port}"
        return ProviderResult(
            endpoint=endpoint,
            outputs={"folder": str(folder), "ports": [i.port for i in started]},
        )

    def destroy(self, environment: Environment, *, progress: Progress) -> None:
        folder = self.folder(environment)
        if not folder.exists():
            return
        state = self._read(folder)
        running = [_instance(i) for i in state.get("instances", []) + state.get("starting", [])]
        known = {i.pid for i in running}
        running += [i for i in processes_of(folder) if i.pid not in known]
        if running:
            progress(f"stopping {len(running)} process(es)")
        _stop(running)
        shutil.rmtree(folder, ignore_errors=True)
        progress(f"removed {folder}")

    def health(self, environment: Environment) -> str:
        return self.probe(environment, timeout=2).reason

    def probe(self, environment: Environment, *, timeout: float) -> HealthReport:
        """The application's health endpoint on every instance: all answer, some, or none."""
        state = self._read(self.folder(environment))
        instances = [_instance(i) for i in state.get("instances", [])]
        if not instances:
            return HealthReport(HealthStatus.UNHEALTHY, "no processes")
        down = [i.port for i in instances if not (i.alive() and self._probe(i, timeout))]
        healthy = len(instances) - len(down)
        reason = f"{healthy}/{len(instances)} healthy"
        if down:
            reason += f" (no answer on {self.application.health} at port " + (
                ", ".join(str(p) for p in down) + ")"
            )
        if not down:
            return HealthReport(HealthStatus.HEALTHY, reason)
        return HealthReport(HealthStatus.DEGRADED if healthy else HealthStatus.UNHEALTHY, reason)

    def _start(
        self,
        environment: Environment,
        release: Release,
        parameters: Mapping[str, str],
        folder: Path,
        number: int,
    ) -> Instance:
        port = _free_port(self.host)
        values = {"python": sys.executable, "port": str(port), "host": self.host}
        command = [part.format(**values) for part in self.application.command]
        env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
        env.update(_runtime_values(parameters))
        env.update(
            PORT=str(port),
            HOST=self.host,
            SHIPYARD_ENV=environment.name,
            SHIPYARD_RELEASE=release.version,
            DATA_DIR=str(folder / "data"),
            PYTHONUNBUFFERED="1",
            # Marks the process as this environment's, so it is found even when a crash came
            # between starting it and writing it down.
            **{FOLDER_MARK: str(folder)},
        )
        log = (folder / "logs" / f"instance-{number}.log").open("ab")
        try:
            process = _popen(command, Path(release.artifact), env, log)
        finally:
            log.close()
        stat = _stat(process)
        return Instance(
            pid=process, port=port, cmdline=" ".join(command), started=stat[1] if stat else ""
        )

    def _wait_healthy(self, instance: Instance, log: Path) -> None:
        deadline = time.monotonic() + self.application.startup_timeout.total_seconds()
        while time.monotonic() < deadline:
            if not instance.alive():
                raise ProviderError(
                    f"the application exited while starting: {_tail(log)}",
                    hint=f"see {log}",
                )
            if self._probe(instance):
                return
            time.sleep(0.05)
        raise ProviderError(
            f"the application did not answer {self.application.health} within "
            f"{self.application.startup_timeout.total_seconds():.0f}s",
            hint=f"see {log}, or raise application.startup_timeout",
        )

    def _probe(self, instance: Instance, timeout: float = 2) -> bool:
        url = f"http://{self.host}:{instance.port}{self.application.health}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    @staticmethod
    def _read(folder: Path) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads((folder / STATE_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return loaded

    @staticmethod
    def _write(folder: Path, state: dict[str, Any]) -> None:
        temporary = folder / f".{STATE_FILE}.tmp"
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(folder / STATE_FILE)


def _runtime_values(parameters: Mapping[str, str]) -> dict[str, str]:
    """Environment variables for the process: @env references resolved here and nowhere else."""
    resolved = {}
    for key, value in parameters.items():
        reference = parse_reference(key, value)
        if isinstance(reference, EnvRef):
            resolved[key] = reference.resolve(key)
        elif isinstance(reference, KeyVaultRef):
            raise ProviderError(
                f"parameter {key} is {reference.text}: local environments cannot read Key Vault",
                hint=f"for local types write {key}=@env(VARIABLE) and export VARIABLE",
            )
        else:
            resolved[key] = value
    return resolved


def processes_of(folder: Path) -> list[Instance]:
    """Every live process started for this environment's folder, recorded or not (Linux /proc;
    elsewhere only the recorded ones are known)."""
    mark = f"{FOLDER_MARK}={folder}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*") if Path("/proc").exists() else []:
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if mark not in environ:
            continue
        pid = int(entry.name)
        stat = _stat(pid)
        if stat is None or stat[0] == "Z":
            continue
        port = next((v[5:] for v in environ if v.startswith(b"PORT=")), b"0")
        found.append(Instance(pid=pid, port=int(port or 0), cmdline="", started=stat[1]))
    return found


def _instance(raw: dict[str, Any]) -> Instance:
    return Instance(
        pid=int(raw["pid"]),
        port=int(raw["port"]),
        cmdline=str(raw["cmdline"]),
        started=str(raw.get("started", "")),
    )


def _popen(command: list[str], cwd: Path, env: dict[str, str], log: Any) -> int:
    import subprocess

    try:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise ProviderError(
            f"cannot start {command[0]}: {exc.strerror}", hint="check application.command"
        ) from None
    return process.pid


def _stop(instances: list[Instance], grace: float = 5.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; gone processes are fine."""
    targets = [i for i in instances if i.alive()]
    for instance in targets:
        _signal(instance.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while targets and time.monotonic() < deadline:
        _reap(targets)
        targets = [i for i in targets if i.alive()]
        if targets:
            time.sleep(0.05)
    for instance in targets:
        _signal(instance.pid, signal.SIGKILL)
    _reap(instances)


def _reap(instances: list[Instance]) -> None:
    # Children of this very process would otherwise linger as zombies.
    for instance in instances:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(instance.pid, os.WNOHANG)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no output)"
    return " | ".join(text[-lines:]) or "(no output)"
