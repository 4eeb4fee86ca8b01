"""A patient's account (services/billing/domain/ledger.py): its balance always adds up.

Property-based tests (Hypothesis) apply random sequences of charges, payments and refunds to an Account and check the
ledger's invariants after every step; example-based tests pin invoices, payment plans, overdue amounts and the
entries' validation. Pure and fast: no database, no broker.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.billing.domain.ledger import (
    Account,
    Charge,
    ChargeSource,
    Instalment,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentEntry,
    PaymentMethod,
    PaymentPlan,
    PlanEntry,
    Refund,
    RefundEntry,
)
from services.billing.domain.money import Money
from shared.errors import Conflict, RuleRefused

PATIENT = uuid.UUID("00000000-0000-4000-8000-000000000001")
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TODAY = NOW.date()


def usd(cents: int) -> Money:
    return Money(cents=cents)


def charge(share_cents: int, amount_cents: int | None = None, *, billed_to_payer: bool = False) -> Charge:
    return Charge(
        id=uuid.uuid4(),
        patient_id=PATIENT,
        course_id=None,
        source=ChargeSource.dosing_session,
        source_id=uuid.uuid4(),
        service_on=TODAY,
        lines=(),
        diagnosis_codes=(),
        amount=usd(share_cents if amount_cents is None else amount_cents),
        patient_share=usd(share_cents),
        billed_to_payer=billed_to_payer,
    )


def cash(cents: int, *, overpayment: bool = False, invoice: Invoice | None = None) -> PaymentEntry:
    return PaymentEntry(
        amount=usd(cents),
        method=PaymentMethod.cash,
        overpayment=overpayment,
        invoice_id=invoice.id if invoice else None,
    )


def refund_of(cents: int) -> RefundEntry:
    return RefundEntry(amount=usd(cents), reason="deposit returned")


def added(account: Account, entry: Charge | Invoice | Payment | Refund) -> Account:
    """A new Account with the entry added: the ledger is immutable and only ever grows."""
    fields: dict[str, Any] = {
        "patient_id": account.patient_id,
        "charges": account.charges,
        "invoices": account.invoices,
        "payments": account.payments,
        "refunds": account.refunds,
    }
    key = {Charge: "charges", Invoice: "invoices", Payment: "payments", Refund: "refunds"}[type(entry)]
    fields[key] = (*fields[key], entry)
    return Account(**fields)


def account_of(*entries: Charge | Invoice | Payment | Refund) -> Account:
    account = Account(patient_id=PATIENT)
    for entry in entries:
        account = added(account, entry)
    return account


# ---------------------------------------------------------------------------------------------------------------
# Property-based: random sequences of operations
# ---------------------------------------------------------------------------------------------------------------

# Up to $5,000 a charge and $6,000 a payment, 40 steps: far inside Money's $10M bound, so a sum never hits it.
MAX_SHARE = 5_000_00
MAX_AMOUNT = 6_000_00


@dataclass(frozen=True)
class AddCharge:
    share_cents: int


@dataclass(frozen=True)
class Pay:
    # "random": amount_cents; the others aim at the boundary the rules turn on (the balance, one cent over it).
    target: Literal["random", "balance", "balance_plus_one"]
    amount_cents: int
    overpayment: bool


@dataclass(frozen=True)
class RefundOp:
    # "credit": exactly the account's credit; "refundable": exactly what was paid and not refunded.
    target: Literal["random", "credit", "credit_plus_one", "refundable"]
    amount_cents: int


Operation = AddCharge | Pay | RefundOp

amounts = st.integers(min_value=1, max_value=MAX_AMOUNT)
operations = st.lists(
    st.one_of(
        # A covered visit puts nothing on the patient (share 0); a self-pay one its price.
        st.builds(AddCharge, st.one_of(st.just(0), st.integers(min_value=1, max_value=MAX_SHARE))),
        st.builds(Pay, st.sampled_from(["random", "balance", "balance_plus_one"]), amounts, st.booleans()),
        st.builds(RefundOp, st.sampled_from(["random", "credit", "credit_plus_one", "refundable"]), amounts),
    ),
    max_size=40,
)


def aimed(target: str, cents: int, account: Account) -> int:
    """The amount an operation asks for: at least one cent (zero and below are refused by the entry itself)."""
    credit = -account.balance.cents
    wanted = {
        "random": cents,
        "balance": account.balance.cents,
        "balance_plus_one": account.balance.cents + 1,
        "credit": credit,
        "credit_plus_one": credit + 1,
        "refundable": account.paid.cents - account.refunded.cents,
    }[target]
    return max(wanted, 1)


@dataclass
class Model:
    """The ledger kept by hand, in plain ints: what the Account must agree with."""

    owed: int = 0
    paid: int = 0
    refunded: int = 0

    @property
    def balance(self) -> int:
        return self.owed - self.paid + self.refunded


def check_invariants(account: Account, model: Model) -> None:
    # balance == owed - paid + refunded, exactly, and equal to the hand-kept ledger.
    assert account.owed.cents == model.owed
    assert account.paid.cents == model.paid
    assert account.refunded.cents == model.refunded
    assert account.balance.cents == account.owed.cents - account.paid.cents + account.refunded.cents
    assert account.balance.cents == model.balance
    # Refunds never exceed what was paid.
    assert account.refunded.cents <= account.paid.cents
    # What a superbill states as paid for its visits: never more than a visit's share, nor than the money in.
    per_charge = account.paid_per_charge()
    shares = {c.id: c.patient_share.cents for c in account.charges}
    assert all(0 <= per_charge[c].cents <= shares[c] for c in shares)
    assert sum(m.cents for m in per_charge.values()) <= max(account.paid.cents - account.refunded.cents, 0)
    # Integer cents everywhere: no float ever creeps in.
    amounts = [account.owed, account.paid, account.refunded, account.balance]
    amounts += [c.patient_share for c in account.charges] + [c.amount for c in account.charges]
    amounts += [p.amount for p in account.payments] + [r.amount for r in account.refunds]
    assert all(type(m.cents) is int for m in amounts)


@settings(max_examples=300, deadline=None, database=None)
@given(operations)
def test_random_operations_keep_the_balance_adding_up(steps: list[Operation]) -> None:
    account, model = Account(patient_id=PATIENT), Model()
    check_invariants(account, model)
    for step in steps:
        before = account.model_dump()
        if isinstance(step, AddCharge):
            account = added(account, charge(step.share_cents))
            model.owed += step.share_cents

        elif isinstance(step, Pay):
            cents = aimed(step.target, step.amount_cents, account)
            # The rule: a payment above the balance is refused unless overpayment is set.
            should_accept = cents <= model.balance or step.overpayment
            try:
                payment = account.pay(cash(cents, overpayment=step.overpayment), NOW)
            except RuleRefused:
                assert not should_accept, f"a payment of {cents} on a balance of {model.balance} was refused"
                assert account.model_dump() == before  # a refused operation changes nothing
            else:
                assert should_accept, f"a payment of {cents} on a balance of {model.balance} was taken"
                assert payment.amount == usd(cents) and payment.patient_id == PATIENT
                account = added(account, payment)
                model.paid += cents

        else:
            cents = aimed(step.target, step.amount_cents, account)
            # The rules: never more than was paid and not refunded, never more than the credit (no debt made).
            refundable, credit = model.paid - model.refunded, -model.balance
            should_accept = cents <= refundable and cents <= credit
            try:
                refund = account.refund(refund_of(cents), NOW)
            except RuleRefused:
                assert not should_accept, f"a refund of {cents} (refundable {refundable}, credit {credit}) refused"
                assert account.model_dump() == before
            else:
                assert should_accept, f"a refund of {cents} (refundable {refundable}, credit {credit}) taken"
                assert refund.amount == usd(cents)
                account = added(account, refund)
                model.refunded += cents
                # A refund needs a credit: it never makes the balance positive.
                assert account.balance.cents <= 0

        check_invariants(account, model)


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.lists(st.integers(min_value=0, max_value=MAX_SHARE), max_size=12),
    st.lists(st.integers(min_value=1, max_value=MAX_AMOUNT), max_size=12),
    st.integers(min_value=2, max_value=24),
)
def test_a_payment_plan_always_adds_up_to_the_balance(shares: list[int], payments: list[int], count: int) -> None:
    account = account_of(*(charge(share) for share in shares))
    for paid in payments:
        account = added(account, account.pay(cash(paid, overpayment=True), NOW))
    entry = PlanEntry(instalments=count, first_due_on=TODAY, interval_days=30)
    if account.balance.cents <= 0:
        with pytest.raises(Conflict):
            account.payment_plan(entry, NOW)
        return
    if account.balance.cents < count * 100:  # less than $1 an instalment is not worth a plan
        with pytest.raises(RuleRefused):
            account.payment_plan(entry, NOW)
        return
    plan = account.payment_plan(entry, NOW)
    cents = [i.amount.cents for i in plan.instalments]
    assert sum(cents) == account.balance.cents == plan.total.cents
    assert len(cents) == count
    # Equal instalments; the cents left over all go on the last.
    assert len(set(cents[:-1])) <= 1
    assert 0 <= cents[-1] - cents[0] < count
    assert all(type(c) is int for c in cents)


# ---------------------------------------------------------------------------------------------------------------
# Payments and refunds: examples at the boundaries
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("balance", "amount", "overpayment", "accepted"),
    [
        (10_000, 10_000, False, True),  # exactly the balance
        (10_000, 9_999, False, True),
        (10_000, 10_001, False, False),  # one cent over: refused ...
        (10_000, 10_001, True, True),  # ... unless meant (a deposit for future sessions)
        (0, 1, False, False),  # nothing owed
        (0, 50_000, True, True),  # a deposit on an empty account
    ],
)
def test_payment_above_the_balance_needs_overpayment(
    balance: int, amount: int, overpayment: bool, accepted: bool
) -> None:
    account = account_of(charge(balance))
    if accepted:
        assert account.pay(cash(amount, overpayment=overpayment), NOW).amount == usd(amount)
    else:
        with pytest.raises(RuleRefused, match="set overpayment"):
            account.pay(cash(amount, overpayment=overpayment), NOW)


def test_a_payment_records_what_was_given() -> None:
    account = account_of(charge(10_000))
    entry = PaymentEntry(amount=usd(2_500), method=PaymentMethod.card, reference="ch_3Nabc")
    payment = account.pay(entry, NOW)
    assert (payment.patient_id, payment.amount, payment.method, payment.reference, payment.invoice_id) == (
        PATIENT,
        usd(2_500),
        PaymentMethod.card,
        "ch_3Nabc",
        None,
    )
    assert payment.received_at == NOW


def test_a_payment_to_an_invoice_not_on_the_account_is_refused() -> None:
    other = account_of(charge(10_000))
    stranger = other.invoice(NOW)
    with pytest.raises(RuleRefused, match="no such invoice"):
        account_of(charge(10_000)).pay(cash(1_000, invoice=stranger), NOW)


@pytest.mark.parametrize(
    ("paid", "owed", "refunded", "amount", "accepted"),
    [
        (15_000, 10_000, 0, 5_000, True),  # exactly the credit
        (15_000, 10_000, 0, 5_001, False),  # one cent more would make a debt
        (15_000, 0, 0, 15_000, True),  # a whole deposit back
        (15_000, 0, 0, 15_001, False),  # more than was paid
        (15_000, 0, 10_000, 5_000, True),  # what is left after an earlier refund
        (15_000, 0, 10_000, 5_001, False),
        (10_000, 10_000, 0, 1, False),  # balance zero: no credit to refund
    ],
)
def test_refund_limits(paid: int, owed: int, refunded: int, amount: int, accepted: bool) -> None:
    account = account_of(charge(owed))
    account = added(account, account.pay(cash(paid, overpayment=True), NOW))
    if refunded:
        account = added(account, account.refund(refund_of(refunded), NOW))
    if accepted:
        refund = account.refund(refund_of(amount), NOW)
        assert refund.amount == usd(amount) and refund.reason == "deposit returned"
        assert added(account, refund).balance.cents <= 0
    else:
        with pytest.raises(RuleRefused, match="amount"):
            account.refund(refund_of(amount), NOW)


def test_nothing_paid_nothing_to_refund() -> None:
    with pytest.raises(RuleRefused, match="paid and not yet refunded"):
        Account(patient_id=PATIENT).refund(refund_of(1), NOW)


# --- entry validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cents", [0, -1, -10_000])
def test_a_payment_is_more_than_zero(cents: int) -> None:
    with pytest.raises(ValidationError, match="more than zero"):
        PaymentEntry(amount=usd(cents), method=PaymentMethod.cash)


@pytest.mark.parametrize("cents", [0, -1])
def test_a_refund_is_more_than_zero(cents: int) -> None:
    with pytest.raises(ValidationError, match="more than zero"):
        RefundEntry(amount=usd(cents), reason="overpaid")


@pytest.mark.parametrize("reason", ["", "  ", "no"])
def test_a_refund_says_why(reason: str) -> None:
    with pytest.raises(ValidationError):
        RefundEntry(amount=usd(100), reason=reason)


@pytest.mark.parametrize("reference", [None, "", "   "], ids=["none", "empty", "blank"])
def test_a_card_payment_needs_the_processor_reference(reference: str | None) -> None:
    with pytest.raises(ValidationError, match="reference"):
        PaymentEntry(amount=usd(100), method=PaymentMethod.card, reference=reference)


@pytest.mark.parametrize("method", [PaymentMethod.cash, PaymentMethod.instalment])
def test_other_methods_need_no_reference(method: PaymentMethod) -> None:
    assert PaymentEntry(amount=usd(100), method=method).reference is None


def test_a_reference_is_at_most_100_characters() -> None:
    PaymentEntry(amount=usd(100), method=PaymentMethod.card, reference="r" * 100)
    with pytest.raises(ValidationError):
        PaymentEntry(amount=usd(100), method=PaymentMethod.card, reference="r" * 101)


# ---------------------------------------------------------------------------------------------------------------
# Invoices
# ---------------------------------------------------------------------------------------------------------------


def test_an_invoice_takes_only_uninvoiced_charges_with_a_patient_share() -> None:
    first = charge(10_000)
    account = account_of(first)
    earlier = account.invoice(NOW)
    assert earlier.charge_ids == (first.id,)

    covered = charge(0, 40_000, billed_to_payer=True)  # the payer is billed: nothing for the patient to pay
    second, third = charge(5_000), charge(2_550)
    account = added(added(added(added(account, earlier), covered), second), third)
    assert account.uninvoiced == [second, third]

    invoice = account.invoice(NOW, days_to_pay=14)
    assert invoice.charge_ids == (second.id, third.id)
    assert invoice.total == usd(7_550)
    assert invoice.patient_id == PATIENT
    assert invoice.issued_at == NOW
    assert invoice.due_on == date(2026, 3, 16)  # 14 days after 2026-03-02

    account = added(account, invoice)
    assert account.uninvoiced == []
    with pytest.raises(Conflict, match="nothing to invoice"):
        account.invoice(NOW)


def test_due_in_30_days_by_default() -> None:
    # Clinic policy (BillingSettings.days_to_pay): 30 days after issue.
    assert account_of(charge(100)).invoice(NOW).due_on == date(2026, 4, 1)


@pytest.mark.parametrize(
    "account",
    [Account(patient_id=PATIENT), account_of(charge(0, 40_000, billed_to_payer=True))],
    ids=["empty", "only-covered-charges"],
)
def test_nothing_to_invoice(account: Account) -> None:
    with pytest.raises(Conflict):
        account.invoice(NOW)


def test_invoice_status_issued_partly_paid_paid() -> None:
    account = account_of(charge(10_000))
    invoice = account.invoice(NOW)
    account = added(account, invoice)
    assert account.invoice_status(invoice) is InvoiceStatus.issued

    account = added(account, account.pay(cash(4_000, invoice=invoice), NOW))
    assert account.invoice_status(invoice) is InvoiceStatus.partly_paid

    account = added(account, account.pay(cash(5_999, invoice=invoice), NOW))
    assert account.invoice_status(invoice) is InvoiceStatus.partly_paid  # one cent short

    account = added(account, account.pay(cash(1, invoice=invoice), NOW))
    assert account.invoice_status(invoice) is InvoiceStatus.paid
    assert account.balance == Money.zero()


def test_an_overpaid_invoice_is_paid() -> None:
    account = account_of(charge(10_000))
    invoice = account.invoice(NOW)
    account = added(account, invoice)
    account = added(account, account.pay(cash(12_000, overpayment=True, invoice=invoice), NOW))
    assert account.invoice_status(invoice) is InvoiceStatus.paid


def test_payments_to_another_invoice_do_not_count() -> None:
    account = account_of(charge(10_000))
    first = account.invoice(NOW)
    account = added(added(account, first), charge(3_000))
    second = account.invoice(NOW)
    account = added(account, second)
    account = added(account, account.pay(cash(3_000, invoice=second), NOW))
    assert account.invoice_status(first) is InvoiceStatus.issued
    assert account.invoice_status(second) is InvoiceStatus.paid


# ---------------------------------------------------------------------------------------------------------------
# Payment plans
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("balance", "count", "expected"),
    [
        (10_000, 3, [3_333, 3_333, 3_334]),  # $100.00 in 3: $33.33, $33.33, $33.34
        (10_000, 4, [2_500, 2_500, 2_500, 2_500]),
        (10_001, 2, [5_000, 5_001]),
        (10_002, 3, [3_334, 3_334, 3_334]),
        (10_000, 6, [1_666, 1_666, 1_666, 1_666, 1_666, 1_670]),  # all four cents left over on the last
        (200, 2, [100, 100]),  # the smallest plan: $1 an instalment
    ],
)
def test_instalments_add_up_with_the_remainder_on_the_last(balance: int, count: int, expected: list[int]) -> None:
    account = account_of(charge(balance))
    plan = account.payment_plan(PlanEntry(instalments=count, first_due_on=date(2026, 4, 1)), NOW)
    assert [i.amount.cents for i in plan.instalments] == expected
    assert sum(expected) == balance
    assert plan.total == usd(balance)
    assert plan.patient_id == PATIENT and plan.agreed_at == NOW


def test_instalments_fall_due_at_the_interval() -> None:
    account = account_of(charge(10_000))
    plan = account.payment_plan(PlanEntry(instalments=3, first_due_on=date(2026, 4, 1), interval_days=14), NOW)
    assert [i.due_on for i in plan.instalments] == [date(2026, 4, 1), date(2026, 4, 15), date(2026, 4, 29)]
    default = account.payment_plan(PlanEntry(instalments=2, first_due_on=date(2026, 4, 1)), NOW)
    assert [i.due_on for i in default.instalments] == [date(2026, 4, 1), date(2026, 5, 1)]  # 30 days by default


def test_the_plan_covers_the_balance_after_payments() -> None:
    account = account_of(charge(10_000), charge(5_000))
    account = added(account, account.pay(cash(3_000), NOW))
    plan = account.payment_plan(PlanEntry(instalments=3, first_due_on=date(2026, 4, 1)), NOW)
    assert plan.total == usd(12_000)
    assert [i.amount.cents for i in plan.instalments] == [4_000, 4_000, 4_000]


@pytest.mark.parametrize("credit", [0, 1], ids=["owes-nothing", "in-credit"])
def test_no_plan_when_nothing_is_owed(credit: int) -> None:
    account = account_of(charge(10_000))
    account = added(account, account.pay(cash(10_000 + credit, overpayment=True), NOW))
    with pytest.raises(Conflict, match="owes nothing"):
        account.payment_plan(PlanEntry(instalments=2, first_due_on=date(2026, 4, 1)), NOW)


@pytest.mark.parametrize(
    "fields",
    [
        {"instalments": 1},  # a plan is at least two instalments
        {"instalments": 25},  # at most 24
        {"interval_days": 6},  # at least a week apart
        {"interval_days": 93},  # at most a quarter
    ],
)
def test_plan_entry_bounds(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PlanEntry.model_validate({"instalments": 3, "first_due_on": date(2026, 4, 1), **fields})


def test_a_plan_whose_instalments_do_not_add_up_is_refused() -> None:
    with pytest.raises(ValidationError, match="do not add up"):
        PaymentPlan(
            id=uuid.uuid4(),
            patient_id=PATIENT,
            total=usd(10_000),
            instalments=(
                Instalment(due_on=date(2026, 4, 1), amount=usd(3_333)),
                Instalment(due_on=date(2026, 5, 1), amount=usd(3_333)),
                Instalment(due_on=date(2026, 5, 31), amount=usd(3_333)),
            ),
            agreed_at=NOW,
        )


# ---------------------------------------------------------------------------------------------------------------
# Overdue
# ---------------------------------------------------------------------------------------------------------------


def invoiced(account: Account) -> tuple[Account, Invoice]:
    invoice = account.invoice(NOW)  # due 2026-04-01
    return added(account, invoice), invoice


DUE = date(2026, 4, 1)


@pytest.mark.parametrize(
    ("today", "overdue"),
    [
        (DUE, 0),  # on the due date it is not overdue yet
        (DUE + timedelta(days=1), 10_000),  # the day after, it is
    ],
    ids=["on-the-due-date", "day-after"],
)
def test_overdue_from_the_day_after_the_due_date(today: date, overdue: int) -> None:
    account, _ = invoiced(account_of(charge(10_000)))
    assert account.overdue(today) == usd(overdue)


def test_overdue_is_what_is_left_after_payments_to_the_invoice() -> None:
    account, invoice = invoiced(account_of(charge(10_000)))
    account = added(account, account.pay(cash(2_500, invoice=invoice), NOW))
    assert account.overdue(DUE + timedelta(days=1)) == usd(7_500)
    account = added(account, account.pay(cash(7_500, invoice=invoice), NOW))
    assert account.overdue(DUE + timedelta(days=1)) == Money.zero()


def test_overdue_counts_only_late_invoices() -> None:
    account, late = invoiced(account_of(charge(10_000)))
    account = added(account, charge(4_000))
    later = account.invoice(NOW + timedelta(days=10))  # due 2026-04-11
    account = added(account, later)
    assert (late.due_on, later.due_on) == (date(2026, 4, 1), date(2026, 4, 11))
    assert account.overdue(date(2026, 4, 5)) == usd(10_000)
    assert account.overdue(date(2026, 4, 12)) == usd(14_000)


def test_nothing_invoiced_nothing_overdue() -> None:
    assert account_of(charge(10_000)).overdue(date(2030, 1, 1)) == Money.zero()


@pytest.mark.parametrize("paid_first", [False, True], ids=["paid-after-invoice", "deposit-before-invoice"])
def test_a_patient_who_owes_nothing_has_nothing_overdue(paid_first: bool) -> None:
    if paid_first:
        # A deposit for future sessions (overpayment), then the session's charge, then its invoice.
        account = Account(patient_id=PATIENT)
        account = added(account, account.pay(cash(10_000, overpayment=True), NOW))
        account, _ = invoiced(added(account, charge(10_000)))
    else:
        account, _ = invoiced(account_of(charge(10_000)))
        account = added(account, account.pay(cash(10_000), NOW))  # paid in full at the desk, no invoice named
    assert account.balance == Money.zero()
    assert account.overdue(DUE + timedelta(days=1)) == Money.zero()


def test_what_was_paid_for_each_visit_follows_the_invoice_it_named_then_the_oldest_visit() -> None:
    older = charge(300_00).model_copy(update={"service_on": TODAY - timedelta(days=7)})
    newer, later = charge(200_00), charge(100_00)
    account = account_of(older, newer)
    invoice = account.invoice(datetime(2026, 3, 1, tzinfo=UTC))  # both visits on one invoice
    account = added(account_of(older, newer, later), invoice)
    account = added(account, account.pay(cash(350_00, invoice=invoice), datetime(2026, 3, 2, tzinfo=UTC)))
    account = added(account, account.pay(cash(80_00), datetime(2026, 3, 3, tzinfo=UTC)))
    paid = account.paid_per_charge()
    # The invoice's $350 (+ $80 unassigned, applied to it first: $150 still open) pays $300 then $130 of $200.
    assert [paid[c.id].cents for c in (older, newer, later)] == [300_00, 130_00, 0]
