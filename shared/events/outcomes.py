"""Events the outcomes service publishes; the network aggregate is the only thing that leaves a site."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.auth.permissions import Permission
from shared.events.billing import AccessBarrierReason
from shared.events.registry import DomainEvent, PatientEvent, registered
from shared.treatment import AdverseEventType, Indication, Route


class AggregateCell(BaseModel):
    """One count of a cohort. A suppressed cell carries no number at all (not a zero, not a range)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    period: str = Field(pattern=r"^\d{4}-\d{2}$|^all$", description="a month (YYYY-MM) or 'all'")
    count: int | None = Field(default=None, ge=0)
    suppressed: bool = False

    @model_validator(mode="after")
    def _suppressed_means_no_number(self) -> AggregateCell:
        if self.suppressed and self.count is not None:
            raise ValueError("a suppressed cell carries no count")
        if not self.suppressed and self.count is None:
            raise ValueError("an unsuppressed cell needs a count")
        return self


# Which release of its period a network record belongs to: every record of one release carries the same number,
# so a reader (and the auditor) tells releases apart even when they share a period boundary.
ReleaseNumber = Annotated[
    int,
    Field(
        ge=1,
        description="which release of its period this record belongs to: 1 for a period's first (the only one,"
        " but in development's beat period, whose releases all carry the day's boundary)",
    ),
]


@registered
class CohortAggregatePublished(DomainEvent):
    """The latest aggregate of one (site, cohort): counts by month, small counts suppressed."""

    name = "cohort_aggregate.published"
    audience = Permission.network_aggregates_read
    producer = "outcomes"
    scope = "network"
    summary = "Latest de-identified aggregate of one site's cohort; counts 1-10 suppressed."

    site: str
    cohort: str = Field(description="what is counted, e.g. 'registrations'")
    measure: str
    cells: list[AggregateCell]
    total: AggregateCell
    generated_at: datetime
    release: ReleaseNumber = 1

    def partition_key(self) -> str:
        return f"{self.site}|{self.cohort}"

    def envelope_time(self) -> datetime:
        return self.generated_at


class ReleasedCount(BaseModel):
    """A count that crossed the privacy boundary: 0, 11 or more, or suppressed (no number at all). The network
    re-checks it on receipt: a count from 1 to 10 is refused."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    count: int | None = Field(default=None, ge=0)
    suppressed: bool = False

    @model_validator(mode="after")
    def _never_small(self) -> ReleasedCount:
        if self.suppressed != (self.count is None):
            raise ValueError("a count is either shown or suppressed, never both or neither")
        if self.count is not None and 0 < self.count < 11:
            raise ValueError(f"a count of {self.count} (1-10) may not cross to the network")
        return self


def _only_over_shown(count: ReleasedCount, *figures: float | None) -> None:
    """A mean, median or rate only over a shown count (so at least 11 stand behind it): re-checked on receipt."""
    if count.count is None and any(f is not None for f in figures):
        raise ValueError("a mean, median or rate may only stand over a shown count")


class InstrumentFigures(BaseModel):
    """One instrument over a cohort's courses. Means and medians only over a shown count of at least 11 (None
    otherwise): the change over those with a result, the time to response over those who responded."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    instrument: Literal["phq9", "gad7", "pcl5"]
    with_result: ReleasedCount = Field(description="courses with a baseline and a score in the course")
    responded: ReleasedCount
    remitted: ReleasedCount
    mean_change: float | None = None
    median_change: float | None = None
    median_hours_to_response: float | None = None
    median_days_to_response: float | None = None

    @model_validator(mode="after")
    def _figures_over_shown_counts(self) -> InstrumentFigures:
        _only_over_shown(self.with_result, self.mean_change, self.median_change)
        _only_over_shown(self.responded, self.median_hours_to_response, self.median_days_to_response)
        return self


class AdverseEventFigures(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: AdverseEventType
    courses: ReleasedCount = Field(description="courses with at least one adverse event of this type")
    per_100_courses: float | None = Field(default=None, description="shown only when both counts are")
    serious_courses: ReleasedCount

    @model_validator(mode="after")
    def _rate_over_a_shown_count(self) -> AdverseEventFigures:
        _only_over_shown(self.courses, self.per_100_courses)
        return self


class BarrierFigures(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    reason: AccessBarrierReason
    courses: ReleasedCount
    median_out_of_pocket_cents: int | None = None

    @model_validator(mode="after")
    def _median_over_a_shown_count(self) -> BarrierFigures:
        _only_over_shown(self.courses, self.median_out_of_pocket_cents)
        return self


CohortCut = Literal["all", "age_band", "dose_band", "frequency", "payer", "prior_trials"]


@registered
class CohortOutcomesPublished(DomainEvent):
    """What one site's courses of one indication and route, started in one month, came to, overall or within
    one cut (an age band, a dose band, a dosing frequency, self-pay or insured, or the number of failed
    antidepressant trials). Counts 1-10 suppressed; means and medians only over 11 or more."""

    name = "cohort_outcomes.published"
    audience = Permission.network_aggregates_read
    producer = "outcomes"
    scope = "network"
    summary = "A site's cohort outcomes (site x indication x route x month, and its cuts); counts 1-10 suppressed."

    site: str
    indication: Indication
    route: Route
    period: str = Field(
        pattern=r"^\d{4}-\d{2}$", description="the month the courses were planned, on the site's calendar"
    )
    cut: CohortCut
    cut_value: str = Field(max_length=40, description="'all' for the whole cohort")
    definition: str = Field(description="the response and remission definition the results were judged by")
    courses: ReleasedCount = Field(description="courses in the cohort, dosed or not (a course declined for cost too)")
    started: ReleasedCount = Field(description="courses with a first dose")
    completed: ReleasedCount
    dropped_out: ReleasedCount
    instruments: list[InstrumentFigures]
    adverse_events: list[AdverseEventFigures]
    barriers: list[BarrierFigures]
    median_days_to_first_dose: float | None = None
    generated_at: datetime
    release: ReleaseNumber = 1

    @model_validator(mode="after")
    def _median_over_a_shown_count(self) -> CohortOutcomesPublished:
        _only_over_shown(self.started, self.median_days_to_first_dose)
        return self

    @property
    def cohort_key(self) -> str:
        return f"{self.site}|{self.indication.value}|{self.route.value}|{self.period}|{self.cut}|{self.cut_value}"

    def partition_key(self) -> str:
        # Every cut of one site x indication x route x month shares a partition: the cells of those cuts are
        # related, and a reader (and the network's re-check) must see the group's releases in the order made.
        return f"{self.site}|{self.indication.value}|{self.route.value}|{self.period}"

    def envelope_time(self) -> datetime:
        return self.generated_at


@registered
class FollowUpDue(PatientEvent):
    """Site scope: names a patient, so it stays on the site's outcomes topic."""

    name = "followup.due"
    audience = Permission.outcomes_read
    producer = "outcomes"
    summary = (
        "A follow-up after a course (4, 12 or 26 weeks after its end) has opened its window and has no score yet: "
        "the clinic should ask the patient for PHQ-9, GAD-7 and PCL-5."
    )

    course_id: uuid.UUID
    week: int = Field(description="weeks after the course's end: 4, 12 or 26")
    due_on: date = Field(description="the site's calendar day the follow-up is due")
    window_closes_on: date = Field(description="the last day a score still counts for this follow-up")
