"""A treatment course: the plan a clinician makes (indication, route, how many sessions) and its status.

Each change is a method that checks the rules and returns the events to publish; the service loads, calls,
publishes, audits and commits.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.sessions.domain.eligibility import PatientStanding, treatment_blockers
from services.sessions.domain.settings import SessionRuleSettings
from services.sessions.domain.staff import Staff
from shared.errors import Conflict
from shared.events.registry import DomainEvent
from shared.events.sessions import CoursePlanned, CourseStatusChanged
from shared.treatment import OPEN_COURSE_STATUSES, CourseStatus, Indication, Route

# Which status a course may move to from which; on_hold comes back to active (or ends).
COURSE_TRANSITIONS: dict[CourseStatus, frozenset[CourseStatus]] = {
    CourseStatus.planned: frozenset({CourseStatus.active, CourseStatus.on_hold, CourseStatus.discontinued}),
    CourseStatus.active: frozenset({CourseStatus.on_hold, CourseStatus.completed, CourseStatus.discontinued}),
    CourseStatus.on_hold: frozenset({CourseStatus.active, CourseStatus.discontinued}),
    CourseStatus.completed: frozenset(),
    CourseStatus.discontinued: frozenset(),
}


class CourseNotAllowed(Conflict):
    """The patient may not start (or resume) treatment now; the message says why."""


class CoursePlan(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    patient_id: uuid.UUID
    indication: Indication
    indication_other: str | None = Field(default=None, min_length=3, max_length=200)
    route: Route
    planned_dosing_sessions: int = Field(ge=1, le=52)
    dosing_sessions_per_week: int = Field(ge=1, le=7)
    planned_integration_sessions: int = Field(ge=0, le=104)

    @model_validator(mode="after")
    def _other_needs_words(self) -> CoursePlan:
        if self.indication is Indication.other and not self.indication_other:
            raise ValueError("indication_other: say what the indication is when it is 'other'")
        if self.indication is not Indication.other and self.indication_other:
            raise ValueError("indication_other is only for indication 'other'")
        return self


class TreatmentCourse(BaseModel):
    model_config = ConfigDict(validate_assignment=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    indication: Indication
    indication_other: str | None
    route: Route
    planned_dosing_sessions: int
    dosing_sessions_per_week: int
    planned_integration_sessions: int
    prescriber: str
    prescriber_name: str
    status: CourseStatus
    status_reason: str | None
    planned_at: datetime
    status_changed_at: datetime

    @classmethod
    def plan(
        cls, plan: CoursePlan, by: Staff, standing: PatientStanding, now: datetime, settings: SessionRuleSettings
    ) -> tuple[TreatmentCourse, list[DomainEvent]]:
        blockers = treatment_blockers(standing, now, settings)
        if blockers:
            raise CourseNotAllowed("a course cannot be planned: " + "; ".join(blockers))
        course = cls(
            id=uuid.uuid4(),
            **plan.model_dump(),
            prescriber=by.sub,
            prescriber_name=by.name,
            status=CourseStatus.planned,
            status_reason=None,
            planned_at=now,
            status_changed_at=now,
        )
        planned = CoursePlanned(
            patient_id=course.patient_id,
            course_id=course.id,
            indication=course.indication,
            route=course.route,
            planned_dosing_sessions=course.planned_dosing_sessions,
            dosing_sessions_per_week=course.dosing_sessions_per_week,
            planned_integration_sessions=course.planned_integration_sessions,
            prescriber=by.sub,
            planned_at=now,
        )
        return course, [planned]

    @property
    def is_open(self) -> bool:
        """Sessions may be booked and doses given."""
        return self.status in OPEN_COURSE_STATUSES

    def change_status(
        self,
        status: CourseStatus,
        reason: str,
        standing: PatientStanding,
        now: datetime,
        settings: SessionRuleSettings,
    ) -> list[DomainEvent]:
        """A clinician's change: only along COURSE_TRANSITIONS, and a course resumes only if treatment may."""
        if status not in COURSE_TRANSITIONS[self.status]:
            raise Conflict(f"a course that is {self.status.value} cannot become {status.value}")
        if status is CourseStatus.active:
            blockers = treatment_blockers(standing, now, settings)
            if blockers:
                raise CourseNotAllowed("the course cannot resume: " + "; ".join(blockers))
        return self._move(status, reason, now)

    def hold(self, reason: str, now: datetime) -> list[DomainEvent]:
        """An open course is held when treatment may no longer go on (consent withdrawn, record deactivated)."""
        return self._move(CourseStatus.on_hold, reason, now) if self.is_open else []

    def first_dose_given(self, now: datetime) -> list[DomainEvent]:
        return self._move(CourseStatus.active, "first dose given", now) if self.status is CourseStatus.planned else []

    def _move(self, status: CourseStatus, reason: str | None, now: datetime) -> list[DomainEvent]:
        previous = self.status
        self.status, self.status_reason, self.status_changed_at = status, reason, now
        return [
            CourseStatusChanged(
                patient_id=self.patient_id,
                course_id=self.id,
                previous_status=previous,
                status=status,
                reason=reason,
                changed_at=now,
            )
        ]
