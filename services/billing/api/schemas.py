"""Billing's request and response shapes that only the API needs; the domain's entry models are used as they are."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from services.billing.domain.coverage import CoverageDetermination
from services.billing.domain.estimates import EstimateStatus, GoodFaithEstimate, ProviderExcess
from services.billing.domain.ledger import Account, Charge, Invoice, InvoiceStatus, Payment, PaymentPlan, Refund
from services.billing.domain.money import Money
from services.billing.domain.prior_auth import PriorAuthChange
from services.billing.models import CoverageRow
from services.billing.service.estimates import EstimateView
from shared.instants import PlausibleDate


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AssistanceEntry(_Request):
    household_income: Money = Field(description="yearly household income")
    household_size: int = Field(ge=1, le=20)


class PriorAuthStatusEntry(PriorAuthChange):
    # The payer's evidence until intake keeps the prior-treatment history: each trial, in words.
    evidence: list[str] = Field(default_factory=list, max_length=50)


class EstimateRequest(_Request):
    course_id: uuid.UUID
    service_on: PlausibleDate | None = None


class CoverageRead(BaseModel):
    course_id: uuid.UUID
    patient_id: uuid.UUID
    payer_type: str
    determination: CoverageDetermination
    determined_at: datetime

    @classmethod
    def of(cls, row: CoverageRow) -> CoverageRead:
        return cls(
            course_id=row.course_id,
            patient_id=row.patient_id,
            payer_type=row.payer_type,
            determination=CoverageDetermination.model_validate(row.determination),
            determined_at=row.determined_at,
        )


class InvoiceRead(Invoice):
    status: InvoiceStatus


class AccountRead(BaseModel):
    """The patient's account as billing sees it: codes and amounts, never clinical notes."""

    patient_id: uuid.UUID
    balance: Money
    owed: Money
    paid: Money
    refunded: Money
    charges: list[Charge]
    invoices: list[InvoiceRead]
    payments: list[Payment]
    refunds: list[Refund]
    payment_plans: list[PaymentPlan]

    @classmethod
    def of(cls, account: Account, plans: list[PaymentPlan]) -> AccountRead:
        return cls(
            patient_id=account.patient_id,
            balance=account.balance,
            owed=account.owed,
            paid=account.paid,
            refunded=account.refunded,
            charges=list(account.charges),
            invoices=[
                InvoiceRead(**invoice.model_dump(), status=account.invoice_status(invoice))
                for invoice in account.invoices
            ],
            payments=list(account.payments),
            refunds=list(account.refunds),
            payment_plans=plans,
        )


class EstimateRead(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    course_id: uuid.UUID | None
    session_id: uuid.UUID | None
    scheduled_on: date | None
    service_on: date | None
    requested_on: date | None
    due_on: date | None
    issued_at: datetime | None
    status: EstimateStatus
    estimate: GoodFaithEstimate | None
    total: Money | None
    # Providers billed at least $400 more than this estimate (45 CFR 149.620): the bill is open to dispute.
    open_to_dispute: list[ProviderExcess]

    @classmethod
    def of(cls, view: EstimateView) -> EstimateRead:
        row = view.row
        return cls(
            id=row.id,
            patient_id=row.patient_id,
            course_id=row.course_id,
            session_id=row.session_id,
            scheduled_on=row.scheduled_on,
            service_on=row.service_on,
            requested_on=row.requested_on,
            due_on=row.due_on,
            issued_at=row.issued_at,
            status=view.status,
            estimate=view.document,
            total=view.document.total if view.document else None,
            open_to_dispute=view.dispute,
        )
