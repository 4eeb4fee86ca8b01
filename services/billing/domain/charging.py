"""How a completed visit becomes a charge: the codes valid on its day (codes.py), the site's self-pay price for
the visit less the patient's sliding-scale discount (pricing.py), and who is billed first (coverage.py).

- Not covered (self-pay): the patient owes the discounted price now.
- Covered: the payer is billed first; the patient owes nothing until the claim is adjudicated.
- Partly covered: the payer is billed for the covered lines (psychotherapy, the E/M); the patient owes the
  uncovered lines' part of the discounted visit price (the off-label ketamine and its administration). The
  site's price is per visit, so it is split over the lines in proportion to the site's fee for each (clinic
  policy); charging the patient the whole visit besides claiming the covered lines would bill them twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date

from services.billing.domain.claims import line_covered
from services.billing.domain.codes import ChargeLine, NotBillable
from services.billing.domain.coverage import CoverageDetermination, CoverageKind
from services.billing.domain.ledger import Charge, ChargeSource
from services.billing.domain.money import Money, total
from services.billing.domain.pricing import (
    BillableService,
    FinancialAssistance,
    Price,
    PriceNotSet,
    discounted,
    price_on,
)
from services.billing.domain.prior_auth import PriorAuthStatus


def charge_for(
    *,
    patient_id: uuid.UUID,
    course_id: uuid.UUID | None,
    source: ChargeSource,
    source_id: uuid.UUID,
    service: BillableService,
    service_on: date,
    lines: Callable[[], Sequence[ChargeLine]],
    diagnosis_codes: Sequence[str],
    prices: Sequence[Price],
    assistance: FinancialAssistance | None,
    coverage: CoverageDetermination | None,
    fees: Mapping[str, int],
    prior_auth: PriorAuthStatus | None = None,
) -> Charge:
    problem: str | None = None
    try:
        coded = tuple(lines())
    except NotBillable as exc:
        coded, problem = (), f"not coded: {exc}"
    try:
        amount = discounted(price_on(prices, service, service_on), assistance)
    except PriceNotSet as exc:
        amount, problem = Money.zero(), problem or str(exc)
    if problem:
        amount = Money.zero(amount.currency)  # recorded at zero until billing has looked at it
    kind = coverage.kind if coverage is not None else CoverageKind.not_covered
    if coverage is not None and coverage.prior_auth_needed and prior_auth is PriorAuthStatus.denied:
        kind = CoverageKind.not_covered  # the payer refused the course: the visit is the patient's
    if kind is CoverageKind.covered:
        patient_share = Money.zero(amount.currency)
    elif kind is CoverageKind.partly_covered and coverage is not None and coded:
        shares = allocate(amount, coded, fees)
        parts = coverage.covered_parts
        patient_share = total(
            [share for share, line in zip(shares, coded, strict=True) if not line_covered(line, parts)], amount.currency
        )
    else:
        patient_share = amount
    return Charge(
        id=uuid.uuid4(),
        patient_id=patient_id,
        course_id=course_id,
        source=source,
        source_id=source_id,
        service_on=service_on,
        lines=coded,
        diagnosis_codes=tuple(diagnosis_codes),
        amount=amount,
        patient_share=patient_share,
        billed_to_payer=kind is not CoverageKind.not_covered,
        needs_attention=problem,
    )


def allocate(amount: Money, lines: Sequence[ChargeLine], fees: Mapping[str, int]) -> list[Money]:
    """``amount`` spread over ``lines`` in proportion to each line's fee times its units, in whole cents (rounded
    down), the cents left over on the first line: the shares add up exactly to ``amount``. A code the fee schedule
    has no fee for weighs nothing; if no line weighs anything, the whole amount is on the first line."""
    if not lines:
        raise ValueError("nothing to allocate to: the charge has no lines")
    weights = [max(fees.get(line.code.code, 0), 0) * line.units for line in lines]
    whole = sum(weights)
    shares = [amount.cents * weight // whole if whole else 0 for weight in weights]
    shares[0] += amount.cents - sum(shares)
    return [Money(cents=share, currency=amount.currency) for share in shares]
