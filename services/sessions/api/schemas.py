"""Sessions' request and response shapes. Requests that the domain takes as they are (a pre-dose check, a dose)
are the domain's own entry models; what is here is what only the API needs."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.sessions.domain.course import TreatmentCourse
from services.sessions.domain.rems import RemsMonitoringForm, RemsStatus
from services.sessions.domain.session_record import Modality, SessionRecord, SessionStatus
from services.sessions.domain.vitals import VitalsAlert
from services.sessions.models import Course, IntegrationSession
from services.sessions.service.store import LoadedChart, course_of
from shared.instants import UtcInstant
from shared.treatment import CourseStatus, Route


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CourseStatusChange(_Request):
    status: CourseStatus
    reason: str = Field(min_length=3, max_length=500)


class SessionOutcomeNote(_Request):
    reason: str = Field(min_length=3, max_length=500)


class IntegrationSessionEntry(_Request):
    held_at: UtcInstant
    modality: Modality
    other_modality: str | None = Field(default=None, max_length=60)
    notes: str = Field(min_length=1, max_length=20000)
    duration_minutes: int = Field(ge=10, le=240)


def course_read(row: Course) -> TreatmentCourse:
    """A course as the API shows it: the aggregate itself."""
    return course_of(row)


class SessionSlot(BaseModel):
    """A booked dosing session as the schedule sees it: when, where, who, and whether it happened."""

    id: uuid.UUID
    course_id: uuid.UUID
    patient_id: uuid.UUID
    route: Route
    starts_at: datetime
    ends_at: datetime
    room: str
    clinician: str
    therapist: str
    status: SessionStatus
    status_reason: str | None
    weekly_cap_override: str | None

    @classmethod
    def of(cls, loaded: LoadedChart) -> SessionSlot:
        return cls.model_validate(loaded.chart, from_attributes=True)


class SessionRead(SessionSlot):
    """The session with its clinical record: for clinicians and therapists."""

    record: SessionRecord
    signed_at: datetime | None
    signed_by: str | None
    rems_form: RemsMonitoringForm | None = None
    rems_submitted_at: datetime | None = None

    @classmethod
    def of(cls, loaded: LoadedChart) -> SessionRead:
        return cls.model_validate(loaded.chart, from_attributes=True)


class VitalsReply(BaseModel):
    session: SessionRead
    alerts: list[VitalsAlert]


class IntegrationSessionRead(BaseModel):
    id: uuid.UUID
    course_id: uuid.UUID
    patient_id: uuid.UUID
    held_at: datetime
    modality: str
    notes: str
    duration_minutes: int
    therapist: str

    @classmethod
    def of(cls, row: IntegrationSession) -> IntegrationSessionRead:
        return cls.model_validate(row, from_attributes=True)


class RemsFormStatus(BaseModel):
    session_id: uuid.UUID
    patient_id: uuid.UUID
    discharged_at: datetime
    deadline: str
    status: RemsStatus
    form: RemsMonitoringForm | None
