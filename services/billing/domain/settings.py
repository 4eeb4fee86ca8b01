"""Per-site billing settings (``KAPNET_BILLING_RULES``, JSON), checked when the service starts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.billing.domain.claims import DEFAULT_FEES_CENTS
from services.billing.domain.codes import CODE_TABLE
from services.billing.domain.estimates import EstimateProvider
from services.billing.domain.pricing import DEFAULT_TIERS, SlidingScaleTier


class BillingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # [Spravato REMS]: esketamine is dispensed and given only at a certified healthcare setting.
    rems_certified: bool = False
    sliding_scale: tuple[SlidingScaleTier, ...] = DEFAULT_TIERS
    # The site as the provider on its Good Faith Estimates and claims: name, NPI, TIN and where care is given.
    provider: EstimateProvider | None = None
    # The site's fee per code billed to payers, in cents (its chargemaster; claims.py has the defaults).
    fee_schedule: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_FEES_CENTS))
    # Clinic policy: an invoice is due 30 days after it is issued.
    days_to_pay: int = Field(default=30, ge=1, le=120)

    @field_validator("fee_schedule")
    @classmethod
    def _known_codes(cls, fees: dict[str, int]) -> dict[str, int]:
        unknown = sorted(code for code in fees if CODE_TABLE.find(code) is None)
        if unknown:
            raise ValueError(f"fee_schedule names codes kapnet does not bill: {', '.join(unknown)}")
        negative = sorted(code for code, cents in fees.items() if cents <= 0)
        if negative:
            raise ValueError(f"fee_schedule: a fee is more than zero ({', '.join(negative)})")
        return fees
