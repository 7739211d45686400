"""Health probes as recorded facts: local processes, Azure groups and health URLs, deadlines."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from bot import views
from bot.runtime import Runtime
from bot.slack_notifier import SlackNotifier
from bot.table import execute, parse
from environments.health import HealthProbes
from environments.model import Environment, HealthStatus
from environments.providers.base import HealthReport, Provider
from environments.registry import chat as chat_record
from environments.registry import outbox
from environments.registry import record as rec
from environments.registry.health import health_history
from tests.conftest import MovableClock, RecordingNotifier, person
from tests.fakes.arm import FakeArm
from tests.fakes.server import serve, shut
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack
from tests.test_azure_provider import create as create_on_azure
from tests.test_azure_provider import provider_for

ALICE = person("alice")


def probes(rt: Runtime, timeout: float = 2.0, provider: Provider | None = None) -> HealthProbes:
    return HealthProbes(
        rt.database,
        (lambda _: provider) if provider else rt.worker.provider_for,
        clock=rt.clock,
        notifier=rt.notifiers,
        timeout=timeout,
    )


def created(rt: Runtime, name: str) -> Environment:
    requested = rt.lifecycle.create(ALICE, name, env_type="test", release="1.0.0")
    assert requested.operation_id is not None
    op = rt.worker.run(requested.operation_id)
    assert op is not None and op.state == "succeeded", op.error
    with rt.database.read() as conn:
        return rec.get_environment(conn, name)


def test_a_local_environment_is_probed_recorded_and_a_change_is_told_once(
    runtime: Runtime, notifier: RecordingNotifier, clock: MovableClock
) -> None:
    env = created(runtime, "pr-1")
    prober = probes(runtime)
    try:
        assert prober.probe_all() == []  # the first probe, healthy: nothing to tell
        shown = execute(runtime, ALICE, parse(["env", "list"])).text
        assert "healthy (" in shown and "ago)" in shown
        folder = Path(env.outputs["folder"])
        pid = json.loads((folder / "instances.json").read_text())["instances"][0]["pid"]
        os.kill(pid, signal.SIGKILL)
        clock.advance(timedelta(seconds=60))
        changes = prober.probe_all()
        assert [(c.environment.name, c.previous, c.report.status) for c in changes] == [
            ("pr-1", HealthStatus.HEALTHY, HealthStatus.UNHEALTHY)
        ]
        assert prober.probe_all() == []  # still unhealthy: no second message
    finally:
        prober.close()
    told = [event for kind, event in notifier.events if kind == "health_changed"]
    assert len(told) == 1 and told[0][2].reason.startswith("0/1 healthy (no answer on /healthz")
    with runtime.database.read() as conn:
        history = health_history(conn, "pr-1")
        latest = rec.get_environment(conn, "pr-1")
    assert [c.status for c in history] == ["unhealthy", "healthy"]  # changes only
    assert latest.health is HealthStatus.UNHEALTHY and latest.health_reason == history[0].reason
    text = execute(runtime, ALICE, parse(["env", "health", "pr-1"])).text
    assert text.splitlines()[0].startswith("pr-1: unhealthy")
    assert text.count("unhealthy") == 2 and "healthy " in text
    assert "health    unhealthy" in execute(runtime, ALICE, parse(["env", "show", "pr-1"])).text
    home = views.home(runtime.catalog, [], [latest], [])
    assert any("unhealthy" in json.dumps(block) for block in home["blocks"])


class Stuck:
    """A provider whose probe hangs for one environment (a cloud call that never answers)."""

    name = "stuck"

    def __init__(self, inner: Provider, stuck: str) -> None:
        self.inner, self.stuck = inner, stuck
        self.release = threading.Event()

    def probe(self, environment: Environment, *, timeout: float) -> HealthReport:
        if environment.name == self.stuck:
            self.release.wait(30)
        return self.inner.probe(environment, timeout=timeout)


def test_a_probe_that_hangs_is_recorded_unknown_at_the_deadline_and_blocks_no_other(
    runtime: Runtime,
) -> None:
    created(runtime, "pr-1")
    created(runtime, "pr-2")
    stuck = Stuck(runtime.worker.providers["local"], "pr-1")
    prober = probes(runtime, timeout=0.5, provider=stuck)  # type: ignore[arg-type]
    try:
        begun = time.monotonic()
        prober.probe_all()
        assert time.monotonic() - begun < 3
    finally:
        stuck.release.set()
        prober.close()
    with runtime.database.read() as conn:
        one, two = rec.get_environment(conn, "pr-1"), rec.get_environment(conn, "pr-2")
    assert (one.health, one.health_reason) == (HealthStatus.UNKNOWN, "no answer within 0.5s")
    assert two.health is HealthStatus.HEALTHY


class _ClusterHealth(BaseHTTPRequestHandler):
    answer: dict[str, Any] = {"AggregatedHealthState": "Warning"}

    def do_GET(self) -> None:
        body = json.dumps(self.answer).encode()
        self.send_response(200 if self.path.startswith("/$/GetClusterHealth") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def cluster() -> Iterator[str]:
    server, thread = serve(_ClusterHealth)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    shut(server, thread)


@pytest.fixture
def fake() -> Iterator[FakeArm]:
    with FakeArm(deployment_seconds=0.2, delete_seconds=0.1) as server:
        yield server


@pytest.fixture
def azure_rt(home: Path, tmp_path: Path, fake: FakeArm, clock: MovableClock) -> Iterator[Runtime]:
    from tests.test_azure_provider import CONFIG, EXAMPLES

    rt = Runtime.open(str(CONFIG), database_url=f"sqlite:///{tmp_path / 'r.db'}", clock=clock)
    rt.worker.providers = {**rt.worker.providers, "azure": provider_for(rt, fake)}
    for version in ("1.0.0", "1.1.0"):
        rt.lifecycle.add_release(ALICE, version, str(EXAMPLES / "game/releases" / version))
    yield rt
    rt.close()


def test_azure_health_is_the_group_the_newest_deployment_and_the_cluster_health_url(
    azure_rt: Runtime, fake: FakeArm, cluster: str
) -> None:
    fake.output_values["clusterEndpoint"] = cluster
    op = create_on_azure(azure_rt, "pr-1")
    assert op.state == "succeeded", op.error
    with azure_rt.database.read() as conn:
        env = rec.get_environment(conn, "pr-1")
    plain = provider_for(azure_rt, fake)
    assert plain.probe(env, timeout=2) == HealthReport(
        HealthStatus.HEALTHY, "resource group sy-pr-1 Succeeded"
    )
    env_type = azure_rt.catalog.types["cloud"]
    assert env_type.azure is not None
    declared = env_type.azure.model_copy(
        update={"health_url": "{endpoint}/$/GetClusterHealth?api-version=6.0"}
    )
    catalog = azure_rt.catalog.model_copy(
        update={
            "types": {
                **azure_rt.catalog.types,
                "cloud": env_type.model_copy(update={"azure": declared}),
            }
        }
    )
    with_url = provider_for(azure_rt, fake)
    with_url.catalog = catalog
    assert with_url.probe(env, timeout=2) == HealthReport(
        HealthStatus.DEGRADED, "cluster health Warning"
    )
    _ClusterHealth.answer = {"AggregatedHealthState": "Ok"}
    assert with_url.probe(env, timeout=2).status is HealthStatus.HEALTHY
    with fake.lock:
        fake.groups.pop("sy-pr-1")
    assert plain.probe(env, timeout=2) == HealthReport(
        HealthStatus.UNHEALTHY, "resource group sy-pr-1 is missing"
    )


def test_a_change_of_health_is_posted_in_the_environments_thread(
    runtime: Runtime, clock: MovableClock
) -> None:
    env = created(runtime, "pr-1")
    with FakeSlack() as slack:
        client = WebClient(token=DEFAULT_TOKEN, base_url=slack.base_url)
        notifier = SlackNotifier(client, runtime.catalog, runtime.database, clock, route_grace=0.0)
        with runtime.database.write() as conn:
            chat_record.remember_message(
                conn, "environment:pr-1", "C0DEPLOYS", "1.000100", clock.now()
            )
            # What HealthProbes writes with the check that changed the status.
            outbox.add(
                conn,
                outbox.Event.HEALTH_CHANGED,
                at=clock.now(),
                environment=env.name,
                status=HealthStatus.DEGRADED.value,
                previous=HealthStatus.HEALTHY.value,
                reason="1/2 healthy",
            )
        assert notifier.deliver_pending() >= 1
        (posted,) = [
            c.params
            for c in slack.calls("chat.postMessage")
            if "degraded" in c.params.get("text", "")
        ]
    with runtime.database.read() as conn:
        thread = chat_record.message(conn, "environment:pr-1")  # where its messages go now
    assert thread is not None and (posted["channel"], posted["thread_ts"]) == thread
    assert posted["text"] == "pr-1 is degraded (was healthy): 1/2 healthy"


def test_reconcile_keeps_its_orphans_for_the_dashboards_banner(
    azure_rt: Runtime, fake: FakeArm
) -> None:
    from bot.health_leader import record_drift
    from environments.registry.overview import latest_drift

    fake.add_group("sy-forgotten", {"shipyard-env": "forgotten", "shipyard-owner": "mallory"})
    with azure_rt.database.read() as conn:
        assert latest_drift(conn) is None
    drift = record_drift(azure_rt, "schedule")
    assert drift is not None and [o.name for o in drift.orphans] == ["sy-forgotten"]
    with azure_rt.database.read() as conn:
        kept = latest_drift(conn)
    assert kept is not None
    assert kept.orphans == [
        {
            "name": "sy-forgotten",
            "location": "westeurope",
            "tags": {"shipyard-env": "forgotten", "shipyard-owner": "mallory"},
        }
    ]


def test_one_replica_leads_the_probes_and_another_may_lead_the_schedules_meanwhile(
    home: Path, postgres_url: str
) -> None:
    from bot.health_leader import HEALTH_LOCK
    from bot.scheduler import Leadership
    from tests.conftest import CONFIG

    first = Runtime.open(str(CONFIG), database_url=postgres_url)
    second = Runtime.open(str(CONFIG), database_url=postgres_url)
    leaders = [
        Leadership(first, key=HEALTH_LOCK, lockfile="health.lock"),
        Leadership(second, key=HEALTH_LOCK, lockfile="health.lock"),
    ]
    schedules = Leadership(second)
    try:
        assert [leader.try_acquire() for leader in leaders] == [True, False]
        assert schedules.try_acquire()  # a different lock: the second replica runs schedules
        leaders[0].release()  # the leader stops: the other takes over
        assert leaders[1].try_acquire()
    finally:
        for leader in (*leaders, schedules):
            leader.release()
        first.close()
        second.close()
