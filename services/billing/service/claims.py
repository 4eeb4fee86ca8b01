"""Claims: built from a course's charges that a payer is billed for, submitted, and adjudicated; what the payer
leaves to the patient lands on the patient's account."""

from __future__ import annotations

import uuid

from sqlmodel import col, select

from services.billing.domain.claims import Adjudication, Claim, ClaimParty, build_claim, within_authorisation
from services.billing.domain.coverage import CoverageKind
from services.billing.domain.ledger import Charge
from services.billing.domain.prior_auth import PriorAuthStatus
from services.billing.domain.settings import BillingSettings
from services.billing.models import ClaimRow
from services.billing.service import store
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict, RecordNotFound
from shared.instants import utcnow


async def claims_of(uow: UnitOfWork, patient_id: uuid.UUID) -> list[Claim]:
    rows = await uow.session.exec(
        select(ClaimRow).where(ClaimRow.patient_id == patient_id).order_by(col(ClaimRow.created_at))
    )
    return [Claim.model_validate(r.document) for r in rows.all()]


async def claim_or_404(uow: UnitOfWork, claim_id: uuid.UUID) -> tuple[ClaimRow, Claim]:
    row = await uow.session.get(ClaimRow, claim_id)
    if row is None:
        raise RecordNotFound("claim")
    return row, Claim.model_validate(row.document)


def _save(uow: UnitOfWork, row: ClaimRow | None, claim: Claim) -> ClaimRow:
    row = row or ClaimRow(
        id=claim.id,
        patient_id=claim.patient_id,
        course_id=claim.course_id,
        status="",
        document={},
        created_at=claim.created_at,
    )
    row.status, row.document = claim.status.value, claim.model_dump(mode="json")
    uow.session.add(row)
    return row


async def create_claim(uow: UnitOfWork, actor: Actor, course_id: uuid.UUID, settings: BillingSettings) -> Claim:
    """A claim for the course's charges billed to the payer and not on a claim yet, for the covered lines."""
    course = await store.course_or_404(uow, course_id)
    await store.lock_account(uow, course.patient_id)
    patient = await store.patient_or_404(uow, course.patient_id)
    if patient.self_pay or not (patient.payer and patient.plan and patient.member_id):
        raise Conflict("the patient pays for themselves: there is no payer to claim from")
    if settings.provider is None:
        raise Conflict("the site's billing provider (name, NPI, TIN, location) is not set: KAPNET_BILLING_RULES")
    coverage = await store.coverage_of(uow, course_id)
    if coverage is None or coverage.kind is CoverageKind.not_covered:
        raise Conflict("the course is not covered by the patient's plan: nothing to claim")
    approval = None
    if coverage.prior_auth_needed:
        found = await store.prior_auth_of_course(uow, course_id)
        if found is None or found[1].status is not PriorAuthStatus.approved or found[1].approval is None:
            raise Conflict("the course needs an approved prior authorisation before it is claimed")
        approval = found[1].approval
    earlier = await claims_of(uow, course.patient_id)
    claimed = {charge_id for claim in earlier for charge_id in claim.charge_ids}
    charges: list[Charge] = [
        charge
        for _, charge in await store.charges_of(uow, course.patient_id)
        if charge.course_id == course_id
        and charge.billed_to_payer
        and charge.id not in claimed
        and charge.needs_attention is None
    ]
    if not charges:
        raise Conflict("nothing to claim: every charge of this course billed to the payer is on a claim already")
    if approval is not None:
        under_it = sum(
            len(c.charge_ids)
            for c in earlier
            if c.course_id == course_id and c.prior_authorisation_number == approval.authorisation_number
        )
        charges = within_authorisation(charges, approval, under_it)
        if not charges:
            raise Conflict(
                f"the prior authorisation {approval.authorisation_number} covers {approval.units} visits from "
                f"{approval.valid_from} to {approval.valid_to}; the charges left are outside it: ask the payer to "
                "extend it"
            )
    name = " ".join(n for n in (patient.given_name, patient.family_name) if n) or "unknown"
    party = ClaimParty(name=name, birth_date=patient.birth_date, member_id=patient.member_id)
    claim = build_claim(
        patient_id=course.patient_id,
        course_id=course_id,
        patient=party,
        payer=patient.payer,
        plan=patient.plan,
        provider=settings.provider,
        charges=charges,
        covered=coverage.covered_parts,
        fees=settings.fee_schedule,
        prior_authorisation_number=approval.authorisation_number if approval else None,
        now=utcnow(),
    )
    _save(uow, None, claim)
    record_access(uow, actor, "claim.create", course.patient_id, f"claims/{claim.id}")
    await uow.commit()
    return claim


async def submit_claim(uow: UnitOfWork, actor: Actor, claim_id: uuid.UUID) -> Claim:
    await uow.lock(f"claim:{claim_id}")  # one status change at a time
    row, claim = await claim_or_404(uow, claim_id)
    events = claim.submit(utcnow())
    _save(uow, row, claim)
    await uow.publish_all(events)
    record_access(uow, actor, "claim.submit", claim.patient_id, f"claims/{claim.id}")
    await uow.commit()
    return claim


async def adjudicate_claim(uow: UnitOfWork, actor: Actor, claim_id: uuid.UUID, adjudication: Adjudication) -> Claim:
    await uow.lock(f"claim:{claim_id}")  # one status change at a time
    row, claim = await claim_or_404(uow, claim_id)
    events = claim.adjudicate(adjudication, utcnow())
    _save(uow, row, claim)
    await uow.publish_all(events)
    record_access(uow, actor, "claim.adjudicate", claim.patient_id, f"claims/{claim.id}")
    await uow.commit()
    return claim


async def read_claim(uow: UnitOfWork, actor: Actor, claim_id: uuid.UUID) -> Claim:
    _, claim = await claim_or_404(uow, claim_id)
    record_access(uow, actor, "claim.read", claim.patient_id, f"claims/{claim.id}")
    await uow.commit()
    return claim


async def patient_claims(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID) -> list[Claim]:
    await store.patient_or_404(uow, patient_id)
    found = await claims_of(uow, patient_id)
    record_access(uow, actor, "claim.read", patient_id, f"patients/{patient_id}/claims")
    await uow.commit()
    return found
