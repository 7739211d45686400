"""A small, varied record for the dashboard and API tests, written through the registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from environments.model import (
    ApprovalDecision,
    ApprovalState,
    Decision,
    DeploymentKind,
    DeploymentStatus,
    EnvironmentState,
    HealthStatus,
    Person,
)
from environments.registry import Database, open_database
from environments.registry import loadtests as runs
from environments.registry import operations as ops
from environments.registry import record as rec
from environments.registry.health import HealthCheck, record_health
from tests.conftest import EXAMPLES

SLACK_CONFIG = Path(__file__).parent / "data" / "slack.yaml"
TEAM = "T0001"
SECRET_VALUE = "s3cr3t-value-never-shown"


def config(folder: Path) -> Path:
    """The Slack tests' configuration, with the workspace whose members may sign in."""
    loaded: dict[str, Any] = yaml.safe_load(SLACK_CONFIG.read_text())
    loaded["slack"]["team"] = TEAM
    for plan in (loaded.get("loadtests") or {}).values():
        # Relative to the original file, which this copy no longer sits beside.
        plan["file"] = str((SLACK_CONFIG.parent / plan["file"]).resolve())
    path = folder / "shipyard.yaml"
    path.write_text(yaml.safe_dump(loaded))
    return path


def _chart(path: Path) -> None:
    # The object API, as Shipyard's own charts: pyplot's global state must never be loaded in
    # the test process (tests/test_loadtest_charts.py checks Shipyard never touches it).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 2.5))
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    axes.plot([0, 1, 2, 3, 4], [90, 110, 105, 120, 118], label="p95 ms")
    axes.set_title("1.1.0 on pr-101 (login): passed")
    axes.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def seed(database_url: str, folder: Path, now: datetime | None = None) -> dict[str, Any]:
    """Environments of every type, history with approvals and a run URL, health, load tests."""
    now = now or datetime.now(UTC)
    db = open_database(database_url)
    try:
        with db.write() as conn:
            return _seed(db, conn, folder, now)
    finally:
        db.dispose()


def _seed(db: Database, conn: Any, folder: Path, now: datetime) -> dict[str, Any]:
    from environments.model import Release, Version

    for number, version in enumerate(("1.0.0", "1.1.0", "1.2.0")):
        rec.add_release(
            conn,
            Release(
                version=Version(version),
                artifact=str(EXAMPLES / "game/releases/1.0.0"),
                build_id=str(100 + number),
                commit=f"{number:040x}",
                added_by=Person("ci"),
                added_at=now - timedelta(days=10 - number),
            ),
        )
    ids: dict[str, int] = {}

    def env(name: str, kind: str, owner: str, age: timedelta, ttl: timedelta | None) -> int:
        env_id = rec.insert_environment(
            conn,
            name=name,
            env_type=kind,
            owner=owner,
            at=now - age,
            expires_at=now - age + ttl if ttl else None,
            overrides={},
        )
        rec.update_environment(conn, env_id, state=EnvironmentState.READY)
        ids[name] = env_id
        return env_id

    def deploy(
        env_id: int,
        release: str,
        kind: DeploymentKind,
        by: str,
        at: datetime,
        parameters: dict[str, str],
        approvers: tuple[str, ...] = (),
        run_url: str | None = None,
    ) -> int:
        deployment = rec.insert_deployment(
            conn,
            env_id=env_id,
            release=release,
            kind=kind,
            status=DeploymentStatus.SUCCEEDED,
            requested_by=by,
            at=at,
            fingerprint=f"{abs(hash(tuple(sorted(parameters.items())))):016x}",
        )
        rec.set_deployment_status(
            conn,
            deployment,
            DeploymentStatus.SUCCEEDED,
            at=at + timedelta(minutes=2),
            parameters=parameters,
        )
        if run_url:
            rec.set_run_url(conn, deployment, run_url)
        if approvers:
            approval = rec.insert_approval(
                conn,
                deployment_id=deployment,
                required=len(approvers),
                approvers=["carol", "dave"],
                requested_by=by,
                at=at,
                expires_at=at + timedelta(hours=24),
            )
            for person in approvers:
                rec.add_decision(
                    conn, approval, ApprovalDecision(Person(person), Decision.APPROVE, "", at)
                )
            rec.set_approval_state(conn, approval, ApprovalState.APPROVED, at)
        rec.set_current_release(
            conn, env_id, deployment_id=deployment, release=release, by=by, at=at
        )
        return deployment

    base = {"GAME_MOTD": "hello", "GAME_MAX_PLAYERS": "100000", "DB_PASSWORD": "@env(DB_PW)"}
    pr101 = env("pr-101", "test", "alice", timedelta(hours=3), timedelta(hours=8))
    deploy(pr101, "1.0.0", DeploymentKind.CREATE, "alice", now - timedelta(hours=3), base)
    deploy(
        pr101,
        "1.1.0",
        DeploymentKind.DEPLOY,
        "alice",
        now - timedelta(hours=1),
        {**base, "GAME_MOTD": "changed"},
        run_url="https://dev.azure.com/game/delivery/_build/results?buildId=4242",
    )
    pr102 = env("pr-102", "test", "bob", timedelta(days=2), timedelta(days=3))
    deploy(pr102, "1.0.0", DeploymentKind.CREATE, "bob", now - timedelta(days=2), base)
    staging = env("staging", "staging", "carol", timedelta(days=9), None)
    deploy(
        staging, "1.1.0", DeploymentKind.PROMOTION, "bob", now - timedelta(days=1), base, ("carol",)
    )
    production = env("production", "production", "dave", timedelta(days=10), None)
    deploy(
        production,
        "1.0.0",
        DeploymentKind.PROMOTION,
        "carol",
        now - timedelta(days=5),
        base,
        ("dave", "erin"),
    )
    waiting = rec.insert_deployment(
        conn,
        env_id=production,
        release="1.1.0",
        kind=DeploymentKind.PROMOTION,
        status=DeploymentStatus.AWAITING_APPROVAL,
        requested_by="bob",
        at=now - timedelta(minutes=30),
        source_env_id=staging,
    )
    rec.insert_approval(
        conn,
        deployment_id=waiting,
        required=2,
        approvers=["carol", "dave"],
        requested_by="bob",
        at=now - timedelta(minutes=30),
        expires_at=now + timedelta(hours=23),
    )
    for name, status, reason, minutes in (
        ("pr-101", HealthStatus.UNHEALTHY, "0/1 healthy (no answer on /healthz)", 50),
        ("pr-101", HealthStatus.HEALTHY, "1/1 healthy", 2),
        ("pr-102", HealthStatus.DEGRADED, "1/2 healthy", 4),
        ("staging", HealthStatus.HEALTHY, "2/2 healthy", 1),
    ):
        record_health(
            conn, HealthCheck(ids[name], now - timedelta(minutes=minutes), status, reason)
        )
    for release, outcome, p95, errors in (
        ("1.0.0", "passed", 96.0, 0.2),
        ("1.1.0", "regressed", 131.0, 0.4),
    ):
        run_folder = folder / "loadtests" / release
        _chart(run_folder / "chart.png")
        run_id = runs.start(
            conn,
            environment="pr-101",
            environment_type="test",
            release=release,
            plan="login",
            engine="locust",
            requested_by="alice",
            started_at=now - timedelta(hours=2),
            load={"users": 10},
            folder=str(run_folder),
        )
        runs.finish(
            conn,
            run_id,
            outcome=outcome,
            finished_at=now - timedelta(hours=2) + timedelta(minutes=1),
            report={"TOTAL": {"p95": p95, "error_percent": errors, "samples": 1000}},
        )
    ops.audit(
        conn,
        at=now - timedelta(minutes=20),
        actor="schedule",
        action="reconcile.drift",
        environment=None,
        orphans=[
            {
                "name": "shipyard-pr-77",
                "location": "westeurope",
                "tags": {"shipyard-env": "pr-77", "shipyard-owner": "mallory"},
            }
        ],
    )
    return ids
