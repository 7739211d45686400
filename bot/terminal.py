"""The full command line: act as a person, print text or JSON, follow operations, run the worker."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from bot import render
from bot.cli_pipelines import api_configured
from bot.command import Outcome
from bot.runtime import Runtime
from bot.speech import for_cli, on_cli
from bot.table import command_of, execute, parse
from environments import redaction
from environments.errors import ConfigError, ConfigProblem, NotPromoted, ShipyardError, clip
from environments.loadtests.summary import LoadTestSummary
from environments.model import (
    Approval,
    DeploymentStatus,
    Environment,
    HealthStatus,
    Operation,
    OperationState,
)
from environments.policy import Actor, Channel
from environments.providers.base import HealthReport
from environments.registry import record as rec


class TerminalNotifier:
    """Progress and news on standard error, so standard output stays clean for --json."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.started = time.monotonic()

    def _say(self, text: str) -> None:
        print(f"  [{time.monotonic() - self.started:5.1f}s] {text}", file=self.stream, flush=True)

    def approval_requested(self, approval: Approval) -> None:
        self._say(f"approval needed: {render.approval_line(approval)}")

    def approval_changed(self, approval: Approval) -> None:
        pass

    def progress(self, environment: str, message: str, *, operation: int) -> None:
        self._say(message)

    def environment_ready(self, environment: Environment, *, operation: int) -> None:
        pass

    def failed(self, environment: str, reason: str, hint: str, *, operation: int) -> None:
        self._say(f"{environment} failed: {reason}" + (f" — {hint}" if hint else ""))

    def expiry_warning(self, environment: Environment) -> None:
        self._say(
            f"{environment.name} expires {render.when(environment.expires_at)} "
            f"(extend with: shipyard env extend {environment.name} --by 4h)"
        )

    def loadtest_finished(self, summary: LoadTestSummary) -> None:
        pass  # the command that ran it prints the summary

    def health_changed(
        self, environment: Environment, previous: HealthStatus | None, report: HealthReport
    ) -> None:
        self._say(f"{environment.name} is {report.status}: {report.reason}")


def follow(runtime: Runtime, op_id: int) -> Operation:
    """Run (or wait for) one operation, showing progress; returns it finished."""

    def waiting(op: Operation) -> None:
        print(
            f"  waiting: {op.environment} is busy with an earlier operation; "
            f"#{op.id} runs after it",
            file=sys.stderr,
            flush=True,
        )

    finished = runtime.worker.run(op_id, wait=True, on_wait=waiting)
    assert finished is not None
    return finished


def run_worker(runtime: Runtime, *, once: bool, interval: float) -> int:
    while True:
        runtime.lifecycle.expire()
        for op in runtime.worker.run_pending():
            print(
                f"operation #{op.id} {op.kind} {op.environment}: {op.state}"
                + (f" ({op.error})" if op.error else ""),
                flush=True,
            )
        if once:
            return 0
        time.sleep(interval)


Process = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None, processes: Mapping[str, Process] = {}) -> int:
    """Run one command line; `processes` start the commands that are processes (serve, demo)."""
    args: argparse.Namespace | None = None
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
        if args.group in processes:
            return processes[args.group](args)
        remote = command_of(args).remote
        if remote is not None and api_configured():
            # A pipeline step on a build agent: Shipyard's API, no configuration, no record.
            return _print(None, args, remote(args))
        return _run(args)
    except ConfigError as exc:
        return _config_refused(exc, args)
    except ShipyardError as exc:
        print(f"shipyard: {redaction.mask(for_cli(exc))}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        raise  # bot.cli ends quietly on a closed pipe
    except Exception as exc:
        # A bug, not a refusal: one line naming it; the traceback only when asked for.
        if os.environ.get("SHIPYARD_DEBUG"):
            raise
        detail = redaction.mask(clip(str(exc).splitlines()[0] if str(exc) else "", 200))
        print(
            f"shipyard: unexpected error {type(exc).__name__}: {detail} — this is a bug in "
            "Shipyard; run again with SHIPYARD_DEBUG=1 for the traceback and report it",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(
            "shipyard: interrupted; unfinished operations resume with 'shipyard worker'",
            file=sys.stderr,
        )
        return 130


def _config_refused(exc: ConfigError, args: argparse.Namespace | None) -> int:
    """Every configuration problem on a line of its own; `config check --json` as JSON."""
    checking = args is not None and (args.group, getattr(args, "verb", None)) == ("config", "check")
    if checking and getattr(args, "json", False):
        problems = exc.problems or (ConfigProblem("", exc.reason, exc.advice(on_cli)),)
        listed = [
            {"file": p.file, "line": p.line, "message": p.message, "hint": p.hint} for p in problems
        ]
        print(render.to_json({"ok": False, "problems": listed}))
        return exc.exit_code
    if len(exc.problems) > 1:
        source = exc.reason.split(": ", 1)[0]
        print(f"shipyard: {source}: {len(exc.problems)} problems", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {redaction.mask(str(problem))}", file=sys.stderr)
        return exc.exit_code
    print(f"shipyard: {redaction.mask(for_cli(exc))}", file=sys.stderr)
    return exc.exit_code


def _run(args: argparse.Namespace) -> int:
    runtime = Runtime.open(args.config, notifier=TerminalNotifier())
    try:
        actor = Actor(person=args.person or _os_user(), channel=Channel.CLI)
        if args.group == "worker":
            return run_worker(runtime, once=args.once, interval=args.interval)
        outcome = execute(runtime, actor, args)
        return _print(runtime, args, outcome)
    finally:
        runtime.close()


def _print(runtime: Runtime | None, args: argparse.Namespace, outcome: Outcome) -> int:
    if getattr(args, "json", False):
        print(redaction.mask(render.to_json(outcome.data)))
        return outcome.exit_code
    print(redaction.mask(outcome.text), flush=True)
    for hint in outcome.hints:
        print(f"  {on_cli(hint)}")
    for note in outcome.notes:
        print(f"  note: {redaction.mask(note)}", file=sys.stderr)
    pending = ([outcome.operation] if outcome.operation else []) + outcome.follow
    if runtime is None:
        return outcome.exit_code
    if getattr(args, "no_wait", False):
        if pending:
            print("  queued; 'shipyard worker' runs it")
        return 0
    code = outcome.exit_code
    for op_id in pending:
        op = follow(runtime, op_id)
        ended = _not_promoted(runtime, op)
        if ended is not None:
            print(f"operation #{op.id} ({op.kind} {op.environment}): {ended}", file=sys.stderr)
            code = NotPromoted.exit_code if code == 0 else code
        elif op.state is OperationState.SUCCEEDED:
            print(f"operation #{op.id} ({op.kind} {op.environment}) succeeded")
        else:
            print(
                f"operation #{op.id} ({op.kind} {op.environment}) failed: {op.error}",
                file=sys.stderr,
            )
            code = 8
    return code


def _not_promoted(runtime: Runtime, op: Operation) -> str | None:
    """What to say when the operation's deployment ended not promoted (its gate said no)."""
    if op.state is not OperationState.SUCCEEDED or op.deployment_id is None:
        return None
    with runtime.database.read() as conn:
        deployment = rec.get_deployment(conn, op.deployment_id)
    if deployment.status not in (DeploymentStatus.REJECTED, DeploymentStatus.EXPIRED):
        return None
    return f"{deployment.release} not promoted ({deployment.status})" + (
        f" — {deployment.run_url}" if deployment.run_url else ""
    )


def _os_user() -> str:
    try:
        return os.environ.get("SHIPYARD_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
