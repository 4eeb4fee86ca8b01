"""Consent and eligibility screening through the API, on a real database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.intake.models import Consent, Screening
from tests.intake.conftest import Intake

DOCUMENT = {
    "version": "2026.1",
    "title": "Informed consent for ketamine-assisted psychotherapy",
    "text": "Ketamine is not approved by the FDA for depression, anxiety or PTSD; its use here is off-label. " * 3,
    "effective_date": "2026-01-01",
}
SIGNATURE = {
    "witnessed_by": "Nurse Jane Doe",
    "informed_off_label_use": True,
    "informed_adverse_reactions": True,
    "informed_no_long_term_data": True,
    "informed_expected_cost": True,
    "expected_cost_note": "USD 450 per dosing session, self-pay",
}
NO_FLAGS: dict[str, Any] = {
    "aneurysmal_vascular_disease_or_avm": False,
    "intracerebral_haemorrhage_history": False,
    "cardiovascular_event_in_last_6_weeks": False,
    "ketamine_hypersensitivity": False,
    "pregnant": False,
    "current_psychosis": False,
    "suicidal_intent_needs_higher_care": False,
    "breastfeeding": False,
    "psychosis_or_mania_history": False,
    "bipolar_disorder": False,
    "mood_stabiliser": None,
    "systolic_mmhg": 122,
    "diastolic_mmhg": 78,
    "substance_use_disorder": False,
    "significant_liver_disease": False,
    "raised_icp_or_glaucoma": False,
    "seizure_in_last_year": False,
    "cardiovascular_disease": False,
    "hypertensive_encephalopathy_history": False,
    "stroke_history": False,
    "cerebrovascular_disease": False,
    "untreated_hyperthyroidism": False,
    "copd_or_pulmonary_insufficiency": False,
    "sleep_apnoea": False,
    "bmi_kg_m2": 26.1,
    "cystitis_or_urinary_symptoms": False,
    "takes_benzodiazepines": False,
    "takes_opioids": False,
    "takes_other_sedatives": False,
    "drinks_alcohol": False,
    "takes_stimulants": False,
    "takes_maoi": False,
}


async def a_document(intake: Intake, **changes: Any) -> int:
    reply = await intake.client.post(
        "/consent-documents", json={**DOCUMENT, **changes}, headers=intake.as_("site_admin")
    )
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


async def test_sign_then_withdraw_consent(intake: Intake) -> None:
    patient = await intake.register()
    document_id = await a_document(intake)
    desk = intake.as_("front_desk")
    signed = await intake.client.post(
        f"/patients/{patient['id']}/consents", json={**SIGNATURE, "document_id": document_id}, headers=desk
    )
    assert signed.status_code == 201, signed.text
    consent = signed.json()
    assert consent["document_version"] == "2026.1" and consent["status"] == "signed"
    assert (await intake.client.get(f"/patients/{patient['id']}", headers=desk)).json()["consented"] is True

    withdrawn = await intake.client.post(
        f"/patients/{patient['id']}/consents/{consent['id']}/withdraw", json={"reason": "wants to stop"}, headers=desk
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    assert (await intake.client.get(f"/patients/{patient['id']}", headers=desk)).json()["consented"] is False
    listed = (await intake.client.get(f"/patients/{patient['id']}/consents", headers=desk)).json()
    assert listed["consented"] is False and len(listed["consents"]) == 1
    again = await intake.client.post(
        f"/patients/{patient['id']}/consents/{consent['id']}/withdraw", json={"reason": "twice"}, headers=desk
    )
    assert again.status_code == 409
    [event] = await intake.events("consent.withdrawn.v1")
    assert json.loads(event.payload)["consent_id"] == consent["id"]
    assert len(await intake.events("consent.signed.v1")) == 1


@pytest.mark.parametrize(
    "disclosure",
    ["informed_off_label_use", "informed_adverse_reactions", "informed_no_long_term_data", "informed_expected_cost"],
)
async def test_every_disclosure_must_be_confirmed(intake: Intake, disclosure: str) -> None:
    patient = await intake.register()
    document_id = await a_document(intake)
    reply = await intake.client.post(
        f"/patients/{patient['id']}/consents",
        json={**SIGNATURE, "document_id": document_id, disclosure: False},
        headers=intake.as_("front_desk"),
    )
    assert reply.status_code == 422
    assert disclosure in json.dumps(reply.json()["detail"])
    assert await intake.count(Consent) == 0


async def test_consent_documents_are_versioned(intake: Intake) -> None:
    await a_document(intake)
    duplicate = await intake.client.post("/consent-documents", json=DOCUMENT, headers=intake.as_("site_admin"))
    assert duplicate.status_code == 409
    future = (date.today() + timedelta(days=30)).isoformat()
    later_id = await a_document(intake, version="2026.2", effective_date=future)
    documents = (await intake.client.get("/consent-documents", headers=intake.as_("billing"))).json()
    assert [d["version"] for d in documents] == ["2026.1", "2026.2"]
    patient = await intake.register()
    early = await intake.client.post(
        f"/patients/{patient['id']}/consents",
        json={**SIGNATURE, "document_id": later_id},
        headers=intake.as_("front_desk"),
    )
    assert early.status_code == 409 and "takes effect" in early.json()["detail"]
    unknown = await intake.client.post(
        f"/patients/{patient['id']}/consents", json={**SIGNATURE, "document_id": 999}, headers=intake.as_("front_desk")
    )
    assert unknown.status_code == 404
    future_signature = datetime.now(UTC) + timedelta(days=1)
    reply = await intake.client.post(
        f"/patients/{patient['id']}/consents",
        json={**SIGNATURE, "document_id": 1, "signed_at": future_signature.isoformat()},
        headers=intake.as_("front_desk"),
    )
    assert reply.status_code == 409


async def test_screening_outcomes_and_the_medical_review(intake: Intake) -> None:
    patient = await intake.register()
    base, nurse = f"/patients/{patient['id']}/screenings", intake.as_("therapist")
    eligible = await intake.client.post(base, json=NO_FLAGS, headers=nurse)
    assert eligible.status_code == 201 and eligible.json()["outcome"] == "eligible" and eligible.json()["eligible"]

    high_bp = await intake.client.post(
        base, json={**NO_FLAGS, "systolic_mmhg": 152, "diastolic_mmhg": 96}, headers=nurse
    )
    screening = high_bp.json()
    assert screening["outcome"] == "needs_medical_review" and screening["eligible"] is False
    assert [r["code"] for r in screening["reasons"]] == ["bp_above_threshold"]
    assert screening["bp_threshold"] == "140/90" and screening["systolic_mmhg"] == 152

    review = {"decision": "approve", "rationale": "Repeat BP 132/84 after rest; GP confirms controlled."}
    therapist_try = await intake.client.post(f"{base}/{screening['id']}/medical-review", json=review, headers=nurse)
    assert therapist_try.status_code == 403, "only a clinician decides a medical review"
    decided = await intake.client.post(
        f"{base}/{screening['id']}/medical-review", json=review, headers=intake.as_("clinician", sub="dr-1")
    )
    assert decided.status_code == 200 and decided.json()["eligible"] is True
    assert decided.json()["reviewed_by"] == "dr-1"
    twice = await intake.client.post(
        f"{base}/{screening['id']}/medical-review", json=review, headers=intake.as_("clinician")
    )
    assert twice.status_code == 409

    pregnant = await intake.client.post(base, json={**NO_FLAGS, "pregnant": True, "takes_maoi": True}, headers=nurse)
    assert pregnant.json()["outcome"] == "ineligible"
    assert {r["code"] for r in pregnant.json()["reasons"]} == {"pregnancy", "maoi"}
    refused = await intake.client.post(
        f"{base}/{pregnant.json()['id']}/medical-review", json=review, headers=intake.as_("clinician")
    )
    assert refused.status_code == 409

    completed = [json.loads(e.payload) for e in await intake.events("screening.completed.v1")]
    assert [e["outcome"] for e in completed] == ["eligible", "needs_medical_review", "ineligible"]
    [decision] = [json.loads(e.payload) for e in await intake.events("medical_review.decided.v1")]
    assert decision["decision"] == "approve" and decision["eligible"] is True


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"systolic_mmhg": 400, "diastolic_mmhg": 20}, "systolic_mmhg"),
        ({"systolic_mmhg": 120, "diastolic_mmhg": 130}, "diastolic_mmhg"),
        ({"bipolar_disorder": True, "mood_stabiliser": None}, "mood_stabiliser"),
        ({"pregnant": None}, "pregnant"),
        ({"stroke_history": None}, "stroke_history"),
        ({"bmi_kg_m2": 7.5}, "bmi_kg_m2"),
    ],
)
async def test_impossible_screening_answers_are_422_naming_the_field(
    intake: Intake, change: dict[str, Any], field: str
) -> None:
    patient = await intake.register()
    reply = await intake.client.post(
        f"/patients/{patient['id']}/screenings", json={**NO_FLAGS, **change}, headers=intake.as_("clinician")
    )
    assert reply.status_code == 422
    assert field in json.dumps(reply.json()["detail"])
    assert await intake.count(Screening) == 0


async def test_every_new_question_left_out_is_422_naming_it(intake: Intake) -> None:
    patient = await intake.register()
    new_questions = [
        "cardiovascular_event_in_last_6_weeks",
        "suicidal_intent_needs_higher_care",
        "hypertensive_encephalopathy_history",
        "stroke_history",
        "cerebrovascular_disease",
        "untreated_hyperthyroidism",
        "copd_or_pulmonary_insufficiency",
        "sleep_apnoea",
        "bmi_kg_m2",
        "cystitis_or_urinary_symptoms",
        "takes_opioids",
        "takes_other_sedatives",
        "drinks_alcohol",
    ]
    for field in new_questions:
        body = {name: value for name, value in NO_FLAGS.items() if name != field}
        reply = await intake.client.post(
            f"/patients/{patient['id']}/screenings", json=body, headers=intake.as_("clinician")
        )
        assert reply.status_code == 422, field
        [error] = reply.json()["errors"]
        assert error["pointer"] == f"/body/{field}" and error["message"] == "Field required"
    assert await intake.count(Screening) == 0


async def test_new_findings_through_the_api(intake: Intake) -> None:
    patient = await intake.register()
    base, clinician = f"/patients/{patient['id']}/screenings", intake.as_("clinician")
    answers = {**NO_FLAGS, "suicidal_intent_needs_higher_care": True, "takes_opioids": True, "sleep_apnoea": True}
    reply = await intake.client.post(base, json={**answers, "bmi_kg_m2": 36.4}, headers=clinician)
    assert reply.status_code == 201, reply.text
    screening = reply.json()
    assert screening["outcome"] == "ineligible"
    assert [(r["code"], r["kind"]) for r in screening["reasons"]] == [
        ("suicidal_intent_needs_higher_care", "contraindication"),
        ("sleep_apnoea_with_obesity", "caution"),
        ("opioids", "caution"),
    ]
    assert screening["answers"]["bmi_kg_m2"] == 36.4


async def test_a_rescreening_that_clears_a_contraindication_needs_a_clinicians_review(intake: Intake) -> None:
    patient, other = await intake.register(mrn="P-1"), await intake.register(mrn="P-2")
    base, nurse = f"/patients/{patient['id']}/screenings", intake.as_("therapist")
    review = {"decision": "approve", "rationale": "Pregnancy ended 2026-02; postpartum check done, not breastfeeding."}

    pregnant = (await intake.client.post(base, json={**NO_FLAGS, "pregnant": True}, headers=nurse)).json()
    assert pregnant["outcome"] == "ineligible"
    # Another patient's contraindication is not this patient's: the other one's screening is eligible.
    elsewhere = await intake.client.post(f"/patients/{other['id']}/screenings", json=NO_FLAGS, headers=nurse)
    assert elsewhere.json()["outcome"] == "eligible"

    cleared = (await intake.client.post(base, json=NO_FLAGS, headers=nurse)).json()
    assert cleared["outcome"] == "needs_medical_review" and cleared["eligible"] is False
    [reason] = cleared["reasons"]
    first_day = datetime.fromisoformat(pregnant["screened_at"]).date().isoformat()
    assert reason == {
        "code": "contraindication_cleared",
        "kind": "caution",
        "detail": f"no longer found, a clinician must confirm it has resolved: pregnancy (screening of {first_day})",
    }

    # Screening again while that review is pending does not make the patient eligible outright.
    again = (await intake.client.post(base, json=NO_FLAGS, headers=nurse)).json()
    assert again["outcome"] == "needs_medical_review"
    assert again["reasons"] == cleared["reasons"]

    approved = await intake.client.post(
        f"{base}/{again['id']}/medical-review", json=review, headers=intake.as_("clinician")
    )
    assert approved.status_code == 200 and approved.json()["eligible"] is True
    # Once a clinician has approved the clearance, the next screening stands on its own answers.
    after = (await intake.client.post(base, json=NO_FLAGS, headers=nurse)).json()
    assert after["outcome"] == "eligible" and after["reasons"] == []

    completed = [json.loads(e.payload) for e in await intake.events("screening.completed.v1")]
    mine = [e for e in completed if e["patient_id"] == patient["id"]]
    assert [e["reason_codes"] for e in mine] == [
        ["pregnancy"],
        ["contraindication_cleared"],
        ["contraindication_cleared"],
        [],
    ]


async def test_a_rescreening_after_a_screening_without_contraindication_is_unaffected(intake: Intake) -> None:
    patient = await intake.register()
    base, nurse = f"/patients/{patient['id']}/screenings", intake.as_("therapist")
    first = await intake.client.post(base, json={**NO_FLAGS, "systolic_mmhg": 150}, headers=nurse)
    assert first.json()["outcome"] == "needs_medical_review"
    second = await intake.client.post(base, json=NO_FLAGS, headers=nurse)
    assert second.json()["outcome"] == "eligible" and second.json()["reasons"] == []


async def test_a_screening_of_another_patient_is_the_same_404_as_a_missing_one(intake: Intake) -> None:
    first, second = await intake.register(mrn="P-1"), await intake.register(mrn="P-2")
    clinician = intake.as_("clinician")
    screening = (
        await intake.client.post(f"/patients/{first['id']}/screenings", json=NO_FLAGS, headers=clinician)
    ).json()
    elsewhere = await intake.client.get(f"/patients/{second['id']}/screenings/{screening['id']}", headers=clinician)
    missing = await intake.client.get(f"/patients/{second['id']}/screenings/{second['id']}", headers=clinician)
    assert elsewhere.status_code == missing.status_code == 404
    assert without_trace(elsewhere.json()) == without_trace(missing.json())


def without_trace(problem: dict[str, Any]) -> dict[str, Any]:
    """A problem reply without its trace id, which is each request's own."""
    return {key: value for key, value in problem.items() if key != "trace_id"}
