"""Self-pay prices per site, with the dates they hold, and the sliding scale that lowers them by household income.

Sources:
- [HHS 2025]: US Department of Health and Human Services, 2025 Poverty Guidelines for the 48 contiguous states
  and the District of Columbia, 90 FR 5917 (17 January 2025): $15,650 for a household of one, $5,500 for each
  further person. Alaska and Hawaii have their own tables (not carried: the demo sites are in the 48 states).
- The tiers (how much of the price is waived at which share of the guideline) are clinic policy, set per site.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.billing.domain.money import Money
from shared.treatment import Route


class BillableService(StrEnum):
    """What a price list prices: one kind of visit each."""

    iv_infusion_session = "iv_infusion_session"
    intramuscular_session = "intramuscular_session"
    subcutaneous_session = "subcutaneous_session"
    esketamine_session = "esketamine_session"
    sublingual_session = "sublingual_session"
    integration_therapy = "integration_therapy"
    intake_evaluation = "intake_evaluation"


SESSION_SERVICE: dict[Route, BillableService] = {
    Route.iv_infusion: BillableService.iv_infusion_session,
    Route.intramuscular: BillableService.intramuscular_session,
    Route.subcutaneous: BillableService.subcutaneous_session,
    Route.intranasal_esketamine: BillableService.esketamine_session,
    Route.sublingual_oral: BillableService.sublingual_session,
}


class PriceNotSet(LookupError):
    pass


class Price(BaseModel):
    """A self-pay price, valid from one date to another (inclusive); None: until a later price replaces it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: BillableService
    amount: Money
    valid_from: date
    valid_to: date | None = None

    @field_validator("amount")
    @classmethod
    def _positive(cls, amount: Money) -> Money:
        if amount.cents <= 0:
            raise ValueError("a price must be more than zero")
        return amount

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self

    def holds_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


def overlapping(prices: Sequence[Price], new: Price) -> Price | None:
    """The price of the same service whose dates overlap ``new``'s, if any: a day has one price."""
    for price in prices:
        if price.service is not new.service:
            continue
        ends = price.valid_to or date.max
        new_ends = new.valid_to or date.max
        if price.valid_from <= new_ends and new.valid_from <= ends:
            return price
    return None


def price_on(prices: Sequence[Price], service: BillableService, day: date) -> Money:
    for price in prices:
        if price.service is service and price.holds_on(day):
            return price.amount
    raise PriceNotSet(f"no self-pay price for {service.value} on {day.isoformat()}: set one in the site's price list")


# --- the sliding scale ------------------------------------------------------------------------------------------

# [HHS 2025], 48 contiguous states and DC, in cents.
POVERTY_GUIDELINE_BASE_CENTS = 15_650_00
POVERTY_GUIDELINE_PER_PERSON_CENTS = 5_500_00


def poverty_guideline(household_size: int) -> Money:
    if household_size < 1:
        raise ValueError("a household has at least one person")
    return Money(cents=POVERTY_GUIDELINE_BASE_CENTS + POVERTY_GUIDELINE_PER_PERSON_CENTS * (household_size - 1))


class SlidingScaleTier(BaseModel):
    """Households at or below ``up_to_percent_of_guideline`` % of the poverty guideline pay (100 - discount) %."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    up_to_percent_of_guideline: int = Field(ge=1, le=1000)
    discount_percent: int = Field(ge=0, le=100)


# Clinic policy defaults, in the shape US community clinics commonly use (100 / 200 / 300 % of the guideline).
DEFAULT_TIERS: tuple[SlidingScaleTier, ...] = (
    SlidingScaleTier(up_to_percent_of_guideline=100, discount_percent=75),
    SlidingScaleTier(up_to_percent_of_guideline=200, discount_percent=50),
    SlidingScaleTier(up_to_percent_of_guideline=300, discount_percent=25),
)


class FinancialAssistance(BaseModel):
    """What a patient's household income earns on the sliding scale, and why."""

    model_config = ConfigDict(frozen=True)

    household_size: int
    household_income: Money
    percent_of_guideline: int
    discount_percent: int


def assess(household_income: Money, household_size: int, tiers: Sequence[SlidingScaleTier]) -> FinancialAssistance:
    """The first tier (lowest share of the guideline first) the household falls in; no tier, no discount."""
    if household_income.is_negative:
        raise ValueError("household income cannot be negative")
    guideline = poverty_guideline(household_size)
    # Rounded up, so a household just over a tier's line is not let into it by rounding.
    percent = -((-household_income.cents * 100) // guideline.cents)
    discount = 0
    for tier in sorted(tiers, key=lambda t: t.up_to_percent_of_guideline):
        if percent <= tier.up_to_percent_of_guideline:
            discount = tier.discount_percent
            break
    return FinancialAssistance(
        household_size=household_size,
        household_income=household_income,
        percent_of_guideline=percent,
        discount_percent=discount,
    )


def discounted(price: Money, assistance: FinancialAssistance | None) -> Money:
    if assistance is None or assistance.discount_percent == 0:
        return price
    return price - price.percent_of(assistance.discount_percent)
