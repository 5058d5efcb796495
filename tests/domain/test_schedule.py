"""Schedules: presets and cron expressions, classic weekday numbers, and which slot is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_connector.domain import schedule
from pbx_connector.errors import ConfigError

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("given_", "cron"),
    [
        ("every minute", "* * * * *"),
        ("every 5 minutes", "*/5 * * * *"),
        ("Every  15   Minutes", "*/15 * * * *"),
        ("every hour", "0 * * * *"),
        ("hourly", "0 * * * *"),
        ("every 6 hours", "0 */6 * * *"),
        ("daily", "0 0 * * *"),
        ("daily 02:30", "30 2 * * *"),
        ("daily 7:05", "5 7 * * *"),
        ("weekdays 06:00", "0 6 * * mon-fri"),
        ("weekly sun 03:00", "0 3 * * sun"),
        ("weekly Monday 23:59", "59 23 * * mon"),
        ("*/15 * * * *", "*/15 * * * *"),
        ("0 3 * * 0", "0 3 * * sun"),
        ("0 3 * * 7", "0 3 * * sun"),
        ("0 3 * * 1-5", "0 3 * * mon,tue,wed,thu,fri"),
        ("0 3 * * 5-7", "0 3 * * sun,fri,sat"),
        ("0 3 * * */2", "0 3 * * sun,tue,thu,sat"),
        ("0 3 * * sat,sun", "0 3 * * sun,sat"),
        ("0 3 1 * *", "0 3 1 * *"),
        ("*/2 * * * * *", "*/2 * * * * *"),
    ],
)
def test_presets_and_cron_expressions_mean_one_cron_expression(given_: str, cron: str) -> None:
    assert schedule.to_cron(given_) == cron


@pytest.mark.parametrize(
    ("given_", "message"),
    [
        ("every 7 minutes", "does not divide an hour evenly"),
        ("every 5 hours", "does not divide a day evenly"),
        ("daily 25:00", "is not a time of day"),
        ("daily 2pm", "is not a time of day"),
        ("weekly funday 03:00", "is not a day of the week"),
        ("weekly 03:00", "use every N minutes"),
        ("sometimes", "neither a preset nor a cron expression"),
        ("0 3 1 * 1", "a day of the month or a day of the week, not both"),
        ("0 3 * * 8", "is not a day of the week"),
        ("0 3 * * 5-1", "a range must go forward"),
        ("61 * * * *", "61"),
        ("0 0 30 2 *", "never runs"),
    ],
)
def test_a_wrong_schedule_says_what_is_wrong(given_: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        schedule.parse(given_, "UTC")
    assert caught.value.field == "schedule"


def test_off_and_empty_mean_no_schedule() -> None:
    for text in ("", "off", " OFF ", "none"):
        assert schedule.is_off(text) and schedule.normalise(text) == ""
    assert schedule.normalise("  Daily   02:30 ") == "daily 02:30"


def test_time_zones_are_checked_and_a_near_miss_is_named() -> None:
    assert schedule.check_timezone(" Europe/Berlin ") == "Europe/Berlin"
    with pytest.raises(ConfigError, match="did you mean 'Europe/Berlin'") as caught:
        schedule.check_timezone("berlin")
    assert caught.value.field == "schedule_timezone"
    with pytest.raises(ConfigError, match="not a time zone"):
        schedule.parse("hourly", "Mars/Olympus")


def test_slots_are_in_the_schedules_time_zone_across_a_dst_change() -> None:
    daily = schedule.parse("daily 02:30", "Europe/Berlin")
    # 2026-03-29: clocks go from 02:00 to 03:00 in Berlin, so 02:30 does not exist that day.
    before = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    slots = [s.astimezone(BERLIN) for s in daily.upcoming(before, 4)]
    assert [s.day for s in slots] == [28, 29, 30, 31]
    assert (
        slots[0].hour == 2 and slots[0].minute == 30 and slots[0].utcoffset() == timedelta(hours=1)
    )
    assert slots[2].hour == 2 and slots[2].utcoffset() == timedelta(hours=2)


def test_the_latest_missed_slot_is_due_once_not_each_missed_one() -> None:
    daily = schedule.parse("daily 02:30", "UTC")
    last_run = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # down for ten days
    assert daily.latest_slot(now, last_run) == datetime(2026, 11, 30, 2, 30, tzinfo=UTC)
    # Once that slot is claimed nothing else is due until the next one.
    claimed = datetime(2026, 11, 30, 2, 30, tzinfo=UTC)
    assert daily.latest_slot(now, claimed) is None
    # A schedule set after today's slot does not run for it.
    assert daily.latest_slot(now, datetime(2026, 11, 30, 8, 0, tzinfo=UTC)) is None


def test_a_slot_exactly_now_is_due_and_a_rare_one_is_found_far_back() -> None:
    every_5 = schedule.parse("every 5 minutes", "UTC")
    now = datetime(2026, 11, 30, 9, 5, tzinfo=UTC)
    assert every_5.latest_slot(now, now - timedelta(minutes=1)) == now
    yearly = schedule.parse("0 0 1 1 *", "UTC")
    since = datetime(2025, 6, 1, tzinfo=UTC)
    assert yearly.latest_slot(now, since) == datetime(2026, 1, 1, tzinfo=UTC)


@settings(max_examples=150, deadline=None)
@given(
    minute=st.sampled_from(["*", "*/5", "0", "15,45", "*/20", "7"]),
    hour=st.sampled_from(["*", "*/2", "3", "8-18", "0,12"]),
    weekday=st.sampled_from(["*", "1-5", "0", "sat,sun", "*/3"]),
    now=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    back=st.integers(min_value=0, max_value=60 * 24 * 30),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
)
def test_the_due_slot_is_the_last_slot_between_since_and_now(
    minute: str, hour: str, weekday: str, now: datetime, back: int, zone: str
) -> None:
    parsed = schedule.parse(f"{minute} {hour} * * {weekday}", zone)
    since = now - timedelta(minutes=back)
    slot = parsed.latest_slot(now, since)
    following = parsed.next_after(since)
    if following is None or following > now:
        assert slot is None
        return
    assert slot is not None and since < slot <= now
    after = parsed.next_after(slot)
    assert after is None or after > now
