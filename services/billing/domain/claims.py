"""Claims to a payer, with the data of a CMS-1500 / 837P professional claim, and the payer's adjudication.

Sources:
- [CMS-1500]: CMS, Health Insurance Claim Form CMS-1500 (02/12) and the NUCC 1500 Claim Form Reference
  Instruction Manual: items 1a (insured's ID), 2/3 (patient), 4/7 (insured), 21 (diagnoses A-L, ICD indicator 0
  for ICD-10), 23 (prior authorisation number), 24A-J (service lines: dates, place of service, code, modifiers,
  diagnosis pointer, charges, units, rendering NPI), 25 (federal tax ID), 28 (total charge), 33 (billing
  provider, NPI 33a).
- [837P]: ASC X12N 837 Professional (005010X222A1), the electronic form of the same data.
- [POS]: CMS Place of Service code set: 11, Office.
- What kapnet leaves to a clearinghouse: the X12 envelope and its syntax, payer IDs, claim frequency codes,
  corrected and voided claims, coordination of benefits, and 835 remittance parsing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.billing.domain.codes import ChargeLine
from services.billing.domain.coverage import ServicePart
from services.billing.domain.estimates import EstimateProvider
from services.billing.domain.ledger import Charge
from services.billing.domain.money import Money, total
from services.billing.domain.prior_auth import Approval
from shared.errors import Conflict, RuleRefused
from shared.events.billing import ClaimAdjudicated, ClaimSubmitted
from shared.events.registry import DomainEvent

# [CMS-1500] item 21 holds up to 12 diagnoses, A to L; a line points at up to 4 of them.
DIAGNOSIS_POINTERS = "ABCDEFGHIJKL"
MAX_LINES = 50  # [837P] allows 50 service lines per claim (the paper form, 6 a page)
PLACE_OF_SERVICE_OFFICE = "11"  # [POS]

# Which part of a visit each code bills, to claim only what the plan covers (coverage.py's parts).
PART_OF_CODE: dict[str, ServicePart] = {
    **{code: ServicePart.drug_and_administration for code in ("96365", "96366", "96372", "J3490", "S0013", "J0013")},
    **{code: ServicePart.evaluation_and_management for code in ("99214", "G2082", "G2083", "90791", "90792")},
    **{code: ServicePart.psychotherapy for code in ("90832", "90834", "90837", "90833", "90836", "90838")},
}

# Clinic policy: the site's fee per code (its chargemaster), billed to payers; a site overrides it in its
# billing settings. Drug codes are per 1 mg (esketamine) or per administration (J3490).
DEFAULT_FEES_CENTS: dict[str, int] = {
    "96365": 250_00,
    "96366": 80_00,
    "96372": 60_00,
    "J3490": 50_00,
    "S0013": 10_50,
    "J0013": 10_50,
    "99214": 200_00,
    "G2082": 300_00,
    "G2083": 400_00,
    "90791": 250_00,
    "90792": 300_00,
    "90832": 110_00,
    "90834": 150_00,
    "90837": 200_00,
    "90833": 90_00,
    "90836": 120_00,
    "90838": 160_00,
}


class ClaimStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    adjudicated = "adjudicated"


class AdjudicationOutcome(StrEnum):
    paid = "paid"
    partly_paid = "partly_paid"
    denied = "denied"


class ClaimParty(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    birth_date: date | None = None
    member_id: str | None = None


class ServiceLine(BaseModel):
    """[CMS-1500] item 24: one code on one date of service."""

    model_config = ConfigDict(frozen=True)

    service_on: date
    place_of_service: str = PLACE_OF_SERVICE_OFFICE
    code: str
    modifiers: tuple[str, ...] = ()
    diagnosis_pointers: str = Field(pattern=r"^[A-L]{1,4}$")
    charge: Money
    units: int = Field(ge=1)
    rendering_npi: str
    charge_id: uuid.UUID


class Adjudication(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    outcome: AdjudicationOutcome
    paid: Money
    patient_responsibility: Money
    denial_reason: str | None = Field(default=None, min_length=3, max_length=2000)
    payer_claim_number: str | None = Field(default=None, max_length=60)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.paid.is_negative or self.patient_responsibility.is_negative:
            raise ValueError("paid and patient_responsibility are not negative")
        if (self.outcome is AdjudicationOutcome.denied) != (self.denial_reason is not None):
            raise ValueError("denial_reason: give the payer's reason exactly when the claim is denied")
        if self.outcome is AdjudicationOutcome.denied and self.paid.cents:
            raise ValueError("paid: a denied claim pays nothing")
        if self.outcome is not AdjudicationOutcome.denied and not self.paid.cents:
            raise ValueError("paid: a paid claim pays something (a claim paying nothing is denied)")
        return self


class Claim(BaseModel):
    model_config = ConfigDict(validate_assignment=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    course_id: uuid.UUID | None
    patient: ClaimParty
    subscriber: ClaimParty
    relationship_to_subscriber: str = "self"
    payer: str
    plan: str
    billing_provider: EstimateProvider
    diagnoses: tuple[str, ...] = Field(min_length=1, max_length=12)
    prior_authorisation_number: str | None = None
    lines: tuple[ServiceLine, ...] = Field(min_length=1, max_length=MAX_LINES)
    status: ClaimStatus = ClaimStatus.draft
    created_at: datetime
    submitted_at: datetime | None = None
    adjudication: Adjudication | None = None
    adjudicated_at: datetime | None = None

    @property
    def total_charge(self) -> Money:
        return total([line.charge for line in self.lines])

    @property
    def charge_ids(self) -> set[uuid.UUID]:
        return {line.charge_id for line in self.lines}

    def submit(self, now: datetime) -> list[DomainEvent]:
        if self.status is not ClaimStatus.draft:
            raise Conflict(f"the claim is {self.status.value}: it was submitted already")
        self.status, self.submitted_at = ClaimStatus.submitted, now
        return [
            ClaimSubmitted(
                patient_id=self.patient_id,
                claim_id=self.id,
                course_id=self.course_id,
                total_cents=self.total_charge.cents,
                currency="USD",
                submitted_at=now,
            )
        ]

    def adjudicate(self, adjudication: Adjudication, now: datetime) -> list[DomainEvent]:
        if self.status is not ClaimStatus.submitted:
            raise Conflict(f"the claim is {self.status.value}: only a submitted claim is adjudicated")
        if total([adjudication.paid, adjudication.patient_responsibility]).cents > self.total_charge.cents:
            raise RuleRefused(
                f"paid plus patient_responsibility exceed the claim's total charge of {self.total_charge}"
            )
        self.status, self.adjudication, self.adjudicated_at = ClaimStatus.adjudicated, adjudication, now
        return [
            ClaimAdjudicated(
                patient_id=self.patient_id,
                claim_id=self.id,
                outcome=adjudication.outcome.value,
                paid_cents=adjudication.paid.cents,
                patient_responsibility_cents=adjudication.patient_responsibility.cents,
                currency="USD",
                denial_reason=adjudication.denial_reason,
                adjudicated_at=now,
            )
        ]


def within_authorisation(charges: Sequence[Charge], approval: Approval, already_claimed: int) -> list[Charge]:
    """The charges a prior authorisation allows a claim for: dates of service inside its validity, and no more
    visits than it approved (counting those already claimed under it), the earliest first. The rest wait for a
    new or extended authorisation (clinic policy; the payer's approval letter states both limits)."""
    inside = sorted(
        (c for c in charges if approval.valid_from <= c.service_on <= approval.valid_to), key=lambda c: c.service_on
    )
    return inside[: max(approval.units - already_claimed, 0)]


def line_covered(line: ChargeLine, covered: Sequence[ServicePart]) -> bool:
    """Whether the plan covers this line: its code's part of the visit is among the covered parts."""
    return PART_OF_CODE.get(line.code.code) in covered


def claimable_lines(charge: Charge, covered: Sequence[ServicePart]) -> list[ChargeLine]:
    """The lines of a charge the plan covers: a partly covered course claims only its covered parts."""
    return [line for line in charge.lines if line_covered(line, covered)]


def build_claim(
    *,
    patient_id: uuid.UUID,
    course_id: uuid.UUID | None,
    patient: ClaimParty,
    payer: str,
    plan: str,
    provider: EstimateProvider,
    charges: Sequence[Charge],
    covered: Sequence[ServicePart],
    fees: dict[str, int],
    prior_authorisation_number: str | None,
    now: datetime,
) -> Claim:
    """A draft claim for the covered lines of ``charges``: the diagnoses they carry (A-L), each line at the site's
    fee times its units, rendered and billed by the site (its NPI)."""
    diagnoses: list[str] = []
    for charge in charges:
        for code in charge.diagnosis_codes:
            if code not in diagnoses:
                diagnoses.append(code)
    if not diagnoses:
        raise RuleRefused("a claim needs a diagnosis: the course's indication gives none (indication 'other')")
    if len(diagnoses) > len(DIAGNOSIS_POINTERS):
        raise RuleRefused("a claim holds at most 12 diagnoses: split the charges over two claims")
    lines: list[ServiceLine] = []
    for charge in charges:
        pointers = "".join(DIAGNOSIS_POINTERS[diagnoses.index(code)] for code in charge.diagnosis_codes[:4])
        for line in claimable_lines(charge, covered):
            fee = fees.get(line.code.code)
            if fee is None:
                raise RuleRefused(f"no fee for {line.code.code} in the site's fee schedule")
            lines.append(
                ServiceLine(
                    service_on=charge.service_on,
                    code=line.code.code,
                    modifiers=line.modifiers,
                    diagnosis_pointers=pointers,
                    charge=Money(cents=fee * line.units),
                    units=line.units,
                    rendering_npi=provider.npi,
                    charge_id=charge.id,
                )
            )
    if not lines:
        raise Conflict("nothing to claim: the plan covers none of these charges' lines")
    return Claim(
        id=uuid.uuid4(),
        patient_id=patient_id,
        course_id=course_id,
        patient=patient,
        subscriber=patient,
        payer=payer,
        plan=plan,
        billing_provider=provider,
        diagnoses=tuple(diagnoses),
        prior_authorisation_number=prior_authorisation_number,
        lines=tuple(lines),
        created_at=now,
    )
