"""Events sessions publishes on its site topic."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

from shared.auth.permissions import Permission
from shared.events.intake import AssessmentRecorded, AssessmentRecordedV1, SafetyFlagAcknowledged, SafetyFlagRaised
from shared.events.registry import PatientEvent, registered
from shared.treatment import (
    AdverseEventSeverity,
    AdverseEventType,
    CourseStatus,
    Indication,
    Route,
    VitalsAlertCode,
)


class _SessionsEvent(PatientEvent):
    producer = "sessions"


@registered
class CoursePlanned(_SessionsEvent):
    name = "course.planned"
    audience = Permission.course_read
    summary = "A treatment course was planned for an eligible, consented patient."

    course_id: uuid.UUID
    indication: Indication
    route: Route
    planned_dosing_sessions: int
    dosing_sessions_per_week: int
    planned_integration_sessions: int
    prescriber: str
    planned_at: datetime


@registered
class CourseStatusChanged(_SessionsEvent):
    name = "course.status_changed"
    audience = Permission.course_read
    summary = "A course moved to another status (e.g. on hold after a consent withdrawal)."

    course_id: uuid.UUID
    previous_status: CourseStatus
    status: CourseStatus
    reason: str | None = None
    changed_at: datetime


@registered
class SessionScheduled(_SessionsEvent):
    name = "session.scheduled"
    audience = Permission.session_read
    summary = "A dosing session was scheduled."

    session_id: uuid.UUID
    course_id: uuid.UUID
    route: Route
    starts_at: datetime
    ends_at: datetime
    weekly_cap_overridden: bool


@registered
class SessionCancelled(_SessionsEvent):
    name = "session.cancelled"
    audience = Permission.session_read
    summary = "A scheduled dosing session was cancelled, with the reason."

    session_id: uuid.UUID
    course_id: uuid.UUID
    reason: str
    cancelled_at: datetime


@registered
class SessionNoShow(_SessionsEvent):
    name = "session.no_show"
    audience = Permission.session_read
    summary = "The patient did not come to a scheduled dosing session."

    session_id: uuid.UUID
    course_id: uuid.UUID
    reason: str
    recorded_at: datetime


@registered
class DoseAdministered(_SessionsEvent):
    name = "dose.administered"
    audience = Permission.session_record_read
    summary = "A dose was given: route, mg and mg/kg, and any clinician override of the dose range."

    session_id: uuid.UUID
    course_id: uuid.UUID
    route: Route
    dose_mg: float
    dose_mg_per_kg: float
    within_range: bool
    override_reason: str | None = None
    administered_at: datetime


@registered
class VitalsAlertRaised(_SessionsEvent):
    name = "vitals.alert_raised"
    audience = Permission.session_record_read
    summary = "A vital sign crossed an alert threshold during a session."

    session_id: uuid.UUID
    code: VitalsAlertCode
    value: int
    threshold: int
    message: str
    taken_at: datetime


@registered
class AdverseEventReported(_SessionsEvent):
    name = "adverse_event.reported"
    audience = Permission.session_record_read
    summary = "An adverse event during a session, with severity, action taken, and whether it is serious."

    session_id: uuid.UUID
    adverse_event_id: uuid.UUID
    type: AdverseEventType
    severity: AdverseEventSeverity
    serious: bool
    action_taken: str
    occurred_at: datetime


@registered
class SessionCompleted(_SessionsEvent):
    name = "session.completed"
    # The desk and billing learn that a session happened, by which route and for how long (what a charge needs);
    # the dose, the dissociation score and the therapy given are the clinical record's.
    audience = Permission.session_read
    restricted: ClassVar[Mapping[str, Permission]] = {
        "dose_mg": Permission.session_record_read,
        "dose_mg_per_kg": Permission.session_record_read,
        "dissociation_score": Permission.session_record_read,
        "dissociation_scale": Permission.session_record_read,
        "modalities": Permission.session_record_read,
    }
    summary = "A dosing session ended with discharge: route, dose, observation minutes, modalities, dissociation."

    session_id: uuid.UUID
    course_id: uuid.UUID
    route: Route
    dose_mg: float | None
    dose_mg_per_kg: float | None
    observation_minutes: int
    modalities: list[str]
    dissociation_score: int | None = None
    dissociation_scale: str | None = None
    discharged_at: datetime
    # Added with billing (CPT 96365/96366 and the psychotherapy time bands); None in events written before.
    infusion_minutes: int | None = None
    psychotherapy_minutes: int | None = None


# Measures during the course: the same shapes as intake's, published on sessions' topic.
@registered
class InCourseAssessmentRecordedV1(AssessmentRecordedV1):
    producer = "sessions"
    summary = "A measure taken during the course was scored. Superseded by v2."

    def upgraded(self) -> InCourseAssessmentRecorded:
        return InCourseAssessmentRecorded(**super().upgraded().model_dump())


@registered
class InCourseAssessmentRecorded(AssessmentRecorded):
    producer = "sessions"
    summary = "A PHQ-9, GAD-7 or PCL-5 taken during the course was scored (totals, not item answers)."


@registered
class InCourseSafetyFlagRaised(SafetyFlagRaised):
    producer = "sessions"


@registered
class InCourseSafetyFlagAcknowledged(SafetyFlagAcknowledged):
    producer = "sessions"


@registered
class IntegrationSessionCompleted(_SessionsEvent):
    name = "integration_session.completed"
    audience = Permission.session_read
    restricted: ClassVar[Mapping[str, Permission]] = {"modality": Permission.session_record_read}
    summary = "A non-dosing integration psychotherapy session was held."

    integration_session_id: uuid.UUID
    course_id: uuid.UUID
    modality: str
    duration_minutes: int
    held_at: datetime
