"""Times the record's reads (where, matrix, history) on a big SQLite and PostgreSQL record."""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from environments.registry import record
from environments.registry.database import Database, open_database
from environments.registry.schema import (
    approval_decisions,
    approvals,
    deployments,
    environments,
    releases,
)

TARGET_P99_MS = 20.0
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=730)
START = NOW - SPAN
RELEASES = 300
LIVE_SHARE = 0.15  # of all environments: ~1,500 of 10,000 are live, the rest destroyed
INCARNATIONS = 10  # staging and production names were destroyed and recreated this many times
BATCH = 20_000
PEOPLE = [
    f"{first}.{last}"
    for first in ("ada", "bob", "chen", "dana", "emil", "fatou", "gus", "hana")
    for last in ("kim", "lee", "ortiz", "smith", "weber")
]


COLUMNS = {
    "releases": "id version artifact build_id commit added_by added_at",
    "environments": "id name type state owner created_at expires_at destroyed_at release_id "
    "release_since release_by release_deployment_id endpoint outputs overrides",
    "deployments": "id environment_id release_id kind status requested_by requested_at "
    "finished_at source_environment_id parameters_fingerprint",
    "approvals": "id deployment_id state required approvers requested_by requested_at "
    "expires_at decided_at",
    "approval_decisions": "id approval_id person decision comment at",
}


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- the data set ---------------------------------------------------------------------------


@dataclass
class Env:
    """One generated environment: its life window and the deployments it received."""

    id: int
    name: str
    type: str
    created_at: datetime
    end: datetime
    live: bool
    deployments: int = 0
    last_deployment: tuple[Any, ...] | None = None


@dataclass
class DataSet:
    """Every row to insert, as tuples in the column order of `columns`; datetimes are UTC-aware."""

    columns: dict[str, list[str]]
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    versions: list[str] = field(default_factory=list)
    live_releases: list[str] = field(default_factory=list)
    names: dict[str, list[str]] = field(default_factory=dict)

    def count(self, table: str) -> int:
        return len(self.rows[table])


def _environments(rng: random.Random, total: int) -> list[Env]:
    """Mostly short-lived test environments; staging and production names recreated over time."""
    n_prod = max(1, total * 5 // 100)
    n_staging = max(1, total * 10 // 100)
    n_test = max(1, total - n_prod - n_staging)
    envs: list[Env] = []
    for env_type, count in (("staging", n_staging), ("production", n_prod)):
        names = max(1, count // INCARNATIONS)
        for k in range(count):
            name, incarnation = f"{env_type}-{k % names}", k // names
            step = SPAN / len(range(k % names, count, names))
            begin = START + step * incarnation + timedelta(hours=rng.uniform(0, 48))
            last = k + names >= count
            end = NOW if last else begin + step - timedelta(days=3)
            envs.append(Env(0, name, env_type, begin, end, live=last))
    test_live = max(0, round(total * LIVE_SHARE) - sum(env.live for env in envs))
    for j in range(n_test):
        created = START + SPAN * (j / n_test)
        live = j >= n_test - test_live
        end = NOW if live else min(created + timedelta(days=rng.uniform(2, 30)), NOW)
        envs.append(Env(0, f"test-pr-{1000 + j}", "test", created, end, live))
    envs.sort(key=lambda env: env.created_at)
    for number, env in enumerate(envs, start=1):
        env.id = number
    return envs


def generate(n_envs: int, n_deployments: int, seed: int = 7) -> DataSet:
    rng = random.Random(seed)
    data = DataSet(columns={table: names.split() for table, names in COLUMNS.items()})
    release_times = [START - timedelta(days=1) + SPAN * (r / RELEASES) for r in range(RELEASES)]
    versions = [f"1.{r // 20}.{r % 20}" for r in range(RELEASES)]
    data.rows["releases"] = [
        (
            r + 1,
            versions[r],
            f"releases/game-{versions[r]}.zip",
            str(40_000 + r),
            f"{rng.getrandbits(160):040x}",
            rng.choice(PEOPLE),
            release_times[r],
        )
        for r in range(RELEASES)
    ]

    envs = _environments(rng, n_envs)
    weights = [rng.uniform(0.5, 1.5) for _ in envs]
    scale = n_deployments / sum(weights)
    for env, weight in zip(envs, weights, strict=True):
        env.deployments = max(1, int(weight * scale))
    surplus = sum(env.deployments for env in envs) - n_deployments
    for env in rng.sample(envs, min(abs(surplus), len(envs))):
        if surplus > 0 and env.deployments > 1:
            env.deployments -= 1
        elif surplus < 0:
            env.deployments += 1

    # Every deployment's moment inside its environment's life; ids follow time, as in real life.
    moments: list[tuple[float, int]] = []
    for index, env in enumerate(envs):
        begin = env.created_at.timestamp()
        width = max(60.0, (env.end - env.created_at).total_seconds() - 3600)
        moments.extend((begin + rng.random() * width, index) for _ in range(env.deployments))
    moments.sort()
    release_seconds = [t.timestamp() for t in release_times]
    previous = {"staging": "test", "production": "staging"}
    sources = {
        env_type: [env.id for env in envs if env.type == env_type]
        for env_type in ("test", "staging")
    }

    deployment_rows: list[tuple[Any, ...]] = []
    approval_rows: list[tuple[Any, ...]] = []
    decision_rows: list[tuple[Any, ...]] = []
    seen = [0] * len(envs)
    for deployment_id, (moment, index) in enumerate(moments, start=1):
        env = envs[index]
        seen[index] += 1
        first, last = seen[index] == 1, seen[index] == env.deployments
        gated = env.type != "test" and rng.random() < (0.25 if env.type == "staging" else 0.5)
        lag = 0 if env.type == "test" else rng.randint(0, 3)
        release = max(0, bisect.bisect_right(release_seconds, moment) - 1 - lag)
        if first:
            kind = "create"
        elif env.type != "test" and rng.random() < 0.8:
            kind = "promotion"
        else:
            kind = "deploy"
        roll = rng.random()
        if (env.live and last) or roll < 0.93:
            status = "succeeded"
        elif gated and roll < 0.96:
            status = "rejected"
        else:
            status = "failed" if roll < 0.98 else "cancelled"
        requested_at = datetime.fromtimestamp(moment, UTC)
        finished_at = requested_at + timedelta(seconds=rng.randint(120, 1800))
        requester = rng.choice(PEOPLE)
        source = rng.choice(sources[previous[env.type]]) if kind == "promotion" else None
        row = (
            deployment_id,
            env.id,
            release + 1,
            kind,
            status,
            requester,
            requested_at,
            finished_at,
            source,
            f"{rng.getrandbits(128):032x}",
        )
        deployment_rows.append(row)
        if last:
            env.last_deployment = row
        if gated:
            approval_id = len(approval_rows) + 1
            required = 1 if env.type == "staging" else 2
            deciders = rng.sample([p for p in PEOPLE if p != requester], required)
            decided_at = requested_at + timedelta(seconds=rng.randint(30, 110))
            rejected = status == "rejected"
            approval_rows.append(
                (
                    approval_id,
                    deployment_id,
                    "rejected" if rejected else "approved",
                    required,
                    sorted({*deciders, *rng.sample(PEOPLE, 3)}),
                    requester,
                    requested_at,
                    requested_at + timedelta(hours=24),
                    decided_at,
                )
            )
            for person in deciders[:1] if rejected else deciders:
                decision_rows.append(
                    (
                        len(decision_rows) + 1,
                        approval_id,
                        person,
                        "reject" if rejected else "approve",
                        "",
                        decided_at,
                    )
                )

    env_rows: list[tuple[Any, ...]] = []
    for env in envs:
        current = env.last_deployment if env.live else None
        env_rows.append(
            (
                env.id,
                env.name,
                env.type,
                "ready" if env.live else "destroyed",
                rng.choice(PEOPLE),
                env.created_at,
                env.created_at + timedelta(days=7) if env.type == "test" else None,
                None if env.live else env.end,
                current[2] if current else None,  # release_id
                current[7] if current else None,  # release_since: when it finished
                current[5] if current else None,  # release_by
                current[0] if current else None,  # release_deployment_id
                f"http://127.0.0.1:{20_000 + env.id}" if env.live else None,
                {"url": f"http://127.0.0.1:{20_000 + env.id}"} if env.live else {},
                {"LOG_LEVEL": "debug"} if env.type == "test" else {},
            )
        )
    data.rows["environments"] = env_rows
    data.rows["deployments"] = deployment_rows
    data.rows["approvals"] = approval_rows
    data.rows["approval_decisions"] = decision_rows
    data.versions = versions
    data.live_releases = sorted({versions[row[8] - 1] for row in env_rows if row[8]}) or versions
    data.names = {
        "live": sorted({env.name for env in envs if env.live and env.type == "test"}),
        "destroyed": sorted({env.name for env in envs if not env.live and env.type == "test"}),
        "recreated": sorted({env.name for env in envs if env.type != "test"}),
    }
    return data


# --- filling --------------------------------------------------------------------------------

TABLES = {
    "releases": releases,
    "environments": environments,
    "deployments": deployments,
    "approvals": approvals,
    "approval_decisions": approval_decisions,
}


def _processors(table: sa.Table, columns: Sequence[str], dialect: sa.Dialect) -> list[Any]:
    """The bind processors Core itself would apply (UTCDateTime, JSON, …), one per column."""
    return [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]


def _batches(rows: Sequence[tuple[Any, ...]], procs: list[Any]) -> Iterator[list[tuple[Any, ...]]]:
    active = [(i, p) for i, p in enumerate(procs) if p is not None]
    for start in range(0, len(rows), BATCH):
        batch = []
        for row in rows[start : start + BATCH]:
            values = list(row)
            for i, process in active:
                values[i] = process(values[i])
            batch.append(tuple(values))
        yield batch


def fill(db: Database, data: DataSet) -> None:
    """Bulk-insert the data set in one transaction (executemany on SQLite, COPY on PostgreSQL)."""
    dialect = db.engine.dialect
    postgres = dialect.name == "postgresql"
    with db.write() as conn:
        for name, table in TABLES.items():
            columns = data.columns[name]
            rows = data.rows[name]
            begun = time.perf_counter()
            quoted = ", ".join(dialect.identifier_preparer.quote(c) for c in columns)
            batches = _batches(rows, _processors(table, columns, dialect))
            if postgres:
                cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                with cursor.copy(f"COPY {name} ({quoted}) FROM STDIN") as copy:
                    for batch in batches:
                        for values in batch:
                            copy.write_row(values)
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {name}))"
                )
            else:
                marks = ", ".join("?" for _ in columns)
                statement = f"INSERT INTO {name} ({quoted}) VALUES ({marks})"
                for batch in batches:
                    conn.exec_driver_sql(statement, batch)
            progress(f"  {name}: {len(rows):,} rows in {time.perf_counter() - begun:.1f}s")
    if postgres:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with db.write() as conn:
            conn.exec_driver_sql("ANALYZE")


def check(db: Database, data: DataSet) -> None:
    """The bulk-loaded rows read back through the normal queries, with aware datetimes."""
    with db.read() as conn:
        counts = {
            name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, table in TABLES.items()
        }
        rows = record.matrix(conn, env_type="production")
        recent = record.history(conn, data.names["recreated"][0], limit=20)
        live = record.get_environment(conn, rows[0].environment)
    for name, count in counts.items():
        assert count == data.count(name), f"{name}: {count} rows, expected {data.count(name)}"
    assert rows and all(row.since and row.since.tzinfo is UTC for row in rows)
    assert any(row.approved_by for row in rows), "no production environment shows its approvers"
    assert live.outputs.get("url") == live.endpoint and live.created_at.tzinfo is UTC
    assert 0 < len(recent) <= 20 and recent[0].requested_at.tzinfo is UTC
    assert [d.id for d in recent] == sorted((d.id for d in recent), reverse=True)


# --- timing ---------------------------------------------------------------------------------


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000

    return {
        "p50_ms": round(rank(0.50), 2),
        "p99_ms": round(rank(0.99), 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def _timed(db: Database, calls: Sequence[Callable[[sa.Connection], object]]) -> dict[str, float]:
    for call in calls[:5]:  # warm the pool and the caches
        with db.read() as conn:
            call(conn)
    samples = []
    for call in calls:
        begun = time.perf_counter()
        with db.read() as conn:
            call(conn)
        samples.append(time.perf_counter() - begun)
    return _percentiles(samples)


def measure(db: Database, data: DataSet, n_calls: int, seed: int = 11) -> dict[str, Any]:
    rng = random.Random(seed)
    releases_asked = [
        rng.choice(data.live_releases if rng.random() < 0.8 else data.versions)
        for _ in range(n_calls)
    ]
    groups = [g for g in ("live", "destroyed", "recreated") if data.names[g]]
    names_asked = [rng.choice(data.names[groups[i % len(groups)]]) for i in range(n_calls)]
    types = ["test", "staging", "production"]
    suites: dict[str, list[Callable[[sa.Connection], object]]] = {
        "where": [lambda c, r=r: record.matrix(c, release=r) for r in releases_asked],
        "matrix": [lambda c: record.matrix(c) for _ in range(n_calls)],
        "matrix_type": [
            lambda c, t=types[i % 3]: record.matrix(c, env_type=t) for i in range(n_calls)
        ],
        "history": [lambda c, n=n: record.history(c, n, limit=20) for n in names_asked],
    }
    figures: dict[str, Any] = {}
    for label, calls in suites.items():
        figures[label] = _timed(db, calls)
        progress(f"  {label}: {figures[label]}")
    return figures


def run(db: Database, data: DataSet, n_calls: int) -> dict[str, Any]:
    begun = time.perf_counter()
    fill(db, data)
    figures: dict[str, Any] = {"fill_s": round(time.perf_counter() - begun, 1)}
    check(db, data)
    figures.update(measure(db, data, n_calls))
    return figures


# --- the two databases ----------------------------------------------------------------------


def bench_sqlite(data: DataSet, n_calls: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as folder:
        db = open_database(f"sqlite:///{Path(folder) / 'record.db'}")
        try:
            return run(db, data, n_calls)
        finally:
            db.dispose()


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    """A fresh database `shipyard_bench_<pid>` beside the admin one, dropped afterwards."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"shipyard_bench_{os.getpid()}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            yield admin.url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.dispose()


def bench_postgres(data: DataSet, n_calls: int, admin_url: str) -> dict[str, Any]:
    try:
        with sa.create_engine(admin_url).connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # unreachable server, bad URL, missing driver
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        progress(f"PostgreSQL skipped: {reason}")
        return {"skipped": reason}
    with scratch_postgres(admin_url) as url:
        db = open_database(url)
        try:
            return run(db, data, n_calls)
        finally:
            db.dispose()


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
    # Keep the collector from walking the million generated rows during timed calls: a CLI
    # process holds no such heap.
    gc.collect()
    gc.freeze()
    result: dict[str, Any] = {
        "benchmark": "record",
        "environments": data.count("environments"),
        "live_environments": sum(row[3] == "ready" for row in data.rows["environments"]),
        "deployments": data.count("deployments"),
        "approvals": data.count("approvals"),
        "releases": data.count("releases"),
        "calls": args.calls,
        "generate_s": round(time.perf_counter() - begun, 1),
    }
    progress("SQLite")
    result["sqlite"] = bench_sqlite(data, args.calls)
    if args.sqlite_only:
        result["postgresql"] = {"skipped": "--sqlite-only"}
    else:
        progress("PostgreSQL")
        result["postgresql"] = bench_postgres(data, args.calls, args.postgres_url)
    measured = [r for r in (result["sqlite"], result["postgresql"]) if "skipped" not in r]
    p99s = [v["p99_ms"] for r in measured for v in r.values() if isinstance(v, dict)]
    result["target_p99_ms"] = TARGET_P99_MS
    result["meets_target"] = bool(p99s) and max(p99s) <= TARGET_P99_MS
    result["runtime_s"] = round(time.perf_counter() - begun, 1)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
