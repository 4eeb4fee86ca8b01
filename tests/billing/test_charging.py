"""How a visit becomes a charge (services/billing/domain/charging.py). Pure and fast: no I/O.

The lines come from the real code rules (codes.py); prices, the sliding scale and coverage from their modules.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date

import pytest

from services.billing.domain.charging import charge_for
from services.billing.domain.claims import DEFAULT_FEES_CENTS
from services.billing.domain.codes import ChargeLine, NotBillable, dosing_session_lines, integration_session_lines
from services.billing.domain.coverage import (
    CoverageDetermination,
    CoverageKind,
    CoverageOnFile,
    PayerType,
    PlanBenefits,
    determine,
)
from services.billing.domain.ledger import Charge, ChargeSource
from services.billing.domain.money import Money
from services.billing.domain.pricing import BillableService, FinancialAssistance, Price
from services.billing.domain.prior_auth import PriorAuthStatus
from shared.treatment import Indication, Route

PATIENT = uuid.uuid4()
COURSE = uuid.uuid4()
DAY = date(2026, 3, 2)
SERVICE = BillableService.integration_therapy
PRICES = [Price(service=SERVICE, amount=Money(cents=20_000), valid_from=date(2026, 1, 1))]
HALF_OFF = FinancialAssistance(
    household_size=1, household_income=Money(cents=20_000_00), percent_of_guideline=128, discount_percent=50
)

INSURED = CoverageOnFile(self_pay=False, payer="Acme Health", plan="Gold PPO", member_id="M123")


def benefits(*, off_label: bool, psychotherapy: bool) -> PlanBenefits:
    return PlanBenefits(
        payer="Acme Health",
        plan="Gold PPO",
        payer_type=PayerType.commercial,
        covers_esketamine_with_prior_auth=False,
        covers_off_label_ketamine=off_label,
        covers_psychotherapy=psychotherapy,
    )


def coverage(kind: CoverageKind) -> CoverageDetermination:
    """A real determination of each kind, for IV ketamine for depression."""
    plans = {
        CoverageKind.covered: benefits(off_label=True, psychotherapy=True),
        CoverageKind.partly_covered: benefits(off_label=False, psychotherapy=True),
        CoverageKind.not_covered: benefits(off_label=False, psychotherapy=False),
    }
    found = determine(Route.iv_infusion, Indication.depression, INSURED, plans[kind], site_rems_certified=False)
    assert found.kind is kind
    return found


def fifty_minutes() -> list[ChargeLine]:
    return integration_session_lines(DAY, 50)  # 90834 [AMA CPT]


def ten_minutes() -> list[ChargeLine]:
    return integration_session_lines(DAY, 10)  # under 16 minutes: NotBillable [AMA CPT]


def charged(
    *,
    prices: Sequence[Price] = PRICES,
    assistance: FinancialAssistance | None = None,
    determination: CoverageDetermination | None = None,
    lines: Callable[[], Sequence[ChargeLine]] = fifty_minutes,
    service_on: date = DAY,
) -> Charge:
    return charge_for(
        patient_id=PATIENT,
        course_id=COURSE,
        source=ChargeSource.integration_session,
        source_id=uuid.uuid4(),
        service=SERVICE,
        service_on=service_on,
        lines=lines,
        diagnosis_codes=["F32.9"],
        prices=prices,
        assistance=assistance,
        coverage=determination,
        fees=DEFAULT_FEES_CENTS,
    )


@pytest.mark.parametrize(
    ("determination", "assistance", "amount", "patient_share", "billed_to_payer"),
    [
        # Self-pay (no determination, or not covered): the patient owes the discounted price now.
        (None, None, 20_000, 20_000, False),
        (None, HALF_OFF, 10_000, 10_000, False),
        (coverage(CoverageKind.not_covered), HALF_OFF, 10_000, 10_000, False),
        # Covered: the payer is billed first; the patient owes nothing until the claim is adjudicated.
        (coverage(CoverageKind.covered), None, 20_000, 0, True),
        (coverage(CoverageKind.covered), HALF_OFF, 10_000, 0, True),
        # Partly covered: the payer is billed for the covered lines; the patient owes the uncovered lines' part
        # of the price. Psychotherapy (90834) is the covered part here, so nothing is the patient's up front.
        (coverage(CoverageKind.partly_covered), None, 20_000, 0, True),
        (coverage(CoverageKind.partly_covered), HALF_OFF, 10_000, 0, True),
    ],
    ids=[
        "self-pay",
        "self-pay-sliding-scale",
        "not-covered-sliding-scale",
        "covered",
        "covered-sliding-scale",
        "partly-covered",
        "partly-covered-sliding-scale",
    ],
)
def test_who_owes_what(
    determination: CoverageDetermination | None,
    assistance: FinancialAssistance | None,
    amount: int,
    patient_share: int,
    billed_to_payer: bool,
) -> None:
    charge = charged(determination=determination, assistance=assistance)
    assert charge.amount == Money(cents=amount)
    assert charge.patient_share == Money(cents=patient_share)
    assert charge.billed_to_payer is billed_to_payer
    assert charge.needs_attention is None


def test_a_charge_carries_the_visit_and_its_lines() -> None:
    source_id = uuid.uuid4()
    charge = charge_for(
        patient_id=PATIENT,
        course_id=COURSE,
        source=ChargeSource.integration_session,
        source_id=source_id,
        service=SERVICE,
        service_on=DAY,
        lines=fifty_minutes,
        diagnosis_codes=["F32.9"],
        prices=PRICES,
        assistance=None,
        coverage=None,
        fees=DEFAULT_FEES_CENTS,
    )
    assert (charge.patient_id, charge.course_id, charge.source, charge.source_id, charge.service_on) == (
        PATIENT,
        COURSE,
        ChargeSource.integration_session,
        source_id,
        DAY,
    )
    assert [line.code.code for line in charge.lines] == ["90834"]
    assert charge.diagnosis_codes == ("F32.9",)


def test_the_price_of_the_day_of_service() -> None:
    prices = [
        Price(service=SERVICE, amount=Money(cents=18_000), valid_from=date(2025, 1, 1), valid_to=date(2026, 3, 1)),
        Price(service=SERVICE, amount=Money(cents=20_000), valid_from=date(2026, 3, 2)),
    ]
    assert charged(prices=prices, service_on=date(2026, 3, 1), lines=list).amount == Money(cents=18_000)
    assert charged(prices=prices, service_on=date(2026, 3, 2), lines=list).amount == Money(cents=20_000)


# --- a charge that needs attention is recorded at zero for the patient, not raised --------------------------------


@pytest.mark.parametrize(
    "determination",
    [None, coverage(CoverageKind.partly_covered), coverage(CoverageKind.covered)],
    ids=["self-pay", "partly-covered", "covered"],
)
def test_no_price_that_day_is_a_zero_charge_needing_attention(determination: CoverageDetermination | None) -> None:
    charge = charged(prices=[], determination=determination)
    assert charge.amount == Money.zero()
    assert charge.patient_share == Money.zero()
    assert charge.needs_attention is not None
    # PriceNotSet's message names the service and the day.
    assert SERVICE.value in charge.needs_attention and DAY.isoformat() in charge.needs_attention
    assert [line.code.code for line in charge.lines] == ["90834"]  # the coding itself was fine


def test_price_valid_only_before_the_day_is_a_zero_charge() -> None:
    expired = [
        Price(service=SERVICE, amount=Money(cents=18_000), valid_from=date(2025, 1, 1), valid_to=date(2026, 3, 1))
    ]
    charge = charged(prices=expired)
    assert charge.patient_share == Money.zero() and charge.needs_attention


@pytest.mark.parametrize(
    "determination",
    [None, coverage(CoverageKind.partly_covered), coverage(CoverageKind.covered)],
    ids=["self-pay", "partly-covered", "covered"],
)
def test_a_visit_the_code_rules_cannot_code_needs_attention(determination: CoverageDetermination | None) -> None:
    charge = charged(lines=ten_minutes, determination=determination, assistance=HALF_OFF)
    assert charge.lines == ()
    assert charge.patient_share == Money.zero()  # nothing is owed until billing has looked at it
    assert charge.needs_attention is not None and charge.needs_attention.startswith("not coded: ")


def test_the_coding_problem_is_reported_before_the_price_problem() -> None:
    charge = charged(lines=ten_minutes, prices=[])
    assert charge.amount == Money.zero() and charge.patient_share == Money.zero()
    assert charge.needs_attention is not None and charge.needs_attention.startswith("not coded: ")


def test_any_not_billable_is_caught() -> None:
    def refused() -> list[ChargeLine]:
        raise NotBillable("no dose recorded")

    charge = charged(lines=refused)
    assert charge.needs_attention == "not coded: no dose recorded"


def test_other_errors_are_not_swallowed() -> None:
    def broken() -> list[ChargeLine]:
        raise RuntimeError("a bug, not a billing problem")

    with pytest.raises(RuntimeError):
        charged(lines=broken)


def test_a_partly_covered_iv_visit_charges_the_patient_only_the_uncovered_lines_part() -> None:
    """A $500 IV visit, 40 minutes of infusion and 53 of psychotherapy: 96365 + J3490 (off-label ketamine and its
    administration, the patient's) and 99214-25 + 90838 (claimed). Split by the site's fees 250 : 50 : 200 : 160
    (of 660): 189.41 (the 2 cents left over go on the first line) + 37.87 = 227.28 is the patient's, the rest
    goes to the payer on the claim; the patient is not charged the whole visit as well."""
    iv = [Price(service=BillableService.iv_infusion_session, amount=Money(cents=500_00), valid_from=date(2026, 1, 1))]
    charge = charge_for(
        patient_id=PATIENT,
        course_id=COURSE,
        source=ChargeSource.dosing_session,
        source_id=uuid.uuid4(),
        service=BillableService.iv_infusion_session,
        service_on=DAY,
        lines=lambda: dosing_session_lines(Route.iv_infusion, DAY, 40.0, 40, 53),
        diagnosis_codes=["F32.9"],
        prices=iv,
        assistance=None,
        coverage=coverage(CoverageKind.partly_covered),
        fees=DEFAULT_FEES_CENTS,
    )
    assert [line.code.code for line in charge.lines] == ["96365", "J3490", "99214", "90838"]
    assert (charge.amount.cents, charge.patient_share.cents, charge.billed_to_payer) == (500_00, 227_28, True)


def test_a_visit_charged_after_the_payer_denied_the_authorisation_is_the_patients() -> None:
    esketamine = PlanBenefits(
        payer="Acme Health",
        plan="Gold PPO",
        payer_type=PayerType.commercial,
        covers_esketamine_with_prior_auth=True,
        covers_off_label_ketamine=False,
        covers_psychotherapy=True,
    )
    determination = determine(
        Route.intranasal_esketamine,
        Indication.treatment_resistant_depression,
        INSURED,
        esketamine,
        site_rems_certified=True,
    )
    assert determination.kind is CoverageKind.covered and determination.prior_auth_needed
    for status, billed_to_payer, share in (
        (PriorAuthStatus.submitted, True, 0),
        (PriorAuthStatus.approved, True, 0),
        (PriorAuthStatus.denied, False, 20_000),
    ):
        charge = charge_for(
            patient_id=PATIENT,
            course_id=COURSE,
            source=ChargeSource.dosing_session,
            source_id=uuid.uuid4(),
            service=SERVICE,
            service_on=DAY,
            lines=fifty_minutes,
            diagnosis_codes=["F33.9"],
            prices=PRICES,
            assistance=None,
            coverage=determination,
            fees=DEFAULT_FEES_CENTS,
            prior_auth=status,
        )
        assert (charge.billed_to_payer, charge.patient_share.cents) == (billed_to_payer, share), status
