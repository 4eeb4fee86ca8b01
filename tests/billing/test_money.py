"""Money (services/billing/domain/money.py): integer cents with their currency, never a float. Pure and fast."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.billing.domain import money
from services.billing.domain.money import MAX_CENTS, CurrencyMismatch, Money, total

# --- integer cents only ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cents",
    [
        1.5,  # a fraction of a cent does not exist
        1.0,  # a float, even a whole one, is refused: strict int (money.py)
        "100",  # nor a string
        True,  # nor a bool, which Python would take for 1
        None,
    ],
    ids=["fraction", "whole-float", "string", "bool", "none"],
)
def test_cents_must_be_an_int(cents: Any) -> None:
    with pytest.raises(ValidationError):
        Money(cents=cents)


def test_a_float_is_refused_from_json_too() -> None:
    assert Money.model_validate_json('{"cents": 100}') == Money(cents=100)
    with pytest.raises(ValidationError):
        Money.model_validate_json('{"cents": 100.0}')


def test_money_is_frozen() -> None:
    amount = Money(cents=100)
    with pytest.raises(ValidationError):
        amount.cents = 200  # type: ignore[misc]


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        Money(cents=1, dollars=1)  # type: ignore[call-arg]


# --- bounds: MAX_CENTS, ten million dollars either way (money.py) ------------------------------------------------


@pytest.mark.parametrize("cents", [MAX_CENTS, -MAX_CENTS, 0, 1, -1], ids=["max", "min", "zero", "one", "minus-one"])
def test_amounts_within_bounds_are_accepted(cents: int) -> None:
    assert Money(cents=cents).cents == cents


@pytest.mark.parametrize("cents", [MAX_CENTS + 1, -MAX_CENTS - 1], ids=["above-max", "below-min"])
def test_amounts_beyond_bounds_are_refused(cents: int) -> None:
    with pytest.raises(ValidationError):
        Money(cents=cents)


def test_max_cents_is_ten_million_dollars() -> None:
    assert MAX_CENTS == 1_000_000_000
    assert str(Money(cents=MAX_CENTS)) == "$10,000,000.00"


def test_a_sum_beyond_the_bound_is_refused_not_wrapped() -> None:
    with pytest.raises(ValidationError):
        Money(cents=MAX_CENTS) + Money(cents=1)


# --- currency -------------------------------------------------------------------------------------------------


def test_default_currency_is_usd() -> None:
    assert Money(cents=1).currency == "USD"


@pytest.mark.parametrize(
    "currency",
    [
        "EUR",  # well formed but not a currency kapnet bills in (CURRENCIES)
        "usd",  # ISO 4217 codes are upper case
        "US",
        "USDX",
    ],
)
def test_unknown_or_malformed_currency_is_refused(currency: str) -> None:
    with pytest.raises(ValidationError):
        Money(cents=1, currency=currency)


@pytest.fixture
def with_euros(monkeypatch: pytest.MonkeyPatch) -> None:
    # A second currency, as a site configured with one would have; kapnet itself bills only USD.
    monkeypatch.setattr(money, "CURRENCIES", frozenset({"USD", "EUR"}))


@pytest.mark.usefixtures("with_euros")
@pytest.mark.parametrize(
    "combine",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: total([a, b]),
    ],
    ids=["add", "subtract", "less-than", "less-or-equal", "total"],
)
def test_mixing_currencies_is_refused_never_converted(combine: Any) -> None:
    dollars, euros = Money(cents=100), Money(cents=100, currency="EUR")
    with pytest.raises(CurrencyMismatch, match="cannot combine USD and EUR"):
        combine(dollars, euros)


@pytest.mark.usefixtures("with_euros")
def test_same_foreign_currency_adds_and_keeps_its_currency() -> None:
    assert Money(cents=150, currency="EUR") + Money(cents=50, currency="EUR") == Money(cents=200, currency="EUR")
    assert total([], currency="EUR") == Money(cents=0, currency="EUR")
    assert str(Money(cents=-123456, currency="EUR")) == "-1234.56 EUR"


def test_currency_mismatch_is_a_value_error() -> None:
    assert issubclass(CurrencyMismatch, ValueError)


# --- arithmetic -----------------------------------------------------------------------------------------------


def test_arithmetic() -> None:
    a, b = Money(cents=1_050), Money(cents=275)
    assert a + b == Money(cents=1_325)
    assert a - b == Money(cents=775)
    assert b - a == Money(cents=-775)
    assert -a == Money(cents=-1_050)


def test_constructors() -> None:
    assert Money.zero() == Money(cents=0, currency="USD")
    assert Money(cents=1_200).currency == "USD"


def test_comparisons() -> None:
    small, big = Money(cents=99), Money(cents=100)
    assert small < big and small <= big and big <= big
    assert not big < small and not big <= small
    # No __gt__ of its own: Python reflects to __lt__, so max() works (ledger.overdue relies on it).
    assert max(small, big) == big and max(big, small) == big
    assert Money(cents=-1).is_negative and not Money.zero().is_negative and not big.is_negative


def test_total() -> None:
    assert total([]) == Money.zero()
    assert total([Money(cents=1), Money(cents=2), Money(cents=-4)]) == Money(cents=-1)


# --- percent_of: half up to the cent, integer arithmetic only ----------------------------------------------------


@pytest.mark.parametrize(
    ("cents", "percent", "expected"),
    [
        (10_000, 75, 7_500),  # exact
        (10_000, 0, 0),
        (10_000, 100, 10_000),
        (333, 75, 250),  # 249.75 -> 250
        (333, 50, 167),  # 166.5 -> 167: half rounds up
        (199, 50, 100),  # 99.5 -> 100
        (1, 50, 1),  # 0.5 -> 1
        (1, 49, 0),  # 0.49 -> 0
        (249, 25, 62),  # 62.25 -> 62
        (250, 25, 63),  # 62.5 -> 63
        (251, 25, 63),  # 62.75 -> 63
        (-150, 1, -1),  # -1.5 -> -1: half up is towards plus infinity
        (-151, 1, -2),  # -1.51 -> -2
        (MAX_CENTS, 100, MAX_CENTS),  # no float, no loss at the bound
        (MAX_CENTS - 1, 33, 330_000_000),  # 329,999,999.67 -> 330,000,000
    ],
)
def test_percent_of_rounds_half_up_to_the_cent(cents: int, percent: int, expected: int) -> None:
    result = Money(cents=cents).percent_of(percent)
    assert result == Money(cents=expected)
    assert type(result.cents) is int


# --- formatting -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (123_456, "$1,234.56"),
        (-123_456, "-$1,234.56"),
        (0, "$0.00"),
        (5, "$0.05"),
        (-5, "-$0.05"),
        (100, "$1.00"),
        (99_999, "$999.99"),
        (100_000, "$1,000.00"),
        (123_456_789, "$1,234,567.89"),
        (-MAX_CENTS, "-$10,000,000.00"),
    ],
)
def test_format(cents: int, text: str) -> None:
    assert str(Money(cents=cents)) == text
