"""`shipyard pipelines …` (Azure DevOps sync, runs, approvals) and `shipyard pipeline …` steps.

The `pipeline` verbs are what steps inside an Azure DevOps pipeline call: no prompts, secrets only
from the pipeline's environment, and exit codes a step can act on (0 done; 2 bad input; 3
configuration; 4 no such environment; 8 the environment failed; 124 timed out waiting). This
module knows no `bot`: it declares its commands as STEPS, which the composition root turns into
entries of the command table (bot/cli_pipelines.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from environments import parameters, renderings
from environments.catalog import Catalog
from environments.errors import InvalidInput, ShipyardError
from environments.lifecycle import Lifecycle
from environments.model import DeploymentStatus, EnvironmentState, parse_duration
from environments.outcome import Outcome
from environments.pipeline_deployments import SYSTEM, PipelineDeployment, record_deployment
from environments.registry import Database
from environments.registry import record as rec
from environments.release_builds import BuildRelease, register_release
from pipelines.azure_devops import AzureDevOps, live_environments
from pipelines.run_records import reconcile_runs

__all__ = ["STEPS", "Context", "Step", "StepFailed"]

EXIT_FAILED = 8
EXIT_TIMED_OUT = 124
STEP_STATUSES = ("succeeded", "failed", "cancelled")


class Context(Protocol):
    """What a handler needs from the process: configuration, the record, the use cases."""

    @property
    def catalog(self) -> Catalog: ...

    @property
    def database(self) -> Database: ...

    @property
    def lifecycle(self) -> Lifecycle: ...


Handler = Callable[[Context, argparse.Namespace], Outcome]
Arguments = Callable[[argparse.ArgumentParser, bool], None]


@dataclass(frozen=True)
class Step:
    """A `pipelines …` or `pipeline …` command; `in_pipeline`: a step of the YAML templates."""

    group: str
    verb: str
    help: str
    handler: Handler
    arguments: Arguments
    action: str | None = None
    in_pipeline: bool = False
    json: bool = False
    description: str = ""


class StepFailed(ShipyardError):
    """A step ended without doing its job; carries the exit code the pipeline sees."""

    def __init__(self, reason: str, *, exit_code: int, hint: str = "") -> None:
        super().__init__(reason, hint=hint)
        self.exit_code = exit_code


def _sync_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument(
        "--dry-run", action="store_true", help="show what sync would write, write nothing"
    )


def _runs_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("--pipeline", type=int, help="pipeline id (default: azure_devops.pipeline_id)")
    p.add_argument("--limit", type=int, default=10)


def _no_args(p: argparse.ArgumentParser, chat: bool) -> None:
    pass


def _render_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name", metavar="ENV")
    p.add_argument(
        "--format", choices=[f for f in renderings.FORMATS if f != "table"], default="sf-xml"
    )
    p.add_argument("--out", metavar="FILE", help="file to write (default: standard output)")
    p.add_argument("--release", help="the release being deployed ({{ release.version }})")


def _record_args(p: argparse.ArgumentParser, chat: bool) -> None:
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


def _register_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("--version", required=True, help="the release's version")
    p.add_argument(
        "--build-run",
        type=int,
        metavar="ID",
        help="the run that built it (default: $BUILD_BUILDID, the current run)",
    )
    p.add_argument("--artifact", default="", help="the pipeline artifact holding the release")
    p.add_argument("--ref", help="the git ref it was built from (default: $BUILD_SOURCEBRANCH)")


def _wait_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name", metavar="ENV")
    p.add_argument("--timeout", default="10m", help="how long to wait (default 10m)")
    p.add_argument("--interval", default="5s", help="between looks at the record (default 5s)")


# --- pipelines: the Azure DevOps side --------------------------------------------------------


def _client(context: Context) -> AzureDevOps:
    return AzureDevOps.from_environment(context.catalog)


def pipelines_sync(context: Context, args: argparse.Namespace) -> Outcome:
    with context.database.read() as conn:
        live = live_environments(conn)
    changes = _client(context).sync(context.catalog, live, dry_run=args.dry_run)
    lines = []
    for c in changes:
        lines.append(f"{c.environment}: {c.action}" + (f" ({c.detail})" if c.detail else ""))
        lines.extend(f"    {difference}" for difference in c.changes)
    if args.dry_run and lines:
        lines.append("dry run: nothing was written to Azure DevOps")
    return Outcome(text="\n".join(lines) or "nothing to sync", data=changes)


def pipelines_runs(context: Context, args: argparse.Namespace) -> Outcome:
    client = _client(context)
    pipeline = args.pipeline or client.settings.pipeline_id
    if pipeline is None:
        raise StepFailed(
            "which pipeline?",
            exit_code=2,
            hint="pass --pipeline ID or set azure_devops.pipeline_id",
        )
    runs = client.list_runs(pipeline)[: max(1, args.limit)]
    lines = [
        f"#{r.id} {r.state}{' ' + str(r.result) if r.result else ''} {r.web_url}" for r in runs
    ]
    return Outcome(text="\n".join(lines) or f"pipeline {pipeline} has no runs", data=runs)


def pipelines_approvals(context: Context, args: argparse.Namespace) -> Outcome:
    waiting = _client(context).list_approvals()
    lines = [
        f"{a.id}: {a.environment or '?'} {a.release or ''} — {a.min_required or 'all'} of "
        f"{', '.join(s.assigned.name or s.assigned.id for s in a.steps)} — {a.run_url or ''}"
        for a in waiting
    ]
    return Outcome(text="\n".join(lines) or "no Azure DevOps approval is waiting", data=waiting)


def pipelines_reconcile(context: Context, args: argparse.Namespace) -> Outcome:
    report = reconcile_runs(
        _client(context), context.database, context.catalog, clock=context.lifecycle.clock
    )
    lines = [r.line() for r in report.recorded] + [f"skipped: {s}" for s in report.skipped]
    summary = f"looked at {report.runs_checked} completed run(s) no hook reported"
    return Outcome(text="\n".join([summary, *lines]), data=report)


# --- pipeline: steps inside a pipeline -------------------------------------------------------


def render_parameters(context: Context, args: argparse.Namespace) -> Outcome:
    catalog = context.catalog
    with context.database.read() as conn:
        env = rec.get_environment(conn, args.name)
    kind = catalog.type(env.type)
    resolved = parameters.resolve(
        catalog, kind, env.overrides, file_layer=renderings.file_layer(catalog, kind)
    )
    release = args.release or env.release
    shown = parameters.render(
        resolved, parameters.Context(env.name, env.type, env.owner, env.outputs, release)
    )
    notes: list[str] = []
    if args.format == "sf-xml":
        rendered = renderings.sf_xml(catalog, kind, env.name, shown)
        text = rendered.xml
        notes = [
            f"{k}: not set, the ApplicationManifest's default applies" for k in rendered.defaulted
        ]
    elif args.format == "arm-json":
        text = renderings.arm_json(catalog, shown)
    elif args.format == "dotenv":
        text = renderings.dotenv(shown)
    else:
        text = renderings.as_json(shown)
    if not args.out or args.out == "-":
        return Outcome(text=text.rstrip("\n"), data={"parameters": sorted(shown), "notes": notes})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    for note in notes:
        print(f"  note: {note}", file=sys.stderr)
    secrets = parameters.secret_names(shown)
    said = f"wrote {out} ({len(shown)} parameters of {env.name}, {args.format}"
    said += f"; secret references: {', '.join(secrets)})" if secrets else ")"
    return Outcome(text=said, data={"file": str(out), "parameters": sorted(shown), "notes": notes})


def _requester(args: argparse.Namespace) -> str:
    return (
        getattr(args, "requested_by", None)
        or getattr(args, "person", None)
        or os.environ.get("SHIPYARD_USER")
        or os.environ.get("BUILD_REQUESTEDFOREMAIL")
        or os.environ.get("BUILD_REQUESTEDFOR")
        or SYSTEM
    )


def record_step(context: Context, args: argparse.Namespace) -> Outcome:
    approvers = tuple(
        p.strip() for given in args.approved_by for p in given.split(",") if p.strip()
    )
    done = PipelineDeployment(
        environment=args.environment,
        release=args.release,
        status=DeploymentStatus(args.status),
        run_url=args.run_url,
        requested_by=_requester(args),
        approved_by=approvers,
        artifact=args.artifact,
        build_id=os.environ.get("BUILD_BUILDID", ""),
    )
    now = context.lifecycle.clock.now()
    with context.database.write() as conn:
        recorded = record_deployment(conn, context.catalog, done, at=now)
    return Outcome(text=recorded.line(), data=recorded)


def build_release(args: argparse.Namespace) -> BuildRelease:
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
    return BuildRelease(
        version=args.version,
        build_run=run,
        artifact=args.artifact,
        ref=args.ref if args.ref is not None else os.environ.get("BUILD_SOURCEBRANCH", ""),
        build_number=os.environ.get("BUILD_BUILDNUMBER", "") if same_run else "",
        commit=os.environ.get("BUILD_SOURCEVERSION", "") if same_run else "",
    )


def register_step(context: Context, args: argparse.Namespace) -> Outcome:
    build = build_release(args)
    with context.database.write() as conn:
        registered = register_release(
            conn, build, by=_requester(args), at=context.lifecycle.clock.now()
        )
    return Outcome(text=registered.line(), data=registered.release)


def wait_ready(context: Context, args: argparse.Namespace) -> Outcome:
    timeout = parse_duration(args.timeout)
    interval = parse_duration(args.interval).total_seconds()
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        with context.database.read() as conn:
            env = rec.get_environment(conn, args.name)
        if env.state is EnvironmentState.READY:
            release = f" with {env.release}" if env.release else ""
            return Outcome(
                text=f"{env.name} is ready{release}",
                data={"environment": env.name, "state": "ready"},
            )
        if env.state is EnvironmentState.FAILED:
            raise StepFailed(
                f"{env.name} failed" + (f": {env.reason}" if env.reason else ""),
                exit_code=EXIT_FAILED,
                hint=f"see 'shipyard env show {env.name}'",
            )
        left = deadline - time.monotonic()
        if left <= 0:
            raise StepFailed(
                f"{env.name} is still {env.state} after {args.timeout}",
                exit_code=EXIT_TIMED_OUT,
                hint="is 'shipyard worker' (or 'shipyard serve') running its operation?",
            )
        print(f"  {env.name} is {env.state}; waiting", file=sys.stderr, flush=True)
        time.sleep(min(interval, left))


STEPS = (
    Step(
        "pipelines",
        "sync",
        "make Azure DevOps environments and approval checks match shipyard.yaml",
        pipelines_sync,
        _sync_args,
        action="pipelines_sync",
        json=True,
        description="Each Shipyard environment gets an Azure DevOps environment "
        "shipyard-<env> whose approval check says what its type's approval says.",
    ),
    Step(
        "pipelines",
        "runs",
        "recent runs of the deploy pipeline",
        pipelines_runs,
        _runs_args,
        json=True,
    ),
    Step(
        "pipelines",
        "approvals",
        "Azure DevOps approvals waiting for a decision",
        pipelines_approvals,
        _no_args,
        json=True,
    ),
    Step(
        "pipelines",
        "reconcile",
        "record completed runs that no service hook reported",
        pipelines_reconcile,
        _no_args,
        action="pipelines_reconcile",
        json=True,
    ),
    Step(
        "pipeline",
        "render-parameters",
        "write an environment's parameters for the deploy task",
        render_parameters,
        _render_args,
        in_pipeline=True,
    ),
    Step(
        "pipeline",
        "record-deployment",
        "record what this run deployed where",
        record_step,
        _record_args,
        action="record_deployment",
        in_pipeline=True,
    ),
    Step(
        "pipeline",
        "register-release",
        "record the release this build run produced",
        register_step,
        _register_args,
        action="release_add",
        in_pipeline=True,
    ),
    Step(
        "pipeline",
        "wait-ready",
        "wait until an environment is ready",
        wait_ready,
        _wait_args,
        in_pipeline=True,
    ),
)
