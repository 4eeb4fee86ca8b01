"""Clinical times as instants: whatever offset a client sends, a time is kept and compared in UTC.

A record read at the chair orders its entries by when they happened; two clients in different zones (or one
that sends "+01:00" and one that sends "Z") must not reorder them, so every time is converted to UTC on the way
in, and text is never compared in place of a time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, Field

# Times and dates a client may send: anything outside is a typing error in the year, and year 1 or 9999 with an
# offset cannot even be converted to UTC (it overflowed into a 500). A clinical time has a narrower window too,
# checked where the record knows its booking (sessions: domain/session_record.py).
EARLIEST_YEAR, LATEST_YEAR = 1900, 2200
EARLIEST_DATE, LATEST_DATE = date(EARLIEST_YEAR, 1, 1), date(LATEST_YEAR, 12, 31)


def _as_utc(moment: datetime) -> datetime:
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise ValueError(f"a time must fall in the years {EARLIEST_YEAR}-{LATEST_YEAR}")
    return moment.astimezone(UTC)


# An aware time from a client, kept in UTC.
UtcInstant = Annotated[
    AwareDatetime,
    AfterValidator(_as_utc),
    Field(description=f"an ISO 8601 time with its offset, in the years {EARLIEST_YEAR}-{LATEST_YEAR}"),
]
# A database row id from a client: SQLite and PostgreSQL keep 64-bit signed integers.
MAX_ROW_ID = 2**63 - 1
# A calendar date from a client, in the same years.
PlausibleDate = Annotated[date, Field(ge=EARLIEST_DATE, le=LATEST_DATE)]


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


def age_on(birth_date: date, on: date) -> int:
    """Age in completed years on a day. Someone born on 29 February turns a year older on 1 March in common
    years. The one rule for screening (intake) and dosing (sessions)."""
    if birth_date > on:
        raise ValueError(f"date of birth {birth_date} is after {on}")
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
