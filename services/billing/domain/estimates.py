"""Good Faith Estimates for uninsured or self-pay individuals: when one is due, what it says, and when a bill may be
disputed. Pure rules, no I/O.

Sources:
- [No Surprises Act] Public Health Service Act sec. 2799B-6 (42 U.S.C. 300gg-136), implemented by
  [45 CFR 149.610] (Requirements for provision of good faith estimates of expected charges for uninsured (or
  self-pay) individuals) and [45 CFR 149.620] (patient-provider dispute resolution, PPDR).
- [5 U.S.C. 6103] Legal public holidays: the eleven federal holidays (a); a holiday on a Saturday is observed on
  the Friday before (b)(1); one on a Sunday on the Monday after (Executive Order 11582, sec. 3(a)).
- [NPI check digit] CMS, "Requirements for National Provider Identifier (NPI) and NPI Enumeration", check-digit
  algorithm: the Luhn formula of ISO/IEC 7812 over the 9 leading digits prefixed with 80840 (the card issuer
  prefix of US health applications); the NPI standard itself is 45 CFR 162.406.

Amounts are `Money` (integer cents); nothing here is ever a float.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Self

import holidays
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.billing.domain.money import Money, total

# ---------------------------------------------------------------------------------------------------------------
# Business days
# ---------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _holiday_dates(year: int) -> frozenset[date]:
    return frozenset(federal_holidays(year))


def _federal_calendar(year: int) -> holidays.HolidayBase:
    # The "public" category of the US calendar, without a state (subdiv), is exactly the eleven legal public
    # holidays of [5 U.S.C. 6103](a) (New Year's Day, Birthday of Martin Luther King Jr., Washington's Birthday,
    # Memorial Day, Juneteenth National Independence Day, Independence Day, Labor Day, Columbus Day, Veterans Day,
    # Thanksgiving Day, Christmas Day) plus, with observed=True, the weekday each is observed on when it falls on a
    # weekend ([5 U.S.C. 6103](b)(1): Saturday -> the Friday before; EO 11582 sec. 3(a): Sunday -> the Monday
    # after). The observed day can fall in the year before: New Year's Day 2028 (a Saturday) is observed on Friday
    # 31 December 2027, and the library files it under 2027, which is the year we look it up in.
    # The "government" category is deliberately not used: it adds one-off executive-order closures (e.g. Christmas
    # Eve 2025), which are not legal public holidays and which would move deadlines after the fact.
    return holidays.country_holidays("US", years=year, categories=(holidays.PUBLIC,), observed=True)


def federal_holidays(year: int) -> dict[date, str]:
    """The US federal holidays of `year`, observed days included, by date ([5 U.S.C. 6103])."""
    return dict(sorted(_federal_calendar(year).items()))


def is_business_day(day: date) -> bool:
    """Monday to Friday, except a US federal holiday or the weekday it is observed on ([5 U.S.C. 6103])."""
    return day.weekday() < 5 and day not in _holiday_dates(day.year)


def add_business_days(day: date, n: int) -> date:
    """The `n`-th business day after `day` (before it when `n` is negative); `day` itself when `n` is 0.

    `day` is never counted: "1 business day after" a Friday is the Monday, and after a Saturday too.
    """
    step = timedelta(days=1 if n >= 0 else -1)
    current, remaining = day, abs(n)
    while remaining:
        current += step
        if is_business_day(current):
            remaining -= 1
    return current


def business_days_between(a: date, b: date) -> int:
    """How many business days fall in the half-open range [a, b): `a` counts, `b` does not; negative if `b < a`.

    The convention of numpy's `busday_count`. For a business day `a`, `add_business_days(a, n) == b` exactly when
    `business_days_between(a, b) == n`. Equivalently, `business_days_between(a, b) >= n` exactly when `a` is on or
    before the n-th business day before `b`, which is how "scheduled at least n business days before" is read
    (see `estimate_due`).
    """
    if b < a:
        return -business_days_between(b, a)
    count, current = 0, a
    while current < b:
        if is_business_day(current):
            count += 1
        current += timedelta(days=1)
    return count


# ---------------------------------------------------------------------------------------------------------------
# When an estimate is due ([45 CFR 149.610](b)(1)(vi))
# ---------------------------------------------------------------------------------------------------------------

# How the days are counted. The regulation sets three timeframes:
#   (A) primary item or service "scheduled at least 3 business days before the date the item or service is
#       scheduled to be furnished": not later than 1 business day after the date of scheduling;
#   (B) "scheduled at least 10 business days before" it: not later than 3 business days after the date of
#       scheduling;
#   (C) "requested by an uninsured (or self-pay) individual": not later than 3 business days after the request.
# Our reading, with the usual rule for computing periods (exclude the day of the event the period runs from, count
# the last day):
# - Lead time, counted back from the service date: the service date is excluded, and the item is "scheduled at
#   least N business days before" it when the scheduling date is on or before the N-th business day before the
#   service date. That is `business_days_between(scheduled_on, service_on) >= N` (business days in
#   [scheduled_on, service_on)). Scheduled on Monday for Thursday of the same ordinary week: 3 (Mon, Tue, Wed).
#   Scheduled on Wednesday for a Saturday: 3 (Wed, Thu, Fri). Scheduled on a Saturday for the Wednesday after: 2
#   (Mon, Tue), because the 3rd business day before that Wednesday is the Friday before the Saturday.
# - Deadline, counted forward from the event: the date of scheduling (or of the request) is excluded; the GFE is
#   due by the end of the N-th business day after it (`add_business_days(event, N)`), so a weekend or a federal
#   holiday pushes it out. "Not later than" makes that day itself still on time.
# - (B) is the more specific case of (A): 10 or more business days ahead gets 3 business days; 3 to 9 gets 1.
# - Fewer than 3 business days ahead: the regulation gives no timeframe (and neither does the statute, PHS Act
#   sec. 2799B-6), so no GFE is required upon scheduling; the individual may still request one, (C).
LEAD_SHORT = 3  # (b)(1)(vi)(A): "at least 3 business days before"
LEAD_LONG = 10  # (b)(1)(vi)(B): "at least 10 business days before"
DUE_AFTER_SHORT_LEAD = 1  # (b)(1)(vi)(A): "not later than 1 business day after the date of scheduling"
DUE_AFTER_LONG_LEAD = 3  # (b)(1)(vi)(B): "not later than 3 business days after the date of scheduling"
DUE_AFTER_REQUEST = 3  # (b)(1)(vi)(C): "not later than 3 business days after the date of the request"


def scheduling_lead(scheduled_on: date, service_on: date) -> int:
    """Business days by which scheduling precedes the service: those in [scheduled_on, service_on)."""
    if service_on < scheduled_on:
        raise ValueError(f"the service ({service_on}) cannot come before it was scheduled ({scheduled_on})")
    return business_days_between(scheduled_on, service_on)


def estimate_due(scheduled_on: date | None, service_on: date | None, requested_on: date | None = None) -> date | None:
    """The last day on which the Good Faith Estimate must be provided, or None when none is required.

    Upon scheduling (both `scheduled_on` and `service_on` given): 1 business day after the date of scheduling when
    it is 3 to 9 business days ahead of the service, 3 business days after when it is 10 or more ahead, and None
    when fewer than 3 ([45 CFR 149.610](b)(1)(vi)(A) and (B)). Upon request (`requested_on`, with or without a
    schedule): 3 business days after the request ((b)(1)(vi)(C)). When both apply, the earlier deadline is returned:
    it is the first one that can be missed. A request followed by a scheduling calls for a new estimate upon
    scheduling; ask again with the schedule alone for that one's deadline.
    """
    if (scheduled_on is None) != (service_on is None):
        raise ValueError("a scheduled service needs both the date of scheduling and the date of service")
    if scheduled_on is None and requested_on is None:
        raise ValueError("an estimate is owed upon scheduling or upon request; neither was given")
    deadlines: list[date] = []
    if scheduled_on is not None and service_on is not None:
        lead = scheduling_lead(scheduled_on, service_on)
        if lead >= LEAD_LONG:  # (b)(1)(vi)(B): at least 10 business days ahead
            deadlines.append(add_business_days(scheduled_on, DUE_AFTER_LONG_LEAD))
        elif lead >= LEAD_SHORT:  # (b)(1)(vi)(A): at least 3 (here 3 to 9) business days ahead
            deadlines.append(add_business_days(scheduled_on, DUE_AFTER_SHORT_LEAD))
        # Fewer than 3 business days ahead: no timeframe in (b)(1)(vi), so nothing is due upon scheduling.
    if requested_on is not None:  # (b)(1)(vi)(C)
        deadlines.append(add_business_days(requested_on, DUE_AFTER_REQUEST))
    return min(deadlines, default=None)


class EstimateStatus(StrEnum):
    not_required = "not_required"
    due = "due"
    overdue = "overdue"
    issued = "issued"
    issued_late = "issued_late"


def estimate_status(due: date | None, issued_on: date | None, today: date) -> EstimateStatus:
    """Where an estimate stands on `today`; `due` is what `estimate_due` returned (None: not required).

    The due date itself is on time ("not later than"). An estimate given although none was required is `issued`.
    """
    if issued_on is not None and issued_on > today:
        raise ValueError(f"an estimate cannot have been issued ({issued_on}) after today ({today})")
    if due is None:
        return EstimateStatus.not_required if issued_on is None else EstimateStatus.issued
    if issued_on is not None:
        return EstimateStatus.issued if issued_on <= due else EstimateStatus.issued_late
    return EstimateStatus.due if today <= due else EstimateStatus.overdue


# ---------------------------------------------------------------------------------------------------------------
# Contents ([45 CFR 149.610](c))
# ---------------------------------------------------------------------------------------------------------------

NPI_PREFIX = "80840"  # [NPI check digit]: the ISO/IEC 7812 issuer prefix for US health applications
_NPI = re.compile(r"^[0-9]{10}$")
_TIN = re.compile(r"^[0-9]{9}$")
# ICD-10-CM: a letter, a digit, a digit or letter, then up to 4 more after an optional dot (F33.1, F43.10, F32.A).
_ICD10CM = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")


def _luhn_valid(digits: str) -> bool:
    checksum = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - ord("0")
        if position % 2 == 1:  # every second digit from the right (the check digit is position 0) is doubled
            value *= 2
            if value > 9:
                value -= 9
        checksum += value
    return checksum % 10 == 0


def npi_is_valid(npi: str) -> bool:
    """10 digits whose last is the Luhn check digit of 80840 + the first 9 ([NPI check digit]).

    CMS's worked example: 123456789 gets the check digit 3, so 1234567893 is valid.
    """
    return bool(_NPI.fullmatch(npi)) and _luhn_valid(NPI_PREFIX + npi)


def _check_npi(npi: str) -> str:
    if not npi_is_valid(npi):
        raise ValueError(f"{npi!r} is not an NPI: 10 digits ending in the Luhn check digit (prefix 80840)")
    return npi


_FROZEN = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Patient(BaseModel):
    """(c)(1): the individual's name and date of birth."""

    model_config = _FROZEN

    name: str = Field(min_length=1, max_length=200)
    date_of_birth: date


class Address(BaseModel):
    """A US office or facility location."""

    model_config = _FROZEN

    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    state: str = Field(pattern=r"^[A-Z]{2}$", description="USPS state or territory code")
    postal_code: str = Field(pattern=r"^[0-9]{5}(-[0-9]{4})?$")


class EstimateProvider(BaseModel):
    """(c)(1): the name, NPI and TIN of each provider or facility represented in the estimate, and the state and
    office or facility location where it is expected to furnish the items or services."""

    model_config = _FROZEN

    name: str = Field(min_length=1, max_length=200)
    npi: str
    tin: str = Field(description="Taxpayer Identification Number (EIN or SSN): 9 digits, no separators")
    location: Address
    is_facility: bool = False

    @field_validator("npi")
    @classmethod
    def _npi(cls, value: str) -> str:
        return _check_npi(value)

    @field_validator("tin")
    @classmethod
    def _tin(cls, value: str) -> str:
        if not _TIN.fullmatch(value):
            raise ValueError("a TIN is 9 digits")
        return value


class EstimateItem(BaseModel):
    """(c)(1): one expected item or service, with its service code, diagnosis codes and expected charge, grouped
    under the provider or facility that furnishes it."""

    model_config = _FROZEN

    service_code: str = Field(min_length=1, max_length=20, description="CPT/HCPCS or other expected service code")
    description: str = Field(min_length=1, max_length=500)
    quantity: int = Field(ge=1, strict=True)
    # For the whole line (all `quantity` units), as on CMS's model GFE form; never negative.
    expected_charge: Money
    provider_npi: str = Field(description="NPI of the provider or facility that furnishes it")
    diagnosis_codes: tuple[str, ...] = Field(default=(), description="ICD-10-CM, where applicable")

    @field_validator("provider_npi")
    @classmethod
    def _npi(cls, value: str) -> str:
        return _check_npi(value)

    @field_validator("diagnosis_codes")
    @classmethod
    def _icd10(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for code in value:
            if not _ICD10CM.fullmatch(code):
                raise ValueError(f"{code!r} is not an ICD-10-CM code")
        return value

    @field_validator("expected_charge")
    @classmethod
    def _not_negative(cls, value: Money) -> Money:
        if value.is_negative:
            raise ValueError("an expected charge cannot be negative")
        return value


class SeparateItem(BaseModel):
    """An item or service the convening provider expects to be scheduled and billed separately, not estimated here."""

    model_config = _FROZEN

    description: str = Field(min_length=1, max_length=500)
    service_code: str | None = Field(default=None, max_length=20)


# The PPDR threshold of [45 CFR 149.620](b): billed "at least $400" more than the provider's expected charges.
DISPUTE_THRESHOLD = Money(cents=400_00)
NO_SURPRISES_URL = "https://www.cms.gov/nosurprises"


class Disclaimers(BaseModel):
    """The disclaimers [45 CFR 149.610](c)(1) requires on every estimate, in plain language (our wording).

    Each is its own field, so none can be left out; the defaults are kapnet's texts.
    """

    model_config = _FROZEN

    # Only an estimate: items, services and charges may differ from it.
    estimate_only: str = Field(
        default=(
            "This Good Faith Estimate shows the costs of items and services that are reasonably expected for your "
            "health care needs, based on the information known when it was created. It is only an estimate: the "
            "items, services and charges you actually receive may differ from it."
        ),
        min_length=1,
    )
    # Not a contract, and no obligation to get the care from the providers listed.
    not_a_contract: str = Field(
        default=(
            "This Good Faith Estimate is not a contract. It does not require you to obtain any item or service from "
            "any of the providers or facilities listed in it."
        ),
        min_length=1,
    )
    # Items or services recommended as part of the course of care that are scheduled or requested separately.
    separately_scheduled: str = Field(
        default=(
            "There may be additional items or services your provider recommends as part of your course of care "
            "that must be scheduled or requested separately and are not included in this estimate. You will "
            "receive a separate Good Faith Estimate for them when they are scheduled or when you ask for one."
        ),
        min_length=1,
    )
    # The right to patient-provider dispute resolution, where to learn about it, and no effect on quality of care.
    dispute_rights: str = Field(
        default=(
            "If you are billed for more than this Good Faith Estimate, you have the right to dispute the bill. If "
            "the total billed by any provider or facility listed here is at least $400 more than that provider's "
            "or facility's total on this estimate, you may start the federal patient-provider dispute resolution "
            "process, generally within 120 calendar days of the date on the original bill. You may first contact "
            "the provider or facility to ask them to update the bill, negotiate it, or ask about financial "
            "assistance. Starting a dispute will not affect the quality of the care you receive. To learn more "
            f"and find out how to start a dispute, visit {NO_SURPRISES_URL}."
        ),
        min_length=1,
    )
    # Keep it: the patient needs it to compare with the bill and to dispute one.
    keep_a_copy: str = Field(
        default="Keep a copy or a picture of this Good Faith Estimate, and of any bill you receive for this care.",
        min_length=1,
    )

    @model_validator(mode="after")
    def _says_what_is_required(self) -> Self:
        # Reworded texts must still name the threshold and where to learn about the dispute process.
        if "$400" not in self.dispute_rights or "cms.gov/nosurprises" not in self.dispute_rights:
            raise ValueError("the dispute disclaimer must state the $400 threshold and point to cms.gov/nosurprises")
        return self


class GoodFaithEstimate(BaseModel):
    """A Good Faith Estimate for an uninsured or self-pay individual ([45 CFR 149.610](c)).

    Every item names the provider or facility that furnishes it by NPI, and that NPI must be one of `providers`
    (the convening provider's and any co-providers'). `scheduled_for` None: the primary service is not yet
    scheduled (an estimate given upon request).
    """

    model_config = _FROZEN

    patient: Patient
    primary_service: str = Field(min_length=1, max_length=500, description="in clear and understandable language")
    scheduled_for: date | None
    providers: tuple[EstimateProvider, ...] = Field(min_length=1)
    items: tuple[EstimateItem, ...] = Field(min_length=1)
    separately_billed: tuple[SeparateItem, ...] = ()
    disclaimers: Disclaimers = Disclaimers()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        npis = [provider.npi for provider in self.providers]
        if len(set(npis)) != len(npis):
            raise ValueError("each provider or facility is listed once")
        unknown = sorted({item.provider_npi for item in self.items} - set(npis))
        if unknown:
            raise ValueError(f"items name providers that are not listed: {', '.join(unknown)}")
        currencies = {item.expected_charge.currency for item in self.items}
        if len(currencies) > 1:
            raise ValueError("an estimate is in one currency")
        return self

    @property
    def currency(self) -> str:
        return self.items[0].expected_charge.currency

    @property
    def total(self) -> Money:
        """The sum of every item's expected charge."""
        return total([item.expected_charge for item in self.items], self.currency)

    def provider_total(self, npi: str) -> Money:
        """The expected charges of the items one provider or facility furnishes (zero if it furnishes none)."""
        return total([item.expected_charge for item in self.items if item.provider_npi == npi], self.currency)

    def provider(self, npi: str) -> EstimateProvider | None:
        return next((provider for provider in self.providers if provider.npi == npi), None)


# ---------------------------------------------------------------------------------------------------------------
# The $400 rule ([45 CFR 149.620](b))
# ---------------------------------------------------------------------------------------------------------------


class ProviderExcess(BaseModel):
    """A provider or facility whose billed total exceeds its estimated total by the threshold or more."""

    model_config = _FROZEN

    npi: str
    # None for a provider or facility that bills but is not on the estimate.
    name: str | None
    estimated: Money
    billed: Money
    excess: Money


def dispute_eligible(estimate: GoodFaithEstimate, billed: Mapping[str, Money]) -> list[ProviderExcess]:
    """The providers or facilities whose bill makes the individual eligible for PPDR, each with its excess.

    Per provider or facility ([45 CFR 149.620](b)): its total billed charges minus its total expected charges on
    the estimate; eligible when that is at least $400 (so exactly $400.00 is eligible, $399.99 is not). `billed`
    is each provider's total billed charges by NPI. A provider that bills but is not on the estimate was expected
    to charge nothing, so its whole bill is the excess. Results follow the estimate's order of providers, then the
    unlisted ones by NPI.
    """
    for npi in billed:
        _check_npi(npi)
    listed = [provider.npi for provider in estimate.providers]
    unlisted = sorted(set(billed) - set(listed))
    result: list[ProviderExcess] = []
    for npi in [*listed, *unlisted]:
        if npi not in billed:
            continue
        estimated = estimate.provider_total(npi)
        excess = billed[npi] - estimated
        if DISPUTE_THRESHOLD <= excess:  # 149.620(b): "at least $400" more than the expected charges
            provider = estimate.provider(npi)
            result.append(
                ProviderExcess(
                    npi=npi,
                    name=provider.name if provider is not None else None,
                    estimated=estimated,
                    billed=billed[npi],
                    excess=excess,
                )
            )
    return result
