"""A dosing session from check-in to signature, through the API on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from shared.bus.tables import OutboxMessage
from tests.sessions.conftest import Sessions

NOW = datetime.now(UTC)


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def pre_dose(**changes: Any) -> dict[str, Any]:
    return {
        "weight": {"value": 80, "unit": "kg"},
        "vitals": {
            "taken_at": at(130),
            "systolic_mmhg": 128,
            "diastolic_mmhg": 82,
            "heart_rate_bpm": 72,
            "spo2_percent": 98,
            "respiratory_rate_per_min": 14,
        },
        "fasting": True,
        "takes_benzodiazepines": False,
        "takes_stimulants": False,
        "takes_maois": False,
        "takes_opioids": False,
        "escort_arranged": True,
        **changes,
    }


def vitals(minutes_ago: float, **changes: Any) -> dict[str, Any]:
    """A full set: blood pressure, heart rate, SpO2 and respiratory rate, all within the discharge criteria."""
    return {
        "taken_at": at(minutes_ago),
        "systolic_mmhg": 132,
        "diastolic_mmhg": 84,
        "heart_rate_bpm": 76,
        "spo2_percent": 97,
        "respiratory_rate_per_min": 14,
        **changes,
    }


def recovered(minutes_ago: float, **changes: Any) -> dict[str, Any]:
    """A sedation and dissociation check that finds both resolved."""
    return {
        "assessed_at": at(minutes_ago),
        "moaa_s": 5,
        "dissociation_present": False,
        "respiratory_depression_present": False,
        **changes,
    }


def iv_dose(**changes: Any) -> dict[str, Any]:
    """0.5 mg/kg over 40 minutes, started 110 minutes ago."""
    return {
        "mg_per_kg": 0.5,
        "lot_number": "KET-2291",
        "administration_start": at(110),
        "administration_end": at(70),
        **changes,
    }


async def a_session(sessions: Sessions, route: str = "iv_infusion") -> str:
    course = (await sessions.plan(await sessions.ready_patient(), route=route)).json()
    booked = await sessions.client.post(
        f"/courses/{course['id']}/sessions",
        headers=sessions.as_("front_desk"),
        json={
            "starts_at": at(140),
            "duration_minutes": 240,
            "room": f"R-{course['id'][:6]}",
            "clinician": course["id"],
            "therapist": course["id"] + "t",
        },
    )
    assert booked.status_code == 201, booked.text
    return str(booked.json()["id"])


async def ready_to_discharge(sessions: Sessions, session_id: str) -> None:
    """A recent full set of vital signs and a recent check that sedation and dissociation have resolved."""
    url, nurse = f"/sessions/{session_id}", sessions.as_("therapist")
    assert (await sessions.client.post(f"{url}/vitals", json=vitals(3), headers=nurse)).status_code == 201
    assert (await sessions.client.post(f"{url}/dissociation", json=recovered(2), headers=nurse)).status_code == 200


async def events(sessions: Sessions, suffix: str) -> list[dict[str, Any]]:
    async with sessions.database.sessions() as s:
        rows = (await s.exec(select(OutboxMessage))).all()
    return [json.loads(r.payload) for r in rows if r.ce_type.endswith(suffix)]


async def test_an_iv_session_from_check_in_to_addendum(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url, nurse, doctor = f"/sessions/{session_id}", sessions.as_("therapist"), sessions.as_("clinician", sub="dr-k")
    checked = await sessions.client.post(f"{url}/pre-dose-checks", json=pre_dose(), headers=nurse)
    assert checked.status_code == 200, checked.text
    assert checked.json()["status"] == "in_progress"
    dose = await sessions.client.post(f"{url}/dose", headers=doctor, json=iv_dose())
    assert dose.status_code == 200, dose.text
    given = dose.json()["record"]["dose"]
    assert (given["dose_mg"], given["within_range"], given["first_dose"]) == (40.0, True, False)  # 0.5 mg/kg x 80 kg
    for minutes in (95, 80):
        assert (await sessions.client.post(f"{url}/vitals", json=vitals(minutes), headers=nurse)).status_code == 201
    alert = await sessions.client.post(f"{url}/vitals", json=vitals(65, spo2_percent=90), headers=nurse)
    assert [a["code"] for a in alert.json()["alerts"]] == ["spo2_low"]
    cadss = {"cadss_subjective": [1] * 10 + [0] * 13, "cadss_observer": [0] * 5}
    check = await sessions.client.post(
        f"{url}/dissociation", headers=nurse, json=recovered(60, dissociation_present=True, **cadss)
    )
    assert check.status_code == 200, check.text
    event = {
        "event": {
            "type": "nausea",
            "severity": "mild",
            "resulted_in_death": False,
            "life_threatening": False,
            "hospitalisation": False,
            "persistent_disability": False,
            "congenital_anomaly": False,
            "important_medical_event": False,
        },
        "action_taken": "ondansetron 4 mg",
        "occurred_at": at(85),
    }
    reported = await sessions.client.post(f"{url}/adverse-events", json=event, headers=nurse)
    assert reported.status_code == 201 and reported.json()["serious"] is False
    therapy = {
        "modalities": ["mindfulness_meditation", "memory_processing"],
        "notes": "Calm; revisited loss.",
        "insights": "Felt separate from the grief for the first time.",
    }
    assert (await sessions.client.put(f"{url}/therapy-record", json=therapy, headers=nurse)).status_code == 200

    # The last SpO2 alerts and dissociation has not resolved: not yet.
    early = await sessions.client.post(f"{url}/discharge", json={"escort_present": True}, headers=doctor)
    assert early.status_code == 409
    assert "SpO2 90 %" in early.json()["detail"] and "dissociation has not resolved" in early.json()["detail"]
    await ready_to_discharge(sessions, session_id)
    no_escort = await sessions.client.post(f"{url}/discharge", json={"escort_present": False}, headers=doctor)
    assert no_escort.status_code == 409 and "escort" in no_escort.json()["detail"]
    done = await sessions.client.post(f"{url}/discharge", json={"escort_present": True}, headers=doctor)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"

    assert (await sessions.client.post(f"{url}/sign", headers=nurse)).status_code == 200
    changed = await sessions.client.post(f"{url}/vitals", json=vitals(1), headers=nurse)
    assert changed.status_code == 409 and "addendum" in changed.json()["detail"]
    addendum = await sessions.client.post(
        f"{url}/addenda", json={"text": "Patient phoned: home safely."}, headers=nurse
    )
    record = addendum.json()["record"]
    assert record["addenda"][0]["text"] == "Patient phoned: home safely." and len(record["vitals"]) == 5

    [completed] = await events(sessions, "session.completed.v1")
    assert (completed["route"], completed["dose_mg"], completed["dose_mg_per_kg"]) == ("iv_infusion", 40.0, 0.5)
    assert completed["modalities"] == ["mindfulness_meditation", "memory_processing"]
    assert completed["dissociation_score"] == 10 and completed["observation_minutes"] >= 60
    assert [e["code"] for e in await events(sessions, "vitals.alert_raised.v1")] == ["spo2_low"]
    assert len(await events(sessions, "adverse_event.reported.v1")) == 1


async def test_a_dose_out_of_range_needs_a_clinicians_override(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url, doctor = f"/sessions/{session_id}", sessions.as_("clinician")
    await sessions.client.post(f"{url}/pre-dose-checks", json=pre_dose(), headers=doctor)
    dose = iv_dose(mg_per_kg=0.9)
    refused = await sessions.client.post(f"{url}/dose", json=dose, headers=doctor)
    assert refused.status_code == 422 and "0.75 mg/kg" in refused.json()["detail"]
    by_therapist = await sessions.client.post(f"{url}/dose", json=dose, headers=sessions.as_("therapist"))
    assert by_therapist.status_code == 403
    override = {"reason": "Partial response at 0.75 mg/kg; titrating per protocol."}
    given = await sessions.client.post(f"{url}/dose", json={**dose, "override": override}, headers=doctor)
    assert given.status_code == 200 and given.json()["record"]["dose"]["override_reason"] == override["reason"]
    [administered] = await events(sessions, "dose.administered.v1")
    assert (administered["within_range"], administered["override_reason"]) == (False, override["reason"])


async def test_a_high_pre_dose_blood_pressure_needs_a_decision_to_proceed(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url, doctor = f"/sessions/{session_id}", sessions.as_("clinician")
    high = pre_dose(vitals={"taken_at": at(130), "systolic_mmhg": 152, "diastolic_mmhg": 94})
    assert (await sessions.client.post(f"{url}/pre-dose-checks", json=high, headers=doctor)).status_code == 200
    blocked = await sessions.client.post(f"{url}/dose", json=iv_dose(), headers=doctor)
    assert blocked.status_code == 409 and "decision to proceed" in blocked.json()["detail"]
    decision = {"proceed": True, "reason": "Repeat reading 138/88 after ten minutes of rest."}
    by_therapist = await sessions.client.post(
        f"{url}/pre-dose-checks", json={**high, "decision": decision}, headers=sessions.as_("therapist")
    )
    assert by_therapist.status_code == 403 and "only a clinician" in by_therapist.json()["detail"]
    assert (
        await sessions.client.post(f"{url}/pre-dose-checks", json={**high, "decision": decision}, headers=doctor)
    ).status_code == 200
    assert (await sessions.client.post(f"{url}/dose", json=iv_dose(), headers=doctor)).status_code == 200


async def test_esketamine_is_whole_devices_and_observed_two_hours(sessions: Sessions) -> None:
    session_id = await a_session(sessions, route="intranasal_esketamine")
    url, doctor = f"/sessions/{session_id}", sessions.as_("clinician")
    await sessions.client.post(f"{url}/pre-dose-checks", json=pre_dose(), headers=doctor)
    devices = [at(100), at(95)]
    seventy = await sessions.client.post(
        f"{url}/dose",
        headers=doctor,
        json={"dose_mg": 70, "lot_number": "SPR-1", "administration_start": at(100), "device_times": devices},
    )
    assert seventy.status_code == 422
    too_quick = await sessions.client.post(
        f"{url}/dose",
        headers=doctor,
        json={"dose_mg": 56, "lot_number": "SPR-1", "administration_start": at(100), "device_times": [at(100), at(98)]},
    )
    assert too_quick.status_code == 422 and "2 min" in too_quick.json()["detail"]
    given = await sessions.client.post(
        f"{url}/dose",
        headers=doctor,
        json={"dose_mg": 56, "lot_number": "SPR-1", "administration_start": at(100), "device_times": devices},
    )
    assert given.status_code == 200, given.text
    assert (given.json()["record"]["dose"]["devices"], given.json()["record"]["dose"]["first_dose"]) == (2, True)
    await ready_to_discharge(sessions, session_id)
    early = await sessions.client.post(f"{url}/discharge", json={"escort_present": True}, headers=doctor)
    assert early.status_code == 409 and "observation not complete" in early.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"vitals": {"taken_at": "2026-01-01T10:00:00Z", "systolic_mmhg": 400, "diastolic_mmhg": 20}}, "systolic_mmhg"),
        ({"weight": {"value": 5, "unit": "kg"}}, "weight"),
        ({"weight": 80}, "weight"),
        ({"vitals": {"taken_at": "2026-01-01T10:00:00Z", "heart_rate_bpm": 70}}, "blood pressure"),
    ],
)
async def test_impossible_checks_are_422(sessions: Sessions, body: dict[str, Any], field: str) -> None:
    session_id = await a_session(sessions)
    reply = await sessions.client.post(
        f"/sessions/{session_id}/pre-dose-checks", json=pre_dose(**body), headers=sessions.as_("clinician")
    )
    assert reply.status_code == 422 and field in reply.text


async def test_monitoring_shows_gaps_alerts_and_what_discharge_waits_for(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url, nurse, doctor = f"/sessions/{session_id}", sessions.as_("therapist"), sessions.as_("clinician")
    await sessions.client.post(f"{url}/pre-dose-checks", json=pre_dose(), headers=nurse)
    await sessions.client.post(f"{url}/dose", headers=doctor, json=iv_dose())
    await sessions.client.post(f"{url}/vitals", json=vitals(100, systolic_mmhg=185, diastolic_mmhg=100), headers=nurse)
    status = (await sessions.client.get(f"{url}/monitoring", headers=nurse)).json()
    assert status["gaps"], "readings every 15 minutes and a blood pressure at 40 minutes are missing"
    assert any("40" in gap for gap in status["gaps"])
    assert [a["code"] for a in status["last_alerts"]] == ["systolic_high"]
    assert status["discharge_unmet"]
    assert (await sessions.client.get(f"{url}/monitoring", headers=sessions.as_("billing"))).status_code == 403


# --- found in review ---------------------------------------------------------------------------------------


async def test_no_dose_after_consent_is_withdrawn_even_in_a_session_booked_before(sessions: Sessions) -> None:
    import uuid

    from shared.events.intake import ConsentSigned, ConsentWithdrawn

    patient = await sessions.ready_patient(consented=False)
    consent_id = uuid.uuid4()
    await sessions.deliver(
        ConsentSigned(patient_id=patient, consent_id=consent_id, document_version="1", signed_at=NOW)
    )
    course = (await sessions.plan(patient)).json()
    booked = (
        await sessions.client.post(
            f"/courses/{course['id']}/sessions",
            headers=sessions.as_("front_desk"),
            json={"starts_at": at(140), "duration_minutes": 240, "room": "W", "clinician": "c-w", "therapist": "t-w"},
        )
    ).json()
    await sessions.deliver(ConsentWithdrawn(patient_id=patient, consent_id=consent_id, withdrawn_at=NOW))
    reply = await sessions.client.post(
        f"/sessions/{booked['id']}/pre-dose-checks", json=pre_dose(), headers=sessions.as_("clinician")
    )
    assert reply.status_code == 409 and "on hold" in reply.json()["detail"]


async def test_a_sedated_patient_is_not_discharged(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url, doctor = f"/sessions/{session_id}", sessions.as_("clinician")
    await sessions.client.post(f"{url}/pre-dose-checks", json=pre_dose(), headers=doctor)
    await sessions.client.post(f"{url}/dose", headers=doctor, json=iv_dose())
    await sessions.client.post(f"{url}/vitals", json=vitals(2), headers=doctor)
    await sessions.client.post(f"{url}/dissociation", headers=doctor, json=recovered(1, moaa_s=1))
    reply = await sessions.client.post(f"{url}/discharge", json={"escort_present": True}, headers=doctor)
    assert reply.status_code == 409 and "still sedated (MOAA/S 1 of 5)" in reply.json()["detail"]


async def test_times_ahead_of_the_clock_are_refused(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url, doctor = f"/sessions/{session_id}", sessions.as_("clinician")
    await sessions.client.post(f"{url}/pre-dose-checks", json=pre_dose(), headers=doctor)
    future = await sessions.client.post(f"{url}/vitals", json=vitals(-179), headers=doctor)
    assert future.status_code == 422 and "future" in future.json()["detail"]


async def test_a_session_begun_but_never_dosed_can_be_called_off(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    await sessions.client.post(
        f"/sessions/{session_id}/pre-dose-checks", json=pre_dose(), headers=sessions.as_("clinician")
    )
    reply = await sessions.client.post(
        f"/sessions/{session_id}/cancel", json={"reason": "felt unwell at check-in"}, headers=sessions.as_("front_desk")
    )
    assert reply.status_code == 200 and reply.json()["status"] == "cancelled"
    assert "record" not in reply.json(), "the desk's view of a session holds no clinical record"


async def test_the_bedside_calculator_checks_a_dose_as_recording_it_will(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url, nurse = f"/sessions/{session_id}", sessions.as_("therapist")
    before = await sessions.client.get(f"{url}/dose-calculation", params={"mg_per_kg": 0.5}, headers=nurse)
    assert before.status_code == 409 and "pre-dose" in before.json()["detail"]
    await sessions.client.post(f"{url}/pre-dose-checks", json=pre_dose(), headers=nurse)
    fine = await sessions.client.get(f"{url}/dose-calculation", params={"mg_per_kg": 0.5}, headers=nurse)
    assert fine.status_code == 200, fine.text
    assert (fine.json()["dose_mg"], fine.json()["weight_kg"], fine.json()["problems"]) == (40.0, 80.0, [])
    high = (await sessions.client.get(f"{url}/dose-calculation", params={"mg_per_kg": 0.9}, headers=nurse)).json()
    assert high["dose_mg"] == 72.0 and "0.75 mg/kg" in high["problems"][0] and high["refusals"] == []
    # The verdict is sent, so the bedside never works it out on its own.
    assert (fine.json()["within_range"], fine.json()["overridable"]) == (True, True)
    assert (high["within_range"], high["overridable"]) == (False, True)
    ceiling = (await sessions.client.get(f"{url}/dose-calculation", params={"mg_per_kg": 3}, headers=nurse)).json()
    assert ceiling["refusals"] and (ceiling["within_range"], ceiling["overridable"]) == (False, False)
    # The same words as the refusal of the dose itself, which the calculator previewed.
    refused = await sessions.client.post(f"{url}/dose", json=iv_dose(mg_per_kg=0.9), headers=sessions.as_("clinician"))
    assert high["problems"][0] in refused.json()["detail"]
    fixed = await sessions.client.get(f"{url}/dose-calculation", params={"dose_mg": 40}, headers=nurse)
    assert fixed.status_code == 422 and "mg/kg" in fixed.json()["detail"]
    nothing_saved = (await sessions.client.get(url, headers=nurse)).json()
    assert nothing_saved["record"]["dose"] is None
    front_desk = await sessions.client.get(
        f"{url}/dose-calculation", params={"mg_per_kg": 0.5}, headers=sessions.as_("front_desk")
    )
    assert front_desk.status_code == 403


async def test_the_days_schedule_lists_the_sites_sessions_in_order(sessions: Sessions) -> None:
    first, second = await a_session(sessions), await a_session(sessions)
    # The day the sessions start on (a_session books them 140 minutes ago); the test site's zone is UTC.
    today = (NOW - timedelta(minutes=140)).date().isoformat()
    day = await sessions.client.get("/schedule", params={"day": today}, headers=sessions.as_("front_desk"))
    assert day.status_code == 200, day.text
    listed = [s["id"] for s in day.json()]
    assert first in listed and second in listed
    assert [s["starts_at"] for s in day.json()] == sorted(s["starts_at"] for s in day.json())
    assert "record" not in day.json()[0]  # the schedule's view: no clinical record
    tomorrow = (NOW - timedelta(minutes=140) + timedelta(days=1)).date().isoformat()
    later = await sessions.client.get("/schedule", params={"day": tomorrow}, headers=sessions.as_("front_desk"))
    assert first not in [s["id"] for s in later.json()]
    bad = await sessions.client.get("/schedule", params={"day": "1200-01-01"}, headers=sessions.as_("front_desk"))
    assert bad.status_code == 422
