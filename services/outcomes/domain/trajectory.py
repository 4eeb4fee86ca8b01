"""A patient's trajectory on one instrument over one course: the baseline, every later score with its change,
and the course's result (response, remission, time to response), judged by one OutcomeDefinition.

- Baseline: the latest score taken at or before the first dose (at intake, or before the session on the day).
  With no dose yet, the latest score so far stands as the baseline. Without a baseline nothing is judged.
- In the course: scores after the first dose, up to the course's end (or now, while it runs), including those
  taken hours after a dose on the same day: "relief within hours" is what KAP offers, so they count.
- The course's result is judged on its last score in the course ([ACNP 2006], definitions.py, judges response
  at the end of an acute phase; outcomes has no fixed end week, so the course's own end is used: clinic policy).
- Time to response: from the first dose to the first score in the course that meets the response threshold, in
  hours, and in the site's calendar days (0 = the day of the first dose).
- After the end: the follow-ups (followups.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from services.outcomes.domain.definitions import OutcomeDefinition
from shared.instants import local_date
from shared.instruments.scoring import Instrument
from shared.measures.models import MeasureContext


class Measurement(BaseModel):
    """One scored questionnaire, as intake or sessions reported it."""

    model_config = ConfigDict(frozen=True)

    assessment_id: uuid.UUID
    instrument: Instrument
    total: int
    context: MeasureContext
    administered_at: datetime


class Phase(StrEnum):
    earlier = "earlier"  # before the baseline: an older intake score
    baseline = "baseline"
    in_course = "in_course"
    follow_up = "follow_up"


class TrajectoryPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    assessment_id: uuid.UUID
    administered_at: datetime
    total: int
    context: MeasureContext
    phase: Phase
    hours_from_first_dose: float | None
    # Against the baseline; None for the baseline itself and anything before it.
    change: int | None
    percent_change: float | None
    responded: bool | None
    remitted: bool | None


class TimeToResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    hours: float
    days: int  # site calendar days after the first dose's day


class CourseResult(BaseModel):
    """One instrument over one course, with the definition it was judged by."""

    model_config = ConfigDict(frozen=True)

    instrument: Instrument
    definition: str
    baseline: int | None
    baseline_at: datetime | None
    last_in_course: int | None
    change: int | None
    responded: bool | None
    remitted: bool | None
    time_to_response: TimeToResponse | None
    points: tuple[TrajectoryPoint, ...]
    # The definition's lines, for the patient's chart: a score at or below response_at_or_below responds, one below
    # remission_below remits. None when the course is not judged (or has no baseline).
    response_at_or_below: float | None = None
    remission_below: int | None = None


def _hours(since: datetime, at: datetime) -> float:
    return round((at - since) / timedelta(hours=1), 1)


def _percent(change: int | None, baseline: int) -> float | None:
    return round(change * 100 / baseline, 1) if change is not None and baseline else None


def course_result(
    instrument: Instrument,
    measurements: Sequence[Measurement],
    *,
    first_dose_at: datetime | None,
    ended_at: datetime | None,
    definition: OutcomeDefinition,
    zone: ZoneInfo,
) -> CourseResult:
    """The trajectory and result of ``instrument`` over a course that began with ``first_dose_at`` (None: not
    dosed yet) and ended at ``ended_at`` (None: still running)."""
    mine = sorted((m for m in measurements if m.instrument is instrument), key=lambda m: m.administered_at)
    before = [m for m in mine if first_dose_at is None or m.administered_at <= first_dose_at]
    baseline = before[-1] if before else None
    points: list[TrajectoryPoint] = []
    last_in_course: Measurement | None = None
    first_response: Measurement | None = None
    for m in mine:
        if baseline is not None and m.administered_at < baseline.administered_at:
            phase = Phase.earlier
        elif m is baseline:
            phase = Phase.baseline
        elif baseline is None or first_dose_at is None:
            phase = Phase.earlier  # no baseline to measure from
        elif ended_at is not None and m.administered_at > ended_at:
            phase = Phase.follow_up
        else:
            phase = Phase.in_course
        judged = phase in (Phase.in_course, Phase.follow_up) and baseline is not None
        responded = definition.responded(instrument, baseline.total, m.total) if judged and baseline else None
        if phase is Phase.in_course:
            last_in_course = m
            if responded and first_response is None:
                first_response = m
        change = m.total - baseline.total if judged and baseline else None
        points.append(
            TrajectoryPoint(
                assessment_id=m.assessment_id,
                administered_at=m.administered_at,
                total=m.total,
                context=m.context,
                phase=phase,
                hours_from_first_dose=_hours(first_dose_at, m.administered_at) if first_dose_at else None,
                change=change,
                percent_change=_percent(change, baseline.total if baseline else 0),
                responded=responded,
                remitted=definition.remitted(instrument, baseline.total, m.total) if judged and baseline else None,
            )
        )
    ttr = None
    if first_response is not None and first_dose_at is not None:
        days = (local_date(first_response.administered_at, zone) - local_date(first_dose_at, zone)).days
        ttr = TimeToResponse(hours=_hours(first_dose_at, first_response.administered_at), days=days)
    end = last_in_course
    return CourseResult(
        instrument=instrument,
        definition=definition.key,
        baseline=baseline.total if baseline else None,
        baseline_at=baseline.administered_at if baseline else None,
        last_in_course=end.total if end else None,
        change=end.total - baseline.total if end and baseline else None,
        responded=definition.responded(instrument, baseline.total, end.total) if end and baseline else None,
        remitted=definition.remitted(instrument, baseline.total, end.total) if end and baseline else None,
        time_to_response=ttr,
        points=tuple(points),
        response_at_or_below=definition.response_line(instrument, baseline.total) if baseline else None,
        remission_below=definition.remission_below(instrument)
        if baseline and definition.judged(instrument, baseline.total)
        else None,
    )
