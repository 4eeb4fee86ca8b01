"""Clinical times as instants: whatever offset a client sends, a time is kept and compared in UTC.

A record read at the chair orders its entries by when they happened; two clients in different zones (or one
that sends "+01:00" and one that sends "Z") must not reorder them, so every time is converted to UTC on the way
in, and text is never compared in place of a time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime


def _as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


# An aware time from a client, kept in UTC.
UtcInstant = Annotated[AwareDatetime, AfterValidator(_as_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


def site_zone(name: str) -> ZoneInfo:
    """The site's IANA time zone (``America/New_York``), or ValueError naming what is wrong."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone name (such as America/New_York)") from None


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    """The calendar day ``moment`` falls on at the site: the day a nurse writes on the form."""
    return moment.astimezone(zone).date()


def minutes_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier) / timedelta(minutes=1)
