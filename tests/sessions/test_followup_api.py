"""Integration sessions and the esketamine REMS form through the API."""

from __future__ import annotations

from typing import Any

from tests.sessions.conftest import Sessions
from tests.sessions.test_session_record_api import a_session, at, events, pre_dose, vitals

REMS_FORM: dict[str, Any] = {
    "concomitant_medications": ["sertraline 100 mg"],
    "dose_mg": 56,
    "lot_number": "SPR-1",
    "total_monitoring_minutes": 125,
    "minutes_until_ready_to_leave": 110,
    "bp_before_dosing": {"systolic_mmhg": 128, "diastolic_mmhg": 82},
    "bp_at_40_minutes": {"systolic_mmhg": 138, "diastolic_mmhg": 88},
    "bp_before_discharge": {"systolic_mmhg": 126, "diastolic_mmhg": 80},
    "sedation": True,
    "dissociation": True,
    "respiratory_depression": False,
    "serious_adverse_events": False,
}


async def test_an_esketamine_session_owes_a_rems_form_until_submitted(sessions: Sessions) -> None:
    session_id = await a_session(sessions, route="intranasal_esketamine")
    url, doctor = f"/sessions/{session_id}", sessions.as_("clinician")
    await sessions.client.post(f"{url}/pre-dose-checks", json=pre_dose(), headers=doctor)
    given = await sessions.client.post(
        f"{url}/dose",
        headers=doctor,
        json={
            "dose_mg": 56,
            "lot_number": "SPR-1",
            "administration_start": at(135),
            "device_times": [at(135), at(130)],
        },
    )
    assert given.status_code == 200, given.text
    await sessions.client.post(f"{url}/vitals", json=vitals(2), headers=doctor)
    done = await sessions.client.post(f"{url}/discharge", json={"escort_present": True}, headers=doctor)
    assert done.status_code == 200, done.text

    due = (await sessions.client.get("/rems-forms", headers=doctor)).json()
    assert [(d["session_id"], d["status"]) for d in due] == [(session_id, "due")]
    assert (await sessions.client.post(f"{url}/rems-form/submit", headers=doctor)).status_code == 409
    bad = await sessions.client.put(
        f"{url}/rems-form", json={**REMS_FORM, "serious_adverse_events": True}, headers=doctor
    )
    assert bad.status_code == 422 and "serious_adverse_event_description" in bad.text
    assert (await sessions.client.put(f"{url}/rems-form", json=REMS_FORM, headers=doctor)).status_code == 200
    submitted = await sessions.client.post(f"{url}/rems-form/submit", headers=doctor)
    assert submitted.status_code == 200 and submitted.json()["rems_submitted_at"]
    assert (await sessions.client.get("/rems-forms", headers=doctor)).json() == []
    assert (await sessions.client.get("/rems-forms", headers=sessions.as_("therapist"))).status_code == 403


async def test_a_rems_form_is_for_esketamine_only(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    reply = await sessions.client.put(
        f"/sessions/{session_id}/rems-form", json=REMS_FORM, headers=sessions.as_("clinician")
    )
    assert reply.status_code == 409 and "esketamine" in reply.json()["detail"]


async def test_integration_sessions_link_to_the_course(sessions: Sessions) -> None:
    course = (await sessions.plan(await sessions.ready_patient())).json()
    url, therapist = f"/courses/{course['id']}/integration-sessions", sessions.as_("therapist", sub="th-5")
    entry = {
        "held_at": at(60 * 24),
        "modality": "emotional_processing",
        "notes": "Worked through the imagery.",
        "duration_minutes": 50,
    }
    created = await sessions.client.post(url, json=entry, headers=therapist)
    assert created.status_code == 201 and created.json()["therapist"] == "th-5"
    future = await sessions.client.post(url, json={**entry, "held_at": at(-60)}, headers=therapist)
    assert future.status_code == 409
    assert (
        await sessions.client.post(url, json={**entry, "duration_minutes": 5}, headers=therapist)
    ).status_code == 422
    assert (await sessions.client.get(url, headers=sessions.as_("billing"))).status_code == 403
    listed = (await sessions.client.get(url, headers=sessions.as_("clinician"))).json()
    assert [e["modality"] for e in listed] == ["emotional_processing"]
    [event] = await events(sessions, "integration_session.completed.v1")
    assert event["duration_minutes"] == 50
