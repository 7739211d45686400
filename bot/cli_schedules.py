"""`schedule list|pause|resume|run`: the schedules shipyard.yaml declares, in the job store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bot import render
from bot.commands import Outcome, command
from bot.grammar import Parser, _common
from bot.runtime import Runtime
from bot.scheduler import Schedules, run_now
from environments.errors import PolicyRefused
from environments.policy import Actor, Channel


def add_commands(groups: Any, parser: Parser, chat: bool) -> None:
    group = groups.add_parser("schedule", help="schedules: list, pause, resume, run")
    verbs = group.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    verbs.required = True
    p = verbs.add_parser("list", help="schedules with their next run")
    _common(p, json_output=True, chat=chat)
    parser.verbs[("schedule", "list")] = p
    for verb, text in (
        ("pause", "stop a schedule from firing"),
        ("resume", "let a paused schedule fire again"),
        ("run", "run a schedule's job now, here"),
    ):
        p = verbs.add_parser(verb, help=text)
        _common(p, chat=chat)
        p.add_argument("name")
        parser.verbs[("schedule", verb)] = p


def _schedules(rt: Runtime) -> Schedules:
    return Schedules(rt).open(run=False)


@command("schedule", "list")
def schedule_list(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    schedules = _schedules(rt)
    try:
        states = schedules.states()
    finally:
        schedules.close()
    rows = [
        [
            s.name,
            s.cron,
            s.timezone,
            s.job,
            "paused" if s.paused else "active",
            render.when(s.next_run),
        ]
        for s in states
    ]
    return Outcome(
        text=render.table(["schedule", "cron", "timezone", "job", "state", "next run"], rows),
        data=states,
    )


def _change(rt: Runtime, actor: Actor, name: str, pause: bool) -> Outcome:
    if rt.catalog.admins and actor.person not in rt.catalog.admins:
        raise PolicyRefused(
            f"{actor.person} may not change schedules",
            hint=f"ask an admin: {', '.join(rt.catalog.admins)}",
        )
    schedules = _schedules(rt)
    try:
        (schedules.pause if pause else schedules.resume)(name)
    finally:
        schedules.close()
    return Outcome(text=f"schedule {name} {'paused' if pause else 'resumed'}")


@command("schedule", "pause")
def schedule_pause(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    return _change(rt, actor, args.name, pause=True)


@command("schedule", "resume")
def schedule_resume(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    return _change(rt, actor, args.name, pause=False)


@command("schedule", "run")
def schedule_run(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    if (
        actor.channel is Channel.CHAT
        and rt.catalog.admins
        and actor.person not in rt.catalog.admins
    ):
        raise PolicyRefused(f"{actor.person} may not run schedules", hint="ask an admin")
    started = rt.lifecycle.clock.now()
    outcome = run_now(rt, args.name, triggered_by=actor.person)
    from environments.registry import loadtests as runs

    with rt.database.read() as conn:
        run = runs.latest_of_schedule(conn, args.name)
    if run is None or run.started_at < started:
        return Outcome(text=f"schedule {args.name}: {outcome}", data={"outcome": outcome})
    chart = Path(run.folder) / "chart.png" if run.folder else None
    lines = [f"schedule {args.name}: {outcome}"]
    if chart is not None and chart.exists():
        lines.append(f"  chart: {chart}")
    else:
        chart = None
    # Documented in README: 9 failed or regressed (as `env loadtest`), 10 errored.
    code = {"failed": 9, "regressed": 9, "errored": 10}.get(run.outcome or "errored", 0)
    return Outcome(
        text="\n".join(lines),
        data={"outcome": outcome, "run": run.id, "verdict": run.outcome, "chart": chart},
        exit_code=code,
    )
