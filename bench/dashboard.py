"""Server time of the dashboard's environments page and /api/v1/environments on a big record.

10,000 environments (every test environment kept live, ~9,500 live) and 1,000,000 deployments,
generated and bulk-loaded as bench/record.py does; health and approvals as the record keeps
them. Requests go through the real ASGI app (routing, session or token check, query, template
or JSON) in-process, so the figure is the server's time without the network; the floor is
/healthz through the same path. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from record import (
    DEFAULT_POSTGRES_URL,
    fill,
    generate,
    progress,
    scratch_postgres,
)
from starlette.applications import Starlette
from starlette.routing import Route

from bot.api import RecordReader
from bot.dashboard import Dashboard
from bot.dashboard.auth import SESSION_COOKIE, SignIn, SignInSettings
from bot.runtime import Runtime
from environments.policy import Actor
from environments.registry.database import open_database
from environments.tokens import Tokens

TARGET_P95_MS = 100.0
ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "shipyard.yaml"
HEALTH = ("healthy", "healthy", "healthy", "degraded", "unhealthy", "unknown")


def make_all_test_environments_live(url: str) -> int:
    """Destroyed test environments come back live with their last deployment as current."""
    db = open_database(url)
    try:
        with db.write() as conn:
            conn.exec_driver_sql(
                "UPDATE environments SET state = 'ready', destroyed_at = NULL "
                "WHERE type = 'test' AND state = 'destroyed'"
            )
            conn.exec_driver_sql(
                "UPDATE environments SET release_deployment_id = "
                "(SELECT max(d.id) FROM deployments d WHERE d.environment_id = environments.id) "
                "WHERE state != 'destroyed' AND release_deployment_id IS NULL"
            )
            conn.exec_driver_sql(
                "UPDATE environments SET "
                "release_id = (SELECT d.release_id FROM deployments d "
                "  WHERE d.id = environments.release_deployment_id), "
                "release_by = (SELECT d.requested_by FROM deployments d "
                "  WHERE d.id = environments.release_deployment_id), "
                "release_since = (SELECT d.finished_at FROM deployments d "
                "  WHERE d.id = environments.release_deployment_id) "
                "WHERE state != 'destroyed' AND release_id IS NULL"
            )
            rng = random.Random(5)
            ids = [
                r[0]
                for r in conn.exec_driver_sql(
                    "SELECT id FROM environments WHERE state != 'destroyed'"
                )
            ]
            now = time.time()
            for status in set(HEALTH):
                chosen = [i for i in ids if rng.choice(HEALTH) == status]
                for start in range(0, len(chosen), 500):
                    part = chosen[start : start + 500]
                    conn.execute(
                        sa.text(
                            "UPDATE environments SET health_status = :s, health_reason = :r, "
                            "health_at = :at WHERE id IN :ids"
                        ).bindparams(sa.bindparam("ids", expanding=True)),
                        {
                            "s": status,
                            "r": f"probe said {status}",
                            "at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - 60)),
                            "ids": part,
                        },
                    )
            live = len(ids)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
        return live
    finally:
        db.dispose()


async def call(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """One request through the ASGI app; (status, body bytes)."""
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 3000),
    }
    status = 0
    size = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))

    await app(scope, receive, send)
    return status, size


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000, 2)

    return {"p50_ms": rank(0.5), "p95_ms": rank(0.95), "max_ms": round(ordered[-1] * 1000, 2)}


def queries(rng: random.Random, n: int) -> list[str]:
    """What people ask: first pages, other sorts, filters, deep pages."""
    asked = []
    sorts = ["name", "type", "release", "since", "owner", "health", "expires", "created"]
    for i in range(n):
        parts = [f"sort={rng.choice(sorts)}", f"order={rng.choice(['asc', 'desc'])}"]
        roll = i % 5
        if roll == 1:
            parts.append(f"type={rng.choice(['test', 'staging', 'production'])}")
        elif roll == 2:
            parts.append(f"health={rng.choice(HEALTH)}")
        elif roll == 3:
            parts.append(f"name=test-pr-{rng.randint(10, 99)}")
        elif roll == 4:
            parts.append(f"page={rng.randint(2, 150)}")
        asked.append("&".join(parts))
    return asked


def measure(url: str, n_calls: int) -> dict[str, Any]:
    runtime = Runtime.open(str(CONFIG), database_url=url)
    try:
        settings = SignInSettings("id", "secret", "http://127.0.0.1:9/api/", "", "", None, "k" * 32)
        sign_in = SignIn(settings, runtime.catalog)
        routes = Dashboard(RecordReader(runtime), sign_in).routes()

        async def healthz(_: Any) -> Any:
            from starlette.responses import JSONResponse

            return JSONResponse({"status": "ok"})

        app = Starlette(routes=[Route("/healthz", healthz), *routes])
        session = sign_in.sessions.dumps({"person": "bench", "slack_id": "U0", "csrf": "x"})
        cookie = [(b"cookie", f"{SESSION_COOKIE}={session}".encode())]
        token, _ = Tokens(runtime.catalog, runtime.database, runtime.clock).create(
            Actor("dave"),
            scope="read",  # an admin in the sample configuration
        )
        bearer = [(b"authorization", f"Bearer {token}".encode())]
        asked = queries(random.Random(3), n_calls)
        suites = {
            "floor_healthz": [("/healthz", [])] * n_calls,
            "page_environments": [(f"/?{q}", cookie) for q in asked],
            "api_environments": [(f"/api/v1/environments?{q}", bearer) for q in asked],
        }
        figures: dict[str, Any] = {}

        async def run() -> None:
            for label, requests in suites.items():
                for path, headers in requests[:10]:  # warm caches, templates, the pool
                    await call(app, path, headers)
                samples, cpu = [], []
                for path, headers in requests:
                    begun, used = time.perf_counter(), time.process_time()
                    status, _ = await call(app, path, headers)
                    samples.append(time.perf_counter() - begun)
                    cpu.append(time.process_time() - used)
                    assert status == 200, (label, path, status)
                figures[label] = percentiles(samples)
                # CPU seconds of this process (all its threads) per request: what the server
                # spends when it does not wait for the CPU behind other processes.
                figures[label]["cpu_p95_ms"] = percentiles(cpu)["p95_ms"]
                progress(f"  {label}: {figures[label]}")

        asyncio.run(run())
        return figures
    finally:
        runtime.close()


def bench(url: str, data: Any, n_calls: int) -> dict[str, Any]:
    db = open_database(url)
    try:
        begun = time.perf_counter()
        fill(db, data)
    finally:
        db.dispose()
    live = make_all_test_environments_live(url)
    result: dict[str, Any] = {"fill_s": round(time.perf_counter() - begun, 1), "live": live}
    result.update(measure(url, n_calls))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--environments", type=int, default=10_000)
    parser.add_argument("--deployments", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    begun = time.perf_counter()
    progress(f"generating {args.environments:,} environments, {args.deployments:,} deployments")
    data = generate(args.environments, args.deployments)
    gc.collect()
    gc.freeze()
    result: dict[str, Any] = {
        "benchmark": "dashboard",
        "environments": data.count("environments"),
        "deployments": data.count("deployments"),
        "calls": args.calls,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as folder:
        progress("SQLite")
        result["sqlite"] = bench(f"sqlite:///{Path(folder) / 'record.db'}", data, args.calls)
    if args.sqlite_only:
        result["postgresql"] = {"skipped": "--sqlite-only"}
    else:
        progress("PostgreSQL")
        try:
            with scratch_postgres(args.postgres_url) as url:
                result["postgresql"] = bench(url, data, args.calls)
        except sa.exc.OperationalError as exc:
            result["postgresql"] = {"skipped": str(exc.orig).splitlines()[0]}
    measured = [r for r in (result["sqlite"], result["postgresql"]) if "skipped" not in r]
    p95s = [r[k]["p95_ms"] for r in measured for k in ("page_environments", "api_environments")]
    result["target_p95_ms"] = TARGET_P95_MS
    result["meets_target"] = bool(p95s) and max(p95s) <= TARGET_P95_MS
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["runtime_s"] = round(time.perf_counter() - begun, 1)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
