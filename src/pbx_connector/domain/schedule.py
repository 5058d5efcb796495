"""When a profile runs by itself: a preset (`every 5 minutes`, `hourly`, `daily 02:30`,
`weekdays 06:00`, `weekly sun 03:00`) or a cron expression, in a time zone.

A schedule is a list of *slots*: the instants it fires at. A slot is computed from the
expression alone, so every process that reads the same store agrees on it; a run claims
its slot in the store, and a slot claimed once is never run again (see
`store.schedules`). Missed slots therefore need no bookkeeping: the latest slot that has
passed and is not claimed is the one to run.

Cron expressions have five fields (minute hour day-of-month month day-of-week), or six
with seconds first. Day-of-week numbers are classic cron's (0 and 7 are Sunday), not
APScheduler 3's (0 is Monday): they are translated to names here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from apscheduler.triggers.cron import CronTrigger

from pbx_connector.errors import ConfigError

#: Values of the `schedule` setting that mean "no schedule".
OFF = ("", "off", "none", "no")
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: Presets whose step must divide the hour or the day: `every 7 minutes` as cron would
#: run at :56 and then at :00, four minutes later.
MINUTE_STEPS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)
HOUR_STEPS = (1, 2, 3, 4, 6, 8, 12)
PRESETS_HELP = (
    "every N minutes (N: 1, 2, 3, 4, 5, 6, 10, 12, 15, 20 or 30), every N hours "
    "(1, 2, 3, 4, 6, 8 or 12), hourly, daily HH:MM, weekdays HH:MM, weekly DAY HH:MM, "
    "or a cron expression (minute hour day month weekday)"
)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_FIELD = re.compile(r"^[\w*/,\-]+$")


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: what was given, the cron expression it means, the zone."""

    expression: str
    cron: str
    timezone: str
    trigger: CronTrigger

    def next_after(self, moment: datetime) -> datetime | None:
        """The first slot strictly after `moment`."""
        fire: datetime | None = self.trigger.get_next_fire_time(
            None, moment + timedelta(microseconds=1)
        )
        return fire

    def upcoming(self, moment: datetime, count: int) -> list[datetime]:
        """The next `count` slots after `moment`."""
        slots: list[datetime] = []
        while len(slots) < count:
            fire = self.next_after(slots[-1] if slots else moment)
            if fire is None:
                break
            slots.append(fire)
        return slots

    def latest_slot(self, now: datetime, since: datetime) -> datetime | None:
        """The latest slot in (`since`, `now`], or None when none falls in it. Only the
        latest counts: slots missed while nothing ran are run once, not once each."""
        if self.next_after(since) is None:
            return None
        # Look back in growing windows so that a schedule of every minute does not walk
        # a year of slots, and a yearly one is still found.
        for back in (
            timedelta(minutes=2),
            timedelta(hours=2),
            timedelta(days=2),
            timedelta(days=40),
            timedelta(days=400),
        ):
            start = max(since, now - back)
            fire = self.next_after(start)
            if fire is None or fire > now:
                if start == since:
                    return None
                continue
            latest = fire
            while (following := self.next_after(latest)) is not None and following <= now:
                latest = following
            return latest
        return None


def is_off(expression: str) -> bool:
    return expression.strip().lower() in OFF


def check_timezone(name: str, field: str = "schedule_timezone") -> str:
    """A time zone of the IANA database (`Europe/Berlin`, `UTC`), or a ConfigError."""
    name = name.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        hint = _similar_zone(name)
        raise ConfigError(
            f"{name!r} is not a time zone of the IANA database"
            + (f" (did you mean {hint!r}?)" if hint else " (e.g. Europe/Berlin, UTC)"),
            field=field,
        ) from None
    return name


def _similar_zone(name: str) -> str | None:
    folded = name.lower().replace(" ", "_")
    for zone in sorted(available_timezones()):
        if zone.lower() == folded or zone.lower().endswith("/" + folded):
            return zone
    return None


def normalise(expression: str) -> str:
    """How a schedule is stored: lower case, single spaces; '' for no schedule."""
    text = " ".join(expression.split()).lower()
    return "" if text in OFF else text


def to_cron(expression: str, field: str = "schedule") -> str:
    """The cron expression (5 fields, or 6 with seconds first) a schedule means."""
    text = normalise(expression)
    words = text.split()
    if not words:
        raise ConfigError("no schedule given", field=field)
    cron = _preset(words, field)
    if cron is not None:
        return cron
    if len(words) in (5, 6) and all(_FIELD.match(w) for w in words):
        return _classic_weekdays(words, field)
    raise ConfigError(
        f"{expression.strip()!r} is neither a preset nor a cron expression; use {PRESETS_HELP}",
        field=field,
    )


def parse(expression: str, timezone: str, field: str = "schedule") -> Schedule:
    """A schedule from its expression and time zone; ConfigError names what is wrong."""
    cron = to_cron(expression, field)
    zone = check_timezone(timezone)
    fields = cron.split()
    try:
        if len(fields) == 6:
            second, minute, hour, day, month, weekday = fields
            trigger = CronTrigger(
                second=second,
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=weekday,
                timezone=zone,
            )
        else:
            trigger = CronTrigger.from_crontab(cron, timezone=zone)
    except ValueError as exc:
        raise ConfigError(f"{expression.strip()!r}: {exc}", field=field) from None
    schedule = Schedule(normalise(expression), cron, zone, trigger)
    if schedule.next_after(datetime.now(ZoneInfo(zone))) is None:
        raise ConfigError(f"{expression.strip()!r} never runs", field=field)
    return schedule


def _preset(words: list[str], field: str) -> str | None:
    def clock(text: str) -> tuple[int, int]:
        match = _TIME.match(text)
        if not match:
            raise ConfigError(f"{text!r} is not a time of day (HH:MM, 00:00 to 23:59)", field=field)
        return int(match[1]), int(match[2])

    def step(text: str, allowed: tuple[int, ...], unit: str) -> int:
        if not text.isdigit() or int(text) not in allowed:
            raise ConfigError(
                f"every {text} {unit}s does not divide "
                f"{'an hour' if unit == 'minute' else 'a day'} evenly; use one of "
                f"{', '.join(map(str, allowed))}, or a cron expression",
                field=field,
            )
        return int(text)

    match words:
        case ["every", "minute"]:
            return "* * * * *"
        case ["every", "hour"] | ["hourly"]:
            return "0 * * * *"
        case ["every", n, "minutes" | "minute" | "min"]:
            return f"*/{step(n, MINUTE_STEPS, 'minute')} * * * *"
        case ["every", n, "hours" | "hour"]:
            return f"0 */{step(n, HOUR_STEPS, 'hour')} * * *"
        case ["daily"]:
            return "0 0 * * *"
        case ["daily", at]:
            hour, minute = clock(at)
            return f"{minute} {hour} * * *"
        case ["weekdays", at]:
            hour, minute = clock(at)
            return f"{minute} {hour} * * mon-fri"
        case ["weekly", day, at]:
            hour, minute = clock(at)
            return f"{minute} {hour} * * {_day_name(day, field)}"
        case ["every" | "daily" | "weekdays" | "weekly" | "hourly", *_]:
            raise ConfigError(f"{' '.join(words)!r}: use {PRESETS_HELP}", field=field)
    return None


def _day_name(text: str, field: str) -> str:
    for name in DAY_NAMES:
        if text[:3] == name and (len(text) == 3 or _long_day(name).startswith(text)):
            return name
    raise ConfigError(f"{text!r} is not a day of the week (mon … sun)", field=field)


def _long_day(name: str) -> str:
    return {
        "sun": "sunday",
        "mon": "monday",
        "tue": "tuesday",
        "wed": "wednesday",
        "thu": "thursday",
        "fri": "friday",
        "sat": "saturday",
    }[name]


def _classic_weekdays(words: list[str], field: str) -> str:
    """The cron expression with its day-of-week field in names, read as classic cron
    reads numbers (0 and 7 Sunday). Both a day of the month and a day of the week would
    mean "either" to cron and "both" to APScheduler, so that is refused."""
    *rest, weekday = words
    day = rest[-2]
    if day != "*" and weekday != "*":
        raise ConfigError(
            "give a day of the month or a day of the week, not both "
            "(cron would run when either matches, which is rarely meant)",
            field=field,
        )
    if weekday == "*":
        return " ".join(words)
    days: set[int] = set()
    for item in weekday.split(","):
        days |= _weekday_item(item, field)
    names = ",".join(DAY_NAMES[d] for d in sorted(days))
    return " ".join([*rest, names])


def _weekday_item(item: str, field: str) -> set[int]:
    base, _, step_text = item.partition("/")
    if step_text and not step_text.isdigit():
        raise ConfigError(f"{item!r} is not a day-of-week step", field=field)
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ConfigError(f"{item!r}: a step must be at least 1", field=field)
    if base == "*":
        first, last = 0, 6
    elif "-" in base:
        start, _, end = base.partition("-")
        first, last = _weekday(start, field), _weekday(end, field)
        if last == 0 and end.strip() in ("7", "sun"):
            last = 7
        if first > last:
            raise ConfigError(f"{item!r}: a range must go forward", field=field)
    else:
        first = last = _weekday(base, field)
        if step_text:
            last = 6
    return {d % 7 for d in range(first, last + 1, step)}


def _weekday(text: str, field: str) -> int:
    text = text.strip().lower()
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text) % 7 if int(text) != 7 else 0
    if text[:3] in DAY_NAMES:
        return DAY_NAMES.index(text[:3])
    raise ConfigError(
        f"{text!r} is not a day of the week (0-7, 0 and 7 Sunday, or mon … sun)",
        field=field,
    )
