"""Scheduling rules: no two bookings of one room or person at once, the weekly cap, the minimum interval.

Sources (docs/clinical-rules.md): [Spravato PI], [Loo 2023], [Singh 2016]; ISO 8601 for the week.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from services.sessions.domain.overrides import OverrideNotNeeded, ScheduleOverride
from services.sessions.domain.settings import SessionRuleSettings


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Whether two bookings clash. Ends are exclusive: one ending at 10:00 and the next starting at 10:00 do not.
    A booking that ends at or before its start is a data error and raises ValueError."""
    for start, end in ((a_start, a_end), (b_start, b_end)):
        if end <= start:
            raise ValueError(f"a booking must end after it starts: {start.isoformat()} to {end.isoformat()}")
    return a_start < b_end and b_start < a_end


def iso_week(moment: datetime, zone: ZoneInfo) -> tuple[int, int]:
    """The ISO 8601 week (Monday to Sunday; the week of 1 January may belong to the year before) of ``moment`` on
    the site's calendar: Sunday 23:30 in New York is still Sunday there, though it is Monday 04:30 in UTC."""
    calendar = moment.astimezone(zone).isocalendar()
    return calendar.year, calendar.week


def exceeds_weekly_cap(
    existing: Sequence[datetime], new: datetime, settings: SessionRuleSettings, zone: ZoneInfo
) -> bool:
    """Whether booking ``new`` makes more dosing sessions in its ISO week than the site's cap (default 2). The
    caller passes the patient's active bookings only (not cancelled, not missed)."""
    week = iso_week(new, zone)
    in_week = sum(1 for moment in existing if iso_week(moment, zone) == week)
    return in_week + 1 > settings.weekly_session_cap


def weekly_cap_allows(
    existing: Sequence[datetime],
    new: datetime,
    override: ScheduleOverride | None,
    settings: SessionRuleSettings,
    zone: ZoneInfo,
) -> bool:
    """Within the cap, or above it with a clinician's override. An override within the cap raises
    OverrideNotNeeded rather than being silently kept."""
    if not exceeds_weekly_cap(existing, new, settings, zone):
        if override is not None:
            raise OverrideNotNeeded(f"the week is within the cap of {settings.weekly_session_cap} dosing sessions")
        return True
    return override is not None
