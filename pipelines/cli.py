"""`shipyard pipelines …` (Azure DevOps sync, runs, approvals) and `shipyard pipeline …` steps.

The `pipeline` verbs are what steps inside an Azure DevOps pipeline call (pipelines/steps.py):
no prompts, secrets only from the pipeline's environment, exit codes a step can act on. With
SHIPYARD_URL set they talk to Shipyard's API (`remote`); otherwise to the record directly. This
module knows no `bot`: it declares its commands as STEPS, which the composition root turns into
entries of the command table (bot/cli_pipelines.py).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from environments.catalog import Catalog
from environments.errors import ConfigError
from environments.lifecycle import Lifecycle
from environments.outcome import Outcome
from environments.pipeline_steps import PipelineSteps
from environments.registry import Database
from pipelines import steps
from pipelines.azure_devops import AzureDevOps, live_environments
from pipelines.run_records import reconcile_runs
from pipelines.shipyard_api import ShipyardApi
from pipelines.steps import StepFailed, StepRecord

__all__ = ["STEPS", "Context", "Step", "StepFailed"]


class Context(Protocol):
    """What a handler needs from the process: configuration, the record, the use cases."""

    @property
    def catalog(self) -> Catalog: ...

    @property
    def database(self) -> Database: ...

    @property
    def lifecycle(self) -> Lifecycle: ...


Handler = Callable[[Context, argparse.Namespace], Outcome]
Remote = Callable[[argparse.Namespace], Outcome]
Arguments = Callable[[argparse.ArgumentParser, bool], None]


@dataclass(frozen=True)
class Step:
    """A `pipelines …` or `pipeline …` command; `in_pipeline`: a step of the YAML templates.

    `remote` runs it against Shipyard's API instead of the record (no configuration, no
    database: SHIPYARD_URL and SHIPYARD_TOKEN only).
    """

    group: str
    verb: str
    help: str
    handler: Handler
    arguments: Arguments
    action: str | None = None
    in_pipeline: bool = False
    json: bool = False
    description: str = ""
    remote: Remote | None = None


def _in_pipeline(
    verb: str,
    help: str,
    step: Callable[[StepRecord, argparse.Namespace], Outcome],
    arguments: Arguments,
    action: str | None = None,
) -> Step:
    """A step that runs on the record here, or over the API when SHIPYARD_URL is set."""

    def on_record(context: Context, args: argparse.Namespace) -> Outcome:
        record = PipelineSteps(context.catalog, context.database, context.lifecycle.clock)
        return step(record, args)

    return Step(
        "pipeline",
        verb,
        help,
        on_record,
        arguments,
        action=action,
        in_pipeline=True,
        remote=lambda args: step(ShipyardApi.from_environment(), args),
    )


def _sync_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument(
        "--dry-run", action="store_true", help="show what sync would write, write nothing"
    )


def _runs_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("--pipeline", type=int, help="pipeline id (default: azure_devops.pipeline_id)")
    p.add_argument("--limit", type=int, default=10)


def _no_args(p: argparse.ArgumentParser, chat: bool) -> None:
    pass


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


def _loadtest_here(context: Context, args: argparse.Namespace) -> Outcome:
    raise ConfigError(
        "the loadtest step runs through Shipyard's API: SHIPYARD_URL is not set",
        hint="set SHIPYARD_URL and SHIPYARD_TOKEN, or run 'shipyard env loadtest "
        f"{args.name}' where Shipyard's record is",
    )


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
    _in_pipeline(
        "render-parameters",
        "write an environment's parameters for the deploy task",
        steps.render_parameters,
        steps.render_args,
    ),
    _in_pipeline(
        "record-deployment",
        "record what this run deployed where",
        steps.record_deployment,
        steps.record_args,
        action="record_deployment",
    ),
    _in_pipeline(
        "register-release",
        "record the release this build run produced",
        steps.register_release,
        steps.register_args,
        action="release_add",
    ),
    _in_pipeline(
        "wait-ready",
        "wait until an environment is ready",
        steps.wait_ready,
        steps.wait_args,
    ),
    Step(
        "pipeline",
        "loadtest",
        "load-test an environment through Shipyard's API and exit by the verdict",
        _loadtest_here,
        steps.loadtest_args,
        in_pipeline=True,
        remote=lambda args: steps.loadtest(ShipyardApi.from_environment(), args),
    ),
)
