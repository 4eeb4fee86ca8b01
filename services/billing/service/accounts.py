"""Billing's use cases: the site's plans and prices, coverage and prior authorisation, charges from completed
visits, the patient's account (invoices, payments, refunds, payment plans) and access barriers. Each one loads,
calls the domain, saves, publishes what it returned, audits and commits."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from sqlmodel import select

from services.billing.domain.barriers import AccessBarrier, BarrierEntry, BarrierReason, CareOutcome
from services.billing.domain.charging import charge_for
from services.billing.domain.codes import ChargeLine, diagnosis_for
from services.billing.domain.coverage import PlanBenefits, determine
from services.billing.domain.ledger import (
    Account,
    ChargeSource,
    Invoice,
    Payment,
    PaymentEntry,
    PaymentPlan,
    PlanEntry,
    Refund,
    RefundEntry,
)
from services.billing.domain.money import Money
from services.billing.domain.pricing import (
    BillableService,
    FinancialAssistance,
    Price,
    SlidingScaleTier,
    assess,
    overlapping,
)
from services.billing.domain.prior_auth import PriorAuthChange, PriorAuthorisation, PriorAuthStatus
from services.billing.models import AssistanceRow, BillingCourse, CoverageRow, PlanBenefitsRow, PriceRow
from services.billing.prior_treatment import evidence_for
from services.billing.service import store
from services.billing.service.claims import claims_of
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict, RuleRefused
from shared.events.billing import ChargeCreated as ChargeCreatedEvent
from shared.events.billing import CoverageDetermined, InvoiceIssued, PaymentRecorded
from shared.instants import local_date, utcnow
from shared.treatment import Indication, Route

# --- the site's plans and prices ----------------------------------------------------------------------------


async def save_plan(uow: UnitOfWork, actor: Actor, benefits: PlanBenefits) -> PlanBenefits:
    existing = (
        await uow.session.exec(
            select(PlanBenefitsRow).where(
                PlanBenefitsRow.payer == benefits.payer, PlanBenefitsRow.plan == benefits.plan
            )
        )
    ).first()
    row = existing or PlanBenefitsRow(
        payer=benefits.payer,
        plan=benefits.plan,
        payer_type="",
        covers_esketamine_with_prior_auth=False,
        covers_off_label_ketamine=False,
        covers_psychotherapy=False,
    )
    row.payer_type = benefits.payer_type.value
    row.covers_esketamine_with_prior_auth = benefits.covers_esketamine_with_prior_auth
    row.covers_off_label_ketamine = benefits.covers_off_label_ketamine
    row.covers_psychotherapy = benefits.covers_psychotherapy
    uow.session.add(row)
    record_access(uow, actor, "plan.save", None, f"plans/{benefits.payer}/{benefits.plan}")
    await uow.commit()
    return benefits


async def plans(uow: UnitOfWork) -> list[PlanBenefits]:
    return [store.benefits_of(row) for row in (await uow.session.exec(select(PlanBenefitsRow))).all()]


async def add_price(uow: UnitOfWork, actor: Actor, price: Price) -> Price:
    clash = overlapping(await store.prices(uow, price.service), price)
    if clash is not None:
        raise Conflict(
            f"{price.service.value} already has a price from {clash.valid_from} to {clash.valid_to or 'open end'}: "
            "end it first (a day has one price)"
        )
    uow.session.add(
        PriceRow(
            service=price.service.value,
            amount_cents=price.amount.cents,
            currency=price.amount.currency,
            valid_from=price.valid_from,
            valid_to=price.valid_to,
        )
    )
    record_access(uow, actor, "price.add", None, f"prices/{price.service.value}")
    await uow.commit()
    return price


async def assess_assistance(
    uow: UnitOfWork,
    actor: Actor,
    patient_id: uuid.UUID,
    household_income: Money,
    household_size: int,
    tiers: tuple[SlidingScaleTier, ...],
) -> FinancialAssistance:
    await store.patient_or_404(uow, patient_id)
    assistance = assess(household_income, household_size, tiers)
    row = await uow.session.get(AssistanceRow, patient_id) or AssistanceRow(
        patient_id=patient_id,
        household_size=0,
        household_income_cents=0,
        percent_of_guideline=0,
        discount_percent=0,
        assessed_at=utcnow(),
    )
    row.household_size, row.household_income_cents = household_size, household_income.cents
    row.percent_of_guideline, row.discount_percent = assistance.percent_of_guideline, assistance.discount_percent
    row.assessed_at = utcnow()
    uow.session.add(row)
    record_access(uow, actor, "assistance.assess", patient_id, f"patients/{patient_id}/assistance")
    await uow.commit()
    return assistance


# --- coverage and prior authorisation ---------------------------------------------------------------------------


async def determine_coverage(
    uow: UnitOfWork, course: BillingCourse, *, site_rems_certified: bool, actor: Actor | None = None
) -> CoverageRow:
    """(Re)determine a course's coverage from the coverage on file and the plan's benefits. When prior
    authorisation is needed and none exists, one is opened as needed."""
    patient = await store.patient_or_404(uow, course.patient_id)
    on_file = store.coverage_on_file(patient)
    benefits = None if on_file.self_pay else await store.plan_benefits(uow, on_file.payer, on_file.plan)
    determination = determine(
        Route(course.route), Indication(course.indication), on_file, benefits, site_rems_certified=site_rems_certified
    )
    payer_type = "self_pay" if on_file.self_pay or benefits is None else benefits.payer_type.value
    now = utcnow()
    row = await uow.session.get(CoverageRow, course.course_id)
    store.save_coverage(uow, row, course, determination, payer_type, now)
    await uow.publish(
        CoverageDetermined(
            patient_id=course.patient_id,
            course_id=course.course_id,
            kind=determination.kind.value,
            reason=determination.reason.value,
            payer_type=payer_type,  # type: ignore[arg-type]
            prior_auth_needed=determination.prior_auth_needed,
            determined_at=now,
        )
    )
    if determination.prior_auth_needed and await store.prior_auth_of_course(uow, course.course_id) is None:
        auth = PriorAuthorisation(
            id=uuid.uuid4(),
            patient_id=course.patient_id,
            course_id=course.course_id,
            payer=on_file.payer or "",
            plan=on_file.plan or "",
            status=PriorAuthStatus.needed,
            changed_at=now,
        )
        store.save_prior_auth(uow, None, auth)
    if actor is not None:
        record_access(uow, actor, "coverage.determine", course.patient_id, f"courses/{course.course_id}/coverage")
        await uow.commit()
    refreshed = await uow.session.get(CoverageRow, course.course_id)
    assert refreshed is not None
    return refreshed


async def read_coverage(uow: UnitOfWork, actor: Actor, course_id: uuid.UUID) -> CoverageRow:
    course = await store.course_or_404(uow, course_id)
    row = await uow.session.get(CoverageRow, course_id)
    if row is None:
        raise Conflict("billing has not determined this course's coverage yet")
    record_access(uow, actor, "coverage.read", course.patient_id, f"courses/{course_id}/coverage")
    await uow.commit()
    return row


async def change_prior_auth(
    uow: UnitOfWork, actor: Actor, prior_auth_id: uuid.UUID, change: PriorAuthChange, evidence: list[str]
) -> PriorAuthorisation:
    row, auth = await store.prior_auth_or_404(uow, prior_auth_id)
    # The prior-treatment history intake keeps comes first; what the clerk adds follows, without repeats.
    evidence = list(dict.fromkeys([*await evidence_for(uow, auth.patient_id), *evidence]))
    events = auth.change(change, evidence, utcnow())
    store.save_prior_auth(uow, row, auth)
    if auth.status is PriorAuthStatus.denied:
        await _to_patient_after_denial(uow, auth)
    await uow.publish_all(events)
    record_access(uow, actor, "prior_auth.change", auth.patient_id, f"prior-authorisations/{auth.id}")
    await uow.commit()
    return auth


async def _to_patient_after_denial(uow: UnitOfWork, auth: PriorAuthorisation) -> None:
    """The course's charges waiting for the payer, and on no claim yet, become the patient's: after a denial
    no claim can be made for them (create_claim needs an approval), so they would otherwise be billed to no one."""
    await store.lock_account(uow, auth.patient_id)
    claimed = {charge_id for claim in await claims_of(uow, auth.patient_id) for charge_id in claim.charge_ids}
    for row, charge in await store.charges_of(uow, auth.patient_id):
        if charge.course_id == auth.course_id and charge.billed_to_payer and charge.id not in claimed:
            store.save_charge(uow, row, charge.to_patient())


async def read_prior_auth(uow: UnitOfWork, actor: Actor, course_id: uuid.UUID) -> PriorAuthorisation:
    course = await store.course_or_404(uow, course_id)
    found = await store.prior_auth_of_course(uow, course_id)
    if found is None:
        raise Conflict("this course needs no prior authorisation (or its coverage is not determined yet)")
    record_access(uow, actor, "prior_auth.read", course.patient_id, f"courses/{course_id}/prior-authorisation")
    await uow.commit()
    return found[1]


# --- charges from completed visits ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompletedVisit:
    """A visit the record says was completed, to be charged once: from a screening, a dosing session or an
    integration session event."""

    patient_id: uuid.UUID
    course_id: uuid.UUID | None
    source: ChargeSource
    source_id: uuid.UUID
    service: BillableService
    service_on: date
    lines: Callable[[], list[ChargeLine]]


async def charge_visits(uow: UnitOfWork, visits: Sequence[CompletedVisit], fees: Mapping[str, int]) -> None:
    """Called from an event handler, in its transaction, for a run of completed visits: what their charges need
    (courses, coverage, prior authorisations, assistance, prices) is read with one query each for the run, not
    each visit. A visit that already has its charge (a redelivered event) gets none."""
    if not visits:
        return
    charged = await store.charged_sources(uow, {visit.source_id for visit in visits})
    course_ids = {visit.course_id for visit in visits if visit.course_id is not None}
    patient_ids = {visit.patient_id for visit in visits}
    courses = await store.courses_by_id(uow, course_ids)
    auths = await store.prior_auths_of_courses(uow, course_ids)
    coverages = await store.coverages_of(uow, course_ids)
    assistances = await store.assistances_of(uow, patient_ids)
    prices = await store.prices(uow)
    for visit in visits:
        if visit.source_id in charged:
            continue
        charged.add(visit.source_id)  # a second event of the same visit in this run
        course = courses.get(visit.course_id) if visit.course_id else None
        diagnoses = []
        if course is not None and course.indication != Indication.other.value:
            diagnoses = [diagnosis_for(Indication(course.indication), visit.service_on).code]
        auth = auths.get(visit.course_id) if visit.course_id else None
        charge = charge_for(
            patient_id=visit.patient_id,
            course_id=visit.course_id,
            source=visit.source,
            source_id=visit.source_id,
            service=visit.service,
            service_on=visit.service_on,
            lines=visit.lines,
            diagnosis_codes=diagnoses,
            prices=prices,
            assistance=assistances.get(visit.patient_id),
            coverage=coverages.get(visit.course_id) if visit.course_id else None,
            fees=fees,
            prior_auth=auth[1].status if auth else None,
        )
        store.add_charge(uow, charge)
        await uow.publish(
            ChargeCreatedEvent(
                patient_id=visit.patient_id,
                charge_id=charge.id,
                course_id=visit.course_id,
                source=visit.source.value,
                source_id=visit.source_id,
                codes=[line.code.code for line in charge.lines],
                amount_cents=charge.amount.cents,
                patient_share_cents=charge.patient_share.cents,
                currency="USD",
                service_on=visit.service_on,
                needs_attention=charge.needs_attention is not None,
            )
        )


# --- the account ------------------------------------------------------------------------------------------------


async def account(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> Account:
    await store.patient_or_404(uow, patient_id)
    found = await store.account_of(uow, patient_id)
    record_access(uow, actor, "account.read", patient_id, f"patients/{patient_id}/account")
    await uow.commit()
    return found


async def issue_invoice(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> Invoice:
    await store.patient_or_404(uow, patient_id)
    await store.lock_account(uow, patient_id)
    current = await store.account_of(uow, patient_id)
    now = utcnow()
    invoice = current.invoice(now)
    store.add_ledger_entry(uow, invoice, now)
    await uow.publish(
        InvoiceIssued(
            patient_id=patient_id, invoice_id=invoice.id, total_cents=invoice.total.cents, currency="USD", issued_at=now
        )
    )
    record_access(uow, actor, "invoice.issue", patient_id, f"invoices/{invoice.id}")
    await uow.commit()
    return invoice


async def record_payment(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, entry: PaymentEntry) -> Payment:
    await store.patient_or_404(uow, patient_id)
    # Two clerks taking a payment at once: the second sees the first's before checking the balance.
    await store.lock_account(uow, patient_id)
    current = await store.account_of(uow, patient_id)
    now = utcnow()
    payment = current.pay(entry, now)
    store.add_ledger_entry(uow, payment, now)
    await uow.publish(
        PaymentRecorded(
            patient_id=patient_id,
            payment_id=payment.id,
            invoice_id=payment.invoice_id,
            amount_cents=payment.amount.cents,
            currency="USD",
            method=payment.method.value,
            received_at=now,
        )
    )
    record_access(uow, actor, "payment.record", patient_id, f"payments/{payment.id}")
    await uow.commit()
    return payment


async def record_refund(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, entry: RefundEntry) -> Refund:
    await store.patient_or_404(uow, patient_id)
    await store.lock_account(uow, patient_id)
    current = await store.account_of(uow, patient_id)
    now = utcnow()
    refund = current.refund(entry, now)
    store.add_ledger_entry(uow, refund, now)
    await uow.publish(
        PaymentRecorded(
            patient_id=patient_id,
            payment_id=refund.id,
            amount_cents=-refund.amount.cents,
            currency="USD",
            method="refund",
            received_at=now,
        )
    )
    record_access(uow, actor, "refund.record", patient_id, f"refunds/{refund.id}")
    await uow.commit()
    return refund


async def agree_payment_plan(
    uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, entry: PlanEntry, zone: ZoneInfo
) -> PaymentPlan:
    await store.patient_or_404(uow, patient_id)
    await store.lock_account(uow, patient_id)
    current = await store.account_of(uow, patient_id)
    now = utcnow()
    if entry.first_due_on < local_date(now, zone):
        raise RuleRefused("first_due_on: the first instalment cannot fall due in the past")
    plan = current.payment_plan(entry, now)
    store.add_ledger_entry(uow, plan, now)
    record_access(uow, actor, "payment_plan.agree", patient_id, f"payment-plans/{plan.id}")
    await uow.commit()
    return plan


# --- access barriers --------------------------------------------------------------------------------------------


async def record_barrier(
    uow: UnitOfWork, actor: Actor | None, patient_id: uuid.UUID, entry: BarrierEntry
) -> AccessBarrier:
    """By a member of staff, or (``actor`` None) automatically from an event, inside its transaction."""
    await store.patient_or_404(uow, patient_id)
    if entry.course_id is not None:
        course = await store.course_or_404(uow, entry.course_id)
        if course.patient_id != patient_id:
            raise RuleRefused("course_id: the course is another patient's")
    barrier, event = AccessBarrier.record(patient_id, entry, actor.sub if actor else None, utcnow())
    store.add_barrier(uow, barrier)
    await uow.publish(event)
    if actor is not None:
        record_access(uow, actor, "access_barrier.record", patient_id, f"access-barriers/{barrier.id}")
        await uow.commit()
    return barrier


async def barriers(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> list[AccessBarrier]:
    await store.patient_or_404(uow, patient_id)
    found = await store.barriers_of(uow, patient_id)
    record_access(uow, actor, "access_barrier.read", patient_id, f"patients/{patient_id}/access-barriers")
    await uow.commit()
    return found


async def barrier_on_hold(uow: UnitOfWork, course: BillingCourse, zone: ZoneInfo) -> None:
    """A course put on hold after a denied authorisation, or with an unpaid balance, is care deferred for cost:
    recorded automatically, once per hold."""
    auth = await store.prior_auth_of_course(uow, course.course_id)
    reason: BarrierReason | None = None
    if auth is not None and auth[1].status is PriorAuthStatus.denied:
        reason = BarrierReason.authorisation_denied
    else:
        current = await store.account_of(uow, course.patient_id)
        if current.overdue(local_date(utcnow(), zone)).cents > 0:
            reason = BarrierReason.cannot_pay
    if reason is None:
        return
    estimate = (await store.account_of(uow, course.patient_id)).balance
    entry = BarrierEntry(
        course_id=course.course_id,
        reason=reason,
        outcome=CareOutcome.deferred,
        estimated_out_of_pocket=estimate if estimate.cents > 0 else None,
        note="recorded automatically when the course was put on hold",
    )
    await record_barrier(uow, None, course.patient_id, entry)
