"""Good Faith Estimates (45 CFR 149.610): owed when a self-pay patient's visit is scheduled or when they ask,
due by the business-day rules of domain/estimates.py, issued with the site's prices, and checked against what
was billed (the $400 rule)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from services.billing.domain.codes import ChargeLine, diagnosis_for, dosing_session_lines
from services.billing.domain.estimates import (
    EstimateItem,
    EstimateProvider,
    EstimateStatus,
    GoodFaithEstimate,
    Patient,
    ProviderExcess,
    dispute_eligible,
    estimate_due,
    estimate_status,
)
from services.billing.domain.ledger import Charge
from services.billing.domain.money import total
from services.billing.domain.pricing import SESSION_SERVICE, PriceNotSet, discounted, price_on
from services.billing.models import ChargeRow, EstimateRow
from services.billing.service import store
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.db.id_lists import IDS, one_of
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict, RecordNotFound
from shared.events.billing import EstimateIssued
from shared.instants import local_date, utcnow
from shared.treatment import Indication, Route

# What a typical session is estimated with: the usual 40-minute infusion ([Sanacora 2017]) and a full
# psychotherapy hour. The bill may differ; the $400 rule says by how much it may.
EXPECTED_INFUSION_MINUTES = 40
EXPECTED_PSYCHOTHERAPY_MINUTES = 53
EXPECTED_DOSE_MG: dict[Route, float] = {
    Route.iv_infusion: 40,
    Route.intramuscular: 30,
    Route.subcutaneous: 40,
    Route.sublingual_oral: 100,
    Route.intranasal_esketamine: 56,
}
ROUTE_WORDS: dict[Route, str] = {
    Route.iv_infusion: "ketamine infusion session with psychotherapy",
    Route.intramuscular: "intramuscular ketamine session with psychotherapy",
    Route.subcutaneous: "subcutaneous ketamine session with psychotherapy",
    Route.sublingual_oral: "supervised sublingual ketamine session with psychotherapy",
    Route.intranasal_esketamine: "esketamine (Spravato) session with psychotherapy",
}


@dataclass(frozen=True)
class Booking:
    """A session booked (a session.scheduled event): on which day it was booked, and for which day."""

    patient_id: uuid.UUID
    course_id: uuid.UUID
    session_id: uuid.UUID
    scheduled_on: date
    service_on: date


# The estimates already owed for a run of bookings, built once (shared/db/id_lists.py).
_OWED_SESSIONS = select(EstimateRow.session_id).where(one_of(EstimateRow.session_id))


async def owe_estimates_if_self_pay(uow: UnitOfWork, bookings: Sequence[Booking]) -> None:
    """From a run of session.scheduled events: a self-pay (or uninsured) patient is owed an estimate, due by the
    rules; fewer than 3 business days ahead, none is required. The patients and the estimates already owed are
    read with one query each for the run; a redelivered event finds its row."""
    if not bookings:
        return
    patients = await store.patients_by_id(uow, {booking.patient_id for booking in bookings})
    session_ids = {booking.session_id for booking in bookings}
    owed = set((await uow.session.exec(_OWED_SESSIONS, params={IDS: list(session_ids)})).all())
    for booking in bookings:
        patient = patients.get(booking.patient_id)
        if patient is None or not patient.self_pay:
            continue
        if booking.service_on < booking.scheduled_on:
            continue  # booked after the fact (sessions takes bookings up to a day back): the visit has passed
        due = estimate_due(booking.scheduled_on, booking.service_on)
        if booking.session_id in owed or due is None:
            continue
        owed.add(booking.session_id)  # a second event of the same booking in this run
        uow.session.add(
            EstimateRow(
                id=uuid.uuid4(),
                patient_id=booking.patient_id,
                course_id=booking.course_id,
                session_id=booking.session_id,
                scheduled_on=booking.scheduled_on,
                service_on=booking.service_on,
                due_on=due,
            )
        )


async def request_estimate(
    uow: UnitOfWork,
    actor: Actor,
    patient_id: uuid.UUID,
    course_id: uuid.UUID,
    service_on: date | None,
    zone: ZoneInfo,
) -> EstimateRow:
    """The patient asks for an estimate: due within 3 business days of the request."""
    await store.patient_or_404(uow, patient_id)
    course = await store.course_or_404(uow, course_id)
    if course.patient_id != patient_id:
        raise RecordNotFound("course")
    today = local_date(utcnow(), zone)
    row = EstimateRow(
        id=uuid.uuid4(),
        patient_id=patient_id,
        course_id=course_id,
        requested_on=today,
        service_on=service_on,
        due_on=estimate_due(None, None, today),
    )
    uow.session.add(row)
    record_access(uow, actor, "estimate.request", patient_id, f"estimates/{row.id}")
    await uow.commit()
    return row


async def issue_estimate(
    uow: UnitOfWork, actor: Actor, estimate_id: uuid.UUID, provider: EstimateProvider | None, zone: ZoneInfo
) -> EstimateRow:
    row = await estimate_or_404(uow, estimate_id)
    if row.issued_at is not None:
        raise Conflict("the estimate was already issued")
    if provider is None:
        raise Conflict("the site's billing provider (name, NPI, TIN, location) is not set: KAPNET_BILLING_RULES")
    patient = await store.patient_or_404(uow, row.patient_id)
    if patient.birth_date is None or not (patient.given_name or patient.family_name):
        raise Conflict("billing does not know the patient's name and date of birth yet (from intake's events)")
    course = await store.course_or_404(uow, row.course_id) if row.course_id else None
    if course is None:
        raise Conflict("an estimate is for a course")
    route, indication = Route(course.route), Indication(course.indication)
    day = row.service_on or local_date(utcnow(), zone)
    lines: list[ChargeLine] = dosing_session_lines(
        route,
        day,
        EXPECTED_DOSE_MG[route],
        EXPECTED_INFUSION_MINUTES if route is Route.iv_infusion else None,
        EXPECTED_PSYCHOTHERAPY_MINUTES,
    )
    service = SESSION_SERVICE[route]
    try:
        price = discounted(
            price_on(await store.prices(uow, service), service, day), await store.assistance_of(uow, row.patient_id)
        )
    except PriceNotSet as exc:
        raise Conflict(str(exc)) from None
    diagnoses = () if indication is Indication.other else (diagnosis_for(indication, day).code,)
    estimate = GoodFaithEstimate(
        patient=Patient(
            name=" ".join(n for n in (patient.given_name, patient.family_name) if n), date_of_birth=patient.birth_date
        ),
        primary_service=ROUTE_WORDS[route],
        scheduled_for=row.service_on,
        providers=(provider,),
        items=(
            EstimateItem(
                service_code=lines[0].code.code,
                description="; ".join(f"{line.code.code} {line.code.description}" for line in lines),
                quantity=1,
                expected_charge=price,
                provider_npi=provider.npi,
                diagnosis_codes=diagnoses,
            ),
        ),
    )
    now = utcnow()
    row.document, row.issued_at = estimate.model_dump(mode="json"), now
    uow.session.add(row)
    await uow.publish(
        EstimateIssued(
            patient_id=row.patient_id,
            estimate_id=row.id,
            course_id=row.course_id,
            total_cents=estimate.total.cents,
            currency="USD",
            service_on=row.service_on,
            issued_at=now,
        )
    )
    record_access(uow, actor, "estimate.issue", row.patient_id, f"estimates/{row.id}")
    await uow.commit()
    return row


async def estimate_or_404(uow: UnitOfWork, estimate_id: uuid.UUID) -> EstimateRow:
    row = await uow.session.get(EstimateRow, estimate_id)
    if row is None:
        raise RecordNotFound("estimate")
    return row


@dataclass(frozen=True)
class EstimateView:
    row: EstimateRow
    status: EstimateStatus
    document: GoodFaithEstimate | None
    dispute: list[ProviderExcess]


async def view(uow: UnitOfWork, row: EstimateRow, zone: ZoneInfo) -> EstimateView:
    today = local_date(utcnow(), zone)
    document = GoodFaithEstimate.model_validate(row.document) if row.document else None
    dispute: list[ProviderExcess] = []
    if document is not None and row.session_id is not None:
        charges = (await uow.session.exec(select(ChargeRow).where(ChargeRow.source_id == row.session_id))).all()
        if charges:
            billed = total([Charge.model_validate(c.document).amount for c in charges])
            # The site is the one provider on its estimates: what it billed for the visit against its estimate.
            dispute = dispute_eligible(document, {p.npi: billed for p in document.providers})
    issued_on = local_date(row.issued_at, zone) if row.issued_at else None
    status = estimate_status(row.due_on, issued_on, today)
    return EstimateView(row, status, document, dispute)


async def read_estimate(uow: UnitOfWork, actor: Actor, estimate_id: uuid.UUID, zone: ZoneInfo) -> EstimateView:
    row = await estimate_or_404(uow, estimate_id)
    found = await view(uow, row, zone)
    record_access(uow, actor, "estimate.read", row.patient_id, f"estimates/{row.id}")
    await uow.commit()
    return found


async def estimates_owed(
    uow: UnitOfWork, actor: Actor, wanted: set[EstimateStatus], zone: ZoneInfo
) -> list[EstimateView]:
    """The estimates not yet issued that are due or overdue, the soonest due first."""
    rows = await uow.session.exec(
        select(EstimateRow).where(col(EstimateRow.issued_at).is_(None)).order_by(col(EstimateRow.due_on))
    )
    found = [v for v in [await view(uow, r, zone) for r in rows.all()] if v.status in wanted]
    for v in found:
        record_access(uow, actor, "estimate.list", v.row.patient_id, f"estimates/{v.row.id}")
    await uow.commit()
    return found
