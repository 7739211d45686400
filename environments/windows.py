"""Deploy windows per type: business hours and freezes, as pure predicates over a time.

A type's `windows:` says when deploys and promotions may start: `open:` hours (days of the week
and a time range, in the window's timezone; none listed means any time) and `frozen:` calendar
dates (inclusive; a freeze beats the hours). Outside them a request is refused with the next
opening, or — asked with `--when-open` — queued and started by the worker when the window
opens. An admin may override a closed window with a reason, recorded and shown to approvers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from environments.errors import Conflict, PolicyRefused

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")
OVERRIDE = "deploy window override"
LOOK_AHEAD_DAYS = 400


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OpenHours(_Strict):
    """When deploys may start: days of the week (`mon-fri`, `sat,sun`) and `HH:MM-HH:MM`."""

    days: str = "mon-sun"
    hours: str = "00:00-24:00"

    @field_validator("days")
    @classmethod
    def _days(cls, value: str) -> str:
        day_set(value)
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        hour_range(value)
        return value


class Freeze(_Strict):
    """Calendar dates (inclusive) when nothing is deployed, and why."""

    start: date = Field(alias="from")
    until: date
    reason: str = ""


class Windows(_Strict):
    """A type's deploy windows, in one timezone."""

    timezone: str = "UTC"
    open: tuple[OpenHours, ...] = ()
    frozen: tuple[Freeze, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone '{value}' (use e.g. Europe/Stockholm)") from None
        return value


def day_set(text: str) -> frozenset[int]:
    """`mon-fri`, `sat,sun`, `mon-wed,fri` → weekday numbers (Monday 0)."""
    found: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"'{text}' is not a list of days (write e.g. mon-fri or sat,sun)")
        a, b = DAYS.index(first), DAYS.index(last or first)
        found.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(found)


def hour_range(text: str) -> tuple[time, time | None]:
    """`09:00-17:00` → (start, end); an end of 24:00 is None (midnight after the day)."""
    match = HOURS.fullmatch(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a time range (write e.g. 09:00-17:00)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise ValueError(f"'{text}' is not a time range (write e.g. 09:00-17:00)")
    end = None if h2 == 24 else time(h2, m2)
    if end is not None and end <= time(h1, m1):
        raise ValueError(f"'{text}' ends before it starts")
    return time(h1, m1), end


def _frozen(windows: Windows, local: datetime) -> Freeze | None:
    return next((f for f in windows.frozen if f.start <= local.date() <= f.until), None)


def _in_hours(windows: Windows, local: datetime) -> bool:
    if not windows.open:
        return True
    for hours in windows.open:
        start, end = hour_range(hours.hours)
        in_day = local.weekday() in day_set(hours.days)
        if in_day and start <= local.time() and (end is None or local.time() < end):
            return True
    return False


def closed_because(windows: Windows, at: datetime) -> str | None:
    """Why deploys may not start at `at` (None: the window is open)."""
    local = at.astimezone(ZoneInfo(windows.timezone))
    freeze = _frozen(windows, local)
    if freeze is not None:
        why = f" ({freeze.reason})" if freeze.reason else ""
        return f"frozen from {freeze.start} to {freeze.until}{why}"
    if not _in_hours(windows, local):
        hours = "; ".join(f"{h.days} {h.hours}" for h in windows.open)
        return f"outside deploy hours ({hours} {windows.timezone})"
    return None


def next_opening(windows: Windows, at: datetime) -> datetime | None:
    """The first moment from `at` on when the window is open (None: not within a year)."""
    if closed_because(windows, at) is None:
        return at
    zone = ZoneInfo(windows.timezone)
    local = at.astimezone(zone)
    # The window opens at the start of some day's hours or the day after a freeze ends.
    candidates: set[datetime] = set()
    for offset in range(LOOK_AHEAD_DAYS):
        day = local.date() + timedelta(days=offset)
        starts = [hour_range(h.hours)[0] for h in windows.open] or [time(0, 0)]
        candidates.update(datetime.combine(day, start, tzinfo=zone) for start in starts)
    for moment in sorted(candidates):
        if moment > local and closed_because(windows, moment) is None:
            return moment.astimezone(at.tzinfo)
    return None


@dataclass(frozen=True)
class WindowGate:
    """The gate's answer: open now, deferred until `opens_at`, or overridden with `override`."""

    opens_at: datetime | None = None
    override: str | None = None

    @property
    def deferred(self) -> bool:
        return self.opens_at is not None


def gate(
    type_name: str,
    windows: Windows | None,
    at: datetime,
    *,
    person: str,
    admin: bool,
    when_open: bool = False,
    override: str | None = None,
) -> WindowGate:
    """May a deploy or promotion into a `type_name` environment start at `at`?

    Open: yes. Closed: refused with the next opening; with `when_open`, deferred to it; with
    an `override` reason, allowed for an admin (the reason is recorded and shown to approvers).
    """
    if windows is None:
        return WindowGate()
    why = closed_because(windows, at)
    if why is None:
        return WindowGate()
    opens = next_opening(windows, at)
    when = (
        f"{opens.astimezone(ZoneInfo(windows.timezone)):%Y-%m-%d %H:%M} {windows.timezone}"
        if opens
        else "never within a year"
    )
    if override is not None and override.strip():
        if not admin:
            raise PolicyRefused(
                f"only an admin may deploy into {type_name} while it is {why}",
                hint=f"ask an admin, or ask again with --when-open to start at {when}"
                if opens
                else "ask an admin",
            )
        return WindowGate(override=f"{OVERRIDE} by {person}: {override.strip()} ({why})")
    if opens is None:
        raise Conflict(
            f"{type_name} is {why}, with no opening within a year",
            hint="an admin may override with a reason",
        )
    if when_open:
        return WindowGate(opens_at=opens)
    raise Conflict(
        f"{type_name} is {why}; the next opening is {when}",
        hint="ask again with --when-open to start it then, or an admin may override with a reason",
    )


def held(windows: Windows | None, at: datetime, recorded_override: str | None) -> bool:
    """Should the worker hold a deployment now? Closed, and not overridden when requested."""
    if windows is None or (recorded_override and OVERRIDE in recorded_override):
        return False
    return closed_because(windows, at) is not None
