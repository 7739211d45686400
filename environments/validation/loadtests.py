"""Checks of load-test plans (engine, file, duration, criteria) and schedules (cron, timezone,
the type and plan they name, their channel)."""

from __future__ import annotations

import zoneinfo

from environments.config.loadtests import LoadTestPlan, Schedule
from environments.errors import ShipyardError, clip
from environments.loadtests.criteria import parse_criterion
from environments.model import parse_duration
from environments.validation.common import Problems
from environments.validation.people import check_channel

ENGINES = ("locust", "jmeter", "azure-load-testing")


def check_plan(p: Problems, name: str, plan: LoadTestPlan) -> None:
    loc = ("loadtests", name)
    if plan.engine not in ENGINES:
        p.add(
            (*loc, "engine"),
            f"load-test plan '{name}': there is no load engine '{clip(plan.engine)}'",
            f"use one of: {', '.join(ENGINES)}",
        )
    if not (p.base / plan.file).is_file():
        p.add(
            (*loc, "file"),
            f"load-test plan '{name}': {p.base / plan.file} does not exist",
            "point file: at the locustfile or .jmx plan, relative to shipyard.yaml",
        )
    try:
        parse_duration(plan.duration)
    except ShipyardError as exc:
        p.add((*loc, "duration"), f"load-test plan '{name}': {exc.reason}", exc.hint)
    if plan.users < 1 or plan.spawn_rate <= 0:
        p.add(
            (*loc, "users"),
            f"load-test plan '{name}': users must be at least 1 and spawn_rate above 0",
        )
    for index, text in enumerate(plan.criteria):
        try:
            parse_criterion(text)
        except ShipyardError as exc:
            p.add((*loc, "criteria", index), exc.reason, exc.hint)


def check_schedule(p: Problems, name: str, schedule: Schedule) -> None:
    loc = ("schedules", name)
    check_channel(p, (*loc, "channel"), schedule.channel)
    timezone_ok = True
    try:
        zoneinfo.ZoneInfo(schedule.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        timezone_ok = False
        p.add(
            (*loc, "timezone"),
            f"schedule '{name}': '{clip(schedule.timezone)}' is not a timezone",
            "use an IANA name such as Europe/Stockholm or UTC",
        )
    problem = cron_problem(schedule.cron, schedule.timezone if timezone_ok else "UTC")
    if problem:
        p.add((*loc, "cron"), f"schedule '{name}': {problem}", CRON_HINT)
    if schedule.type not in p.catalog.types:
        p.add(
            (*loc, "type"),
            f"schedule '{name}' names type '{clip(schedule.type)}', which types: does not declare",
            f"use one of: {', '.join(p.catalog.types)}",
        )
    elif schedule.job == "nightly-loadtest":
        plan = schedule.plan or p.catalog.types[schedule.type].loadtest
        if plan is None:
            p.add(
                (*loc, "plan"),
                f"schedule '{name}' runs a load test but neither it nor type "
                f"'{schedule.type}' names a plan",
                "add plan: NAME (a plan under loadtests:)",
            )
        elif plan not in p.catalog.loadtests:
            p.add(
                (*loc, "plan"),
                f"schedule '{name}' names plan '{clip(plan)}', which loadtests: does not declare",
                f"use one of: {', '.join(p.catalog.loadtests) or '(none)'}",
            )


CRON_HINT = "write five crontab fields, e.g. '0 2 * * *' for 02:00"


def cron_problem(cron: str, timezone: str) -> str | None:
    """What is wrong with a crontab rule (five fields, or six with seconds first), or None."""
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split()
    try:
        if len(fields) == 5:
            CronTrigger.from_crontab(cron, timezone=timezone)
            return None
        if len(fields) == 6:
            second, minute, hour, day, month, weekday = fields
            CronTrigger(
                second=second,
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=weekday,
                timezone=timezone,
            )
            return None
    except (ValueError, LookupError) as exc:
        return f"cron '{clip(cron)}' is not valid: {clip(str(exc), 120)}"
    return f"cron '{clip(cron)}' has {len(fields)} fields"
