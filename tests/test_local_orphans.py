"""A crash between starting a process and writing it down leaves no process without an owner."""

from __future__ import annotations

from bot.runtime import Runtime
from environments.providers.local import LocalProvider, processes_of
from environments.registry import record as rec
from tests.conftest import person

ALICE = person("alice")


def test_resume_and_destroy_stop_processes_started_but_never_recorded(runtime: Runtime) -> None:
    requested = runtime.lifecycle.create(ALICE, "pr-1", env_type="test", release="1.0.0")
    assert requested.operation_id is not None
    runtime.worker.run(requested.operation_id)
    provider = runtime.worker.providers["local"]
    assert isinstance(provider, LocalProvider)
    with runtime.database.read() as conn:
        env = rec.get_environment(conn, "pr-1")
        current = rec.current_deployment(conn, env.id)
        release = rec.get_release(conn, "1.1.0")
    assert current is not None
    folder = provider.folder(env)
    serving = processes_of(folder)
    assert len(serving) == 1

    # A deploy of 1.1.0 spawned its process, then the worker died before instances.json.
    orphan = provider._start(env, release, current.parameters, folder, 0)
    assert orphan.alive() and orphan.pid not in [i.pid for i in serving]

    # The deploy resumes (here: asked again and run by another worker) and finishes.
    deploy = runtime.lifecycle.deploy(ALICE, "pr-1", release="1.1.0")
    assert deploy.operation_id is not None
    runtime.worker.run(deploy.operation_id)
    assert not orphan.alive(), "the unrecorded process was stopped, not left running"
    (now_serving,) = processes_of(folder)
    assert now_serving.pid not in (orphan.pid, serving[0].pid)

    # Another crash in the same window, then a destroy: nothing of the environment survives.
    second = provider._start(env, release, current.parameters, folder, 0)
    assert second.alive()
    op = runtime.lifecycle.destroy(ALICE, "pr-1")
    runtime.worker.run(op)
    assert not second.alive() and not now_serving.alive()
    assert processes_of(folder) == []
