"""A superbill: the itemised statement a patient sends their health plan to seek out-of-network reimbursement of
what they paid the site. Pure: built from the patient, the site's provider, a date range, the patient's charges
and the money they paid; no I/O.

What it carries (what a plan's out-of-network claim form asks for, as on a [CMS-1500]):
- the patient: name and date of birth (billing keeps no address, so none is printed);
- the provider: name, NPI, TIN and the office where care was given;
- per visit: the date of service, place of service 11 (office, [POS]), each CPT/HCPCS code with its modifiers,
  units and charge, and the visit's ICD-10-CM diagnoses;
- the totals: what was charged, what the patient has paid towards these visits (each visit's share of their
  payments, less refunds: Account.paid_per_charge), and a statement that the patient paid and is seeking
  reimbursement, above the provider's signature line.

The site's price is per visit, not per code (charging.py); a superbill lists a charge per code, so a visit's
amount is spread over its lines in proportion to the site's fee schedule (its chargemaster, settings.py), in
whole cents, the cents left over on the first line: the lines add up exactly to what the visit cost.

Which charges: those of the period that the patient is billed for directly. Left out: a charge billing must still
look at (``needs_attention``: unpriced or not coded, recorded at zero), a charge with no code lines, and a charge
billed to a payer (the site claims it itself; a superbill for it would invite a second claim for one visit).

Sources: [CMS-1500] and [POS] as in claims.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.billing.domain.charging import allocate
from services.billing.domain.claims import PLACE_OF_SERVICE_OFFICE
from services.billing.domain.codes import CODE_TABLE, CodeSystem
from services.billing.domain.estimates import EstimateProvider
from services.billing.domain.ledger import Charge
from services.billing.domain.money import Money, total
from shared.errors import Conflict, RuleRefused

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class SuperbillPatient(BaseModel):
    model_config = _FROZEN

    name: str = Field(min_length=1, max_length=401)
    date_of_birth: date


class SuperbillLine(BaseModel):
    """One CPT/HCPCS code of a visit, with its share of the visit's amount."""

    model_config = _FROZEN

    code: str
    system: CodeSystem
    description: str
    modifiers: tuple[str, ...] = ()
    units: int = Field(ge=1)
    charge: Money
    # What a plan needs beside the code (for J3490: the drug, dose and NDC).
    note: str | None = None


class SuperbillVisit(BaseModel):
    model_config = _FROZEN

    charge_id: uuid.UUID
    service_on: date
    place_of_service: str = PLACE_OF_SERVICE_OFFICE
    lines: tuple[SuperbillLine, ...] = Field(min_length=1)
    diagnoses: tuple[str, ...]
    amount: Money
    # What the patient has paid towards this visit (never more than its amount).
    paid: Money

    @model_validator(mode="after")
    def _adds_up(self) -> Self:
        if total([line.charge for line in self.lines], self.amount.currency) != self.amount:
            raise ValueError("the lines' charges do not add up to the visit's amount")
        if not Money.zero(self.amount.currency) <= self.paid <= self.amount:
            raise ValueError("a visit's paid amount is between nothing and its amount")
        return self


class SuperbillDiagnosis(BaseModel):
    model_config = _FROZEN

    code: str
    # From kapnet's code table; None for a code the clinician gave that the table does not hold.
    description: str | None


class Superbill(BaseModel):
    """A patient's superbill for a period. Its totals are stored, and checked against its visits."""

    model_config = _FROZEN

    patient_id: uuid.UUID
    patient: SuperbillPatient
    provider: EstimateProvider
    period_start: date
    period_end: date
    prepared_on: date
    visits: tuple[SuperbillVisit, ...] = Field(min_length=1)
    # Every diagnosis of the visits, in the order they first appear.
    diagnoses: tuple[SuperbillDiagnosis, ...]
    total_charges: Money
    # What the patient has paid towards the visits listed: the sum of the visits' paid amounts.
    amount_paid: Money
    statement: str
    signature_line: str

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.period_end < self.period_start:
            raise ValueError("the period ends before it starts")
        if any(not self.period_start <= v.service_on <= self.period_end for v in self.visits):
            raise ValueError("a visit falls outside the period")
        currency = self.total_charges.currency
        if total([v.amount for v in self.visits], currency) != self.total_charges:
            raise ValueError("total_charges is not the sum of the visits")
        if total([v.paid for v in self.visits], currency) != self.amount_paid:
            raise ValueError("amount_paid is not the sum of what was paid towards the visits")
        return self

    @property
    def codes(self) -> list[str]:
        """Every CPT/HCPCS code billed, each once, in the order first billed."""
        return list(dict.fromkeys(line.code for visit in self.visits for line in visit.lines))


def superbill_charges(charges: Sequence[Charge], start: date, end: date) -> list[Charge]:
    """The charges of ``start``..``end`` (both inclusive) that go on a superbill, by date of service."""
    chosen = [
        charge
        for charge in charges
        if start <= charge.service_on <= end
        and charge.needs_attention is None
        and charge.lines
        and not charge.billed_to_payer
    ]
    return sorted(chosen, key=lambda charge: charge.service_on)


def build_superbill(
    *,
    patient_id: uuid.UUID,
    patient: SuperbillPatient,
    provider: EstimateProvider,
    start: date,
    end: date,
    charges: Sequence[Charge],
    paid: Mapping[uuid.UUID, Money],
    fees: Mapping[str, int],
    prepared_on: date,
) -> Superbill:
    """The superbill of ``start``..``end``, with what the patient has paid towards each visit (``paid``, by
    charge: Account.paid_per_charge). Conflict when the period holds nothing to put on it."""
    if end < start:
        raise RuleRefused("from: the period starts after it ends")
    chosen = superbill_charges(charges, start, end)
    if not chosen:
        raise Conflict(
            f"nothing to put on a superbill from {start.isoformat()} to {end.isoformat()}: no visit the patient "
            "was billed for directly, coded and priced, in that period"
        )
    currency = chosen[0].amount.currency
    visits: list[SuperbillVisit] = []
    diagnoses: dict[str, SuperbillDiagnosis] = {}
    for charge in chosen:
        shares = allocate(charge.amount, charge.lines, fees)
        visits.append(
            SuperbillVisit(
                charge_id=charge.id,
                service_on=charge.service_on,
                lines=tuple(
                    SuperbillLine(
                        code=line.code.code,
                        system=line.code.system,
                        description=line.description,
                        modifiers=line.modifiers,
                        units=line.units,
                        charge=share,
                        note=line.note,
                    )
                    for line, share in zip(charge.lines, shares, strict=True)
                ),
                diagnoses=charge.diagnosis_codes,
                amount=charge.amount,
                paid=min(paid.get(charge.id, Money.zero(currency)), charge.amount),
            )
        )
        for code in charge.diagnosis_codes:
            if code not in diagnoses:
                known = CODE_TABLE.find(code)
                diagnoses[code] = SuperbillDiagnosis(code=code, description=known.description if known else None)

    charged = total([visit.amount for visit in visits], currency)
    paid_total = total([visit.paid for visit in visits], currency)
    return Superbill(
        patient_id=patient_id,
        patient=patient,
        provider=provider,
        period_start=start,
        period_end=end,
        prepared_on=prepared_on,
        visits=tuple(visits),
        diagnoses=tuple(diagnoses.values()),
        total_charges=charged,
        amount_paid=paid_total,
        statement=(
            f"The patient named above paid {paid_total} to {provider.name} for the services listed on this statement "
            f"(total charges {charged}), from {start.isoformat()} to {end.isoformat()}, and is seeking "
            "reimbursement from their health plan, including under any out-of-network benefits. The provider "
            "has not submitted a claim to the health plan for these services."
        ),
        signature_line=(
            f"Provider signature: ______________________________  Date: ____________  "
            f"({provider.name}, NPI {provider.npi})"
        ),
    )
