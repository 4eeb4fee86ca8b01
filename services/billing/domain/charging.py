"""How a completed visit becomes a charge: the codes valid on its day (codes.py), the site's self-pay price for
the visit less the patient's sliding-scale discount (pricing.py), and who is billed first (coverage.py).

- Not covered (self-pay): the patient owes the discounted price now.
- Covered: the payer is billed first; the patient owes nothing until the claim is adjudicated.
- Partly covered: the payer is billed for the covered lines (psychotherapy, the E/M); the patient owes the
  discounted price for the uncovered part, the off-label ketamine and its administration. The site's price is
  per visit, not per line, so the patient's share is the visit's price (clinic policy; a per-code fee schedule
  would split it line by line, and comes with claims).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date

from services.billing.domain.codes import ChargeLine, NotBillable
from services.billing.domain.coverage import CoverageDetermination, CoverageKind
from services.billing.domain.ledger import Charge, ChargeSource
from services.billing.domain.money import Money
from services.billing.domain.pricing import (
    BillableService,
    FinancialAssistance,
    Price,
    PriceNotSet,
    discounted,
    price_on,
)


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
    patient_share = Money.zero(amount.currency) if kind is CoverageKind.covered else amount
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
