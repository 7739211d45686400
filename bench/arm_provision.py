"""Creates 50 azure environments at once against the fake ARM; prints one JSON line of figures.

Environments are requested with `Lifecycle.create` on a temporary SQLite record, then built in
50 threads at once through the provider (provision: resource group; deploy: ARM deployment),
with the real azure-mgmt-resource clients over HTTPS to tests/fakes/arm.py, whose deployments
take 2 s and answer polls with `Retry-After: 1`. Targets: wall time for 50 ≤ 1.5x one alone;
≤ 8 ARM requests per environment; no request sent before a Retry-After had passed. The same
through `Worker.run` (record writes included) is reported beside it as `worker_*`.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from azure.core.credentials import AccessToken  # noqa: E402

from bot.runtime import Runtime  # noqa: E402
from environments import parameters  # noqa: E402
from environments.model import Environment  # noqa: E402
from environments.policy import Actor, Channel  # noqa: E402
from environments.providers.azure import AzureProvider  # noqa: E402
from environments.registry import record as rec  # noqa: E402

CONFIG = ROOT / "tests" / "data" / "azure" / "shipyard.yaml"
ARTIFACT = ROOT / "examples" / "game" / "releases" / "1.0.0"
ACTOR = Actor(person="bench", channel=Channel.CLI)


class BenchCredential:
    """Hands out a token; never reaches out (no managed-identity probe, no login)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("bench-token", int(time.time()) + 3600)


def request(rt: Runtime, names: list[str]) -> list[int]:
    """The create requests, one after another as people would make them (not timed)."""
    return [
        rt.lifecycle.create(ACTOR, name, env_type="cloud", release="1.0.0").operation_id or 0
        for name in names
    ]


def concurrently(jobs: dict[str, Callable[[], None]]) -> tuple[float, list[str]]:
    """Run each job in its own thread, all released at once; (wall seconds, failures)."""
    failures: list[str] = []
    start = threading.Barrier(len(jobs) + 1)

    def one(name: str, job: Callable[[], None]) -> None:
        start.wait()
        try:
            job()
        except Exception as exc:  # reported, not raised: the figures say how many failed
            failures.append(f"{name}: {exc}")

    threads = [threading.Thread(target=one, args=item) for item in jobs.items()]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    return time.monotonic() - began, failures


def through_provider(rt: Runtime, provider: AzureProvider, names: list[str]) -> dict[str, Any]:
    """provision + deploy for each environment, straight through the provider."""
    request(rt, names)
    with rt.database.read() as conn:
        release = rec.get_release(conn, "1.0.0")
        envs = {name: rec.get_environment(conn, name) for name in names}

    def job(env: Environment) -> Callable[[], None]:
        def run() -> None:
            env_type = rt.catalog.type(env.type)
            resolved = parameters.resolve(rt.catalog, env_type, env.overrides)
            context = parameters.Context(env.name, env.type, env.owner, {}, release.version)
            given = parameters.values(parameters.render(resolved, context))
            provider.provision(env, progress=lambda _: None)
            provider.deploy(env, release, given, progress=lambda _: None)

        return run

    wall, failed = concurrently({name: job(env) for name, env in envs.items()})
    return {"wall_s": round(wall, 3), "failed": failed}


def through_worker(rt: Runtime, names: list[str]) -> dict[str, Any]:
    """The create operations run by the worker, one thread each, as a bot's pool would."""
    operations = request(rt, names)

    def job(op_id: int) -> Callable[[], None]:
        def run() -> None:
            op = rt.worker.run(op_id)
            if op is None or op.state != "succeeded":
                raise RuntimeError(op.error if op else "not run")

        return run

    wall, failed = concurrently(dict(zip(names, map(job, operations), strict=True)))
    return {"wall_s": round(wall, 3), "failed": failed}


@contextmanager
def fake_arm(deployment_seconds: float) -> Iterator[dict[str, str]]:
    """The fake ARM in its own process: like the real one, it takes no CPU from the client."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.arm", "--deployment-seconds", str(deployment_seconds)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        yield json.loads(server.stdout.readline())
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)


def observed(fake: dict[str, str]) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=fake["ca_file"])
    with urllib.request.urlopen(f"{fake['url']}/_fake/observed", context=context) as answer:
        found: dict[str, Any] = json.loads(answer.read())
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=50)
    parser.add_argument("--deployment-seconds", type=float, default=2.0)
    args = parser.parse_args()
    count = args.environments
    names = [f"bench-{i:03d}" for i in range(count)]
    with (
        tempfile.TemporaryDirectory(prefix="shipyard-bench-") as folder,
        fake_arm(args.deployment_seconds) as fake,
    ):
        os.environ["SHIPYARD_HOME"] = str(Path(folder) / "home")
        rt = Runtime.open(str(CONFIG), database_url=f"sqlite:///{folder}/record.db")
        provider = AzureProvider(
            rt.catalog,
            settings=rt.catalog.azure.model_copy(update={"resource_manager_url": fake["url"]}),
            credential=BenchCredential(),
            client_options={"connection_verify": fake["ca_file"]},
        )
        rt.worker.providers = {**rt.worker.providers, "azure": provider}
        rt.lifecycle.add_release(ACTOR, "1.0.0", str(ARTIFACT))
        one = through_provider(rt, provider, ["solo"])
        many = through_provider(rt, provider, names)
        worker_one = through_worker(rt, ["solo-worker"])
        worker_many = through_worker(rt, [f"worker-{i:03d}" for i in range(count)])
        rt.close()
        seen = observed(fake)
    counts = [
        sum(1 for r in seen["requests"] if f"/resourcegroups/sy-{name}".lower() in r[1].lower())
        for name in names
    ]
    violations = len(seen["violations"])
    failed = one["failed"] + many["failed"] + worker_one["failed"] + worker_many["failed"]
    figures = {
        "benchmark": "arm_provision",
        "environments": count,
        "deployment_seconds": args.deployment_seconds,
        "one_wall_s": one["wall_s"],
        "all_wall_s": many["wall_s"],
        "ratio": round(many["wall_s"] / one["wall_s"], 3),
        "requests_per_environment_mean": round(sum(counts) / len(counts), 2),
        "requests_per_environment_max": max(counts),
        "retry_after_violations": violations,
        "worker_one_wall_s": worker_one["wall_s"],
        "worker_all_wall_s": worker_many["wall_s"],
        "worker_ratio": round(worker_many["wall_s"] / worker_one["wall_s"], 3),
        "failed": len(failed),
    }
    figures["targets_met"] = (
        figures["ratio"] <= 1.5 and max(counts) <= 8 and violations == 0 and not failed
    )
    print(json.dumps(figures))
    for failure in failed[:5]:
        print(f"failed: {failure}", file=sys.stderr)
    return 0 if figures["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
