"""Scheduling: bookings that clash (ends exclusive), the ISO week on the site's calendar, and the weekly cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.sessions.domain.overrides import OverrideNotNeeded, ScheduleOverride
from services.sessions.domain.scheduling import exceeds_weekly_cap, iso_week, overlaps, weekly_cap_allows
from services.sessions.domain.settings import DEFAULT_SETTINGS, SessionRuleSettings

S = DEFAULT_SETTINGS
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
UTC_ZONE = ZoneInfo("UTC")
MON = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday of ISO week 10 of 2026


def days(n: float) -> timedelta:
    return timedelta(days=n)


# --- clashes ---


@pytest.mark.parametrize(
    ("b_start", "b_end", "clash"),
    [
        (11, 12, False),  # back-to-back after
        (8, 9, False),  # back-to-back before
        (10, 11.5, True),  # starts inside
        (8.5, 9.5, True),  # ends inside
        (9.25, 9.75, True),  # contained
        (8, 12, True),  # contains
        (9, 11, True),  # identical
        (13, 14, False),  # apart
        (10.99, 12, True),  # one minute's overlap is a clash
    ],
)
def test_overlaps_end_exclusive(b_start: float, b_end: float, clash: bool) -> None:
    def at(hour: float) -> datetime:
        return datetime(2026, 3, 2, tzinfo=UTC) + timedelta(hours=hour)

    assert overlaps(at(9), at(11), at(b_start), at(b_end)) is clash
    assert overlaps(at(b_start), at(b_end), at(9), at(11)) is clash


def test_overlaps_compares_instants_not_wall_clocks() -> None:
    # 10:00 in New York (EST) is 15:00 UTC: a UTC booking 14:00-15:00 ends as the other starts.
    ny_start = datetime(2026, 3, 2, 10, 0, tzinfo=NEW_YORK)
    assert (
        overlaps(ny_start, ny_start + timedelta(hours=1), MON + timedelta(hours=5), MON + timedelta(hours=6)) is False
    )
    assert overlaps(
        ny_start, ny_start + timedelta(hours=1), MON + timedelta(hours=5), MON + timedelta(hours=6, minutes=1)
    )


@pytest.mark.parametrize("length", [timedelta(0), timedelta(minutes=-30)])
def test_overlaps_refuses_a_booking_that_does_not_end_after_it_starts(length: timedelta) -> None:
    with pytest.raises(ValueError, match="end after it starts"):
        overlaps(MON, MON + length, MON, MON + timedelta(minutes=60))
    with pytest.raises(ValueError, match="end after it starts"):
        overlaps(MON, MON + timedelta(minutes=60), MON, MON + length)


# --- the ISO week, on the site's calendar ---


def test_sunday_evening_in_new_york_is_already_monday_in_utc() -> None:
    sunday_night = datetime(2026, 3, 1, 23, 30, tzinfo=NEW_YORK)  # 04:30 UTC on Monday 2 March
    assert iso_week(sunday_night, NEW_YORK) == (2026, 9)
    assert iso_week(sunday_night, UTC_ZONE) == (2026, 10)


def test_monday_00_30_in_new_york_is_monday_in_both() -> None:
    # New York is behind UTC, so its Monday 00:30 is Monday 05:30 UTC: the same week either way.
    monday = datetime(2026, 3, 2, 0, 30, tzinfo=NEW_YORK)
    assert iso_week(monday, NEW_YORK) == iso_week(monday, UTC_ZONE) == (2026, 10)


def test_monday_00_30_east_of_utc_is_still_sunday_in_utc() -> None:
    monday = datetime(2026, 3, 2, 0, 30, tzinfo=BERLIN)  # 23:30 UTC on Sunday 1 March
    assert iso_week(monday, BERLIN) == (2026, 10)
    assert iso_week(monday, UTC_ZONE) == (2026, 9)


def test_iso_week_spans_new_year() -> None:
    # 1 January 2026 is a Thursday: ISO week 1 of 2026 starts on Monday 29 December 2025.
    assert iso_week(datetime(2025, 12, 29, 9, tzinfo=UTC), UTC_ZONE) == (2026, 1)
    assert iso_week(datetime(2025, 12, 28, 9, tzinfo=UTC), UTC_ZONE) == (2025, 52)


# --- the weekly cap ---


def test_third_session_in_one_iso_week_exceeds_the_cap() -> None:
    # [Spravato PI] TRD induction: twice weekly, the most frequent schedule on the label.
    assert exceeds_weekly_cap([MON], MON + days(2), S, UTC_ZONE) is False  # the 2nd
    assert exceeds_weekly_cap([MON, MON + days(2)], MON + days(4), S, UTC_ZONE) is True  # the 3rd


def test_sessions_in_the_week_before_do_not_count() -> None:
    last_week = [MON - days(3), MON - days(2)]  # Friday and Saturday
    assert exceeds_weekly_cap(last_week, MON, S, UTC_ZONE) is False


def test_sunday_ends_the_iso_week() -> None:
    week = [MON, MON + days(1)]
    assert exceeds_weekly_cap(week, MON + timedelta(days=6, hours=10), S, UTC_ZONE) is True  # Sunday evening
    assert exceeds_weekly_cap(week, MON + days(7), S, UTC_ZONE) is False  # next Monday


def test_cap_across_new_year() -> None:
    existing = [datetime(2025, 12, 29, 9, tzinfo=UTC), datetime(2025, 12, 30, 9, tzinfo=UTC)]
    assert exceeds_weekly_cap(existing, datetime(2026, 1, 2, 9, tzinfo=UTC), S, UTC_ZONE) is True
    assert exceeds_weekly_cap(existing, datetime(2026, 1, 5, 9, tzinfo=UTC), S, UTC_ZONE) is False


def test_the_cap_counts_weeks_on_the_sites_calendar() -> None:
    # Monday and Wednesday mornings in New York, then Sunday 21:00 in New York: 02:00 UTC on the next Monday.
    week = [datetime(2026, 3, 2, 9, tzinfo=NEW_YORK), datetime(2026, 3, 4, 9, tzinfo=NEW_YORK)]
    sunday_evening = datetime(2026, 3, 8, 21, tzinfo=NEW_YORK)
    assert exceeds_weekly_cap(week, sunday_evening, S, NEW_YORK) is True
    assert exceeds_weekly_cap(week, sunday_evening, S, UTC_ZONE) is False  # the wrong calendar lets it through


def test_weekly_cap_is_a_site_setting() -> None:
    # [Singh 2016] studied thrice weekly, the most a site may set.
    site = SessionRuleSettings(weekly_session_cap=3)
    assert exceeds_weekly_cap([MON, MON + days(2)], MON + days(4), site, UTC_ZONE) is False
    assert exceeds_weekly_cap([MON, MON + days(2), MON + days(4)], MON + days(5), site, UTC_ZONE) is True


def test_booking_above_the_cap_needs_an_override_and_within_it_refuses_one() -> None:
    week = [MON, MON + days(2)]
    friday = MON + days(4)
    override = ScheduleOverride(reason="missed Tuesday for a family emergency")
    assert weekly_cap_allows(week, friday, None, S, UTC_ZONE) is False
    assert weekly_cap_allows(week, friday, override, S, UTC_ZONE) is True
    assert weekly_cap_allows([MON], friday, None, S, UTC_ZONE) is True
    with pytest.raises(OverrideNotNeeded, match="within the cap of 2"):
        weekly_cap_allows([MON], friday, override, S, UTC_ZONE)


@pytest.mark.parametrize("reason", ["ok", "  busy  ", ""])
def test_schedule_override_needs_a_reason(reason: str) -> None:
    with pytest.raises(ValidationError):
        ScheduleOverride(reason=reason)
