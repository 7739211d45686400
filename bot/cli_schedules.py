"""`schedule list|pause|resume|run`: the schedules shipyard.yaml declares, in the job store."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot import render
from bot.command import Command, Outcome
from bot.runtime import Runtime
from bot.scheduler import Schedules, run_now
from environments.policy import Actor


def _name(p: argparse.ArgumentParser, chat: bool) -> None:
    p.add_argument("name")


def _schedules(rt: Runtime) -> Schedules:
    return Schedules(rt).open(run=False)


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
    schedules = _schedules(rt)
    try:
        (schedules.pause if pause else schedules.resume)(name)
    finally:
        schedules.close()
    return Outcome(text=f"schedule {name} {'paused' if pause else 'resumed'}")


def schedule_pause(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    return _change(rt, actor, args.name, pause=True)


def schedule_resume(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    return _change(rt, actor, args.name, pause=False)


def schedule_run(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
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


COMMANDS = (
    Command(
        "schedule",
        "list",
        "schedules with their next run",
        schedule_list,
        read_only=True,
        json=True,
    ),
    Command(
        "schedule",
        "pause",
        "stop a schedule from firing",
        schedule_pause,
        arguments=_name,
        action="schedule_pause",
    ),
    Command(
        "schedule",
        "resume",
        "let a paused schedule fire again",
        schedule_resume,
        arguments=_name,
        action="schedule_resume",
    ),
    Command(
        "schedule",
        "run",
        "run a schedule's job now, here",
        schedule_run,
        arguments=_name,
        action="schedule_run",
        slow=True,
    ),
)
