"""`env loadtest ENV` runs a load test; `loadtest report|history|compare`: result files,
recorded runs and their comparison."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bot import cli_env, render
from bot.command import CLI, EVERYWHERE, Command, Outcome
from bot.loadtest_report import REPORT_HELP, add_report_arguments, report
from bot.runtime import Runtime
from environments.errors import InvalidInput, ShipyardError
from environments.model import parse_duration
from environments.policy import Actor, Channel

if TYPE_CHECKING:  # the load-test modules pull in numpy and polars: only the command loads them
    pass


def _history_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("--release", help="only runs of this release")


def _compare_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("first", type=int, metavar="RUN_A")
    p.add_argument("second", type=int, metavar="RUN_B")


def _report_args(p: argparse.ArgumentParser, chat: bool) -> None:
    add_report_arguments(p)


def loadtest_report(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    """Per label and in TOTAL: JMeter's Aggregate Report; then each criterion's verdict."""
    text, data, failure = report(args)
    if failure is None:
        return Outcome(text=text, data=data)
    # The report is the evidence of the failure: show it before exiting non-zero.
    print(render.to_json(data) if args.json else text, flush=True)
    raise ShipyardError(failure, hint="the load test fails")


def loadtest_history(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    from environments.registry import loadtests as runs

    with rt.database.read() as conn:
        found = runs.history(conn, release=args.release)

    def total(run: runs.RunRecord, key: str) -> str:
        value = run.report_figures.get("TOTAL", {}).get(key)
        return f"{value:.0f}" if isinstance(value, int | float) else "-"

    rows = [
        [
            f"#{r.id}",
            render.when(r.started_at),
            r.release,
            r.environment,
            r.plan,
            r.outcome or "running",
            total(r, "p95"),
            total(r, "samples"),
            f"#{r.baseline_run_id}" if r.baseline_run_id else "-",
        ]
        for r in found
    ]
    headers = [
        "run",
        "when",
        "release",
        "environment",
        "plan",
        "verdict",
        "p95 ms",
        "samples",
        "baseline",
    ]
    return Outcome(text=render.table(headers, rows), data=found)


def loadtest_compare(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    from environments.loadtests.verdicts import compare
    from environments.registry import loadtests as runs

    with rt.database.read() as conn:
        first, second = runs.get(conn, args.first), runs.get(conn, args.second)
    comparisons = compare(second.report_figures, first.report_figures)
    rows = [
        [
            c.label,
            f"{c.baseline_p95:.0f}" if c.baseline_p95 is not None else "-",
            f"{c.p95:.0f}" if c.p95 is not None else "-",
            f"{c.p95_change * 100:+.0f}%" if c.p95_change is not None else "-",
            "regressed" if c.regressed else "ok",
        ]
        for c in comparisons
    ]
    title = (
        f"#{first.id} ({first.release} on {first.environment}) → "
        f"#{second.id} ({second.release} on {second.environment})"
    )
    table = render.table(["label", f"p95 #{first.id}", f"p95 #{second.id}", "change", ""], rows)
    return Outcome(text=f"{title}\n{table}", data=comparisons)


def _to_stderr(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def env_loadtest(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    if args.users is not None and not 1 <= args.users <= 10_000:
        raise InvalidInput(f"--users {args.users} is out of range", hint="use 1 to 10000")
    # Live figures: the surface may pass where they go (Slack: a message it updates); on the
    # command line they go to standard error, every few seconds.
    progress = getattr(args, "progress", None)
    if progress is None and actor.channel is Channel.CLI:
        progress = _to_stderr
    summary = rt.loadtesting.run(
        actor,
        args.name,
        plan=args.plan,
        users=args.users,
        duration=parse_duration(args.duration) if args.duration else None,
        progress=progress,
    )
    # A failed or regressed run exits non-zero, so a pipeline step can stop on it.
    return Outcome(
        text=summary.text(), data=summary, exit_code=9 if summary.outcome.blocks_promotion else 0
    )


def _env_loadtest_args(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")
    p.add_argument("--plan", help="a plan under loadtests: in shipyard.yaml (default: the type's)")
    p.add_argument("--users", type=int, help="simulated users (default: the plan's)")
    p.add_argument("--duration", help="how long, e.g. 30s or 2m (default: the plan's)")


COMMANDS = (
    Command(
        "env",
        "loadtest",
        "load-test an environment and judge the release against its baseline",
        env_loadtest,
        arguments=_env_loadtest_args,
        action="loadtest",
        target=cli_env.type_of_environment,
        surfaces=EVERYWHERE,
        slow=True,
    ),
    # `report` is not in chat: the result file lives where the CLI runs.
    Command(
        "loadtest",
        "report",
        REPORT_HELP,
        loadtest_report,
        arguments=_report_args,
        read_only=True,
        surfaces=CLI,
        common_options=False,
    ),
    Command(
        "loadtest",
        "history",
        "recorded load-test runs, newest first",
        loadtest_history,
        arguments=_history_args,
        read_only=True,
        json=True,
    ),
    Command(
        "loadtest",
        "compare",
        "two recorded runs side by side, per label",
        loadtest_compare,
        arguments=_compare_args,
        read_only=True,
        json=True,
    ),
)
