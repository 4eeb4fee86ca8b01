"""Billing learns from intake's and sessions' events: who the patient is and what coverage they have, which
courses they are on, which visits were scheduled (an estimate may be owed) and which were completed (a charge).
No one types a charge that the record already knows."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from services.billing.domain.codes import dosing_session_lines, intake_evaluation_lines, integration_session_lines
from services.billing.domain.ledger import ChargeSource
from services.billing.domain.pricing import SESSION_SERVICE, BillableService
from services.billing.domain.settings import BillingSettings
from services.billing.models import BillingCourse, BillingPatient
from services.billing.prior_treatment import on_prior_treatment_recorded
from services.billing.service import accounts, store
from services.billing.service import estimates as estimates
from shared.bus.consumer import Batched, Delivered, Handler
from shared.db.unit_of_work import UnitOfWork
from shared.events.envelope import CloudEvent
from shared.events.intake import PatientRegistered, PatientUpdated, PriorTreatmentRecorded, ScreeningCompleted
from shared.events.registry import DomainEvent
from shared.events.sessions import (
    CoursePlanned,
    CourseStatusChanged,
    IntegrationSessionCompleted,
    SessionCompleted,
    SessionScheduled,
)
from shared.instants import local_date, utcnow
from shared.treatment import CourseStatus


def handlers(settings: BillingSettings, zone_name: str) -> dict[type[DomainEvent], Handler]:
    """The handlers, bound to the site's billing settings and calendar (a visit's day is the site's day)."""
    from shared.instants import site_zone

    zone = site_zone(zone_name)

    async def on_patient(uow: UnitOfWork, event: DomainEvent, _: CloudEvent) -> None:
        assert isinstance(event, PatientRegistered | PatientUpdated)
        known = await uow.session.get(BillingPatient, event.patient_id)
        patient = known or BillingPatient(patient_id=event.patient_id, updated_at=utcnow())
        patient.given_name, patient.family_name = event.given_name, event.family_name
        patient.birth_date = event.birth_date
        coverage = event.coverage
        if coverage is not None:
            patient.self_pay, patient.payer = coverage.self_pay, coverage.payer
            patient.plan, patient.member_id = coverage.plan, coverage.member_id
        patient.updated_at = utcnow()
        uow.session.add(patient)
        # Intake's and sessions' topics are not ordered against each other: a course planned before the
        # registration arrived (catching up after downtime) has its coverage determined now.
        if known is None or (isinstance(event, PatientUpdated) and "coverage" in event.changed):
            await uow.session.flush()
            for course in await _open_courses(uow, event):
                await accounts.determine_coverage(uow, course, site_rems_certified=settings.rems_certified)

    async def on_course_planned(uow: UnitOfWork, event: DomainEvent, _: CloudEvent) -> None:
        assert isinstance(event, CoursePlanned)
        if await uow.session.get(BillingCourse, event.course_id) is not None:
            return
        course = BillingCourse(
            course_id=event.course_id,
            patient_id=event.patient_id,
            route=event.route.value,
            indication=event.indication.value,
            status=CourseStatus.planned.value,
            planned_at=event.planned_at,
        )
        uow.session.add(course)
        await uow.session.flush()
        if await uow.session.get(BillingPatient, event.patient_id) is not None:
            await accounts.determine_coverage(uow, course, site_rems_certified=settings.rems_certified)

    async def on_course_status(uow: UnitOfWork, event: DomainEvent, _: CloudEvent) -> None:
        assert isinstance(event, CourseStatusChanged)
        course = await uow.session.get(BillingCourse, event.course_id)
        if course is None:
            return
        course.status = event.status.value
        uow.session.add(course)
        if event.status is CourseStatus.on_hold:
            await accounts.barrier_on_hold(uow, course, zone)

    async def owe_estimates(uow: UnitOfWork, delivered: Sequence[Delivered]) -> None:
        bookings = []
        for event, envelope in delivered:
            assert isinstance(event, SessionScheduled)
            bookings.append(
                estimates.Booking(
                    patient_id=event.patient_id,
                    course_id=event.course_id,
                    session_id=event.session_id,
                    scheduled_on=local_date(envelope.time or utcnow(), zone),
                    service_on=local_date(event.starts_at, zone),
                )
            )
        await estimates.owe_estimates_if_self_pay(uow, bookings)

    async def charge_completed_visits(uow: UnitOfWork, delivered: Sequence[Delivered]) -> None:
        visits = [visit for event, _ in delivered if (visit := completed_visit(event, zone)) is not None]
        screened = {visit.patient_id for visit in visits if visit.source is ChargeSource.intake_evaluation}
        if screened:
            # A screening of a patient registered before billing listened: nothing to bill the evaluation to yet.
            known = await store.patients_by_id(uow, screened)
            visits = [v for v in visits if v.source is not ChargeSource.intake_evaluation or v.patient_id in known]
        await accounts.charge_visits(uow, visits, settings.fee_schedule)

    # Estimates owed and charges made neither read nor change each other's rows, so the consumer may gather each
    # from a stretch of the batch (shared/bus/consumer.py, handler_calls); what they read (patients, courses,
    # coverage) is written by the handlers that do not commute, which keep their place in the order.
    owe = Batched(owe_estimates, commutes=True)
    charge = Batched(charge_completed_visits, commutes=True)

    table: dict[type[DomainEvent], Handler] = {
        PatientRegistered: on_patient,
        PatientUpdated: on_patient,
        ScreeningCompleted: charge,
        PriorTreatmentRecorded: on_prior_treatment_recorded,
        CoursePlanned: on_course_planned,
        CourseStatusChanged: on_course_status,
        SessionScheduled: owe,
        SessionCompleted: charge,
        IntegrationSessionCompleted: charge,
    }
    return table


def completed_visit(event: DomainEvent, zone: ZoneInfo) -> accounts.CompletedVisit | None:
    """The visit an event says was completed, with the codes of its day; None for a dosing session without a dose
    (stopped before any was given: nothing to charge)."""
    if isinstance(event, ScreeningCompleted):
        screened_on = local_date(event.screened_at, zone)
        with_medical = bool(event.with_medical_services)
        return accounts.CompletedVisit(
            patient_id=event.patient_id,
            course_id=None,
            source=ChargeSource.intake_evaluation,
            source_id=event.screening_id,
            service=BillableService.intake_evaluation,
            service_on=screened_on,
            lines=lambda: intake_evaluation_lines(screened_on, with_medical),
        )
    if isinstance(event, SessionCompleted):
        dose_mg = event.dose_mg
        if dose_mg is None:
            return None
        discharged_on = local_date(event.discharged_at, zone)
        return accounts.CompletedVisit(
            patient_id=event.patient_id,
            course_id=event.course_id,
            source=ChargeSource.dosing_session,
            source_id=event.session_id,
            service=SESSION_SERVICE[event.route],
            service_on=discharged_on,
            lines=lambda: dosing_session_lines(
                event.route, discharged_on, dose_mg, event.infusion_minutes, event.psychotherapy_minutes
            ),
        )
    assert isinstance(event, IntegrationSessionCompleted)
    held_on = local_date(event.held_at, zone)
    return accounts.CompletedVisit(
        patient_id=event.patient_id,
        course_id=event.course_id,
        source=ChargeSource.integration_session,
        source_id=event.integration_session_id,
        service=BillableService.integration_therapy,
        service_on=held_on,
        lines=lambda: integration_session_lines(held_on, event.duration_minutes),
    )


async def _open_courses(uow: UnitOfWork, event: PatientRegistered | PatientUpdated) -> list[BillingCourse]:
    from sqlmodel import col, select

    rows = await uow.session.exec(
        select(BillingCourse).where(
            BillingCourse.patient_id == event.patient_id,
            col(BillingCourse.status).in_([CourseStatus.planned.value, CourseStatus.active.value]),
        )
    )
    return list(rows.all())
