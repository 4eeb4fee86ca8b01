"""Claims through the API on a real database: built from the charges a payer is billed for, only the covered
lines, with the fee schedule and the diagnoses, gated on an approved prior authorisation, submitted and
adjudicated; what the payer leaves to the patient lands on the account."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.billing.app import create_app
from shared.events.intake import CoverageOnFile
from shared.treatment import Route
from tests.billing.conftest import Billing, billing_settings
from tests.billing.test_billing_api import NOON_2026, account, completed, course, events, priced, usd
from tests.harness import app_in_process

PLAN = {
    "payer": "Demo Health",
    "plan": "Standard",
    "payer_type": "commercial",
    "covers_esketamine_with_prior_auth": True,
    "covers_off_label_ketamine": False,
    "covers_psychotherapy": True,
}
INSURED = CoverageOnFile(self_pay=False, payer="Demo Health", plan="Standard", member_id="DH-7")


async def approved(client: Any, course_id: uuid.UUID, headers: dict[str, str]) -> None:
    auth = (await client.get(f"/courses/{course_id}/prior-authorisation", headers=headers)).json()
    steps: list[dict[str, Any]] = [
        {"status": "submitted", "evidence": ["sertraline 200 mg/day 8 weeks: no response"] * 2},
        {
            "status": "approved",
            "approval": {
                "authorisation_number": "PA-991",
                "units": 8,
                "valid_from": "2026-01-01",
                "valid_to": "2026-12-31",
            },
        },
    ]
    for step in steps:
        reply = await client.post(f"/prior-authorisations/{auth['id']}/status", json=step, headers=headers)
        assert reply.status_code == 200, reply.text


async def test_an_esketamine_claim_waits_for_its_authorisation_then_is_paid_in_part(
    database_url: str, tmp_path: Path
) -> None:
    settings = billing_settings(database_url, tmp_path, rems_certified=True)
    async with app_in_process(create_app(settings)) as client:
        billing = Billing(client, settings)
        clerk = billing.as_("billing")
        await priced(billing)
        assert (await client.put("/plans", json=PLAN, headers=clerk)).status_code == 200
        patient = await billing.registered(INSURED)
        course_id = await course(billing, patient, Route.intranasal_esketamine)
        await completed(billing, patient, course_id, Route.intranasal_esketamine, NOON_2026)
        assert (await account(billing, patient))["balance"]["cents"] == 0, "covered: the payer is billed first"

        early = await client.post(f"/courses/{course_id}/claims", headers=clerk)
        assert early.status_code == 409 and "prior authorisation" in early.json()["detail"]
        await approved(client, course_id, clerk)
        drafted = await client.post(f"/courses/{course_id}/claims", headers=clerk)
        assert drafted.status_code == 201, drafted.text
        claim = drafted.json()
        lines = [
            (line["code"], line["units"], line["charge"]["cents"], line["diagnosis_pointers"])
            for line in claim["lines"]
        ]
        # G2082 at the site's fee; J0013 (valid from 2026-01-01) per mg: 56 x $10.50.
        assert lines == [("G2082", 1, 300_00, "A"), ("J0013", 56, 588_00, "A")]
        assert (claim["diagnoses"], claim["prior_authorisation_number"]) == (["F33.9"], "PA-991")
        assert claim["billing_provider"]["npi"] == "1234567893" and claim["subscriber"]["member_id"] == "DH-7"
        again = await client.post(f"/courses/{course_id}/claims", headers=clerk)
        assert again.status_code == 409, "each charge is claimed once"

        url = f"/claims/{claim['id']}"
        assert (await client.post(f"{url}/adjudication", json={}, headers=clerk)).status_code == 422
        too_early = {"outcome": "paid", "paid": usd(888_00), "patient_responsibility": usd(0)}
        assert (await client.post(f"{url}/adjudication", json=too_early, headers=clerk)).status_code == 409
        assert (await client.post(f"{url}/submit", headers=clerk)).json()["status"] == "submitted"
        more_than_billed = {"outcome": "paid", "paid": usd(888_00), "patient_responsibility": usd(1)}
        refused = await client.post(f"{url}/adjudication", json=more_than_billed, headers=clerk)
        assert refused.status_code == 422 and "total charge" in refused.json()["detail"]
        no_reason = {"outcome": "denied", "paid": usd(0), "patient_responsibility": usd(888_00)}
        assert (await client.post(f"{url}/adjudication", json=no_reason, headers=clerk)).status_code == 422
        partly = {"outcome": "partly_paid", "paid": usd(700_00), "patient_responsibility": usd(50_00)}
        adjudicated = await client.post(f"{url}/adjudication", json=partly, headers=clerk)
        assert adjudicated.status_code == 200 and adjudicated.json()["status"] == "adjudicated"
        assert (await account(billing, patient))["balance"]["cents"] == 50_00, "the co-pay is the patient's"
        # The co-pay is invoiced like a charge, so it can fall due (and overdue) rather than sit unbilled.
        invoice = await client.post(f"/patients/{patient}/invoices", headers=clerk)
        assert invoice.status_code == 201, invoice.text
        assert (invoice.json()["total"]["cents"], invoice.json()["claim_ids"]) == (50_00, [claim["id"]])
        assert (await client.post(f"/patients/{patient}/invoices", headers=clerk)).status_code == 409
        [submitted] = await events(billing, "claim.submitted.v1")
        [decided] = await events(billing, "claim.adjudicated.v1")
        assert (submitted["total_cents"], decided["outcome"], decided["patient_responsibility_cents"]) == (
            888_00,
            "partly_paid",
            50_00,
        )


async def test_a_partly_covered_course_claims_only_the_covered_lines(billing: Billing) -> None:
    clerk = billing.as_("billing")
    await priced(billing)
    assert (await billing.client.put("/plans", json=PLAN, headers=clerk)).status_code == 200
    patient = await billing.registered(INSURED)
    course_id = await course(billing, patient, Route.iv_infusion)
    await completed(
        billing, patient, course_id, Route.iv_infusion, NOON_2026, infusion_minutes=40, psychotherapy_minutes=40
    )
    # The off-label ketamine and its administration are the patient's; the visit and psychotherapy are claimed.
    # The $600 visit split by the site's fees 250 : 50 : 200 : 120: 241.96 + 48.38 = 290.34 is the patient's.
    assert (await account(billing, patient))["balance"]["cents"] == 290_34
    claim = (await billing.client.post(f"/courses/{course_id}/claims", headers=clerk)).json()
    assert [line["code"] for line in claim["lines"]] == ["99214", "90836"]
    assert [line["modifiers"] for line in claim["lines"]] == [["25"], []]


async def test_a_self_pay_patient_has_nothing_to_claim(billing: Billing) -> None:
    await priced(billing)
    patient = await billing.registered()
    course_id = await course(billing, patient)
    await completed(
        billing, patient, course_id, Route.iv_infusion, datetime(2026, 2, 2, 17, tzinfo=UTC), infusion_minutes=40
    )
    reply = await billing.client.post(f"/courses/{course_id}/claims", headers=billing.as_("billing"))
    assert reply.status_code == 409 and "pays for themselves" in reply.json()["detail"]
    assert (
        await billing.client.post(f"/courses/{course_id}/claims", headers=billing.as_("front_desk"))
    ).status_code == 403


async def test_clerks_at_once_claim_and_invoice_each_charge_once(billing: Billing) -> None:
    """Six claims and six invoices for the same charges at the same moment: one of each is built, the others are
    told everything is on one already (on PostgreSQL the account lock orders them; READ COMMITTED alone would let
    each read "nothing claimed yet")."""
    clerk = billing.as_("billing")
    await priced(billing)
    assert (await billing.client.put("/plans", json=PLAN, headers=clerk)).status_code == 200
    patient = await billing.registered(INSURED)
    course_id = await course(billing, patient, Route.iv_infusion)
    await completed(
        billing, patient, course_id, Route.iv_infusion, NOON_2026, infusion_minutes=40, psychotherapy_minutes=40
    )

    async def claim() -> int:
        return (await billing.client.post(f"/courses/{course_id}/claims", headers=clerk)).status_code

    async def invoice() -> int:
        return (await billing.client.post(f"/patients/{patient}/invoices", headers=clerk)).status_code

    statuses = await asyncio.gather(*(claim() for _ in range(6)), *(invoice() for _ in range(6)))
    assert sorted(statuses[:6]) == [201] + [409] * 5
    assert sorted(statuses[6:]) == [201] + [409] * 5
    state = await account(billing, patient)
    assert len(state["invoices"]) == 1 and state["invoices"][0]["total"]["cents"] == 290_34
    claims = (await billing.client.get(f"/patients/{patient}/claims", headers=clerk)).json()
    assert len(claims) == 1


async def test_a_denied_authorisation_moves_the_waiting_charges_to_the_patient(
    database_url: str, tmp_path: Path
) -> None:
    """Charged while the authorisation was pending (nothing owed yet), then denied: no claim can be made, so the
    visit is the patient's rather than billed to no one; a visit after the denial is the patient's at once."""
    settings = billing_settings(database_url, tmp_path, rems_certified=True)
    async with app_in_process(create_app(settings)) as client:
        billing = Billing(client, settings)
        clerk = billing.as_("billing")
        await priced(billing)
        assert (await client.put("/plans", json=PLAN, headers=clerk)).status_code == 200
        patient = await billing.registered(INSURED)
        course_id = await course(billing, patient, Route.intranasal_esketamine)
        await completed(billing, patient, course_id, Route.intranasal_esketamine, NOON_2026)
        assert (await account(billing, patient))["balance"]["cents"] == 0
        auth = (await client.get(f"/courses/{course_id}/prior-authorisation", headers=clerk)).json()
        for step in (
            {"status": "submitted", "evidence": ["sertraline 200 mg/day 8 weeks: no response"] * 2},
            {"status": "denied", "denial_reason": "step therapy: two more trials required"},
        ):
            assert (
                await client.post(f"/prior-authorisations/{auth['id']}/status", json=step, headers=clerk)
            ).is_success
        [charge] = (await account(billing, patient))["charges"]
        assert (charge["billed_to_payer"], charge["patient_share"]["cents"]) == (False, charge["amount"]["cents"])
        await completed(billing, patient, course_id, Route.intranasal_esketamine, NOON_2026 + timedelta(days=3))
        after = (await account(billing, patient))["charges"]
        assert [c["billed_to_payer"] for c in after] == [False, False]
        assert (await account(billing, patient))["balance"]["cents"] == sum(c["amount"]["cents"] for c in after) > 0
        refused = await client.post(f"/courses/{course_id}/claims", headers=clerk)
        assert refused.status_code == 409


async def test_a_claim_keeps_to_the_authorisations_dates_and_visits(database_url: str, tmp_path: Path) -> None:
    """Approved for 8 visits in 2026: a visit on 5 January 2027 waits for a renewed authorisation."""
    settings = billing_settings(database_url, tmp_path, rems_certified=True)
    async with app_in_process(create_app(settings)) as client:
        billing = Billing(client, settings)
        clerk = billing.as_("billing")
        await priced(billing)
        assert (await client.put("/plans", json=PLAN, headers=clerk)).status_code == 200
        patient = await billing.registered(INSURED)
        course_id = await course(billing, patient, Route.intranasal_esketamine)
        await approved(client, course_id, clerk)  # PA-991: 8 visits, 2026-01-01 to 2026-12-31
        await completed(billing, patient, course_id, Route.intranasal_esketamine, datetime(2027, 1, 5, 17, tzinfo=UTC))
        outside = await client.post(f"/courses/{course_id}/claims", headers=clerk)
        assert (
            outside.status_code == 409 and "covers 8 visits from 2026-01-01 to 2026-12-31" in outside.json()["detail"]
        )
