"""The steps inside a pipeline: render parameters, record a deployment, register a release,
wait, load-test.

Each step is written once against `StepRecord`: Shipyard's API (`ShipyardApi`, when
SHIPYARD_URL is set: the documented way, a build agent holds a token and never the database)
or the record itself (`PipelineSteps`, for a self-hosted agent that reaches the database).
Exit codes a step can act on: 0 done; 2 bad input; 3 configuration; 4 no such environment;
5 refused (the token's scope or type, the rule table or a type's limits); 6 conflict; 8 the
environment failed; 9 the load test failed or regressed; 10 it errored; 14 the token is
unknown, revoked or expired; 15 Shipyard unreachable; 124 timed out.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Protocol

from environments.errors import InvalidInput, ShipyardError
from environments.model import EnvironmentState, parse_duration
from environments.outcome import Outcome
from environments.pipeline_deployments import SYSTEM, Recorded
from environments.pipeline_loadtests import LoadTestRequest, LoadTestRun
from environments.pipeline_steps import (
    FORMATS,
    STEP_STATUSES,
    DeploymentReport,
    ReleaseReport,
    Rendered,
    StateAnswer,
)
from environments.release_builds import Registered

__all__ = [
    "EXIT_ERRORED",
    "EXIT_FAILED",
    "EXIT_REGRESSED",
    "EXIT_TIMED_OUT",
    "LoadTestApi",
    "StepFailed",
    "StepRecord",
    "loadtest",
    "record_deployment",
    "register_release",
    "render_parameters",
    "wait_ready",
]

EXIT_FAILED = 8
EXIT_REGRESSED = 9  # the load test failed or regressed, as `env loadtest` exits
EXIT_ERRORED = 10
EXIT_TIMED_OUT = 124


class StepRecord(Protocol):
    """What the steps ask of Shipyard, over the API or on the record."""

    def parameters(self, name: str, *, format: str, release: str | None) -> Rendered: ...

    def state(self, name: str) -> StateAnswer: ...

    def record(self, environment: str, report: DeploymentReport) -> Recorded: ...

    def register(self, report: ReleaseReport) -> Registered: ...


class LoadTestApi(Protocol):
    """Load tests: only over the API (Shipyard's server runs them, not the agent)."""

    def start_loadtest(self, environment: str, request: LoadTestRequest) -> LoadTestRun: ...

    def loadtest_run(self, run_id: int) -> LoadTestRun: ...


class StepFailed(ShipyardError):
    """A step ended without doing its job; carries the exit code the pipeline sees."""

    def __init__(self, reason: str, *, exit_code: int, hint: str = "") -> None:
        super().__init__(reason, hint=hint)
        self.exit_code = exit_code


# --- arguments --------------------------------------------------------------------------------


def render_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name", metavar="ENV")
    p.add_argument("--format", choices=FORMATS, default="sf-xml")
    p.add_argument("--out", metavar="FILE", help="file to write (default: standard output)")
    p.add_argument("--release", help="the release being deployed ({{ release.version }})")


def record_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("--env", dest="environment", required=True, metavar="ENV")
    p.add_argument("--release", required=True)
    p.add_argument("--run-url", required=True, metavar="URL")
    p.add_argument("--status", required=True, choices=STEP_STATUSES)
    p.add_argument(
        "--approved-by",
        action="append",
        default=[],
        metavar="PERSON",
        help="who approved (repeatable or comma-separated)",
    )
    p.add_argument("--requested-by", metavar="PERSON", help="default: --as, else the run's user")
    p.add_argument("--artifact", default="", help="where the release's artifact lives")


def register_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("--version", required=True, help="the release's version")
    p.add_argument(
        "--build-run",
        type=int,
        metavar="ID",
        help="the run that built it (default: $BUILD_BUILDID, the current run)",
    )
    p.add_argument("--artifact", default="", help="the pipeline artifact holding the release")
    p.add_argument("--ref", help="the git ref it was built from (default: $BUILD_SOURCEBRANCH)")


def wait_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name", metavar="ENV")
    p.add_argument("--timeout", default="10m", help="how long to wait (default 10m)")
    p.add_argument("--interval", default="5s", help="between looks at the record (default 5s)")


def loadtest_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name", metavar="ENV")
    p.add_argument("--plan", help="a plan under loadtests: in shipyard.yaml (default: the type's)")
    p.add_argument("--users", type=int, help="simulated users (default: the plan's)")
    p.add_argument("--duration", help="how long, e.g. 30s or 2m (default: the plan's)")
    p.add_argument("--timeout", default="30m", help="how long to wait for the verdict (30m)")
    p.add_argument("--interval", default="5s", help="between looks at the run (default 5s)")


# --- the steps --------------------------------------------------------------------------------


def render_parameters(record: StepRecord, args: argparse.Namespace) -> Outcome:
    rendered = record.parameters(args.name, format=args.format, release=args.release)
    text, notes = rendered.text, rendered.notes
    if not args.out or args.out == "-":
        return Outcome(
            text=text.rstrip("\n"), data={"parameters": rendered.parameters, "notes": notes}
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    for note in notes:
        print(f"  note: {note}", file=sys.stderr)
    secrets = rendered.secret_references
    said = f"wrote {out} ({len(rendered.parameters)} parameters of {rendered.environment}, "
    said += f"{args.format}" + (f"; secret references: {', '.join(secrets)})" if secrets else ")")
    return Outcome(
        text=said, data={"file": str(out), "parameters": rendered.parameters, "notes": notes}
    )


def requester(args: argparse.Namespace) -> str:
    return (
        getattr(args, "requested_by", None)
        or getattr(args, "person", None)
        or os.environ.get("SHIPYARD_USER")
        or os.environ.get("BUILD_REQUESTEDFOREMAIL")
        or os.environ.get("BUILD_REQUESTEDFOR")
        or SYSTEM
    )


def record_deployment(record: StepRecord, args: argparse.Namespace) -> Outcome:
    approvers = tuple(
        p.strip() for given in args.approved_by for p in given.split(",") if p.strip()
    )
    report = DeploymentReport(
        release=args.release,
        status=args.status,
        run_url=args.run_url,
        requested_by=requester(args),
        approved_by=approvers,
        artifact=args.artifact,
        build_id=os.environ.get("BUILD_BUILDID", ""),
    )
    recorded = record.record(args.environment, report)
    return Outcome(text=recorded.line(), data=recorded)


def release_report(args: argparse.Namespace) -> ReleaseReport:
    """The release a build stage names; what the flags leave out comes from the agent's run."""
    run = args.build_run
    if run is None:
        given = os.environ.get("BUILD_BUILDID", "")
        if not given.isdigit():
            raise InvalidInput(
                "which build run made this release?",
                hint="pass --build-run $(Build.BuildId), or run the step inside the build's job",
            )
        run = int(given)
    same_run = str(run) == os.environ.get("BUILD_BUILDID")
    return ReleaseReport(
        version=args.version,
        build_run=run,
        artifact=args.artifact,
        ref=args.ref if args.ref is not None else os.environ.get("BUILD_SOURCEBRANCH", ""),
        build_number=os.environ.get("BUILD_BUILDNUMBER", "") if same_run else "",
        commit=os.environ.get("BUILD_SOURCEVERSION", "") if same_run else "",
        requested_by=requester(args),
    )


def register_release(record: StepRecord, args: argparse.Namespace) -> Outcome:
    registered = record.register(release_report(args))
    return Outcome(text=registered.line(), data=registered.release)


def wait_ready(record: StepRecord, args: argparse.Namespace) -> Outcome:
    timeout = parse_duration(args.timeout)
    interval = parse_duration(args.interval).total_seconds()
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        env = record.state(args.name)
        if env.state is EnvironmentState.READY:
            release = f" with {env.release}" if env.release else ""
            return Outcome(
                text=f"{env.environment} is ready{release}",
                data={"environment": env.environment, "state": "ready"},
            )
        if env.state is EnvironmentState.FAILED:
            raise StepFailed(
                f"{env.environment} failed" + (f": {env.reason}" if env.reason else ""),
                exit_code=EXIT_FAILED,
                hint=f"see 'shipyard env show {env.environment}'",
            )
        left = deadline - time.monotonic()
        if left <= 0:
            raise StepFailed(
                f"{env.environment} is still {env.state} after {args.timeout}",
                exit_code=EXIT_TIMED_OUT,
                hint="is 'shipyard worker' (or 'shipyard serve') running its operation?",
            )
        print(f"  {env.environment} is {env.state}; waiting", file=sys.stderr, flush=True)
        time.sleep(min(interval, left))


def loadtest(api: LoadTestApi, args: argparse.Namespace) -> Outcome:
    """Ask Shipyard to load-test the environment, follow the run, exit by its verdict."""
    timeout = parse_duration(args.timeout)
    interval = parse_duration(args.interval).total_seconds()
    if args.duration:
        parse_duration(args.duration)  # a bad one is refused here, before anything is asked
    request = LoadTestRequest(plan=args.plan, users=args.users, duration=args.duration)
    run = api.start_loadtest(args.name, request)
    print(f"  load test #{run.run} of {run.release} on {run.environment} started", file=sys.stderr)
    deadline = time.monotonic() + timeout.total_seconds()
    while run.state == "running":
        left = deadline - time.monotonic()
        if left <= 0:
            raise StepFailed(
                f"load test #{run.run} on {run.environment} is still running after {args.timeout}",
                exit_code=EXIT_TIMED_OUT,
                hint="see 'shipyard loadtest history'; it goes on running on Shipyard's server",
            )
        time.sleep(min(interval, left))
        run = api.loadtest_run(run.run)
    if run.state == "errored":
        raise StepFailed(
            run.line(), exit_code=EXIT_ERRORED, hint="see the Shipyard server's log for the run"
        )
    blocks = run.state in ("failed", "regressed")
    return Outcome(text=run.line(), data=run, exit_code=EXIT_REGRESSED if blocks else 0)
