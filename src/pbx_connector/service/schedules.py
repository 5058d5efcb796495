"""Schedules: set and show them, and claim the runs that are due.

Everything here is derived from the store: a profile's `schedule` and
`schedule_timezone` settings, the instance's `timezone`, and the slots its runs claimed.
A process that starts (or several processes of one store) therefore agree on what is due
without any state of their own. `serve` calls `claim_due` now and then and `claim` when
a profile's slot comes (see `service.scheduler`); the runs it claims are queued and
carried out by the executor like any other.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Connection

from pbx_connector.domain import schedule as schedules
from pbx_connector.errors import ConfigError
from pbx_connector.models.profiles import ProfileView, ScheduleView
from pbx_connector.store import runs as run_store
from pbx_connector.store.profiles import Profile, get_profile, list_profiles
from pbx_connector.store.settings import get_settings
from pbx_connector.store.timestamps import aware

if TYPE_CHECKING:
    from pbx_connector.service.app import App

log = logging.getLogger("pbx_connector.schedules")

#: After this many failed scheduled runs in a row a profile is flagged as failing.
FAILING_AFTER = 3
#: How many coming slots a view lists.
UPCOMING = 5


def machine_timezone() -> str:
    """This machine's time zone by its IANA name, or UTC when it has none."""
    try:
        import tzlocal

        name = tzlocal.get_localzone_name()
    except Exception:
        return "UTC"
    return name or "UTC"


def effective_timezone(
    settings: Mapping[str, str], instance: Mapping[str, str]
) -> tuple[str, Literal["profile", "instance", "machine"]]:
    """The zone a profile's schedule is in: its own, else the instance's, else this
    machine's."""
    if zone := settings.get("schedule_timezone", "").strip():
        return zone, "profile"
    if zone := instance.get("timezone", "").strip():
        return zone, "instance"
    return machine_timezone(), "machine"


@dataclass(frozen=True)
class Scheduled:
    """A profile with a schedule, as the scheduler needs it."""

    profile_id: int
    name: str
    schedule: schedules.Schedule
    #: Slots up to this instant are not due: the last one claimed, or when the profile
    #: was last changed (a schedule does not run for slots from before it was set).
    since: datetime


@dataclass(frozen=True)
class Claimed:
    run_id: int
    profile: str
    slot: datetime
    #: `queued` (to be carried out) or `skipped` (a run of the profile was going).
    status: str


def _parse(profile: Profile, instance: Mapping[str, str]) -> schedules.Schedule:
    zone, _ = effective_timezone(profile.settings, instance)
    return schedules.parse(profile.settings.get("schedule", ""), zone)


def schedule_view(
    conn: Connection,
    profile: Profile,
    instance: Mapping[str, str],
    now: datetime | None = None,
) -> ScheduleView | None:
    """What a face shows of a profile's schedule; None without one."""
    expression = profile.settings.get("schedule", "")
    if schedules.is_off(expression):
        return None
    zone, origin = effective_timezone(profile.settings, instance)
    now = now or datetime.now(UTC)
    assert profile.id is not None
    outcomes = run_store.scheduled_outcomes(conn, profile.id, FAILING_AFTER)
    failures = 0
    for status in outcomes:
        if status == "ok":
            break
        failures += 1
    try:
        parsed = schedules.parse(expression, zone)
    except ConfigError as exc:
        return ScheduleView(
            expression=expression,
            cron="",
            timezone=zone,
            timezone_from=origin,
            next_runs=[],
            failures=failures,
            failing=failures >= FAILING_AFTER,
            problem=exc.message,
        )
    return _view(parsed, origin, now, failures)


def _view(
    parsed: schedules.Schedule,
    origin: Literal["profile", "instance", "machine"],
    now: datetime,
    failures: int = 0,
) -> ScheduleView:
    return ScheduleView(
        expression=parsed.expression,
        cron=parsed.cron,
        timezone=parsed.timezone,
        timezone_from=origin,
        next_runs=[s.isoformat(timespec="seconds") for s in parsed.upcoming(now, UPCOMING)],
        failures=failures,
        failing=failures >= FAILING_AFTER,
    )


class SchedulesService:
    """A profile's schedule, and the runs of schedules that are due."""

    def __init__(self, app: App) -> None:
        self.app = app
        #: Called after a profile of this process changed (the scheduler of `serve`
        #: follows it at once instead of at its next look at the store).
        self.listeners: list[Callable[[], None]] = []

    def changed(self) -> None:
        for listener in self.listeners:
            listener()

    def set(self, name: str, expression: str, timezone: str | None = None) -> ProfileView:
        """Give a profile a schedule (`off` or '' removes it); `timezone` None keeps the
        profile's zone setting, '' makes it follow the instance's."""
        values = {"schedule": expression}
        if timezone is not None:
            values["schedule_timezone"] = timezone
        return self.app.profiles.update(name, values)

    def clear(self, name: str) -> ProfileView:
        return self.app.profiles.update(name, {"schedule": ""})

    def preview(self, expression: str, timezone: str = "") -> ScheduleView | None:
        """What a schedule would be, unsaved (the Schedule tab shows it as you type)."""
        if schedules.is_off(expression):
            return None
        with self.app.reading() as conn:
            instance = get_settings(conn)
        zone, origin = effective_timezone({"schedule_timezone": timezone}, instance)
        return _view(schedules.parse(expression, zone), origin, datetime.now(UTC))

    def view(self, name: str) -> ScheduleView | None:
        with self.app.reading() as conn:
            return schedule_view(conn, get_profile(conn, name), get_settings(conn))

    # --- what the scheduler asks -------------------------------------------------------

    def scheduled(self) -> builtins.list[Scheduled]:
        """Every profile with a schedule that can run. One whose schedule no longer
        parses (its time zone left this machine's database) is logged and left out."""
        with self.app.reading() as conn:
            instance = get_settings(conn)
            last = run_store.last_slots(conn)
            found: list[Scheduled] = []
            for profile in list_profiles(conn):
                if schedules.is_off(profile.settings.get("schedule", "")):
                    continue
                assert profile.id is not None
                try:
                    parsed = _parse(profile, instance)
                except ConfigError as exc:
                    log.error("profile %s is not scheduled: %s", profile.name, exc.message)
                    continue
                changed = aware(profile.updated_at) or datetime.now(UTC)
                since = max(changed, last.get(profile.id, changed))
                found.append(Scheduled(profile.id, profile.name, parsed, since))
        return found

    def claim_due(self, now: datetime | None = None) -> builtins.list[Claimed]:
        """Claim the latest passed, unclaimed slot of every scheduled profile: at start,
        the runs missed while no process served the store, each once."""
        claimed: list[Claimed] = []
        for entry in self.scheduled():
            run = self._claim(entry, now or datetime.now(UTC))
            if run is not None:
                claimed.append(run)
        return claimed

    def claim(self, profile_id: int, now: datetime | None = None) -> Claimed | None:
        """Claim the slot of one profile that has just come (or None: claimed already,
        by this process or another, or the schedule changed meanwhile)."""
        for entry in self.scheduled():
            if entry.profile_id == profile_id:
                return self._claim(entry, now or datetime.now(UTC))
        return None

    def _claim(self, entry: Scheduled, now: datetime) -> Claimed | None:
        slot = entry.schedule.latest_slot(now, entry.since)
        if slot is None:
            return None
        taken = run_store.claim_slot(self.app.engine, entry.profile_id, entry.name, slot)
        if taken is None:
            return None
        run_id, status = taken
        if status == run_store.SKIPPED:
            log.info("run %s of %s skipped: a run of it is still going", run_id, entry.name)
        return Claimed(run_id, entry.name, slot, status)
