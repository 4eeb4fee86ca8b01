"""Durability: follow-ups 4, 12 and 26 weeks after a course ends, and whether the response held at each.

- Due on the site's calendar day that many weeks after the course's last day (the issue's schedule; 4 and 12
  weeks match the usual post-acute checks, 26 weeks the six-month durability point of maintenance studies).
- A score counts for a follow-up when taken in its window: 7 days either side at 4 weeks, 14 at 12 weeks, 28 at
  26 weeks (clinic policy: wider as the interval grows, and never overlapping). The score nearest the due day
  counts; a tie goes to the earlier one.
- Status: upcoming before its window opens; due while the window is open and no score is in it; done once one
  is; missed when the window closed without one.
- Held: the course responded and the follow-up score still meets the response threshold against the same
  baseline. None when the course did not respond (nothing to hold) or the follow-up has no score.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from services.outcomes.domain.definitions import OutcomeDefinition
from services.outcomes.domain.trajectory import Measurement
from shared.instants import local_date
from shared.instruments.scoring import Instrument

FOLLOW_UP_WEEKS: tuple[int, ...] = (4, 12, 26)
WINDOW_DAYS: dict[int, int] = {4: 7, 12: 14, 26: 28}


class FollowUpStatus(StrEnum):
    upcoming = "upcoming"
    due = "due"
    done = "done"
    missed = "missed"


class FollowUpPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    week: int
    due_on: date
    opens_on: date
    closes_on: date


class FollowUpResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    instrument: Instrument
    week: int
    due_on: date
    closes_on: date
    status: FollowUpStatus
    score: int | None
    responded: bool | None
    remitted: bool | None
    held: bool | None


def follow_up_points(course_ended_on: date) -> list[FollowUpPoint]:
    points = []
    for week in FOLLOW_UP_WEEKS:
        due = course_ended_on + timedelta(weeks=week)
        window = timedelta(days=WINDOW_DAYS[week])
        points.append(FollowUpPoint(week=week, due_on=due, opens_on=due - window, closes_on=due + window))
    return points


def follow_up_status(point: FollowUpPoint, scored: bool, today: date) -> FollowUpStatus:
    if scored:
        return FollowUpStatus.done
    if today < point.opens_on:
        return FollowUpStatus.upcoming
    return FollowUpStatus.due if today <= point.closes_on else FollowUpStatus.missed


def score_for(point: FollowUpPoint, measurements: Sequence[Measurement], zone: ZoneInfo) -> Measurement | None:
    inside = [m for m in measurements if point.opens_on <= local_date(m.administered_at, zone) <= point.closes_on]
    if not inside:
        return None
    return min(
        inside, key=lambda m: (abs((local_date(m.administered_at, zone) - point.due_on).days), m.administered_at)
    )


def follow_up_results(
    instrument: Instrument,
    measurements: Sequence[Measurement],
    *,
    course_ended_on: date,
    baseline: int | None,
    course_responded: bool | None,
    definition: OutcomeDefinition,
    today: date,
    zone: ZoneInfo,
) -> list[FollowUpResult]:
    mine = [m for m in measurements if m.instrument is instrument]
    results = []
    for point in follow_up_points(course_ended_on):
        found = score_for(point, mine, zone)
        responded = definition.responded(instrument, baseline, found.total) if found and baseline is not None else None
        results.append(
            FollowUpResult(
                instrument=instrument,
                week=point.week,
                due_on=point.due_on,
                closes_on=point.closes_on,
                status=follow_up_status(point, found is not None, today),
                score=found.total if found else None,
                responded=responded,
                remitted=(
                    definition.remitted(instrument, baseline, found.total) if found and baseline is not None else None
                ),
                held=(bool(responded) if course_responded and found is not None else None),
            )
        )
    return results
