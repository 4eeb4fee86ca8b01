"""Self-pay prices and the sliding scale (services/billing/domain/pricing.py). Pure and fast: no I/O.

The poverty guideline numbers are written out literally from [HHS 2025] (90 FR 5917, 48 contiguous states and DC),
not computed from the module's constants, so a wrong constant fails here.
"""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from services.billing.domain.money import Money
from services.billing.domain.pricing import (
    DEFAULT_TIERS,
    SESSION_SERVICE,
    BillableService,
    FinancialAssistance,
    Price,
    PriceNotSet,
    SlidingScaleTier,
    assess,
    discounted,
    overlapping,
    poverty_guideline,
    price_on,
)
from shared.treatment import Route

IV = BillableService.iv_infusion_session
ESK = BillableService.esketamine_session


def price(start: date, end: date | None, cents: int = 50_000, service: BillableService = IV) -> Price:
    return Price(service=service, amount=Money(cents=cents), valid_from=start, valid_to=end)


# --- a price --------------------------------------------------------------------------------------------------


def test_every_route_has_a_session_service() -> None:
    assert set(SESSION_SERVICE) == set(Route)


@pytest.mark.parametrize("cents", [0, -1], ids=["zero", "negative"])
def test_a_price_is_more_than_zero(cents: int) -> None:
    with pytest.raises(ValidationError, match="more than zero"):
        price(date(2025, 1, 1), None, cents=cents)


def test_a_price_ends_on_or_after_it_starts() -> None:
    with pytest.raises(ValidationError, match="valid_to is before valid_from"):
        price(date(2025, 1, 2), date(2025, 1, 1))
    # A one-day price is allowed: valid_to is inclusive.
    one_day = price(date(2025, 1, 1), date(2025, 1, 1))
    assert one_day.holds_on(date(2025, 1, 1))
    assert not one_day.holds_on(date(2024, 12, 31)) and not one_day.holds_on(date(2025, 1, 2))


@pytest.mark.parametrize(
    ("day", "holds"),
    [
        (date(2024, 12, 31), False),  # the day before valid_from
        (date(2025, 1, 1), True),  # valid_from is inclusive
        (date(2025, 6, 30), True),  # valid_to is inclusive
        (date(2025, 7, 1), False),  # the day after valid_to
    ],
)
def test_holds_on_both_ends_inclusive(day: date, holds: bool) -> None:
    assert price(date(2025, 1, 1), date(2025, 6, 30)).holds_on(day) is holds


def test_an_open_ended_price_holds_for_ever() -> None:
    assert price(date(2025, 1, 1), None).holds_on(date(9999, 12, 31))


# --- a day has one price: overlap detection at the edges ----------------------------------------------------------

FIRST_HALF = price(date(2025, 1, 1), date(2025, 6, 30))


@pytest.mark.parametrize(
    ("new", "overlaps"),
    [
        # Starts on the old price's last day: that day would have two prices (valid_to is inclusive).
        (price(date(2025, 6, 30), None), True),
        # Starts the day after: adjacent, no overlap.
        (price(date(2025, 7, 1), None), False),
        (price(date(2025, 7, 1), date(2025, 7, 1)), False),
        # Ends on the old price's first day.
        (price(date(2024, 1, 1), date(2025, 1, 1)), True),
        # Ends the day before.
        (price(date(2024, 1, 1), date(2024, 12, 31)), False),
        # Inside, around, the same dates.
        (price(date(2025, 3, 1), date(2025, 3, 1)), True),
        (price(date(2024, 1, 1), date(2026, 1, 1)), True),
        (price(date(2025, 1, 1), date(2025, 6, 30)), True),
        # Open-ended and starting before: runs over the old one.
        (price(date(2020, 1, 1), None), True),
        # Another service on the same days is no overlap.
        (price(date(2025, 1, 1), date(2025, 6, 30), service=ESK), False),
    ],
    ids=[
        "starts-on-last-day",
        "starts-day-after",
        "one-day-after",
        "ends-on-first-day",
        "ends-day-before",
        "inside",
        "around",
        "same-dates",
        "open-ended-before",
        "other-service",
    ],
)
def test_overlapping_at_the_edges(new: Price, overlaps: bool) -> None:
    assert overlapping([FIRST_HALF], new) == (FIRST_HALF if overlaps else None)


def test_two_open_ended_prices_overlap() -> None:
    old = price(date(2025, 1, 1), None)
    assert overlapping([old], price(date(2030, 1, 1), None)) == old
    assert overlapping([old], price(date(2024, 1, 1), date(2024, 12, 31))) is None


def test_overlapping_names_the_clashing_price_among_several() -> None:
    esk = price(date(2025, 1, 1), None, service=ESK)
    old = price(date(2024, 1, 1), date(2024, 12, 31))
    current = price(date(2025, 1, 1), None)
    assert overlapping([esk, old, current], price(date(2025, 3, 1), None)) == current
    assert overlapping([], price(date(2025, 3, 1), None)) is None


# --- price_on ---------------------------------------------------------------------------------------------------

PRICE_LIST = [
    price(date(2025, 1, 1), date(2025, 6, 30), cents=45_000),
    price(date(2025, 7, 1), None, cents=50_000),
    price(date(2025, 1, 1), None, cents=70_000, service=ESK),
]


@pytest.mark.parametrize(
    ("service", "day", "cents"),
    [
        (IV, date(2025, 1, 1), 45_000),
        (IV, date(2025, 6, 30), 45_000),  # the old price's last day (inclusive)
        (IV, date(2025, 7, 1), 50_000),  # the new price's first day
        (IV, date(2030, 1, 1), 50_000),
        (ESK, date(2025, 6, 30), 70_000),
    ],
)
def test_price_on_picks_the_price_valid_that_day(service: BillableService, day: date, cents: int) -> None:
    assert price_on(PRICE_LIST, service, day) == Money(cents=cents)


@pytest.mark.parametrize(
    ("service", "day"),
    [
        (IV, date(2024, 12, 31)),  # before any price
        (BillableService.integration_therapy, date(2025, 3, 1)),  # no price for the service at all
    ],
)
def test_price_on_without_a_price_names_the_service_and_day(service: BillableService, day: date) -> None:
    with pytest.raises(PriceNotSet) as raised:
        price_on(PRICE_LIST, service, day)
    assert service.value in str(raised.value)
    assert day.isoformat() in str(raised.value)


def test_price_not_set_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        price_on([], IV, date(2025, 1, 1))


# --- the poverty guideline [HHS 2025] ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("household_size", "dollars"),
    [
        # [HHS 2025], 48 contiguous states and DC: $15,650 for one, $5,500 for each further person.
        (1, 15_650),
        (2, 21_150),
        (3, 26_650),
        (4, 32_150),
        (5, 37_650),
        (6, 43_150),
        (7, 48_650),
        (8, 54_150),
    ],
)
def test_poverty_guideline_2025(household_size: int, dollars: int) -> None:
    assert poverty_guideline(household_size) == Money(cents=dollars * 100)


@pytest.mark.parametrize("household_size", [0, -1])
def test_a_household_has_at_least_one_person(household_size: int) -> None:
    with pytest.raises(ValueError, match="at least one person"):
        poverty_guideline(household_size)


# --- the sliding scale: tiers (clinic policy, DEFAULT_TIERS: 100 % -> 75 off, 200 % -> 50 off, 300 % -> 25 off) -----


def test_default_tiers_are_the_clinic_policy() -> None:
    assert [(t.up_to_percent_of_guideline, t.discount_percent) for t in DEFAULT_TIERS] == [
        (100, 75),
        (200, 50),
        (300, 25),
    ]


@pytest.mark.parametrize(
    ("income_cents", "size", "percent", "discount"),
    [
        (0, 1, 0, 75),  # no income
        (15_650_00, 1, 100, 75),  # exactly 100 % of $15,650: the 100 % tier ("at or below")
        (15_651_00, 1, 101, 50),  # $1 over: 100.006 % rounds up to 101, the next tier
        (15_650_01, 1, 101, 50),  # even one cent over leaves the tier (rounded up, never down)
        (32_150_00, 4, 100, 75),  # exactly 100 % for four: $32,150
        (32_151_00, 4, 101, 50),
        (31_300_00, 1, 200, 50),  # exactly 200 % of $15,650 = $31,300
        (31_301_00, 1, 201, 25),
        (46_950_00, 1, 300, 25),  # exactly 300 % = $46,950
        (46_951_00, 1, 301, 0),  # above the last tier: no discount
        (162_450_00, 8, 300, 25),  # 300 % of $54,150 for eight
        (162_451_00, 8, 301, 0),
        (1_000_000_00, 3, 3753, 0),  # $1,000,000 / $26,650 = 3752.3 % -> 3753
    ],
)
def test_assess_tier_boundaries(income_cents: int, size: int, percent: int, discount: int) -> None:
    result = assess(Money(cents=income_cents), size, DEFAULT_TIERS)
    assert result == FinancialAssistance(
        household_size=size,
        household_income=Money(cents=income_cents),
        percent_of_guideline=percent,
        discount_percent=discount,
    )


@pytest.mark.parametrize(
    ("income_cents", "percent"),
    [
        (1, 1),  # any income above zero is at least 1 %
        (156_50, 1),  # exactly 1 % of $15,650
        (156_51, 2),  # just over 1 %: rounded up
        (7_825_00, 50),  # exactly half
        (7_825_01, 51),
    ],
)
def test_percent_of_guideline_is_rounded_up(income_cents: int, percent: int) -> None:
    assert assess(Money(cents=income_cents), 1, DEFAULT_TIERS).percent_of_guideline == percent


def test_tiers_are_taken_lowest_first_whatever_their_order() -> None:
    shuffled = (DEFAULT_TIERS[2], DEFAULT_TIERS[0], DEFAULT_TIERS[1])
    assert assess(Money(cents=10_000_00), 1, shuffled).discount_percent == 75
    assert assess(Money(cents=20_000_00), 1, shuffled).discount_percent == 50


def test_no_tiers_no_discount() -> None:
    assert assess(Money.zero(), 1, ()).discount_percent == 0


def test_negative_income_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        assess(Money(cents=-1), 1, DEFAULT_TIERS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("up_to_percent_of_guideline", 0),
        ("up_to_percent_of_guideline", 1001),
        ("discount_percent", -1),
        ("discount_percent", 101),
    ],
)
def test_tier_bounds(field: str, value: int) -> None:
    fields = {"up_to_percent_of_guideline": 100, "discount_percent": 50, field: value}
    with pytest.raises(ValidationError):
        SlidingScaleTier.model_validate(fields)


# --- discounted prices, in cents ----------------------------------------------------------------------------------


def assistance(discount_percent: int) -> FinancialAssistance:
    return FinancialAssistance(
        household_size=1, household_income=Money.zero(), percent_of_guideline=0, discount_percent=discount_percent
    )


@pytest.mark.parametrize(
    ("price_cents", "discount", "expected"),
    [
        (50_000, 75, 12_500),  # $500.00 less 75 % = $125.00
        (50_000, 50, 25_000),
        (50_000, 25, 37_500),
        (50_000, 0, 50_000),
        (50_000, 100, 0),
        # The discount is rounded half up to the cent (Money.percent_of); the patient pays the rest.
        (333, 75, 83),  # discount 249.75 -> 250
        (199, 50, 99),  # discount 99.5 -> 100
        (45_001, 25, 33_751),  # discount 11,250.25 -> 11,250
        (1, 50, 0),  # discount 0.5 -> 1
    ],
)
def test_discounted_price_in_cents(price_cents: int, discount: int, expected: int) -> None:
    result = discounted(Money(cents=price_cents), assistance(discount))
    assert result == Money(cents=expected)
    assert type(result.cents) is int


def test_no_assistance_is_the_full_price() -> None:
    assert discounted(Money(cents=50_000), None) == Money(cents=50_000)


def test_assess_then_discount() -> None:
    # A household of four at $40,000 is 125 % of $32,150 (124.4 rounded up): the 200 % tier, half off.
    found = assess(Money(cents=40_000_00), 4, DEFAULT_TIERS)
    assert (found.percent_of_guideline, found.discount_percent) == (125, 50)
    assert discounted(Money(cents=45_000), found) == Money(cents=22_500)
