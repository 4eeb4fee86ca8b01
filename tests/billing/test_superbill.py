"""Superbills: the pure builder (each visit's amount spread over its codes by the fee schedule to the cent, the
charges left out, the totals and payments of the period), the PDF read back as text, and the routes on both
databases."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader
from sqlmodel import select

from services.billing.app import create_app
from services.billing.domain.charging import allocate
from services.billing.domain.claims import DEFAULT_FEES_CENTS
from services.billing.domain.codes import (
    ChargeLine,
    dosing_session_lines,
    intake_evaluation_lines,
    integration_session_lines,
)
from services.billing.domain.estimates import EstimateProvider
from services.billing.domain.ledger import Account, Charge, ChargeSource, Payment, PaymentMethod, Refund
from services.billing.domain.money import Money, total
from services.billing.domain.superbill import Superbill, SuperbillPatient, build_superbill
from services.billing.superbill_pdf import printable, render_superbill_pdf
from shared.audit import AuditEntry
from shared.errors import Conflict, RuleRefused
from shared.events.sessions import IntegrationSessionCompleted
from shared.treatment import Route
from tests.billing.conftest import PROVIDER, Billing, billing_settings
from tests.billing.test_billing_api import NOON_2025, completed, course, priced, usd
from tests.harness import app_in_process

PATIENT_ID = uuid.uuid4()
NEW_YORK = ZoneInfo("America/New_York")
JANUARY = (date(2026, 1, 1), date(2026, 1, 31))


def iv_lines(day: date) -> list[ChargeLine]:
    return dosing_session_lines(Route.iv_infusion, day, 40, 40, 55)


def charge(day: date, lines: list[ChargeLine], cents: int, **extra: Any) -> Charge:
    return Charge(
        id=uuid.uuid4(),
        patient_id=PATIENT_ID,
        course_id=None,
        source=ChargeSource.dosing_session,
        source_id=uuid.uuid4(),
        service_on=day,
        lines=tuple(lines),
        diagnosis_codes=extra.pop("diagnosis_codes", ("F33.9",)),
        amount=Money(cents=cents),
        patient_share=Money(cents=cents),
        billed_to_payer=extra.pop("billed_to_payer", False),
        **extra,
    )


def paid(cents: int, at: datetime) -> Payment:
    return Payment(
        id=uuid.uuid4(),
        patient_id=PATIENT_ID,
        amount=Money(cents=cents),
        method=PaymentMethod.cash,
        reference=None,
        invoice_id=None,
        received_at=at,
    )


def build(charges: list[Charge], *, name: str = "Ada Lovelace", **extra: Any) -> Superbill:
    start, end = extra.pop("period", JANUARY)
    return build_superbill(
        patient_id=PATIENT_ID,
        patient=SuperbillPatient(name=name, date_of_birth=date(1980, 1, 1)),
        provider=EstimateProvider(**PROVIDER),
        start=start,
        end=end,
        charges=charges,
        paid=Account(
            patient_id=PATIENT_ID,
            charges=tuple(charges),
            payments=tuple(extra.pop("payments", [])),
            refunds=tuple(extra.pop("refunds", [])),
        ).paid_per_charge(),
        fees=extra.pop("fees", DEFAULT_FEES_CENTS),
        prepared_on=date(2026, 2, 1),
        **extra,
    )


# --- allocation -------------------------------------------------------------------------------------------------


def test_a_visit_is_spread_over_its_codes_by_the_fee_schedule_the_cents_left_over_on_the_first_line() -> None:
    lines = iv_lines(date(2026, 1, 2))
    assert [line.code.code for line in lines] == ["96365", "J3490", "99214", "90838"]
    # Fees 250 + 50 + 200 + 160 = 660: $600 * 250/660 = $227.2727..., and so on, rounded down; 2 cents left over.
    shares = allocate(Money(cents=600_00), lines, DEFAULT_FEES_CENTS)
    assert [s.cents for s in shares] == [227_27 + 2, 45_45, 181_81, 145_45]
    assert total(shares) == Money(cents=600_00)


@given(
    cents=st.integers(min_value=0, max_value=100_000_00),
    fees=st.lists(st.integers(min_value=0, max_value=5_000_00), min_size=4, max_size=4),
)
def test_the_lines_always_add_up_to_the_visit_to_the_cent(cents: int, fees: list[int]) -> None:
    lines = iv_lines(date(2026, 1, 2))
    schedule = {line.code.code: fee for line, fee in zip(lines, fees, strict=True)}
    shares = allocate(Money(cents=cents), lines, schedule)
    assert sum(s.cents for s in shares) == cents
    assert all(s.cents >= 0 for s in shares)
    if sum(fees) == 0:
        assert shares[0].cents == cents, "nothing to weigh by: the whole amount on the first line"
    else:
        for share, fee in zip(shares[1:], fees[1:], strict=True):
            assert share.cents == cents * fee // sum(fees), "every line but the first is its exact share, rounded down"


def test_units_weigh_and_a_code_without_a_fee_weighs_nothing() -> None:
    day = date(2026, 1, 2)
    lines = dosing_session_lines(Route.intranasal_esketamine, day, 84, None, None)  # G2083 and 84 x J0013
    assert [(line.code.code, line.units) for line in lines] == [("G2083", 1), ("J0013", 84)]
    shares = allocate(Money(cents=1282_00), lines, DEFAULT_FEES_CENTS)  # 400.00 + 84 x 10.50 = 1282.00
    assert [s.cents for s in shares] == [400_00, 882_00]
    assert [s.cents for s in allocate(Money(cents=99_99), lines, {"G2083": 1})] == [99_99, 0]


# --- the superbill ----------------------------------------------------------------------------------------------


def test_the_superbill_lists_the_visits_of_the_period_with_codes_diagnoses_and_totals() -> None:
    jan2, jan5 = date(2026, 1, 2), date(2026, 1, 5)
    billed = [
        charge(jan5, integration_session_lines(jan5, 45), 180_00, diagnosis_codes=("F33.9", "F41.1")),
        charge(jan2, iv_lines(jan2), 537_13),
    ]
    left_out = [
        charge(date(2025, 12, 31), iv_lines(date(2025, 12, 31)), 600_00),  # before the period
        charge(date(2026, 2, 1), iv_lines(date(2026, 2, 1)), 600_00),  # after it
        charge(jan2, [], 0, needs_attention="not coded: infusion minutes missing"),
        charge(jan5, iv_lines(jan5), 0, needs_attention="no self-pay price for iv_infusion_session"),
        charge(jan5, iv_lines(jan5), 600_00, billed_to_payer=True),  # the site claims it from the payer
    ]
    payments = [
        paid(600_00, datetime(2025, 12, 31, 20, tzinfo=UTC)),
        paid(300_00, datetime(2026, 1, 2, 20, tzinfo=UTC)),
    ]
    refund = Refund(
        id=uuid.uuid4(),
        patient_id=PATIENT_ID,
        amount=Money(cents=20_00),
        reason="overpaid",
        refunded_at=datetime(2026, 1, 20, tzinfo=UTC),
    )
    bill = build(billed + left_out, payments=payments, refunds=[refund])

    assert [(v.service_on, v.place_of_service) for v in bill.visits] == [(jan2, "11"), (jan5, "11")], "by date"
    iv, integration = bill.visits
    assert [(line.code, line.modifiers) for line in iv.lines] == [
        ("96365", ()),
        ("J3490", ()),
        ("99214", ("25",)),
        ("90838", ()),
    ]
    assert [line.code for line in integration.lines] == ["90834"]
    assert total([line.charge for line in iv.lines]) == iv.amount == Money(cents=537_13)
    assert integration.lines[0].charge == Money(cents=180_00) and integration.diagnoses == ("F33.9", "F41.1")
    assert [(d.code, d.description) for d in bill.diagnoses] == [
        ("F33.9", "Major depressive disorder, recurrent, unspecified"),
        ("F41.1", "Generalized anxiety disorder"),
    ]
    assert bill.codes == ["96365", "J3490", "99214", "90838", "90834"]
    assert bill.total_charges == Money(cents=717_13)
    # $900 paid less $20 refunded: the 31 December visit ($600, not on this superbill) is paid first, the
    # $280 left goes to the 2 January visit. Only that is paid for the services listed.
    assert [v.paid for v in bill.visits] == [Money(cents=280_00), Money.zero()]
    assert bill.amount_paid == Money(cents=280_00)
    assert "paid $280.00 to Kapnet North Clinic" in bill.statement
    assert "seeking reimbursement" in bill.statement and "$717.13" in bill.statement
    assert "signature" in bill.signature_line and "NPI 1234567893" in bill.signature_line
    # Without the December visit on the account, all of it is for these: both visits in full.
    assert build(billed, payments=payments, refunds=[refund]).amount_paid == Money(cents=717_13)


def test_a_period_with_nothing_to_bill_is_a_conflict_and_a_reversed_one_is_refused() -> None:
    day = date(2026, 1, 2)
    with pytest.raises(Conflict, match="nothing to put on a superbill"):
        build([charge(day, [], 0, needs_attention="not coded"), charge(day, iv_lines(day), 1, billed_to_payer=True)])
    with pytest.raises(Conflict):
        build([charge(day, iv_lines(day), 600_00)], period=(date(2026, 3, 1), date(2026, 3, 31)))
    with pytest.raises(RuleRefused, match="from"):
        build([charge(day, iv_lines(day), 600_00)], period=(date(2026, 1, 31), date(2026, 1, 1)))


def test_a_superbill_whose_totals_do_not_add_up_is_refused() -> None:
    day = date(2026, 1, 2)
    bill = build([charge(day, iv_lines(day), 600_00)])
    with pytest.raises(ValueError, match="total_charges"):
        Superbill.model_validate({**bill.model_dump(), "total_charges": {"cents": 1, "currency": "USD"}})
    visit = bill.visits[0].model_dump()
    with pytest.raises(ValueError, match="add up"):
        Superbill.model_validate(
            {**bill.model_dump(), "visits": [{**visit, "amount": {"cents": 1, "currency": "USD"}}]}
        )


# --- the PDF ----------------------------------------------------------------------------------------------------


def text_of(pdf: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_the_pdf_reads_back_with_the_provider_every_code_the_diagnoses_and_the_totals() -> None:
    jan2, jan6 = date(2026, 1, 2), date(2026, 1, 6)
    bill = build(
        [
            charge(jan2, iv_lines(jan2), 600_00),
            charge(jan6, intake_evaluation_lines(jan6, True), 350_00, diagnosis_codes=("F43.10",)),
            charge(jan6, dosing_session_lines(Route.intranasal_esketamine, jan6, 56, None, None), 900_00),
        ],
        payments=[paid(1234_56, datetime(2026, 1, 6, 18, tzinfo=UTC))],
    )
    pdf = render_superbill_pdf(bill)
    assert pdf.startswith(b"%PDF-")
    pages, text = text_of(pdf)
    assert pages == 1
    for expected in (
        "Kapnet North Clinic",
        "NPI 1234567893",
        "TIN 123456789",
        "1 Main St",
        "Albany, NY 12207",
        "Ada Lovelace",
        "1980-01-01",
        "2026-01-01 to 2026-01-31",
        *bill.codes,
        "25",  # the modifier of 99214
        "F33.9",
        "F43.10",
        "Post-traumatic stress disorder, unspecified",
        "$1,850.00",  # the total charges
        "$1,234.56",  # what the patient paid
        "seeking reimbursement",
        "Provider signature",
        "Page 1 of 1",
    ):
        assert expected in text, expected
    assert set(bill.codes) == {"96365", "J3490", "99214", "90838", "90792", "G2082", "J0013"}
    for visit in bill.visits:
        for line in visit.lines:
            assert str(line.charge) in text


def test_the_pdf_runs_over_pages_and_the_same_superbill_gives_the_same_bytes() -> None:
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(31)]
    bill = build([charge(day, iv_lines(day), 600_00) for day in days])
    pdf = render_superbill_pdf(bill)
    assert render_superbill_pdf(bill) == pdf, "deterministic: no clock, no random id in the file"
    pages, text = text_of(pdf)
    assert pages > 1 and f"Page {pages} of {pages}" in text
    assert all(day.isoformat() in text for day in days) and "$18,600.00" in text
    info = PdfReader(io.BytesIO(pdf)).metadata
    assert info is not None and str(info["/CreationDate"]).startswith("D:20260201")
    assert "Lovelace" not in (info.title or "") and "Lovelace" not in str(info.get("/Subject"))


def test_a_name_the_font_cannot_draw_is_printed_without_accents_never_dropped() -> None:
    day = date(2026, 1, 2)
    assert printable("Zoë Łukasz Nguyễn 王") == "Zoë Łukasz Nguyen ?"
    bill = build([charge(day, iv_lines(day), 600_00)], name="Nguyễn Thị Zoë")
    assert bill.patient.name == "Nguyễn Thị Zoë", "the JSON keeps the exact name"
    assert "Nguyen Thi Zoë" in text_of(render_superbill_pdf(bill))[1]


# --- the routes, on SQLite and PostgreSQL -------------------------------------------------------------------------


@pytest.fixture
def site(billing: Billing) -> Billing:
    return billing


def superbill_url(patient: uuid.UUID, start: date, end: date, pdf: bool = False) -> str:
    return f"/patients/{patient}/superbill{'.pdf' if pdf else ''}?from={start}&to={end}"


async def test_the_superbill_as_json_and_pdf_through_the_api(site: Billing) -> None:
    await priced(site)
    patient = await site.registered()
    course_id = await course(site, patient)
    await completed(site, patient, course_id, Route.iv_infusion, NOON_2025, infusion_minutes=40)  # before
    jan2, jan9 = datetime(2026, 1, 2, 17, tzinfo=UTC), datetime(2026, 1, 9, 17, tzinfo=UTC)
    await completed(site, patient, course_id, Route.iv_infusion, jan2, infusion_minutes=40, psychotherapy_minutes=55)
    await completed(site, patient, course_id, Route.iv_infusion, jan9, infusion_minutes=40)
    await completed(site, patient, course_id, Route.iv_infusion, jan9 + timedelta(days=1))  # not coded: left out
    await site.deliver(
        IntegrationSessionCompleted(
            patient_id=patient,
            integration_session_id=uuid.uuid4(),
            course_id=course_id,
            modality="emotional_processing",
            duration_minutes=45,
            held_at=datetime(2026, 1, 5, 17, tzinfo=UTC),
        )
    )
    desk = site.as_("front_desk")
    # $1,100: the December visit's $600 first (the oldest), $500 towards 2 January.
    payment = {"amount": usd(1100_00), "method": "card", "reference": "ch_9"}
    assert (await site.client.post(f"/patients/{patient}/payments", json=payment, headers=desk)).status_code == 201

    start, end = date(2026, 1, 1), datetime.now(UTC).date() + timedelta(days=1)  # the payment is today's
    reply = await site.client.get(superbill_url(patient, start, end), headers=site.as_("billing"))
    assert reply.status_code == 200, reply.text
    assert reply.headers["cache-control"] == "no-store"
    body = reply.json()
    assert [v["service_on"] for v in body["visits"]] == ["2026-01-02", "2026-01-05", "2026-01-09"]
    assert [[line["code"] for line in v["lines"]] for v in body["visits"]] == [
        ["96365", "J3490", "99214", "90838"],
        ["90834"],
        ["96365", "J3490", "99214"],
    ]
    for visit in body["visits"]:
        assert sum(line["charge"]["cents"] for line in visit["lines"]) == visit["amount"]["cents"]
        assert visit["place_of_service"] == "11" and visit["diagnoses"] == ["F33.9"]
    assert body["visits"][0]["lines"][2]["modifiers"] == ["25"]
    assert body["total_charges"]["cents"] == 600_00 + 180_00 + 600_00
    assert body["amount_paid"]["cents"] == 500_00
    assert body["patient"] == {"name": "Ada Lovelace", "date_of_birth": "1980-01-01"}
    assert body["provider"]["npi"] == "1234567893" and body["provider"]["tin"] == "123456789"

    january = await site.client.get(superbill_url(patient, *JANUARY), headers=desk)
    # Paid today, for January's visits: what counts is what it paid for, not when.
    assert january.status_code == 200 and january.json()["amount_paid"]["cents"] == 500_00

    document = await site.client.get(superbill_url(patient, start, end, pdf=True), headers=site.as_("site_admin"))
    assert document.status_code == 200, document.text
    assert document.headers["content-type"] == "application/pdf"
    disposition = document.headers["content-disposition"]
    assert disposition == f'attachment; filename="superbill_{start}_{end}.pdf"'
    assert "Lovelace" not in disposition and "Ada" not in disposition
    _, text = text_of(document.content)
    for expected in ("NPI 1234567893", "96365", "J3490", "99214", "90838", "90834", "F33.9", "$1,380.00", "$500.00"):
        assert expected in text, expected

    async with site.database.sessions() as session:
        audited = (await session.exec(select(AuditEntry).where(AuditEntry.action == "superbill.read"))).all()
    assert len(audited) == 3 and {entry.patient_id for entry in audited} == {patient}
    assert {entry.role for entry in audited} == {"billing", "front_desk", "site_admin"}


async def test_the_superbill_routes_refuse_what_they_cannot_answer(site: Billing) -> None:
    await priced(site)
    patient = await site.registered()
    reader = site.as_("billing")
    empty = await site.client.get(superbill_url(patient, *JANUARY), headers=reader)
    assert empty.status_code == 409 and "nothing to put on a superbill" in empty.json()["detail"]
    assert (await site.client.get(superbill_url(patient, *JANUARY, pdf=True), headers=reader)).status_code == 409

    reversed_ = await site.client.get(superbill_url(patient, JANUARY[1], JANUARY[0]), headers=reader)
    assert reversed_.status_code == 422
    assert [e["pointer"] for e in reversed_.json()["errors"]] == ["/query/from"]
    for query, where in (
        ("from=1800-01-01&to=2026-01-31", "/query/from"),  # before the plausible dates
        ("from=2026-01-01&to=9999-12-31", "/query/to"),  # after them
        ("from=2026-01-01", "/query/to"),
        ("from=2026-01-01&to=2026-13-01", "/query/to"),
    ):
        bad = await site.client.get(f"/patients/{patient}/superbill?{query}", headers=reader)
        assert bad.status_code == 422 and [e["pointer"] for e in bad.json()["errors"]] == [where], query
    unknown = await site.client.get(superbill_url(patient, *JANUARY) + "&patient_name=x", headers=reader)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["pointer"] == "/query/patient_name"

    assert (await site.client.get(superbill_url(uuid.uuid4(), *JANUARY), headers=reader)).status_code == 404
    for role in ("therapist", "clinician"):
        forbidden = await site.client.get(superbill_url(patient, *JANUARY, pdf=True), headers=site.as_(role))
        assert forbidden.status_code == 403, role
    assert (await site.client.get(superbill_url(patient, *JANUARY))).status_code == 401

    # A site whose billing provider is not set cannot issue one.
    course_id = await course(site, patient)
    await completed(
        site, patient, course_id, Route.iv_infusion, datetime(2026, 1, 2, 17, tzinfo=UTC), infusion_minutes=40
    )
    unset = billing_settings(site.settings.database_url, site.settings.var_dir, provider=None)
    app = create_app(unset)
    async with app_in_process(app) as client:
        no_provider = await client.get(superbill_url(patient, *JANUARY), headers=reader)
        assert no_provider.status_code == 409 and "provider" in no_provider.json()["detail"]
    assert (await site.client.get(superbill_url(patient, *JANUARY), headers=reader)).status_code == 200
