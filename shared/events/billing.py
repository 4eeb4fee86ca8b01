"""Events billing publishes on its site topic. Amounts are integer cents with their currency, never floats."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from shared.auth.permissions import Permission
from shared.events.registry import PatientEvent, registered

Currency = Literal["USD"]


class _BillingEvent(PatientEvent):
    producer = "billing"


@registered
class CoverageDetermined(_BillingEvent):
    name = "coverage.determined"
    audience = Permission.billing_read
    summary = "Who pays for a course: covered, partly covered or not covered (self-pay), with the reason."

    course_id: uuid.UUID
    kind: Literal["covered", "partly_covered", "not_covered"]
    reason: str
    payer_type: Literal["commercial", "medicare", "medicaid", "other", "self_pay"]
    prior_auth_needed: bool
    determined_at: datetime


@registered
class PriorAuthStatusChanged(_BillingEvent):
    name = "prior_auth.status_changed"
    audience = Permission.billing_read
    summary = "A course's prior authorisation moved to another status (submitted, approved, denied, appealed)."

    prior_auth_id: uuid.UUID
    course_id: uuid.UUID
    previous_status: Literal["needed", "submitted", "approved", "denied", "appealed"] | None
    status: Literal["needed", "submitted", "approved", "denied", "appealed"]
    denial_reason: str | None = None
    changed_at: datetime


@registered
class EstimateIssued(_BillingEvent):
    name = "estimate.issued"
    audience = Permission.billing_read
    summary = "A Good Faith Estimate (45 CFR 149.610) was issued to an uninsured or self-pay patient."

    estimate_id: uuid.UUID
    course_id: uuid.UUID | None = None
    total_cents: int
    currency: Currency
    service_on: date | None
    issued_at: datetime


@registered
class ChargeCreated(_BillingEvent):
    name = "charge.created"
    audience = Permission.billing_read
    summary = "A charge was created from a completed session or evaluation, with the code valid that day."

    charge_id: uuid.UUID
    course_id: uuid.UUID | None = None
    source: Literal["dosing_session", "integration_session", "intake_evaluation"]
    source_id: uuid.UUID
    codes: list[str]
    amount_cents: int
    patient_share_cents: int
    currency: Currency
    service_on: date
    # True when billing must look at it first (no price for the day, or a visit the code rules could not code).
    needs_attention: bool = False


@registered
class InvoiceIssued(_BillingEvent):
    name = "invoice.issued"
    audience = Permission.billing_read
    summary = "An invoice was issued to the patient for their share of charges."

    invoice_id: uuid.UUID
    total_cents: int
    currency: Currency
    issued_at: datetime


@registered
class PaymentRecorded(_BillingEvent):
    name = "payment.recorded"
    audience = Permission.billing_read
    summary = "A payment (or a refund, as a negative amount) was recorded against the patient's account."

    payment_id: uuid.UUID
    invoice_id: uuid.UUID | None = None
    amount_cents: int
    currency: Currency
    method: Literal["card", "cash", "instalment", "refund"]
    received_at: datetime


@registered
class ClaimSubmitted(_BillingEvent):
    name = "claim.submitted"
    audience = Permission.billing_read
    summary = "A claim (CMS-1500 / 837P data) was submitted to the patient's payer."

    claim_id: uuid.UUID
    course_id: uuid.UUID | None = None
    total_cents: int
    currency: Currency
    submitted_at: datetime


@registered
class ClaimAdjudicated(_BillingEvent):
    name = "claim.adjudicated"
    audience = Permission.billing_read
    summary = "The payer's decision on a claim: paid, partly paid, or denied with a reason."

    claim_id: uuid.UUID
    outcome: Literal["paid", "partly_paid", "denied"]
    paid_cents: int
    patient_responsibility_cents: int
    currency: Currency
    denial_reason: str | None = None
    adjudicated_at: datetime


AccessBarrierReason = Literal["not_covered", "high_out_of_pocket", "authorisation_denied", "cannot_pay", "other"]


@registered
class AccessBarrierRecorded(_BillingEvent):
    name = "access_barrier.recorded"
    audience = Permission.billing_read
    summary = "Care was deferred or declined because of cost or coverage, with the reason and the estimated cost."

    barrier_id: uuid.UUID
    course_id: uuid.UUID | None = None
    reason: AccessBarrierReason
    outcome: Literal["deferred", "declined"]
    estimated_out_of_pocket_cents: int | None
    currency: Currency
    recorded_automatically: bool
    recorded_at: datetime
