"""Where billing's aggregates are loaded from and saved to: rows in, typed domain models out, and back."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select

from services.billing.domain.barriers import AccessBarrier
from services.billing.domain.claims import Claim, ClaimStatus
from services.billing.domain.coverage import CoverageDetermination, CoverageOnFile, PayerType, PlanBenefits
from services.billing.domain.ledger import Account, Charge, ClaimResponsibility, Invoice, Payment, PaymentPlan, Refund
from services.billing.domain.money import Money
from services.billing.domain.pricing import BillableService, FinancialAssistance, Price
from services.billing.domain.prior_auth import PriorAuthorisation
from services.billing.models import (
    AssistanceRow,
    BarrierRow,
    BillingCourse,
    BillingPatient,
    ChargeRow,
    ClaimRow,
    CoverageRow,
    LedgerEntryRow,
    PlanBenefitsRow,
    PriceRow,
    PriorAuthRow,
)
from shared.db.id_lists import IDS, one_of
from shared.db.unit_of_work import UnitOfWork
from shared.errors import RecordNotFound

# The consumer's lookups for a run of events, built once (shared/db/id_lists.py): each call binds its ids.
_ASSISTANCES_OF = select(AssistanceRow).where(one_of(AssistanceRow.patient_id))
_COVERAGES_OF = select(CoverageRow).where(one_of(CoverageRow.course_id))
_COURSES_BY_ID = select(BillingCourse).where(one_of(BillingCourse.course_id))
_PATIENTS_BY_ID = select(BillingPatient).where(one_of(BillingPatient.patient_id))
_PRIOR_AUTHS_OF_COURSES = select(PriorAuthRow).where(one_of(PriorAuthRow.course_id))
_CHARGED_SOURCES = select(ChargeRow.source_id).where(one_of(ChargeRow.source_id))

LEDGER_KINDS: dict[type[BaseModel], str] = {
    Invoice: "invoice",
    Payment: "payment",
    Refund: "refund",
    PaymentPlan: "plan",
}


async def patient_or_404(uow: UnitOfWork, patient_id: uuid.UUID) -> BillingPatient:
    patient = await uow.session.get(BillingPatient, patient_id)
    if patient is None:
        raise RecordNotFound("patient")
    return patient


def coverage_on_file(patient: BillingPatient) -> CoverageOnFile:
    return CoverageOnFile(
        self_pay=patient.self_pay, payer=patient.payer, plan=patient.plan, member_id=patient.member_id
    )


async def course_or_404(uow: UnitOfWork, course_id: uuid.UUID) -> BillingCourse:
    course = await uow.session.get(BillingCourse, course_id)
    if course is None:
        raise RecordNotFound("course")
    return course


async def plan_benefits(uow: UnitOfWork, payer: str | None, plan: str | None) -> PlanBenefits | None:
    if not payer or not plan:
        return None
    row = (
        await uow.session.exec(
            select(PlanBenefitsRow).where(PlanBenefitsRow.payer == payer, PlanBenefitsRow.plan == plan)
        )
    ).first()
    return benefits_of(row) if row else None


def benefits_of(row: PlanBenefitsRow) -> PlanBenefits:
    return PlanBenefits(
        payer=row.payer,
        plan=row.plan,
        payer_type=PayerType(row.payer_type),
        covers_esketamine_with_prior_auth=row.covers_esketamine_with_prior_auth,
        covers_off_label_ketamine=row.covers_off_label_ketamine,
        covers_psychotherapy=row.covers_psychotherapy,
    )


async def prices(uow: UnitOfWork, service: BillableService | None = None) -> list[Price]:
    query = select(PriceRow).order_by(col(PriceRow.service), col(PriceRow.valid_from))
    if service is not None:
        query = query.where(PriceRow.service == service.value)
    return [
        Price(
            service=BillableService(row.service),
            amount=Money(cents=row.amount_cents, currency=row.currency),
            valid_from=row.valid_from,
            valid_to=row.valid_to,
        )
        for row in (await uow.session.exec(query)).all()
    ]


async def assistance_of(uow: UnitOfWork, patient_id: uuid.UUID) -> FinancialAssistance | None:
    return (await assistances_of(uow, [patient_id])).get(patient_id)


async def assistances_of(uow: UnitOfWork, patient_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, FinancialAssistance]:
    """The patients' latest sliding-scale assessments, by patient, in one query (those assessed)."""
    if not patient_ids:
        return {}
    rows = await uow.session.exec(_ASSISTANCES_OF, params={IDS: list(patient_ids)})
    return {
        row.patient_id: FinancialAssistance(
            household_size=row.household_size,
            household_income=Money(cents=row.household_income_cents),
            percent_of_guideline=row.percent_of_guideline,
            discount_percent=row.discount_percent,
        )
        for row in rows.all()
    }


async def coverage_of(uow: UnitOfWork, course_id: uuid.UUID) -> CoverageDetermination | None:
    return (await coverages_of(uow, [course_id])).get(course_id)


async def coverages_of(uow: UnitOfWork, course_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, CoverageDetermination]:
    """The courses' latest coverage determinations, by course, in one query (those determined)."""
    if not course_ids:
        return {}
    rows = await uow.session.exec(_COVERAGES_OF, params={IDS: list(course_ids)})
    return {row.course_id: CoverageDetermination.model_validate(row.determination) for row in rows.all()}


async def courses_by_id(uow: UnitOfWork, course_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, BillingCourse]:
    if not course_ids:
        return {}
    rows = await uow.session.exec(_COURSES_BY_ID, params={IDS: list(course_ids)})
    return {row.course_id: row for row in rows.all()}


async def patients_by_id(uow: UnitOfWork, patient_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, BillingPatient]:
    if not patient_ids:
        return {}
    rows = await uow.session.exec(_PATIENTS_BY_ID, params={IDS: list(patient_ids)})
    return {row.patient_id: row for row in rows.all()}


def save_coverage(
    uow: UnitOfWork,
    row: CoverageRow | None,
    course: BillingCourse,
    determination: CoverageDetermination,
    payer_type: str,
    now: datetime,
) -> None:
    row = row or CoverageRow(
        course_id=course.course_id, patient_id=course.patient_id, determination={}, payer_type="", determined_at=now
    )
    row.determination = determination.model_dump(mode="json")
    row.payer_type, row.determined_at = payer_type, now
    uow.session.add(row)


async def prior_auth_of_course(uow: UnitOfWork, course_id: uuid.UUID) -> tuple[PriorAuthRow, PriorAuthorisation] | None:
    return (await prior_auths_of_courses(uow, [course_id])).get(course_id)


async def prior_auths_of_courses(
    uow: UnitOfWork, course_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[PriorAuthRow, PriorAuthorisation]]:
    """The courses' prior authorisations (a course has at most one), by course, in one query."""
    if not course_ids:
        return {}
    rows = await uow.session.exec(_PRIOR_AUTHS_OF_COURSES, params={IDS: list(course_ids)})
    return {row.course_id: (row, PriorAuthorisation.model_validate(row.document)) for row in rows.all()}


async def prior_auth_or_404(uow: UnitOfWork, prior_auth_id: uuid.UUID) -> tuple[PriorAuthRow, PriorAuthorisation]:
    row = await uow.session.get(PriorAuthRow, prior_auth_id)
    if row is None:
        raise RecordNotFound("prior authorisation")
    return row, PriorAuthorisation.model_validate(row.document)


def save_prior_auth(uow: UnitOfWork, row: PriorAuthRow | None, auth: PriorAuthorisation) -> PriorAuthRow:
    row = row or PriorAuthRow(id=auth.id, course_id=auth.course_id, patient_id=auth.patient_id, document={}, status="")
    row.document, row.status = auth.model_dump(mode="json"), auth.status.value
    uow.session.add(row)
    return row


async def lock_account(uow: UnitOfWork, patient_id: uuid.UUID) -> None:
    """Hold the patient's account until the transaction ends: whatever reads the charges and the ledger and then
    writes from them (an invoice, a claim, a payment, a plan) runs one at a time per patient, so two clerks
    cannot invoice or claim the same charges twice (PostgreSQL runs READ COMMITTED)."""
    await uow.lock(f"account:{patient_id}")


async def account_of(uow: UnitOfWork, patient_id: uuid.UUID) -> Account:
    charges = (
        await uow.session.exec(
            select(ChargeRow).where(ChargeRow.patient_id == patient_id).order_by(col(ChargeRow.service_on))
        )
    ).all()
    entries = (
        await uow.session.exec(
            select(LedgerEntryRow)
            .where(LedgerEntryRow.patient_id == patient_id)
            .order_by(col(LedgerEntryRow.recorded_at))
        )
    ).all()

    def of(kind: type[Any]) -> tuple[Any, ...]:
        name = LEDGER_KINDS[kind]
        return tuple(kind.model_validate(e.document) for e in entries if e.kind == name)

    adjudicated = (
        await uow.session.exec(
            select(ClaimRow).where(ClaimRow.patient_id == patient_id, ClaimRow.status == ClaimStatus.adjudicated)
        )
    ).all()
    responsibilities = []
    for row in adjudicated:
        claim = Claim.model_validate(row.document)
        if claim.adjudication is not None and claim.adjudication.patient_responsibility.cents:
            responsibilities.append(
                ClaimResponsibility(claim_id=claim.id, amount=claim.adjudication.patient_responsibility)
            )
    return Account(
        patient_id=patient_id,
        charges=tuple(Charge.model_validate(c.document) for c in charges),
        responsibilities=tuple(responsibilities),
        invoices=of(Invoice),
        payments=of(Payment),
        refunds=of(Refund),
    )


async def payment_plans_of(uow: UnitOfWork, patient_id: uuid.UUID) -> list[PaymentPlan]:
    rows = await uow.session.exec(
        select(LedgerEntryRow).where(LedgerEntryRow.patient_id == patient_id, LedgerEntryRow.kind == "plan")
    )
    return [PaymentPlan.model_validate(r.document) for r in rows.all()]


def add_ledger_entry(uow: UnitOfWork, entry: Invoice | Payment | Refund | PaymentPlan, at: datetime) -> None:
    uow.session.add(
        LedgerEntryRow(
            id=entry.id,
            patient_id=entry.patient_id,
            kind=LEDGER_KINDS[type(entry)],
            document=entry.model_dump(mode="json"),
            recorded_at=at,
        )
    )


async def charged_sources(uow: UnitOfWork, source_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these visits already have their charge (one a visit), in one query."""
    if not source_ids:
        return set()
    rows = await uow.session.exec(_CHARGED_SOURCES, params={IDS: list(source_ids)})
    return set(rows.all())


async def charges_of(uow: UnitOfWork, patient_id: uuid.UUID) -> list[tuple[ChargeRow, Charge]]:
    rows = await uow.session.exec(select(ChargeRow).where(ChargeRow.patient_id == patient_id))
    return [(row, Charge.model_validate(row.document)) for row in rows.all()]


def save_charge(uow: UnitOfWork, row: ChargeRow, charge: Charge) -> None:
    """A charge's changed document (re-priced after a payer's denial), in the caller's transaction."""
    row.document = charge.model_dump(mode="json")
    uow.session.add(row)


def add_charge(uow: UnitOfWork, charge: Charge) -> None:
    uow.session.add(
        ChargeRow(
            id=charge.id,
            patient_id=charge.patient_id,
            source_id=charge.source_id,
            document=charge.model_dump(mode="json"),
            service_on=charge.service_on,
        )
    )


def add_barrier(uow: UnitOfWork, barrier: AccessBarrier) -> None:
    uow.session.add(
        BarrierRow(
            id=barrier.id,
            patient_id=barrier.patient_id,
            document=barrier.model_dump(mode="json"),
            recorded_at=barrier.recorded_at,
        )
    )


async def barriers_of(uow: UnitOfWork, patient_id: uuid.UUID) -> list[AccessBarrier]:
    rows = await uow.session.exec(
        select(BarrierRow).where(BarrierRow.patient_id == patient_id).order_by(col(BarrierRow.recorded_at))
    )
    return [AccessBarrier.model_validate(r.document) for r in rows.all()]
