"""Times the HTTP ack of signed /env commands: `shipyard serve` against a bare ack-only Bolt app."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import itertools
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack  # noqa: E402

TARGET_P99_MS = 50.0
TARGET_RATIO = 1.5
SIGNING_SECRET = "bench-signing-secret-0123456789ab"
CONFIG = ROOT / "examples" / "shipyard.yaml"
RELEASE = "1.0.0"
ARTIFACT = ROOT / "examples" / "game" / "releases" / RELEASE
# Read commands: each acks at once; all but `help` then answer through response_url (lazily).
COMMANDS = ("list", "matrix", f"where {RELEASE}", "history staging", "help")
USERS = ("U0ALICE", "U0BOB", "U0CAROL", "U0DAVE")

# The comparison app: Bolt with one ack-only /env listener, served exactly as Shipyard serves.
BARE_APP = """
import os, uvicorn
from slack_bolt import App
from slack_sdk import WebClient
from bot.web import create_web_app

client = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
app = App(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"])

@app.command("/env")
def env(ack):
    ack()

uvicorn.run(create_web_app(app), host="127.0.0.1", port=int(os.environ["BENCH_PORT"]),
            log_level="warning")
"""


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


# --- the servers ----------------------------------------------------------------------------


def server_env(fake: FakeSlack, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SHIPYARD_DATABASE_URL"}
    env.update(
        SLACK_BOT_TOKEN=DEFAULT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.base_url,
        SHIPYARD_HOME=str(home),
        SHIPYARD_CONFIG=str(CONFIG),
        PYTHONUNBUFFERED="1",
    )
    return env


def wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} not healthy within {timeout:.0f}s")


@contextmanager
def running(
    name: str, argv: Sequence[str], env: dict[str, str], home: Path, port: int
) -> Iterator[int]:
    """A server subprocess (output to a log in `home`), healthy, terminated on the way out."""
    log = home / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env={**env, "BENCH_PORT": str(port)}, stdout=out, stderr=out
        )
        try:
            wait_healthy(port, proc, log)
            progress(f"{name} healthy on port {port} (pid {proc.pid})")
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def add_release(env: dict[str, str]) -> None:
    argv = [sys.executable, "-m", "bot.cli", "release", "add", RELEASE, "--artifact", str(ARTIFACT)]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"release add failed: {done.stderr.strip()}")


# --- the load -------------------------------------------------------------------------------


class Bodies:
    """Slash-command bodies, each unique (trigger_id, response_url) so none reads as a retry."""

    def __init__(self, fake: FakeSlack, label: str) -> None:
        self.fake = fake
        self.label = label
        self.counter = itertools.count(1)
        self.lazy = 0  # bodies sent whose command answers through response_url

    def next(self) -> str:
        n = next(self.counter)
        text = COMMANDS[n % len(COMMANDS)]
        if text != "help":
            self.lazy += 1
        user = USERS[n % len(USERS)]
        return urllib.parse.urlencode(
            {
                "token": "verification_token",
                "team_id": "T0001",
                "team_domain": "bench",
                "channel_id": "C0DEPLOYS",
                "channel_name": "deploys",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/env",
                "text": text,
                "api_app_id": "A0001",
                "response_url": self.fake.response_url(f"{self.label}-{n}"),
                "trigger_id": f"{n}.{time.time_ns()}.{self.label}",
            }
        )


def post(port: int, body: str) -> tuple[int, float]:
    """POST one signed command on a fresh connection: (status, seconds from send to response)."""
    stamp = int(time.time())
    data = body.encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": sign(body, stamp),
        "Connection": "close",
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    try:
        conn.request("POST", "/slack/events", body=data, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    except OSError:
        return 0, time.perf_counter() - started
    finally:
        conn.close()


def load(
    port: int, bodies: Bodies, count: int, pool: ThreadPoolExecutor
) -> list[tuple[int, float]]:
    payloads = [bodies.next() for _ in range(count)]
    return list(pool.map(lambda body: post(port, body), payloads))


def summary(results: list[tuple[int, float]]) -> dict[str, Any]:
    ordered = sorted(seconds for _, seconds in results)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000

    return {
        "p50_ms": round(rank(0.50), 2),
        "p99_ms": round(rank(0.99), 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "errors": sum(status != 200 for status, _ in results),
    }


def wait_lazy(fake: FakeSlack, expected: int, timeout: float) -> int:
    """response_url calls that reached the fake, waiting up to `timeout` for all `expected`."""
    deadline = time.monotonic() + timeout
    while True:
        done = len(fake.calls("response_url"))
        if done >= expected or time.monotonic() >= deadline:
            return done
        time.sleep(0.1)


def slow_follow_up(
    fake: FakeSlack, port: int, label: str, others: int, pool: ThreadPoolExecutor
) -> dict[str, Any]:
    """One command's follow-up takes 5 s (its response_url answers slowly); how long do the
    follow-ups of `others` commands sent right after it take (send → response_url)?"""
    fake.slow_response_url(f"{label}-slow", 5.0)

    def body(name: str, user: str) -> str:
        return urllib.parse.urlencode(
            {
                "team_id": "T0001",
                "channel_id": "C0DEPLOYS",
                "user_id": user,
                "command": "/env",
                "text": "list",
                "api_app_id": "A0001",
                "response_url": fake.response_url(name),
                "trigger_id": f"{name}.{time.time_ns()}",
            }
        )

    sent: dict[str, float] = {}
    sent[f"{label}-slow"] = time.time()
    post(port, body(f"{label}-slow", USERS[0]))
    names = [f"{label}-other-{n}" for n in range(others)]
    for name in names:
        sent[name] = time.time()
    list(pool.map(lambda n: post(port, body(n, USERS[1 + names.index(n) % 3])), names))
    deadline = time.monotonic() + 30
    arrived: dict[str, float] = {}
    while time.monotonic() < deadline and len(arrived) < others + 1:
        for call in fake.calls("response_url"):
            name = call.path.rsplit("/", 1)[-1]
            if name in sent:
                arrived.setdefault(name, call.at)
        time.sleep(0.05)
    waits = sorted(arrived[n] - sent[n] for n in names if n in arrived)
    return {
        "others": others,
        "others_answered": len(waits),
        "others_p50_s": round(waits[len(waits) // 2], 3) if waits else None,
        "others_max_s": round(waits[-1], 3) if waits else None,
        "slow_follow_up_started_s": round(arrived[f"{label}-slow"] - sent[f"{label}-slow"], 2)
        if f"{label}-slow" in arrived
        else None,
    }


# --- the run --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--lazy-wait", type=float, default=10.0, help="seconds, at most")
    args = parser.parse_args(argv)

    begun = time.perf_counter()
    with ExitStack() as stack:
        fake = stack.enter_context(FakeSlack())
        home = Path(tempfile.mkdtemp(prefix="shipyard-bench-"))
        stack.callback(shutil.rmtree, home, ignore_errors=True)
        env = server_env(fake, home / "shipyard")
        progress(f"fake Slack at {fake.base_url}; home {home}; adding release {RELEASE}")
        add_release(env)
        shipyard_port, bare_port = free_port(), free_port()
        shipyard_argv = [sys.executable, "-m", "bot.cli", "serve", "--port", str(shipyard_port)]
        stack.enter_context(running("shipyard", shipyard_argv, env, home, shipyard_port))
        bare_argv = [sys.executable, "-c", BARE_APP]
        stack.enter_context(running("bare", bare_argv, env, home, bare_port))
        pool = stack.enter_context(ThreadPoolExecutor(args.concurrency))

        measured: dict[str, dict[str, Any]] = {}
        shipyard_bodies = Bodies(fake, "shipyard")
        # Bare first: Shipyard's lazy work must not still be running while the bare app is timed.
        for name, port, bodies in (
            ("bare", bare_port, Bodies(fake, "bare")),
            ("shipyard", shipyard_port, shipyard_bodies),
        ):
            progress(f"{name}: {args.warmup} warm-up requests")
            load(port, bodies, args.warmup, pool)
            progress(f"{name}: {args.requests} requests from {args.concurrency} clients")
            started = time.perf_counter()
            results = load(port, bodies, args.requests, pool)
            seconds = time.perf_counter() - started
            measured[name] = summary(results)
            measured[name]["requests_per_s"] = round(args.requests / seconds, 1)
            progress(f"{name}: {json.dumps(measured[name])}")

        progress(f"waiting up to {args.lazy_wait:.0f}s for {shipyard_bodies.lazy} lazy responses")
        lazy = wait_lazy(fake, shipyard_bodies.lazy, args.lazy_wait)

        # One follow-up takes 5 s: the pool (4 threads, ordered per environment) against the
        # floor, one lazy thread for everyone (SHIPYARD_LAZY_WORKERS=1, the former design).
        progress("slow follow-up: one command's answer takes 5 s, 20 others right after it")
        slow = {"pool": slow_follow_up(fake, shipyard_port, "pool", 20, pool)}
        one_port = free_port()
        one_env = {**env, "SHIPYARD_LAZY_WORKERS": "1"}
        one_argv = [sys.executable, "-m", "bot.cli", "serve", "--port", str(one_port)]
        with running("shipyard-one-thread", one_argv, one_env, home, one_port):
            slow["one_thread"] = slow_follow_up(fake, one_port, "one", 20, pool)
        progress(f"slow follow-up: {json.dumps(slow)}")

    shipyard, bare = measured["shipyard"], measured["bare"]
    ratio = shipyard["p99_ms"] / bare["p99_ms"]
    result = {
        "benchmark": "slack_ack",
        "requests": args.requests,
        "concurrency": args.concurrency,
        "shipyard": shipyard,
        "bare": bare,
        "p99_ratio": round(ratio, 2),
        "target": {"p99_ms": TARGET_P99_MS, "ratio": TARGET_RATIO},
        "meets_target": shipyard["errors"] == 0
        and shipyard["p99_ms"] <= TARGET_P99_MS
        and ratio <= TARGET_RATIO,
        "lazy_responses": lazy,
        "lazy_expected": shipyard_bodies.lazy,
        "slow_follow_up": slow,
        "slow_follow_up_meets_target": (slow["pool"]["others_max_s"] or 99) < 1.0,
        "runtime_s": round(time.perf_counter() - begun, 1),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
