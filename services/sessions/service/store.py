"""Where sessions' aggregates are loaded from and saved to: rows in, typed aggregates out, and back.

Nothing else reads a row's JSON record: the aggregate does, typed. The patient's facts a change is checked
against (standing, dose and weight history) are loaded here too, so every use case loads them the same way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, func, select

from services.sessions.domain.course import TreatmentCourse
from services.sessions.domain.dosing import RecordedWeight
from services.sessions.domain.eligibility import PatientStanding, ScreeningOutcome
from services.sessions.domain.rems import RemsMonitoringForm
from services.sessions.domain.session_record import (
    ACTIVE_SESSION_STATUSES,
    BookedSlot,
    DosingContext,
    DosingSessionChart,
    EarlierDose,
    SessionRecord,
    SessionStatus,
)
from services.sessions.domain.settings import SessionRuleSettings
from services.sessions.domain.staff import Staff
from services.sessions.models import ConsentRecord, Course, DosingSession, PatientSafetyFlag, PatientStatus
from shared.auth.guard import Actor
from shared.auth.permissions import Role
from shared.db.unit_of_work import UnitOfWork
from shared.errors import RecordNotFound
from shared.measures.models import SafetyFlag, SafetyFlagStatus
from shared.treatment import CourseStatus, Indication, Route


def staff(actor: Actor) -> Staff:
    return Staff(sub=actor.sub, name=actor.principal.name, clinician=Role.clinician in actor.principal.roles)


# --- the patient ------------------------------------------------------------------------------------------------


async def standing_of(uow: UnitOfWork, patient_id: uuid.UUID) -> PatientStanding:
    status = await uow.session.get(PatientStatus, patient_id)
    consents = (await uow.session.exec(select(ConsentRecord).where(ConsentRecord.patient_id == patient_id))).all()
    from_intake = await uow.session.exec(
        select(func.count())
        .select_from(PatientSafetyFlag)
        .where(PatientSafetyFlag.patient_id == patient_id, col(PatientSafetyFlag.acknowledged_at).is_(None))
    )
    own = await uow.session.exec(
        select(func.count())
        .select_from(SafetyFlag)
        .where(SafetyFlag.patient_id == patient_id, SafetyFlag.status == SafetyFlagStatus.open)
    )
    return PatientStanding(
        known=status is not None,
        active=bool(status and status.active),
        eligible=bool(status and status.eligible),
        screening_outcome=ScreeningOutcome(status.screening_outcome) if status and status.screening_outcome else None,
        screened_at=status.latest_screening_at if status else None,
        consented=any(c.withdrawn_at is None for c in consents),
        ever_consented=bool(consents),
        open_safety_flags=int(from_intake.one()) + int(own.one()),
    )


async def known_patient_or_404(uow: UnitOfWork, patient_id: uuid.UUID) -> PatientStatus:
    status = await uow.session.get(PatientStatus, patient_id)
    if status is None:
        raise RecordNotFound("patient")
    return status


# --- courses ----------------------------------------------------------------------------------------------------


@dataclass
class LoadedCourse:
    row: Course
    course: TreatmentCourse


def course_of(row: Course) -> TreatmentCourse:
    return TreatmentCourse(
        id=row.id,
        patient_id=row.patient_id,
        indication=Indication(row.indication),
        indication_other=row.indication_other,
        route=Route(row.route),
        planned_dosing_sessions=row.planned_dosing_sessions,
        dosing_sessions_per_week=row.dosing_sessions_per_week,
        planned_integration_sessions=row.planned_integration_sessions,
        prescriber=row.prescriber,
        prescriber_name=row.prescriber_name,
        status=CourseStatus(row.status),
        status_reason=row.status_reason,
        planned_at=row.planned_at,
        status_changed_at=row.status_changed_at,
    )


async def load_course(uow: UnitOfWork, course_id: uuid.UUID) -> LoadedCourse:
    row = await uow.session.get(Course, course_id)
    if row is None:
        raise RecordNotFound("course")
    return LoadedCourse(row, course_of(row))


def save_course(uow: UnitOfWork, loaded: LoadedCourse) -> Course:
    course, row = loaded.course, loaded.row
    row.status, row.status_reason, row.status_changed_at = (
        course.status.value,
        course.status_reason,
        course.status_changed_at,
    )
    uow.session.add(row)
    return row


def new_course_row(course: TreatmentCourse) -> Course:
    return Course(
        id=course.id,
        patient_id=course.patient_id,
        indication=course.indication.value,
        indication_other=course.indication_other,
        route=course.route.value,
        planned_dosing_sessions=course.planned_dosing_sessions,
        dosing_sessions_per_week=course.dosing_sessions_per_week,
        planned_integration_sessions=course.planned_integration_sessions,
        prescriber=course.prescriber,
        prescriber_name=course.prescriber_name,
        status=course.status.value,
        status_reason=course.status_reason,
        planned_at=course.planned_at,
        status_changed_at=course.status_changed_at,
    )


async def open_courses_of(uow: UnitOfWork, patient_id: uuid.UUID) -> list[LoadedCourse]:
    rows = await uow.session.exec(
        select(Course).where(
            Course.patient_id == patient_id,
            col(Course.status).in_([CourseStatus.planned.value, CourseStatus.active.value]),
        )
    )
    return [LoadedCourse(row, course_of(row)) for row in rows.all()]


# --- dosing sessions --------------------------------------------------------------------------------------------


@dataclass
class LoadedChart:
    row: DosingSession
    chart: DosingSessionChart
    course: LoadedCourse


def chart_of(row: DosingSession, course: Course) -> DosingSessionChart:
    return DosingSessionChart(
        id=row.id,
        course_id=row.course_id,
        patient_id=row.patient_id,
        route=Route(course.route),
        indication=Indication(course.indication),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        room=row.room,
        clinician=row.clinician,
        therapist=row.therapist,
        status=SessionStatus(row.status),
        status_reason=row.status_reason,
        weekly_cap_override=row.weekly_cap_override,
        record=SessionRecord.model_validate(row.record),
        signed_at=row.signed_at,
        signed_by=row.signed_by,
        rems_form=RemsMonitoringForm.model_validate(row.rems_form) if row.rems_form else None,
        rems_submitted_at=row.rems_submitted_at,
    )


def loaded_chart(row: DosingSession, course: Course) -> LoadedChart:
    """A session read together with its course (one query joined them)."""
    return LoadedChart(row, chart_of(row, course), LoadedCourse(course, course_of(course)))


async def session_row_or_404(uow: UnitOfWork, session_id: uuid.UUID) -> DosingSession:
    row = await uow.session.get(DosingSession, session_id)
    if row is None:
        raise RecordNotFound("session")
    return row


async def load_chart(uow: UnitOfWork, session_id: uuid.UUID) -> LoadedChart:
    row = await session_row_or_404(uow, session_id)
    course = await load_course(uow, row.course_id)
    return LoadedChart(row, chart_of(row, course.row), course)


def new_session_row(chart: DosingSessionChart) -> DosingSession:
    row = DosingSession(
        id=chart.id,
        course_id=chart.course_id,
        patient_id=chart.patient_id,
        starts_at=chart.starts_at,
        ends_at=chart.ends_at,
        room=chart.room,
        clinician=chart.clinician,
        therapist=chart.therapist,
        status=chart.status.value,
    )
    _copy_into(row, chart)
    return row


def save_chart(uow: UnitOfWork, loaded: LoadedChart) -> DosingSession:
    _copy_into(loaded.row, loaded.chart)
    uow.session.add(loaded.row)
    return loaded.row


def _copy_into(row: DosingSession, chart: DosingSessionChart) -> None:
    record = chart.record
    row.status, row.status_reason = chart.status.value, chart.status_reason
    row.weekly_cap_override = chart.weekly_cap_override
    # A new dict each time, so SQLAlchemy sees the JSON column change.
    row.record = record.model_dump(mode="json")
    row.signed_at, row.signed_by = chart.signed_at, chart.signed_by
    row.rems_form = chart.rems_form.model_dump(mode="json") if chart.rems_form else None
    row.rems_submitted_at = chart.rems_submitted_at
    row.dose_route = record.dose.route.value if record.dose else None
    row.dosed_at = record.dose.administration_start if record.dose else None
    row.weight_kg = record.pre_dose.weight_kg if record.pre_dose else None
    row.weighed_at = record.pre_dose.recorded_at if record.pre_dose else None


async def dosing_context(uow: UnitOfWork, loaded: LoadedChart) -> DosingContext:
    """The patient's standing, birth date, last weight and other doses, from sessions' own tables."""
    chart = loaded.chart
    status = await uow.session.get(PatientStatus, chart.patient_id)
    others = await uow.session.exec(
        select(DosingSession).where(
            DosingSession.patient_id == chart.patient_id,
            DosingSession.id != chart.id,
            col(DosingSession.dosed_at).is_not(None),
        )
    )
    last_weighed = await uow.session.exec(
        select(DosingSession)
        .where(
            DosingSession.patient_id == chart.patient_id,
            DosingSession.id != chart.id,
            col(DosingSession.weighed_at).is_not(None),
        )
        .order_by(col(DosingSession.weighed_at).desc())
        .limit(1)
    )
    weighed = last_weighed.first()
    return DosingContext(
        standing=await standing_of(uow, chart.patient_id),
        course_status=loaded.course.course.status,
        birth_date=status.birth_date if status else None,
        last_weight=(
            RecordedWeight(kg=weighed.weight_kg, weighed_at=weighed.weighed_at)
            if weighed and weighed.weight_kg is not None and weighed.weighed_at is not None
            else None
        ),
        earlier_doses=[
            EarlierDose(session_id=row.id, route=Route(row.dose_route), at=row.dosed_at)
            for row in others.all()
            if row.dose_route is not None and row.dosed_at is not None
        ],
    )


async def bookings_near(
    uow: UnitOfWork, patient_id: uuid.UUID, moment: datetime, rules: SessionRuleSettings
) -> list[BookedSlot]:
    """Active bookings that a new one at ``moment`` could clash with or count against: anyone's within a day
    either side (a booking lasts at most 8 hours), and the patient's own within the week and the minimum
    interval either side. The rules themselves are the domain's; this only bounds what is read."""
    reach = max(timedelta(days=8), timedelta(hours=rules.min_hours_between_dosing_sessions))
    active = [s.value for s in ACTIVE_SESSION_STATUSES]
    rows = await uow.session.exec(
        select(DosingSession).where(
            col(DosingSession.status).in_(active),
            col(DosingSession.starts_at) >= moment - reach,
            col(DosingSession.starts_at) <= moment + reach,
        )
    )
    day = timedelta(days=1)
    return [
        BookedSlot(
            id=row.id,
            patient_id=row.patient_id,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            room=row.room,
            clinician=row.clinician,
            therapist=row.therapist,
        )
        for row in rows.all()
        if row.patient_id == patient_id or abs(row.starts_at - moment) <= day
    ]
