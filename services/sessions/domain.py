"""Sessions' pure rules about courses and the schedule (dose, vitals and discharge rules are in rules.py)."""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared.treatment import CourseStatus, Indication, Route


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CoursePlan(_Strict):
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


class PatientStanding(BaseModel):
    """What sessions knows of the patient, from intake's events."""

    known: bool
    active: bool
    eligible: bool
    screening_outcome: str | None
    consented: bool
    ever_consented: bool


def course_blockers(standing: PatientStanding) -> list[str]:
    """Why a course may not be planned. A course needs: screened eligible or approved on medical review,
    consent signed, and consent not withdrawn (issue: sessions, point 1)."""
    if not standing.known:
        return ["sessions has not learnt of this patient from intake yet (registration, screening and consent)"]
    blockers = []
    if not standing.active:
        blockers.append("the patient's record is deactivated")
    if not standing.eligible:
        blockers.append(
            {
                None: "the patient has not been screened",
                "needs_medical_review": "the screening needs a clinician's medical review, not yet approved",
                "ineligible": "the screening found an absolute contraindication",
            }.get(standing.screening_outcome, "the patient is not eligible: the medical review declined")
        )
    if not standing.consented:
        blockers.append("consent was withdrawn" if standing.ever_consented else "no signed consent")
    return blockers


# Which status a course may move to from which; on_hold comes back to active (or ends).
ALLOWED_TRANSITIONS: dict[CourseStatus, frozenset[CourseStatus]] = {
    CourseStatus.planned: frozenset({CourseStatus.active, CourseStatus.on_hold, CourseStatus.discontinued}),
    CourseStatus.active: frozenset({CourseStatus.on_hold, CourseStatus.completed, CourseStatus.discontinued}),
    CourseStatus.on_hold: frozenset({CourseStatus.active, CourseStatus.discontinued}),
    CourseStatus.completed: frozenset(),
    CourseStatus.discontinued: frozenset(),
}


class CourseStatusChange(_Strict):
    status: CourseStatus
    reason: str = Field(min_length=3, max_length=500)


class SessionBooking(_Strict):
    starts_at: AwareDatetime
    duration_minutes: int = Field(ge=30, le=480, description="room and staff are held for this long")
    room: str = Field(min_length=1, max_length=60)
    clinician: str = Field(min_length=1, max_length=200, description="the clinician's user id (sub)")
    therapist: str = Field(min_length=1, max_length=200, description="the therapist's user id (sub)")
    weekly_cap_override: str | None = Field(
        default=None,
        min_length=10,
        max_length=500,
        description="a clinician's reason to exceed the site's weekly cap of dosing sessions",
    )


class SessionOutcomeNote(_Strict):
    reason: str = Field(min_length=3, max_length=500)
