"""Money: integer minor units (cents) with their currency, never a float, so balances always add up."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

# ISO 4217. One currency per site in practice; mixing two in one sum is refused, never converted.
CURRENCIES = frozenset({"USD"})
# The most a single amount may be: ten million dollars in cents. Beyond it is a typing error.
MAX_CENTS = 10_000_000_00


class CurrencyMismatch(ValueError):
    pass


class Money(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cents: int = Field(ge=-MAX_CENTS, le=MAX_CENTS, strict=True, description="minor units: 12345 is $123.45")
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")

    @model_validator(mode="after")
    def _known_currency(self) -> Self:
        if self.currency not in CURRENCIES:
            raise ValueError(f"currency {self.currency} is not one kapnet bills in ({', '.join(sorted(CURRENCIES))})")
        return self

    @classmethod
    def zero(cls, currency: str = "USD") -> Money:
        return cls(cents=0, currency=currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(cents=self.cents + other.cents, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(cents=self.cents - other.cents, currency=self.currency)

    def __neg__(self) -> Money:
        return Money(cents=-self.cents, currency=self.currency)

    def percent_of(self, percent: int) -> Money:
        """``percent`` % of this amount, rounded half up to the cent (integer arithmetic only)."""
        return Money(cents=(self.cents * percent + 50) // 100, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.cents < other.cents

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.cents <= other.cents

    @property
    def is_negative(self) -> bool:
        return self.cents < 0

    def __str__(self) -> str:
        sign = "-" if self.cents < 0 else ""
        whole, part = divmod(abs(self.cents), 100)
        return f"{sign}${whole:,}.{part:02d}" if self.currency == "USD" else f"{sign}{whole}.{part:02d} {self.currency}"


def total(amounts: list[Money], currency: str = "USD") -> Money:
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
