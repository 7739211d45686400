"""Running `shipyard serve` processes (one or several replicas) and the CLI beside them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack
from tests.slackbot import CONFIG, SIGNING_SECRET, free_port

SHIPYARD = [sys.executable, "-m", "bot.cli"]


class Serve:
    """One `shipyard serve` process, and the CLI beside it on the same record."""

    def __init__(self, home: Path, database_url: str, slack: FakeSlack) -> None:
        self.env = {
            **os.environ,
            "SHIPYARD_HOME": str(home),
            "SHIPYARD_CONFIG": str(CONFIG),
            "SHIPYARD_DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": DEFAULT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            "SHIPYARD_SESSION_SECRET": "test-session-secret",
        }
        self.processes: list[subprocess.Popen[str]] = []
        self.ports: list[int] = []
        self.logs: list[Any] = []

    def start(self) -> str:
        """Start one more replica; its base URL once /healthz answers."""
        port = free_port()
        # A file, not a pipe: nobody reads a replica's stderr while it runs, and a full pipe
        # would block the replica.
        log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in stop())
        process = subprocess.Popen(
            [*SHIPYARD, "serve", "--port", str(port)],
            env=self.env,
            cwd=ROOT,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        self.processes.append(process)
        self.logs.append(log)
        self.ports.append(port)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.healthz(url)
                return url
            except OSError:
                if process.poll() is not None:
                    log.seek(0)
                    raise AssertionError(f"serve exited: {log.read()}") from None
                time.sleep(0.2)
        raise AssertionError("serve did not answer /healthz")

    @staticmethod
    def healthz(url: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as answer:
            return dict(json.loads(answer.read()))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*SHIPYARD, *args], env=self.env, cwd=ROOT, text=True, capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done

    def kill(self, index: int) -> None:
        """SIGKILL one replica: no clean shutdown, as when a machine dies."""
        self.processes[index].send_signal(signal.SIGKILL)
        self.processes[index].wait(timeout=10)

    def destroy_all(self) -> None:
        """Stop every process the test's environments started."""
        listed = subprocess.run(
            [*SHIPYARD, "env", "list", "--json"],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        for env in json.loads(listed.stdout or "[]"):
            subprocess.run(
                [*SHIPYARD, "--as", "dave", "env", "destroy", env["name"], "--force"],
                env=self.env,
                cwd=ROOT,
                capture_output=True,
            )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()
