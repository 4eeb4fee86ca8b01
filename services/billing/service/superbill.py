"""A patient's superbill for a period (domain/superbill.py): loaded, built, and its reading audited."""

from __future__ import annotations

import uuid
from datetime import UTC, date, tzinfo

from services.billing.domain.settings import BillingSettings
from services.billing.domain.superbill import Superbill, SuperbillPatient, build_superbill
from services.billing.service import store
from shared.audit import record_access
from shared.auth.guard import Actor
from shared.db.unit_of_work import UnitOfWork
from shared.errors import Conflict
from shared.instants import utcnow


async def superbill(
    uow: UnitOfWork,
    actor: Actor,
    patient_id: uuid.UUID,
    from_date: date,
    to_date: date,
    settings: BillingSettings,
    *,
    zone: tzinfo = UTC,
) -> Superbill:
    """404 for a patient billing does not know; 409 when the site's provider is not set, billing does not know
    the patient's name yet, or the period holds nothing to bill. ``zone`` is the site's: the day the superbill is
    prepared on."""
    patient = await store.patient_or_404(uow, patient_id)
    if settings.provider is None:
        raise Conflict("the site's billing provider (name, NPI, TIN, location) is not set: KAPNET_BILLING_RULES")
    name = " ".join(n for n in (patient.given_name, patient.family_name) if n)
    if not name or patient.birth_date is None:
        raise Conflict("billing does not know the patient's name and date of birth yet (from intake's events)")
    account = await store.account_of(uow, patient_id)
    built = build_superbill(
        patient_id=patient_id,
        patient=SuperbillPatient(name=name, date_of_birth=patient.birth_date),
        provider=settings.provider,
        start=from_date,
        end=to_date,
        charges=account.charges,
        paid=account.paid_per_charge(),
        fees=settings.fee_schedule,
        prepared_on=utcnow().astimezone(zone).date(),
    )
    record_access(uow, actor, "superbill.read", patient_id, f"patients/{patient_id}/superbill/{from_date}..{to_date}")
    await uow.commit()
    return built
