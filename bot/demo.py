"""`shipyard demo`: the whole lifecycle on embedded defaults, real processes, as a transcript."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bot.runtime import Runtime
from bot.speech import for_cli, on_cli
from bot.table import execute, parse
from bot.terminal import TerminalNotifier, follow
from environments.errors import ShipyardError
from environments.model import OperationState
from environments.policy import Actor, Channel

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class Transcript:
    """Runs commands exactly as a person would type them and prints what they answer."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def say(self, text: str) -> None:
        print(f"\n# {text}", flush=True)

    def run(self, line: str, *, expect_refusal: bool = False) -> object:
        print(f"$ shipyard {line}", flush=True)
        args = parse(shlex.split(line))
        actor = Actor(person=args.person, channel=Channel.CLI)
        try:
            outcome = execute(self.runtime, actor, args)
        except ShipyardError as exc:
            print(f"shipyard: {for_cli(exc)}", flush=True)
            if not expect_refusal:
                raise
            return None
        if expect_refusal:
            raise RuntimeError(f"expected '{line}' to be refused")
        print(outcome.text, flush=True)
        for hint in outcome.hints:
            print(f"  {on_cli(hint)}", flush=True)
        if outcome.operation is not None:
            op = follow(self.runtime, outcome.operation)
            if op.state is not OperationState.SUCCEEDED:
                raise RuntimeError(f"operation #{op.id} failed: {op.error}")
            print(f"operation #{op.id} ({op.kind} {op.environment}) succeeded", flush=True)
        return outcome.data


def run_demo(*, keep: bool = False) -> int:
    config = EXAMPLES / "shipyard.yaml"
    if not config.exists():
        print(
            f"shipyard: the demo needs {config} (run it from a clone of the repository)",
            file=sys.stderr,
        )
        return 3
    home = Path(tempfile.mkdtemp(prefix="shipyard-demo-"))
    os.environ["SHIPYARD_HOME"] = str(home)
    started = time.monotonic()
    runtime = Runtime.open(
        str(config),
        database_url=f"sqlite:///{home / 'shipyard.db'}",
        notifier=TerminalNotifier(sys.stdout),
    )
    demo = Transcript(runtime)
    try:
        _story(demo)
    finally:
        _clean_up(demo)
        runtime.close()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)
    print(
        f"\nDemo finished in {time.monotonic() - started:.1f}s"
        + (f"; its record and folders are in {home}" if keep else "; nothing left running.")
    )
    return 0


def _story(demo: Transcript) -> None:
    releases = EXAMPLES / "game" / "releases"
    print(f"Shipyard demo — record and environments in {os.environ['SHIPYARD_HOME']}")
    print("People: alice and bob are developers; carol, dave and erin are release managers.")

    demo.say("CI publishes two releases of the sample game backend")
    demo.run(f"release add 1.0.0 --artifact {releases / '1.0.0'} --commit a1b2c3d --as ci")
    demo.run(f"release add 1.1.0 --artifact {releases / '1.1.0'} --commit e4f5a6b --as ci")

    demo.say("alice creates an isolated test environment for her pull request")
    demo.run("env create pr-1234 --type test --release 1.0.0 --ttl 2h --as alice")
    env = demo.runtime.lifecycle
    with env.db.read() as conn:
        from environments.registry import record as rec

        endpoint = rec.get_environment(conn, "pr-1234").endpoint
    demo.say(f"it is a real process: a player logs in at {endpoint}")
    request = urllib.request.Request(
        f"{endpoint}/Login/LoginDeviceId",
        data=json.dumps({"DeviceId": "demo-device"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        body = json.loads(response.read())
    print(f"POST /Login/LoginDeviceId → {response.status} NewlyCreated={body.get('NewlyCreated')}")

    demo.say("a real Locust run against it: the first passing run becomes the baseline")
    demo.run("env loadtest pr-1234 --as alice")

    demo.say("carol promotes what passed test into staging; staging needs a release manager's OK")
    demo.run("env promote staging --as carol")
    demo.say("carol cannot approve her own request")
    demo.run("env approve staging --as carol", expect_refusal=True)
    demo.say("bob is not a release manager")
    demo.run("env approve staging --as bob", expect_refusal=True)
    demo.say("dave approves; the promotion runs")
    demo.run("env approve staging --as dave --comment 'load test looked fine'")

    demo.say("alice deploys the next release into her test environment")
    demo.run("env deploy pr-1234 --release 1.1.0 --as alice")
    demo.say("1.1.0 signs session tickets: the load test catches it against 1.0.0")
    demo.run("env loadtest pr-1234 --as alice")
    demo.say("so 1.1.0 cannot be promoted without a stated reason")
    demo.run("env promote staging --release 1.1.0 --as carol", expect_refusal=True)

    demo.say("which release runs where")
    demo.run("env matrix --as alice")
    demo.run("env where 1.0.0 --as alice")
    demo.say("and how it got there")
    demo.run("env history pr-1234 --as alice")
    demo.run("env history staging --as alice")

    demo.say("releases move one step at a time: 1.1.0 has not passed staging, so not production")
    demo.run("env promote production --release 1.1.0 --as carol", expect_refusal=True)

    demo.say("alice is done with her test environment")
    demo.run("env destroy pr-1234 --as alice")
    demo.run("env list --as alice")


def _clean_up(demo: Transcript) -> None:
    from environments.registry import record as rec

    with demo.runtime.database.read() as conn:
        left = rec.list_environments(conn)
    if left:
        print(f"\n# cleaning up the demo: {', '.join(e.name for e in left)}")
    for env in left:
        try:
            op_id = demo.runtime.lifecycle.destroy(
                Actor(person="dave", channel=Channel.CLI), env.name, force=True
            )
            follow(demo.runtime, op_id)
        except ShipyardError as exc:
            print(f"could not clean up {env.name}: {exc.one_line()}", file=sys.stderr)
