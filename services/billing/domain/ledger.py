"""A patient's account: charges, invoices, payments, refunds and payment plans, whose balance always adds up.

The balance is the patient's share of every charge, less what they paid, plus what was refunded to them:
    balance = sum(patient shares) + sum(claim responsibilities) - sum(payments) + sum(refunds)
It is never stored: it is computed from the entries, which are only ever added (a mistake is corrected by a
new entry, never by changing an old one). Money is integer cents (money.py).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.billing.domain.codes import ChargeLine
from services.billing.domain.money import Money, total
from shared.errors import Conflict, RuleRefused


class ChargeSource(StrEnum):
    dosing_session = "dosing_session"
    integration_session = "integration_session"
    intake_evaluation = "intake_evaluation"


class Charge(BaseModel):
    """What one visit costs: its code lines (for a claim or a superbill) and the patient's share of the price."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    course_id: uuid.UUID | None
    source: ChargeSource
    source_id: uuid.UUID
    service_on: date
    lines: tuple[ChargeLine, ...]
    diagnosis_codes: tuple[str, ...]
    # The site's price for the visit, after any sliding-scale discount.
    amount: Money
    # What the patient owes now: the amount when self-pay; nothing yet when a payer is billed first.
    patient_share: Money
    billed_to_payer: bool
    # Why billing must look at it before it can be billed (no price for that day, a visit the code rules cannot
    # code); None when it is ready. Such a charge is recorded at zero rather than lost or dead-lettered.
    needs_attention: str | None = None

    def to_patient(self) -> Charge:
        """The payer will not be billed (its prior authorisation was denied): the whole visit is the
        patient's, rather than billed to no one."""
        return self.model_copy(update={"patient_share": self.amount, "billed_to_payer": False})


class PaymentMethod(StrEnum):
    card = "card"
    cash = "cash"
    instalment = "instalment"


class Payment(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    amount: Money
    method: PaymentMethod
    # A card's processor reference (never the card number); a receipt number for cash.
    reference: str | None
    invoice_id: uuid.UUID | None
    received_at: datetime


class Refund(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    amount: Money
    reason: str
    refunded_at: datetime


class InvoiceStatus(StrEnum):
    issued = "issued"
    partly_paid = "partly_paid"
    paid = "paid"


class Invoice(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    charge_ids: tuple[uuid.UUID, ...]
    # The claims whose patient responsibility (co-pay, deductible, what the payer denied) it bills.
    claim_ids: tuple[uuid.UUID, ...] = ()
    total: Money
    issued_at: datetime
    due_on: date


class Instalment(BaseModel):
    model_config = ConfigDict(frozen=True)

    due_on: date
    amount: Money


class PaymentPlan(BaseModel):
    """A balance split into equal instalments (the last takes the cents left over), at a fixed interval."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    total: Money
    instalments: tuple[Instalment, ...]
    agreed_at: datetime

    @model_validator(mode="after")
    def _adds_up(self) -> Self:
        if total([i.amount for i in self.instalments]) != self.total:
            raise ValueError("the instalments do not add up to the plan's total")
        return self


class PaymentEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    amount: Money
    method: PaymentMethod
    reference: str | None = Field(default=None, max_length=100)
    invoice_id: uuid.UUID | None = None
    # A payment above the balance is refused unless the clerk says it is meant (a deposit for future sessions).
    overpayment: bool = False

    @field_validator("amount")
    @classmethod
    def _positive_amount(cls, amount: Money) -> Money:
        if amount.cents <= 0:
            raise ValueError("a payment is more than zero (a refund is its own entry)")
        return amount

    @model_validator(mode="after")
    def _positive(self) -> Self:
        if self.method is PaymentMethod.card and not self.reference:
            raise ValueError("reference: a card payment needs the processor's reference")
        return self


class RefundEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    amount: Money
    reason: str = Field(min_length=3, max_length=500)

    @field_validator("amount")
    @classmethod
    def _positive(cls, amount: Money) -> Money:
        if amount.cents <= 0:
            raise ValueError("a refund is more than zero")
        return amount


class PlanEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instalments: int = Field(ge=2, le=24)
    first_due_on: date
    interval_days: int = Field(default=30, ge=7, le=92)


class ClaimResponsibility(BaseModel):
    """What a payer's adjudication left the patient to pay on a claim (deductible, co-pay, what was denied)."""

    model_config = ConfigDict(frozen=True)

    claim_id: uuid.UUID
    amount: Money


class Account(BaseModel):
    """Everything on one patient's account. Methods check the rules and return what to add."""

    model_config = ConfigDict(frozen=True)

    patient_id: uuid.UUID
    charges: tuple[Charge, ...] = ()
    responsibilities: tuple[ClaimResponsibility, ...] = ()
    invoices: tuple[Invoice, ...] = ()
    payments: tuple[Payment, ...] = ()
    refunds: tuple[Refund, ...] = ()

    @property
    def owed(self) -> Money:
        return total([c.patient_share for c in self.charges] + [r.amount for r in self.responsibilities])

    @property
    def paid(self) -> Money:
        return total([p.amount for p in self.payments])

    @property
    def refunded(self) -> Money:
        return total([r.amount for r in self.refunds])

    @property
    def balance(self) -> Money:
        """What the patient still owes; negative when they are in credit."""
        return self.owed - self.paid + self.refunded

    @property
    def uninvoiced(self) -> list[Charge]:
        invoiced = {charge_id for invoice in self.invoices for charge_id in invoice.charge_ids}
        return [c for c in self.charges if c.id not in invoiced and c.patient_share.cents > 0]

    @property
    def uninvoiced_responsibilities(self) -> list[ClaimResponsibility]:
        """What payers left the patient on adjudicated claims, not on an invoice yet: billed like a charge, so
        it can fall overdue (and count as a cost barrier) rather than sit in the balance unbilled."""
        invoiced = {claim_id for invoice in self.invoices for claim_id in invoice.claim_ids}
        return [r for r in self.responsibilities if r.claim_id not in invoiced and r.amount.cents > 0]

    def invoice(self, now: datetime, days_to_pay: int = 30) -> Invoice:
        charges, responsibilities = self.uninvoiced, self.uninvoiced_responsibilities
        if not charges and not responsibilities:
            raise Conflict("nothing to invoice: everything the patient owes is on an invoice already")
        return Invoice(
            id=uuid.uuid4(),
            patient_id=self.patient_id,
            charge_ids=tuple(c.id for c in charges),
            claim_ids=tuple(r.claim_id for r in responsibilities),
            total=total([c.patient_share for c in charges] + [r.amount for r in responsibilities]),
            issued_at=now,
            due_on=now.date() + timedelta(days=days_to_pay),
        )

    def _paid_per_invoice(self) -> dict[uuid.UUID, Money]:
        return self._applied()[0]

    def _applied(self) -> tuple[dict[uuid.UUID, Money], Money]:
        """What has paid each invoice: the payments naming it, then the rest of the patient's payments (less
        refunds) applied to the oldest invoices first, as a clerk would; and what is left of those."""
        paid = {i.id: total([p.amount for p in self.payments if p.invoice_id == i.id]) for i in self.invoices}
        pool = total([p.amount for p in self.payments if p.invoice_id is None]) - self.refunded
        for invoice in sorted(self.invoices, key=lambda i: i.issued_at):
            need = invoice.total - paid[invoice.id]
            if need.cents > 0 and pool.cents > 0:
                taken = min(need, pool)
                paid[invoice.id], pool = paid[invoice.id] + taken, pool - taken
        return paid, pool

    def paid_per_charge(self) -> dict[uuid.UUID, Money]:
        """What the patient has paid towards each charge: each invoice's payments over its charges in order,
        then what is left of the unassigned payments over the charges not yet invoiced, the earliest visit first.
        A superbill states this, not every payment of the period: a payment for another visit (or a claim's
        co-pay) is not paid for the services it lists."""
        per_invoice, pool = self._applied()
        owed = {c.id: c.patient_share for c in self.charges}
        paid = {c.id: Money.zero(c.patient_share.currency) for c in self.charges}

        def take(charge_id: uuid.UUID, available: Money) -> Money:
            taken = max(min(owed[charge_id] - paid[charge_id], available), Money.zero(available.currency))
            paid[charge_id] += taken
            return available - taken

        for invoice in self.invoices:
            left = per_invoice[invoice.id]
            for charge_id in invoice.charge_ids:
                if charge_id in owed:
                    left = take(charge_id, left)
        invoiced = {charge_id for invoice in self.invoices for charge_id in invoice.charge_ids}
        for charge in sorted((c for c in self.charges if c.id not in invoiced), key=lambda c: c.service_on):
            pool = take(charge.id, pool)
        return paid

    def invoice_status(self, invoice: Invoice) -> InvoiceStatus:
        paid = self._paid_per_invoice()[invoice.id]
        if paid.cents <= 0:
            return InvoiceStatus.issued
        return InvoiceStatus.paid if invoice.total <= paid else InvoiceStatus.partly_paid

    def pay(self, entry: PaymentEntry, now: datetime) -> Payment:
        if entry.invoice_id is not None and entry.invoice_id not in {i.id for i in self.invoices}:
            raise RuleRefused("invoice_id: no such invoice on this patient's account")
        if self.balance < entry.amount and not entry.overpayment:
            raise RuleRefused(
                f"amount: {entry.amount} is more than the balance of {self.balance}; set overpayment to take it as "
                "a credit"
            )
        return Payment(
            id=uuid.uuid4(),
            patient_id=self.patient_id,
            amount=entry.amount,
            method=entry.method,
            reference=entry.reference,
            invoice_id=entry.invoice_id,
            received_at=now,
        )

    def refund(self, entry: RefundEntry, now: datetime) -> Refund:
        """Only money the patient paid can go back, and only what is not owed: a refund never makes a debt."""
        refundable = self.paid - self.refunded
        credit = -self.balance
        if refundable < entry.amount:
            raise RuleRefused(f"amount: {entry.amount} is more than the {refundable} paid and not yet refunded")
        if credit < entry.amount:
            raise RuleRefused(
                f"amount: the account is in credit by {max(credit, Money.zero())}, less than {entry.amount}"
            )
        return Refund(
            id=uuid.uuid4(), patient_id=self.patient_id, amount=entry.amount, reason=entry.reason, refunded_at=now
        )

    def payment_plan(self, entry: PlanEntry, now: datetime) -> PaymentPlan:
        balance = self.balance
        if balance.cents <= 0:
            raise Conflict("the account owes nothing: no payment plan is needed")
        if balance.cents < entry.instalments * 100:
            raise RuleRefused(f"instalments: {balance} is too little to split into {entry.instalments} payments")
        share, left_over = divmod(balance.cents, entry.instalments)
        instalments = [
            Instalment(
                due_on=entry.first_due_on + timedelta(days=entry.interval_days * n),
                amount=Money(cents=share + (left_over if n == entry.instalments - 1 else 0), currency=balance.currency),
            )
            for n in range(entry.instalments)
        ]
        return PaymentPlan(
            id=uuid.uuid4(), patient_id=self.patient_id, total=balance, instalments=tuple(instalments), agreed_at=now
        )

    def overdue(self, today: date) -> Money:
        """What is owed on invoices past their due date, after every payment (never more than the balance: a
        patient who owes nothing has nothing overdue)."""
        paid = self._paid_per_invoice()
        late = total([i.total - paid[i.id] for i in self.invoices if i.due_on < today and paid[i.id] < i.total])
        return max(min(late, self.balance), Money.zero(late.currency))
