"""Billing through its API on a real database (SQLite and PostgreSQL), fed the events intake and sessions send:
charges from completed visits with the codes valid that day, the account and its rules, coverage and prior
authorisation, Good Faith Estimates, and access barriers."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import select

from services.billing.domain.settings import BillingSettings
from services.billing.models import ChargeRow, LedgerEntryRow
from services.billing.service import estimates as estimates_service
from services.billing.service.estimates import estimate_due
from shared.bus.tables import OutboxMessage
from shared.events.intake import CoverageOnFile, PatientRegistered, ScreeningCompleted
from shared.events.sessions import (
    CoursePlanned,
    CourseStatusChanged,
    IntegrationSessionCompleted,
    SessionCompleted,
    SessionScheduled,
)
from shared.treatment import CourseStatus, Indication, Route
from tests.billing.conftest import Billing

PRICES = {
    "iv_infusion_session": 600_00,
    "intramuscular_session": 450_00,
    "subcutaneous_session": 450_00,
    "esketamine_session": 900_00,
    "sublingual_session": 300_00,
    "integration_therapy": 180_00,
    "intake_evaluation": 350_00,
}


def usd(cents: int) -> dict[str, Any]:
    return {"cents": cents, "currency": "USD"}


async def priced(billing: Billing) -> None:
    for service, cents in PRICES.items():
        reply = await billing.client.post(
            "/prices",
            json={"service": service, "amount": usd(cents), "valid_from": "2025-01-01"},
            headers=billing.as_("site_admin"),
        )
        assert reply.status_code == 201, reply.text


async def course(billing: Billing, patient: uuid.UUID, route: Route = Route.iv_infusion) -> uuid.UUID:
    course_id = uuid.uuid4()
    await billing.deliver(
        CoursePlanned(
            patient_id=patient,
            course_id=course_id,
            indication=Indication.treatment_resistant_depression,
            route=route,
            planned_dosing_sessions=6,
            dosing_sessions_per_week=2,
            planned_integration_sessions=2,
            prescriber="dr-k",
            planned_at=datetime.now(UTC),
        )
    )
    return course_id


async def completed(
    billing: Billing,
    patient: uuid.UUID,
    course_id: uuid.UUID,
    route: Route,
    at: datetime,
    session_id: uuid.UUID | None = None,
    **extra: Any,
) -> uuid.UUID:
    session_id = session_id or uuid.uuid4()
    dose = {Route.intranasal_esketamine: 56.0}.get(route, 40.0)
    await billing.deliver(
        SessionCompleted(
            patient_id=patient,
            session_id=session_id,
            course_id=course_id,
            route=route,
            dose_mg=extra.pop("dose_mg", dose),
            dose_mg_per_kg=0.5,
            observation_minutes=60,
            modalities=["mindfulness_meditation"],
            discharged_at=at,
            **extra,
        )
    )
    return session_id


async def account(billing: Billing, patient: uuid.UUID) -> dict[str, Any]:
    reply = await billing.client.get(f"/patients/{patient}/account", headers=billing.as_("billing"))
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def events(billing: Billing, suffix: str) -> list[dict[str, Any]]:
    async with billing.database.sessions() as s:
        rows = (await s.exec(select(OutboxMessage))).all()
    return [json.loads(r.payload) for r in rows if r.ce_type.endswith(suffix)]


NOON_2025 = datetime(2025, 12, 31, 17, 0, tzinfo=UTC)  # 12:00 in New York
NOON_2026 = datetime(2026, 1, 2, 17, 0, tzinfo=UTC)


async def test_completed_visits_become_charges_with_the_codes_valid_that_day(billing: Billing) -> None:
    await priced(billing)
    patient = await billing.registered()
    iv, esketamine = await course(billing, patient), await course(billing, patient, Route.intranasal_esketamine)
    await completed(billing, patient, iv, Route.iv_infusion, NOON_2025, infusion_minutes=40, psychotherapy_minutes=55)
    await completed(billing, patient, esketamine, Route.intranasal_esketamine, NOON_2025)
    await completed(billing, patient, esketamine, Route.intranasal_esketamine, NOON_2026)
    await billing.deliver(
        IntegrationSessionCompleted(
            patient_id=patient,
            integration_session_id=uuid.uuid4(),
            course_id=iv,
            modality="emotional_processing",
            duration_minutes=45,
            held_at=NOON_2026,
        )
    )
    await billing.deliver(
        ScreeningCompleted(
            patient_id=patient,
            screening_id=uuid.uuid4(),
            outcome="eligible",
            reason_codes=[],
            screened_at=NOON_2025,
            with_medical_services=True,
        )
    )
    charges = (await account(billing, patient))["charges"]

    def codes(source: str, day: str) -> list[list[str]]:
        found = [c for c in charges if (c["source"], c["service_on"]) == (source, day)]
        return sorted([line["code"]["code"] for line in c["lines"]] for c in found)

    # CPT/HCPCS by the date of service: S0013 until 2025-12-31, J0013 from 2026-01-01.
    assert codes("dosing_session", "2025-12-31") == [["96365", "J3490", "99214", "90838"], ["G2082", "S0013"]]
    assert codes("dosing_session", "2026-01-02") == [["G2082", "J0013"]]
    assert codes("integration_session", "2026-01-02") == [["90834"]]
    assert codes("intake_evaluation", "2025-12-31") == [["90792"]]
    assert all(c["diagnosis_codes"] == ["F33.9"] for c in charges if c["course_id"])
    balance = (await account(billing, patient))["balance"]["cents"]
    assert balance == 600_00 + 900_00 * 2 + 180_00 + 350_00, "self-pay: every visit at the site's price"
    assert len(await events(billing, "charge.created.v1")) == 5


async def test_a_redelivered_event_makes_no_second_charge(billing: Billing) -> None:
    await priced(billing)
    patient = await billing.registered()
    course_id = await course(billing, patient)
    event = SessionCompleted(
        patient_id=patient,
        session_id=uuid.uuid4(),
        course_id=course_id,
        route=Route.iv_infusion,
        dose_mg=40,
        dose_mg_per_kg=0.5,
        observation_minutes=60,
        modalities=[],
        discharged_at=NOON_2026,
        infusion_minutes=40,
    )
    await billing.deliver(event)
    await billing.deliver(event)
    assert await billing.count(ChargeRow) == 1


async def test_a_run_of_visits_is_charged_as_each_alone_with_a_query_per_kind_not_per_visit(billing: Billing) -> None:
    await priced(billing)
    patient = await billing.registered()
    iv = await course(billing, patient)
    charged_before = await completed(billing, patient, iv, Route.iv_infusion, NOON_2025, infusion_minutes=40)

    def dosing(session_id: uuid.UUID, dose_mg: float | None = 40) -> SessionCompleted:
        return SessionCompleted(
            patient_id=patient,
            session_id=session_id,
            course_id=iv,
            route=Route.iv_infusion,
            dose_mg=dose_mg,
            dose_mg_per_kg=0.5,
            observation_minutes=60,
            modalities=[],
            discharged_at=NOON_2026,
            infusion_minutes=40,
        )

    def screening(patient_id: uuid.UUID) -> ScreeningCompleted:
        return ScreeningCompleted(
            patient_id=patient_id,
            screening_id=uuid.uuid4(),
            outcome="eligible",
            reason_codes=[],
            screened_at=NOON_2026,
            with_medical_services=False,
        )

    twice = dosing(uuid.uuid4())
    fresh = [dosing(uuid.uuid4()) for _ in range(20)]
    integration = IntegrationSessionCompleted(
        patient_id=patient,
        integration_session_id=uuid.uuid4(),
        course_id=iv,
        modality="emotional_processing",
        duration_minutes=45,
        held_at=NOON_2026,
    )
    evaluation = screening(patient)
    run = [
        twice,
        twice,  # delivered twice in the run
        dosing(charged_before),  # charged in an earlier transaction
        dosing(uuid.uuid4(), dose_mg=None),  # stopped before any dose: nothing to charge
        *fresh,
        integration,
        evaluation,
        screening(uuid.uuid4()),  # a patient billing never heard of: nothing to bill it to
    ]
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    engine = billing.database.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        await billing.deliver_together(run)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)

    charges = (await account(billing, patient))["charges"]
    by_source = Counter(c["source_id"] for c in charges)
    assert set(by_source.values()) == {1}, "a visit charged twice"
    assert by_source.keys() == {
        str(charged_before), str(twice.session_id), *(str(e.session_id) for e in fresh),
        str(integration.integration_session_id), str(evaluation.screening_id),
    }  # fmt: skip
    balance = (await account(billing, patient))["balance"]["cents"]
    assert balance == 600_00 * 22 + 180_00 + 350_00
    assert len(await events(billing, "charge.created.v1")) == 24  # one before the run, 23 in it
    # 23 charges made in the run: the reads are one a kind (charges, courses, authorisations, coverage,
    # assistance, prices, patients), the writes a few bulk statements, not a handful for each visit.
    assert statements <= 12, f"{statements} statements for the run"  # 10 on SQLite (with BEGIN and COMMIT)


async def test_an_unpriced_or_uncodable_visit_is_kept_for_billing_to_look_at(billing: Billing) -> None:
    patient = await billing.registered()
    course_id = await course(billing, patient)
    await completed(billing, patient, course_id, Route.iv_infusion, NOON_2026)  # no price, no infusion minutes
    [charge] = (await account(billing, patient))["charges"]
    assert charge["amount"]["cents"] == 0 and "not coded" in charge["needs_attention"]


async def test_payments_refunds_and_plans_keep_the_balance_honest(billing: Billing) -> None:
    await priced(billing)
    patient = await billing.registered()
    course_id = await course(billing, patient)
    await completed(billing, patient, course_id, Route.iv_infusion, NOON_2026, infusion_minutes=40)
    desk, url = billing.as_("front_desk"), f"/patients/{patient}"
    invoice = await billing.client.post(f"{url}/invoices", headers=desk)
    assert invoice.status_code == 201 and invoice.json()["total"]["cents"] == 600_00
    again = await billing.client.post(f"{url}/invoices", headers=desk)
    assert again.status_code == 409, "nothing left to invoice"

    too_much = {"amount": usd(700_00), "method": "cash", "invoice_id": invoice.json()["id"]}
    refused = await billing.client.post(f"{url}/payments", json=too_much, headers=desk)
    assert refused.status_code == 422 and refused.json()["detail"].startswith(
        "amount: $700.00 is more than the balance"
    )
    async with billing.database.sessions() as s:
        assert (await s.exec(select(LedgerEntryRow).where(LedgerEntryRow.kind == "payment"))).first() is None
    no_card_ref = await billing.client.post(
        f"{url}/payments", json={"amount": usd(100_00), "method": "card"}, headers=desk
    )
    assert no_card_ref.status_code == 422 and "reference" in no_card_ref.text
    negative = await billing.client.post(f"{url}/payments", json={"amount": usd(-5), "method": "cash"}, headers=desk)
    assert negative.status_code == 422

    paid = {"amount": usd(200_00), "method": "card", "reference": "ch_3Nq", "invoice_id": invoice.json()["id"]}
    assert (await billing.client.post(f"{url}/payments", json=paid, headers=desk)).status_code == 201
    state = await account(billing, patient)
    assert state["balance"]["cents"] == 400_00 and state["invoices"][0]["status"] == "partly_paid"

    plan = await billing.client.post(
        f"{url}/payment-plans",
        json={"instalments": 3, "first_due_on": str(date.today() + timedelta(days=7))},
        headers=desk,
    )
    assert plan.status_code == 201
    assert [i["amount"]["cents"] for i in plan.json()["instalments"]] == [133_33, 133_33, 133_34]

    deposit = {"amount": usd(500_00), "method": "cash", "overpayment": True}
    assert (await billing.client.post(f"{url}/payments", json=deposit, headers=desk)).status_code == 201
    assert (await account(billing, patient))["balance"]["cents"] == -100_00, "in credit"
    admin = billing.as_("site_admin")
    over = await billing.client.post(
        f"{url}/refunds", json={"amount": usd(150_00), "reason": "credit back"}, headers=admin
    )
    assert over.status_code == 422, "a refund never makes a debt"
    refund = await billing.client.post(
        f"{url}/refunds", json={"amount": usd(100_00), "reason": "credit back"}, headers=admin
    )
    assert refund.status_code == 201
    assert (await account(billing, patient))["balance"]["cents"] == 0
    assert [e["method"] for e in await events(billing, "payment.recorded.v1")] == ["card", "cash", "refund"]
    assert (
        await billing.client.post(f"{url}/refunds", json={"amount": usd(1), "reason": "x y"}, headers=desk)
    ).status_code == 403


async def test_insured_coverage_prior_authorisation_and_the_barrier_when_it_is_denied(billing: Billing) -> None:
    await priced(billing)
    setup = billing.as_("billing")
    plan = {
        "payer": "Demo Health",
        "plan": "Standard",
        "payer_type": "commercial",
        "covers_esketamine_with_prior_auth": True,
        "covers_off_label_ketamine": False,
        "covers_psychotherapy": True,
    }
    assert (await billing.client.put("/plans", json=plan, headers=setup)).status_code == 200
    insured = CoverageOnFile(self_pay=False, payer="Demo Health", plan="Standard", member_id="DH-1")
    patient = await billing.registered(insured)

    iv = await course(billing, patient)
    coverage = (await billing.client.get(f"/courses/{iv}/coverage", headers=setup)).json()["determination"]
    assert (coverage["kind"], coverage["reason"]) == ("partly_covered", "off_label_ketamine_psychotherapy_only")

    esketamine = await course(billing, patient, Route.intranasal_esketamine)
    coverage = (await billing.client.get(f"/courses/{esketamine}/coverage", headers=setup)).json()["determination"]
    assert (coverage["kind"], coverage["reason"]) == ("not_covered", "site_not_rems_certified")

    auth = await billing.client.get(f"/courses/{iv}/prior-authorisation", headers=setup)
    assert auth.status_code == 409, "psychotherapy-only coverage needs no prior authorisation"

    # At a REMS-certified site the esketamine course is covered with prior authorisation.
    from services.billing.app import create_app
    from tests.billing.conftest import billing_settings
    from tests.harness import app_in_process

    certified = billing_settings(billing.settings.database_url, billing.settings.var_dir, rems_certified=True)
    async with app_in_process(create_app(certified)) as client:
        site = Billing(client, certified)
        redetermined = await client.post(f"/courses/{esketamine}/coverage", headers=setup)
        assert redetermined.json()["determination"]["kind"] == "covered"
        auth_id = (await client.get(f"/courses/{esketamine}/prior-authorisation", headers=setup)).json()["id"]
        no_evidence = await client.post(
            f"/prior-authorisations/{auth_id}/status", json={"status": "submitted"}, headers=setup
        )
        assert no_evidence.status_code == 422 and "prior-treatment" in no_evidence.json()["detail"]
        evidence = ["sertraline 200 mg 8 weeks: no response", "venlafaxine 225 mg 8 weeks: partial"]
        submitted = await client.post(
            f"/prior-authorisations/{auth_id}/status", json={"status": "submitted", "evidence": evidence}, headers=setup
        )
        assert submitted.status_code == 200 and submitted.json()["evidence"] == evidence
        no_reason = await client.post(
            f"/prior-authorisations/{auth_id}/status", json={"status": "denied"}, headers=setup
        )
        assert no_reason.status_code == 422 and "denial_reason" in no_reason.text
        denied = await client.post(
            f"/prior-authorisations/{auth_id}/status",
            json={"status": "denied", "denial_reason": "step therapy: two more trials required"},
            headers=setup,
        )
        assert denied.json()["status"] == "denied"
        await site.deliver(
            CourseStatusChanged(
                patient_id=patient,
                course_id=esketamine,
                previous_status=CourseStatus.planned,
                status=CourseStatus.on_hold,
                reason="authorisation denied",
                changed_at=datetime.now(UTC),
            )
        )
        [barrier] = (await client.get(f"/patients/{patient}/access-barriers", headers=setup)).json()
        assert (barrier["reason"], barrier["outcome"], barrier["recorded_automatically"]) == (
            "authorisation_denied",
            "deferred",
            True,
        )
    assert [e["status"] for e in await events(billing, "prior_auth.status_changed.v1")] == ["submitted", "denied"]
    assert {e["kind"] for e in await events(billing, "coverage.determined.v1")} >= {"partly_covered", "covered"}


async def test_staff_record_an_access_barrier(billing: Billing) -> None:
    patient = await billing.registered()
    body = {"reason": "high_out_of_pocket", "outcome": "declined", "estimated_out_of_pocket": usd(3600_00)}
    reply = await billing.client.post(
        f"/patients/{patient}/access-barriers", json=body, headers=billing.as_("front_desk")
    )
    assert reply.status_code == 201 and reply.json()["recorded_by"]
    other = await billing.client.post(
        f"/patients/{patient}/access-barriers",
        json={"reason": "other", "outcome": "deferred"},
        headers=billing.as_("billing"),
    )
    assert other.status_code == 422 and "note" in other.text
    [event] = await events(billing, "access_barrier.recorded.v1")
    assert (event["reason"], event["estimated_out_of_pocket_cents"]) == ("high_out_of_pocket", 3600_00)


async def test_a_self_pay_booking_owes_a_good_faith_estimate_by_the_business_day_rules(billing: Billing) -> None:
    admin = billing.as_("site_admin")
    for body in (
        {"service": "iv_infusion_session", "amount": usd(600_00), "valid_from": "2025-01-01", "valid_to": "2026-06-14"},
        {"service": "iv_infusion_session", "amount": usd(1100_00), "valid_from": "2026-06-15"},
    ):
        assert (await billing.client.post("/prices", json=body, headers=admin)).status_code == 201
    overlapping = {"service": "iv_infusion_session", "amount": usd(1), "valid_from": "2026-06-14"}
    assert (await billing.client.post("/prices", json=overlapping, headers=admin)).status_code == 409
    patient = await billing.registered()
    course_id = await course(billing, patient)
    scheduled_at = datetime(2026, 5, 22, 15, 0, tzinfo=UTC)  # Friday before Memorial Day
    service = datetime(2026, 6, 12, 14, 0, tzinfo=UTC)
    session_id = uuid.uuid4()
    await billing.deliver(
        SessionScheduled(
            patient_id=patient,
            session_id=session_id,
            course_id=course_id,
            route=Route.iv_infusion,
            starts_at=service,
            ends_at=service + timedelta(hours=3),
            weekly_cap_overridden=False,
        ),
        at=scheduled_at,
    )
    [owed] = (await billing.client.get("/estimates", headers=billing.as_("billing"))).json()
    # 10+ business days ahead: due 3 business days after scheduling, skipping the weekend and Memorial Day.
    assert owed["due_on"] == str(estimate_due(date(2026, 5, 22), date(2026, 6, 12))) == "2026-05-28"
    assert owed["status"] == "overdue", "today is after 2026-05-28"
    issued = await billing.client.post(f"/estimates/{owed['id']}/issue", headers=billing.as_("front_desk"))
    assert issued.status_code == 200, issued.text
    estimate = issued.json()
    assert estimate["total"]["cents"] == 600_00 and estimate["estimate"]["patient"]["name"] == "Ada Lovelace"
    assert estimate["estimate"]["items"][0]["service_code"] == "96365" and estimate["status"] == "issued_late"
    assert "$400" in estimate["estimate"]["disclaimers"]["dispute_rights"]
    assert estimate["open_to_dispute"] == []
    # The visit moved to 15 June, when the price is $1,100: billed $500 more than estimated, so open to dispute.
    moved = datetime(2026, 6, 15, 17, tzinfo=UTC)
    await completed(billing, patient, course_id, Route.iv_infusion, moved, session_id, infusion_minutes=40)
    [excess] = (await billing.client.get(f"/estimates/{owed['id']}", headers=billing.as_("billing"))).json()[
        "open_to_dispute"
    ]
    assert (excess["npi"], excess["excess"]["cents"]) == ("1234567893", 500_00)
    assert len(await events(billing, "estimate.issued.v1")) == 1


async def test_an_insured_booking_owes_no_estimate_and_billing_reads_no_clinical_record(billing: Billing) -> None:
    patient = await billing.registered(CoverageOnFile(self_pay=False, payer="P", plan="Q", member_id="1"))
    course_id = await course(billing, patient)
    start = datetime.now(UTC) + timedelta(days=30)
    await billing.deliver(
        SessionScheduled(
            patient_id=patient,
            session_id=uuid.uuid4(),
            course_id=course_id,
            route=Route.iv_infusion,
            starts_at=start,
            ends_at=start + timedelta(hours=3),
            weekly_cap_overridden=False,
        )
    )
    assert (await billing.client.get("/estimates", headers=billing.as_("billing"))).json() == []
    assert (
        await billing.client.get(f"/patients/{patient}/account", headers=billing.as_("therapist"))
    ).status_code == 403
    assert (
        await billing.client.get(f"/patients/{uuid.uuid4()}/account", headers=billing.as_("billing"))
    ).status_code == 404


async def test_bad_input_is_a_4xx_naming_the_field_and_nothing_is_written(billing: Billing) -> None:
    admin, desk = billing.as_("site_admin"), billing.as_("front_desk")
    cases = [
        (
            "/prices",
            {"service": "iv_infusion_session", "amount": usd(-100), "valid_from": "2026-01-01"},
            "/body/amount",
        ),
        ("/prices", {"service": "laser_session", "amount": usd(100), "valid_from": "2026-01-01"}, "/body/service"),
        (
            "/prices",
            {
                "service": "iv_infusion_session",
                "amount": {"cents": 10.5, "currency": "USD"},
                "valid_from": "2026-01-01",
            },
            "/body/amount/cents",
        ),
    ]
    for path, body, pointer in cases:
        reply = await billing.client.post(path, json=body, headers=admin)
        assert reply.status_code == 422, reply.text
        assert pointer in [e["pointer"] for e in reply.json()["errors"]], reply.text
    assert (await billing.client.get("/prices", headers=admin)).json() == []
    patient = await billing.registered()
    negative = await billing.client.post(
        f"/patients/{patient}/payments", json={"amount": usd(-1_00), "method": "cash"}, headers=desk
    )
    assert negative.status_code == 422 and "/body/amount" in [e["pointer"] for e in negative.json()["errors"]]
    assert await billing.count(LedgerEntryRow) == 0


def test_a_fee_for_a_code_kapnet_does_not_bill_stops_the_service() -> None:
    with pytest.raises(ValidationError, match="99999"):
        BillingSettings(fee_schedule={"99999": 100_00})


async def test_an_estimates_dates_are_the_sites_days_not_utcs(
    billing: Billing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requested Thursday 11 June 2026 at 21:30 in New York, already Friday in UTC: due three business days after
    the Thursday (Tuesday 16 June), not after the Friday (Wednesday 17 June)."""
    await priced(billing)
    patient = await billing.registered()
    course_id = await course(billing, patient)
    thursday_evening = datetime(2026, 6, 12, 1, 30, tzinfo=UTC)
    monkeypatch.setattr(estimates_service, "utcnow", lambda: thursday_evening)
    asked = await billing.client.post(
        f"/patients/{patient}/estimates", json={"course_id": str(course_id)}, headers=billing.as_("front_desk")
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["due_on"] == "2026-06-16"
    # Issued on Tuesday 16 June at 21:00 in New York (Wednesday in UTC): on time.
    monkeypatch.setattr(estimates_service, "utcnow", lambda: datetime(2026, 6, 17, 1, 0, tzinfo=UTC))
    issued = await billing.client.post(f"/estimates/{asked.json()['id']}/issue", headers=billing.as_("front_desk"))
    assert issued.status_code == 200 and issued.json()["status"] == "issued", issued.text


async def test_a_visit_booked_after_it_happened_owes_no_estimate_and_is_not_dead_lettered(billing: Billing) -> None:
    """Sessions takes bookings up to a day back (a visit charted late); the estimate was for before the visit."""
    patient = await billing.registered()
    course_id = await course(billing, patient)
    yesterday = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
    await billing.deliver(
        SessionScheduled(
            patient_id=patient,
            session_id=uuid.uuid4(),
            course_id=course_id,
            route=Route.iv_infusion,
            starts_at=yesterday,
            ends_at=yesterday + timedelta(hours=3),
            weekly_cap_overridden=False,
        ),
        at=yesterday + timedelta(days=1),
    )
    assert (await billing.client.get("/estimates", headers=billing.as_("billing"))).json() == []


async def test_a_course_planned_before_the_registration_arrives_gets_its_coverage(billing: Billing) -> None:
    """Billing reads intake's and sessions' topics with no order between them: after downtime the course can come
    first. The registration then determines its coverage, rather than leaving the course self-pay by default."""
    setup = billing.as_("billing")
    plan = {
        "payer": "Demo Health",
        "plan": "Standard",
        "payer_type": "commercial",
        "covers_esketamine_with_prior_auth": True,
        "covers_off_label_ketamine": False,
        "covers_psychotherapy": True,
    }
    assert (await billing.client.put("/plans", json=plan, headers=setup)).status_code == 200
    patient = uuid.uuid4()
    iv = await course(billing, patient)
    assert (await billing.client.get(f"/courses/{iv}/coverage", headers=setup)).status_code == 409  # not yet
    await billing.deliver(
        PatientRegistered(
            patient_id=patient,
            site="north",
            mrn="M9",
            given_name="Grace",
            family_name="Hopper",
            birth_date=date(1976, 12, 9),
            sex="female",
            registered_at=datetime.now(UTC),
            coverage=CoverageOnFile(self_pay=False, payer="Demo Health", plan="Standard", member_id="DH-9"),
        )
    )
    coverage = (await billing.client.get(f"/courses/{iv}/coverage", headers=setup)).json()["determination"]
    assert (coverage["kind"], coverage["reason"]) == ("partly_covered", "off_label_ketamine_psychotherapy_only")
