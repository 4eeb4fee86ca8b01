"""Good Faith Estimates: business days, deadlines, contents and the $400 rule. Pure and fast: no I/O.

Every expected date is written out literally (checked against a calendar), so a holiday library that got a date
wrong would fail here rather than be trusted.
"""

from __future__ import annotations

import ast
import inspect
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.billing.domain import estimates
from services.billing.domain.estimates import (
    DISPUTE_THRESHOLD,
    Address,
    Disclaimers,
    EstimateItem,
    EstimateProvider,
    EstimateStatus,
    GoodFaithEstimate,
    ProviderExcess,
    add_business_days,
    business_days_between,
    dispute_eligible,
    estimate_due,
    estimate_status,
    federal_holidays,
    is_business_day,
    npi_is_valid,
    scheduling_lead,
)
from services.billing.domain.money import Money

# CMS's worked example of the NPI check digit: 123456789 + check digit 3.
CLINIC_NPI = "1234567893"
# Check digits worked by hand with CMS's method (double alternate digits from the right, add 24, round up to 10).
THERAPIST_NPI = "1928374655"
UNLISTED_NPI = "1000000004"

# ---------------------------------------------------------------------------------------------------------------
# Federal holidays and business days (5 U.S.C. 6103)
# ---------------------------------------------------------------------------------------------------------------


def test_2026_federal_holidays_are_the_eleven_with_observed_days() -> None:
    assert set(federal_holidays(2026)) == {
        date(2026, 1, 1),  # New Year's Day
        date(2026, 1, 19),  # Birthday of Martin Luther King, Jr.
        date(2026, 2, 16),  # Washington's Birthday
        date(2026, 5, 25),  # Memorial Day
        date(2026, 6, 19),  # Juneteenth National Independence Day
        date(2026, 7, 3),  # Independence Day, observed: 4 July 2026 is a Saturday (6103(b)(1))
        date(2026, 7, 4),  # Independence Day
        date(2026, 9, 7),  # Labor Day
        date(2026, 10, 12),  # Columbus Day
        date(2026, 11, 11),  # Veterans Day
        date(2026, 11, 26),  # Thanksgiving Day
        date(2026, 12, 25),  # Christmas Day
    }


@pytest.mark.parametrize("year", [2026, 2027, 2028])
def test_exactly_eleven_federal_holidays_a_year(year: int) -> None:
    names = {name.removesuffix(" (observed)") for name in federal_holidays(year).values()}
    assert len(names) == 11


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 5, 22), True),  # Friday before Memorial Day
        (date(2026, 5, 23), False),  # Saturday
        (date(2026, 5, 24), False),  # Sunday
        (date(2026, 5, 25), False),  # Memorial Day 2026 (last Monday of May)
        (date(2026, 5, 26), True),  # Tuesday after
        (date(2026, 1, 19), False),  # Birthday of Martin Luther King, Jr. 2026
        (date(2026, 6, 19), False),  # Juneteenth 2026, a Friday
        (date(2026, 7, 3), False),  # Independence Day 2026 observed (the 4th is a Saturday)
        (date(2026, 10, 12), False),  # Columbus Day 2026
        (date(2026, 11, 11), False),  # Veterans Day 2026, a Wednesday
        (date(2026, 11, 26), False),  # Thanksgiving 2026
        (date(2026, 11, 27), True),  # the Friday after Thanksgiving is no federal holiday
        (date(2027, 6, 18), False),  # Juneteenth 2027 observed: 19 June 2027 is a Saturday
        (date(2027, 6, 21), True),  # the Monday after
        (date(2027, 7, 5), False),  # Independence Day 2027 observed: the 4th is a Sunday (EO 11582)
        (date(2027, 12, 24), False),  # Christmas 2027 observed: the 25th is a Saturday
        (date(2027, 12, 31), False),  # New Year's Day 2028 (a Saturday) observed the Friday before
        (date(2025, 12, 24), True),  # closed by executive order in 2025, but no legal public holiday
    ],
)
def test_is_business_day(day: date, expected: bool) -> None:
    assert is_business_day(day) is expected


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (date(2026, 3, 6), 1, date(2026, 3, 9)),  # Friday + 1 -> Monday, over the weekend
        (date(2026, 3, 7), 1, date(2026, 3, 9)),  # from a Saturday, the first business day after is Monday
        (date(2026, 3, 4), 0, date(2026, 3, 4)),
        (date(2026, 5, 22), 1, date(2026, 5, 26)),  # over the weekend and Memorial Day 2026
        (date(2026, 5, 22), 3, date(2026, 5, 28)),
        (date(2026, 11, 25), 1, date(2026, 11, 27)),  # over Thanksgiving 2026
        (date(2026, 11, 25), 3, date(2026, 12, 1)),
        (date(2027, 6, 17), 1, date(2027, 6, 21)),  # over Juneteenth 2027 observed on Friday 18 June
        (date(2027, 6, 17), 3, date(2027, 6, 23)),
        (date(2027, 12, 30), 1, date(2028, 1, 3)),  # over 31 December 2027 (observed) and the weekend
        (date(2026, 5, 26), -1, date(2026, 5, 22)),  # backwards over Memorial Day and the weekend
    ],
)
def test_add_business_days(day: date, n: int, expected: date) -> None:
    assert add_business_days(day, n) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (date(2026, 3, 2), date(2026, 3, 2), 0),
        (date(2026, 3, 2), date(2026, 3, 5), 3),  # Mon, Tue, Wed: the start counts, the end does not
        (date(2026, 3, 5), date(2026, 3, 2), -3),
        (date(2026, 3, 6), date(2026, 3, 9), 1),  # Friday to Monday
        (date(2026, 3, 7), date(2026, 3, 9), 0),  # Saturday to Monday
        (date(2026, 5, 21), date(2026, 5, 26), 2),  # Thu, Fri; Memorial Day does not count
        (date(2026, 11, 25), date(2026, 12, 1), 3),  # Wed, Fri, Mon; Thanksgiving does not count
    ],
)
def test_business_days_between(a: date, b: date, expected: int) -> None:
    assert business_days_between(a, b) == expected


@pytest.mark.parametrize("start", [date(2026, 5, 20), date(2026, 11, 23), date(2027, 6, 15), date(2027, 12, 28)])
@pytest.mark.parametrize("n", range(16))
def test_adding_then_counting_business_days_round_trips(start: date, n: int) -> None:
    assert is_business_day(start)
    assert business_days_between(start, add_business_days(start, n)) == n


# ---------------------------------------------------------------------------------------------------------------
# When an estimate is due (45 CFR 149.610(b)(1)(vi))
# ---------------------------------------------------------------------------------------------------------------

MONDAY = date(2026, 3, 2)  # an ordinary week: no federal holiday from 2 to 16 March 2026


@pytest.mark.parametrize(
    ("service_on", "lead", "due"),
    [
        # Same day: no lead at all; fewer than 3 business days ahead, so no timeframe applies: not required.
        (date(2026, 3, 2), 0, None),
        # 2 business days ahead (Mon, Tue before Wednesday): below (b)(1)(vi)(A)'s "at least 3": not required.
        (date(2026, 3, 4), 2, None),
        # 3 business days ahead (Mon, Tue, Wed before Thursday): (A), "at least 3 business days before" ->
        # "not later than 1 business day after the date of scheduling": Tuesday.
        (date(2026, 3, 5), 3, date(2026, 3, 3)),
        # 9 business days ahead (to Friday 13 March): still (A), 1 business day.
        (date(2026, 3, 13), 9, date(2026, 3, 3)),
        # 10 business days ahead (to Monday 16 March): (B), "at least 10 business days before" ->
        # "not later than 3 business days after the date of scheduling": Thursday.
        (date(2026, 3, 16), 10, date(2026, 3, 5)),
    ],
)
def test_lead_time_boundaries(service_on: date, lead: int, due: date | None) -> None:
    assert scheduling_lead(MONDAY, service_on) == lead
    assert estimate_due(MONDAY, service_on) == due


@pytest.mark.parametrize(
    ("scheduled_on", "service_on", "due"),
    [
        # Over a weekend: Friday for the Thursday after (Fri, Mon, Tue, Wed = 4 ahead, (A)): due Monday.
        (date(2026, 3, 6), date(2026, 3, 12), date(2026, 3, 9)),
        # A Saturday service: Wednesday for Saturday is 3 business days ahead (Wed, Thu, Fri), (A): due Thursday.
        (date(2026, 3, 4), date(2026, 3, 7), date(2026, 3, 5)),
        # Scheduled on a Saturday for Wednesday: only Mon and Tue come before the service, so fewer than 3: none.
        (date(2026, 3, 7), date(2026, 3, 11), None),
        # Saturday for Thursday: Mon, Tue, Wed = 3, (A): 1 business day after Saturday is Monday.
        (date(2026, 3, 7), date(2026, 3, 12), date(2026, 3, 9)),
        # Friday before Memorial Day 2026 for Thursday 28 May: Fri, Tue, Wed = 3, (A): due Tuesday 26 May, as
        # Monday 25 May is Memorial Day.
        (date(2026, 5, 22), date(2026, 5, 28), date(2026, 5, 26)),
        # Friday before Memorial Day 2026 for Friday 12 June: 14 ahead, (B): Tue 26, Wed 27, Thu 28 May.
        (date(2026, 5, 22), date(2026, 6, 12), date(2026, 5, 28)),
        # Memorial Day shortens the lead: Thursday 21 May for Tuesday 26 May is 2 (Thu, Fri): none required...
        (date(2026, 5, 21), date(2026, 5, 26), None),
        # ...while Wednesday 20 May for the same Tuesday is 3 (Wed, Thu, Fri), (A): due Thursday 21 May.
        (date(2026, 5, 20), date(2026, 5, 26), date(2026, 5, 21)),
        # Wednesday before Thanksgiving 2026 for Tuesday 1 December: Wed, Fri, Mon = 3, (A): due Friday 27 Nov.
        (date(2026, 11, 25), date(2026, 12, 1), date(2026, 11, 27)),
        # Same day of scheduling for Monday 14 December: 12 ahead, (B): Fri 27 Nov, Mon 30 Nov, Tue 1 Dec.
        (date(2026, 11, 25), date(2026, 12, 14), date(2026, 12, 1)),
        # Thursday 17 June 2027 (Juneteenth falls on Saturday 19 June, observed Friday 18 June) for Wednesday
        # 23 June: Thu, Mon, Tue = 3, (A): due Monday 21 June.
        (date(2027, 6, 17), date(2027, 6, 23), date(2027, 6, 21)),
        # Same scheduling day for Tuesday 6 July 2027: 11 ahead (5 July is Independence Day observed), (B):
        # Mon 21, Tue 22, Wed 23 June.
        (date(2027, 6, 17), date(2027, 7, 6), date(2027, 6, 23)),
    ],
)
def test_due_across_weekends_and_federal_holidays(scheduled_on: date, service_on: date, due: date | None) -> None:
    assert estimate_due(scheduled_on, service_on) == due


@pytest.mark.parametrize(
    ("requested_on", "due"),
    [
        # (b)(1)(vi)(C): "not later than 3 business days after the date of the request".
        (date(2026, 3, 2), date(2026, 3, 5)),  # Monday -> Thursday
        (date(2026, 3, 5), date(2026, 3, 10)),  # Thursday -> Tuesday, over the weekend
        (date(2026, 5, 22), date(2026, 5, 28)),  # Friday before Memorial Day -> Tue, Wed, Thu
        (date(2026, 11, 25), date(2026, 12, 1)),  # day before Thanksgiving -> Fri, Mon, Tue
        (date(2027, 6, 16), date(2027, 6, 22)),  # Thu 17, (Fri 18 June 2027 observed Juneteenth), Mon 21, Tue 22
    ],
)
def test_due_upon_request(requested_on: date, due: date) -> None:
    assert estimate_due(None, None, requested_on) == due


def test_a_request_is_owed_even_when_the_schedule_is_too_short() -> None:
    # Scheduled Monday for Wednesday (2 ahead: nothing upon scheduling), but requested too: (C) still applies.
    assert estimate_due(date(2026, 3, 2), date(2026, 3, 4), date(2026, 3, 2)) == date(2026, 3, 5)


def test_with_a_request_and_a_schedule_the_earlier_deadline_is_due() -> None:
    # Requested Friday 27 February (due Wednesday 4 March); scheduled Monday 2 March for Monday 9 March
    # (5 ahead, (A): due Tuesday 3 March). The scheduling deadline comes first.
    assert estimate_due(date(2026, 3, 2), date(2026, 3, 9), date(2026, 2, 27)) == date(2026, 3, 3)
    # Requested Monday 2 March (due Thursday 5 March); scheduled Thursday 5 March for 10 ahead ((B): due Tue 10).
    assert estimate_due(date(2026, 3, 5), date(2026, 3, 19), date(2026, 3, 2)) == date(2026, 3, 5)


@pytest.mark.parametrize(
    ("scheduled_on", "service_on", "requested_on"),
    [
        (date(2026, 3, 5), date(2026, 3, 2), None),  # service before its scheduling
        (date(2026, 3, 2), None, None),  # half a schedule
        (None, date(2026, 3, 2), date(2026, 3, 2)),
        (None, None, None),  # no scheduling and no request: nothing can be owed
    ],
)
def test_estimate_due_refuses_incoherent_input(
    scheduled_on: date | None, service_on: date | None, requested_on: date | None
) -> None:
    with pytest.raises(ValueError):
        estimate_due(scheduled_on, service_on, requested_on)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


@pytest.mark.parametrize("n", [3, 10])
def test_at_least_n_business_days_before_means_on_or_before_the_nth_business_day_before(n: int) -> None:
    # The reading documented in estimates.py, checked over weekends, Memorial Day 2026 and Juneteenth 2027.
    for service_on in [*_days(date(2026, 5, 18), date(2026, 6, 5)), *_days(date(2027, 6, 14), date(2027, 7, 9))]:
        nth_before = add_business_days(service_on, -n)
        for scheduled_on in _days(service_on - timedelta(days=30), service_on):
            assert (scheduling_lead(scheduled_on, service_on) >= n) == (scheduled_on <= nth_before)


@pytest.mark.parametrize(
    ("due", "issued_on", "today", "status"),
    [
        (None, None, date(2026, 3, 2), EstimateStatus.not_required),
        (None, date(2026, 3, 2), date(2026, 3, 3), EstimateStatus.issued),  # given although not required
        (date(2026, 3, 3), None, date(2026, 3, 2), EstimateStatus.due),
        (date(2026, 3, 3), None, date(2026, 3, 3), EstimateStatus.due),  # "not later than": the day itself is on time
        (date(2026, 3, 3), None, date(2026, 3, 4), EstimateStatus.overdue),
        (date(2026, 3, 3), date(2026, 3, 2), date(2026, 3, 9), EstimateStatus.issued),
        (date(2026, 3, 3), date(2026, 3, 3), date(2026, 3, 9), EstimateStatus.issued),
        (date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 9), EstimateStatus.issued_late),
    ],
)
def test_estimate_status(due: date | None, issued_on: date | None, today: date, status: EstimateStatus) -> None:
    assert estimate_status(due, issued_on, today) is status


def test_status_refuses_an_estimate_issued_in_the_future() -> None:
    with pytest.raises(ValueError):
        estimate_status(date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 3))


def test_status_follows_a_computed_deadline() -> None:
    due = estimate_due(date(2026, 5, 22), date(2026, 5, 28))  # Tuesday 26 May 2026
    assert estimate_status(due, None, date(2026, 5, 26)) is EstimateStatus.due
    assert estimate_status(due, None, date(2026, 5, 27)) is EstimateStatus.overdue
    assert estimate_status(due, date(2026, 5, 27), date(2026, 5, 28)) is EstimateStatus.issued_late


# ---------------------------------------------------------------------------------------------------------------
# NPI and TIN
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("npi", [CLINIC_NPI, THERAPIST_NPI, UNLISTED_NPI])
def test_valid_npis(npi: str) -> None:
    assert npi_is_valid(npi)


@pytest.mark.parametrize(
    "npi",
    [
        *(f"123456789{digit}" for digit in "012456789"),  # every wrong check digit of CMS's example
        "1234567897",  # valid under plain Luhn, without the 80840 prefix: not an NPI
        "123456789",  # 9 digits
        "12345678930",  # 11 digits
        "123456789X",
        " 1234567893",
        "١٢٣٤٥٦٧٨٩٣",  # Arabic-Indic digits: "digits", but not 0-9
    ],
)
def test_invalid_npis(npi: str) -> None:
    assert not npi_is_valid(npi)


def _address() -> dict[str, Any]:
    return {"line1": "100 Main Street", "line2": "Suite 200", "city": "Portland", "state": "OR", "postal_code": "97204"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("npi", "1234567890"),
        ("tin", "12-3456789"),
        ("tin", "12345678"),
        ("tin", "1234567890"),
    ],
)
def test_provider_refuses_a_bad_npi_or_tin(field: str, value: str) -> None:
    data: dict[str, Any] = {"name": "North Clinic", "npi": CLINIC_NPI, "tin": "123456789", "location": _address()}
    EstimateProvider.model_validate(data)
    with pytest.raises(ValidationError):
        EstimateProvider.model_validate({**data, field: value})


# ---------------------------------------------------------------------------------------------------------------
# Contents (45 CFR 149.610(c)) and Money
# ---------------------------------------------------------------------------------------------------------------


def _item(npi: str, cents: int, code: str = "90837", quantity: int = 1) -> dict[str, Any]:
    return {
        "service_code": code,
        "description": "Psychotherapy, 60 minutes",
        "quantity": quantity,
        "expected_charge": {"cents": cents},
        "provider_npi": npi,
        "diagnosis_codes": ["F33.1", "F43.10"],
    }


def _estimate(items: list[dict[str, Any]] | None = None, **changes: Any) -> GoodFaithEstimate:
    data: dict[str, Any] = {
        "patient": {"name": "Alex Doe", "date_of_birth": date(1985, 12, 10)},
        "primary_service": "Ketamine-assisted psychotherapy session",
        "scheduled_for": date(2026, 3, 16),
        "providers": [
            {
                "name": "North Clinic",
                "npi": CLINIC_NPI,
                "tin": "123456789",
                "location": _address(),
                "is_facility": True,
            },
            {"name": "Sam Roe, LCSW", "npi": THERAPIST_NPI, "tin": "987654321", "location": _address()},
        ],
        "items": items
        if items is not None
        else [
            # The clinic: $1,200.00 in all.
            _item(CLINIC_NPI, 900_00, code="J3490"),
            _item(CLINIC_NPI, 300_00, code="99215"),
            # The therapist: $300.00 (2 units at $150.00 on one line).
            _item(THERAPIST_NPI, 300_00, code="90837", quantity=2),
        ],
        "separately_billed": [
            {"description": "Integration therapy sessions after the course", "service_code": "90834"}
        ],
        **changes,
    }
    return GoodFaithEstimate.model_validate(data)


def test_total_and_provider_totals_are_money() -> None:
    estimate = _estimate()
    assert estimate.total == Money(cents=1500_00)
    assert estimate.provider_total(CLINIC_NPI) == Money(cents=1200_00)
    assert estimate.provider_total(THERAPIST_NPI) == Money(cents=300_00)
    assert estimate.provider_total(UNLISTED_NPI) == Money.zero()


def test_thirds_of_a_dollar_add_up_exactly() -> None:
    # Three lines of $33.33 are $99.99 exactly: integer cents, no binary fractions.
    estimate = _estimate([_item(CLINIC_NPI, 33_33), _item(CLINIC_NPI, 33_33), _item(THERAPIST_NPI, 33_33)])
    assert estimate.total == Money(cents=99_99)
    assert isinstance(estimate.total.cents, int)


@pytest.mark.parametrize(
    ("field", "value"), [("state", "Oregon"), ("postal_code", "9720"), ("postal_code", "97204-12")]
)
def test_address_refuses(field: str, value: str) -> None:
    Address.model_validate(_address())
    with pytest.raises(ValidationError):
        Address.model_validate({**_address(), field: value})


def test_an_items_charge_is_money_for_the_whole_line() -> None:
    item = EstimateItem.model_validate(_item(THERAPIST_NPI, 300_00, quantity=2))
    assert item.expected_charge == Money(cents=300_00)
    assert item.quantity == 2


def test_an_estimate_not_yet_scheduled() -> None:
    assert _estimate(scheduled_for=None).scheduled_for is None


def test_the_estimate_carries_the_required_contents() -> None:
    estimate = _estimate()
    assert estimate.patient.name == "Alex Doe"
    assert estimate.patient.date_of_birth == date(1985, 12, 10)
    assert {provider.npi for provider in estimate.providers} == {CLINIC_NPI, THERAPIST_NPI}
    assert all(provider.location.state == "OR" for provider in estimate.providers)
    assert estimate.items[0].diagnosis_codes == ("F33.1", "F43.10")
    assert estimate.separately_billed[0].service_code == "90834"
    disclaimers = estimate.disclaimers
    assert "not a contract" in disclaimers.not_a_contract
    assert "only an estimate" in disclaimers.estimate_only and "may differ" in disclaimers.estimate_only
    assert "$400" in disclaimers.dispute_rights
    assert "https://www.cms.gov/nosurprises" in disclaimers.dispute_rights
    assert "will not affect the quality" in disclaimers.dispute_rights
    assert "scheduled or requested separately" in disclaimers.separately_scheduled
    assert "Keep a copy" in disclaimers.keep_a_copy


def test_a_reworded_dispute_disclaimer_must_keep_the_threshold_and_the_address() -> None:
    with pytest.raises(ValidationError):
        Disclaimers(dispute_rights="You may dispute the bill.")


def test_the_estimate_round_trips_through_json() -> None:
    estimate = _estimate()
    assert GoodFaithEstimate.model_validate_json(estimate.model_dump_json()) == estimate


def test_the_estimate_is_frozen() -> None:
    estimate = _estimate()
    with pytest.raises(ValidationError):
        estimate.primary_service = "something else"  # type: ignore[misc]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"items": [_item(UNLISTED_NPI, 100_00)]}, id="an item from a provider not listed"),
        pytest.param({"items": []}, id="no items"),
        pytest.param({"providers": []}, id="no providers"),
        pytest.param(
            {"items": [{**_item(CLINIC_NPI, 100_00), "expected_charge": {"cents": 100.0}}]}, id="a float amount"
        ),
        pytest.param({"items": [{**_item(CLINIC_NPI, 100_00), "expected_charge": 100}]}, id="a bare number, not Money"),
        pytest.param({"items": [_item(CLINIC_NPI, -1)]}, id="a negative charge"),
        pytest.param({"items": [{**_item(CLINIC_NPI, 100_00), "quantity": 1.0}]}, id="a float quantity"),
        pytest.param({"items": [{**_item(CLINIC_NPI, 100_00), "quantity": 0}]}, id="no units"),
        pytest.param({"items": [{**_item(CLINIC_NPI, 100_00), "diagnosis_codes": ["depression"]}]}, id="not ICD-10-CM"),
        pytest.param({"patient": {"name": "", "date_of_birth": date(1985, 12, 10)}}, id="a patient without a name"),
    ],
)
def test_an_estimate_refuses(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _estimate(**change)


def test_an_estimate_refuses_a_provider_listed_twice() -> None:
    provider = {"name": "North Clinic", "npi": CLINIC_NPI, "tin": "123456789", "location": _address()}
    with pytest.raises(ValidationError):
        _estimate([_item(CLINIC_NPI, 100_00)], providers=[provider, provider])


# ---------------------------------------------------------------------------------------------------------------
# The $400 rule (45 CFR 149.620(b))
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("over_by_cents", "eligible"),
    [
        (399_99, False),  # $399.99 more: below "at least $400"
        (400_00, True),  # exactly $400.00 more: "at least $400" includes it
        (400_01, True),
    ],
)
def test_the_400_dollar_threshold(over_by_cents: int, eligible: bool) -> None:
    estimate = _estimate()  # the clinic is estimated at $1,200.00
    billed = {CLINIC_NPI: Money(cents=1200_00 + over_by_cents)}
    expected = (
        [
            ProviderExcess(
                npi=CLINIC_NPI,
                name="North Clinic",
                estimated=Money(cents=1200_00),
                billed=Money(cents=1200_00 + over_by_cents),
                excess=Money(cents=over_by_cents),
            )
        ]
        if eligible
        else []
    )
    assert dispute_eligible(estimate, billed) == expected


def test_the_threshold_is_400_dollars() -> None:
    assert Money(cents=400_00) == DISPUTE_THRESHOLD


def test_per_provider_one_over_one_under() -> None:
    estimate = _estimate()
    billed = {
        CLINIC_NPI: Money(cents=1600_01),  # $400.01 over its $1,200.00
        THERAPIST_NPI: Money(cents=699_99),  # $399.99 over its $300.00
    }
    [excess] = dispute_eligible(estimate, billed)
    assert excess.npi == CLINIC_NPI
    assert excess.excess == Money(cents=400_01)


def test_excesses_are_not_pooled_across_providers() -> None:
    # $300 over for each: $600 over in all, but no single provider is $400 over.
    billed = {CLINIC_NPI: Money(cents=1500_00), THERAPIST_NPI: Money(cents=600_00)}
    assert dispute_eligible(_estimate(), billed) == []


def test_both_providers_over_keep_the_estimates_order() -> None:
    billed = {THERAPIST_NPI: Money(cents=700_00), CLINIC_NPI: Money(cents=2000_00)}
    assert [excess.npi for excess in dispute_eligible(_estimate(), billed)] == [CLINIC_NPI, THERAPIST_NPI]
    assert [excess.excess for excess in dispute_eligible(_estimate(), billed)] == [
        Money(cents=800_00),
        Money(cents=400_00),
    ]


def test_billed_less_than_estimated_or_not_billed_is_not_eligible() -> None:
    assert dispute_eligible(_estimate(), {CLINIC_NPI: Money(cents=100_00)}) == []
    assert dispute_eligible(_estimate(), {}) == []


def test_a_provider_not_on_the_estimate_was_expected_to_charge_nothing() -> None:
    [excess] = dispute_eligible(_estimate(), {UNLISTED_NPI: Money(cents=400_00)})
    assert excess == ProviderExcess(
        npi=UNLISTED_NPI, name=None, estimated=Money.zero(), billed=Money(cents=400_00), excess=Money(cents=400_00)
    )
    assert dispute_eligible(_estimate(), {UNLISTED_NPI: Money(cents=399_99)}) == []


def test_billed_by_an_invalid_npi_is_refused() -> None:
    with pytest.raises(ValueError):
        dispute_eligible(_estimate(), {"1234567890": Money(cents=1000_00)})


# ---------------------------------------------------------------------------------------------------------------
# No floats anywhere
# ---------------------------------------------------------------------------------------------------------------


def test_the_module_has_no_floats() -> None:
    tree = ast.parse(inspect.getsource(estimates))
    float_literals = [node for node in ast.walk(tree) if isinstance(node, ast.Constant) and type(node.value) is float]
    float_names = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == "float"]
    true_division = [node for node in ast.walk(tree) if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)]
    assert (float_literals, float_names, true_division) == ([], [], [])
