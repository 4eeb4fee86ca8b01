"""Integration sessions and the esketamine REMS form through the API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from services.sessions.app import create_app
from tests.harness import app_in_process
from tests.sessions.conftest import Sessions, sessions_settings
from tests.sessions.test_session_record_api import (
    a_session,
    at,
    events,
    pre_dose,
    ready_to_discharge,
    recovered,
    vitals,
)


async def an_esketamine_session_discharged(sessions: Sessions) -> str:
    session_id = await a_session(sessions, route="intranasal_esketamine")
    url, doctor = f"/sessions/{session_id}", sessions.as_("clinician")
    await sessions.client.post(f"{url}/pre-dose-checks", json=pre_dose(), headers=doctor)
    given = await sessions.client.post(
        f"{url}/dose",
        headers=doctor,
        json={
            "dose_mg": 56,
            "lot_number": "SPR-1",
            "administration_start": at(125),
            "device_times": [at(125), at(120)],
        },
    )
    assert given.status_code == 200, given.text
    # The label's blood pressure at about 40 minutes after the first device.
    at_40 = vitals(85, systolic_mmhg=138, diastolic_mmhg=88)
    assert (await sessions.client.post(f"{url}/vitals", json=at_40, headers=doctor)).status_code == 201
    await sessions.client.post(f"{url}/dissociation", json=recovered(80, dissociation_present=True), headers=doctor)
    await ready_to_discharge(sessions, session_id)
    done = await sessions.client.post(f"{url}/discharge", json={"escort_present": True}, headers=doctor)
    assert done.status_code == 200, done.text
    return session_id


async def test_an_esketamine_session_owes_a_rems_form_filled_from_its_record(sessions: Sessions) -> None:
    session_id = await an_esketamine_session_discharged(sessions)
    url, doctor = f"/sessions/{session_id}", sessions.as_("clinician")

    due = (await sessions.client.get("/rems-forms", headers=doctor)).json()
    assert [(d["session_id"], d["status"]) for d in due] == [(session_id, "due")]
    assert (await sessions.client.post(f"{url}/rems-form/submit", headers=doctor)).status_code == 409

    form = (await sessions.client.get(f"{url}/rems-form", headers=doctor)).json()
    assert (form["dose_mg"], form["lot_number"]) == (56, "SPR-1")
    assert form["bp_before_dosing"] == {"systolic_mmhg": 128, "diastolic_mmhg": 82}
    assert form["bp_at_40_minutes"] == {"systolic_mmhg": 138, "diastolic_mmhg": 88}
    assert form["bp_before_discharge"] == {"systolic_mmhg": 132, "diastolic_mmhg": 84}
    assert (form["sedation"], form["dissociation"], form["respiratory_depression"]) == (False, True, False)
    assert form["serious_adverse_events"] is False and form["total_monitoring_minutes"] >= 125

    contradicts = await sessions.client.put(
        f"{url}/rems-form", json={"dose_mg": 84, "dissociation": False}, headers=doctor
    )
    assert contradicts.status_code == 422
    assert "dose_mg" in contradicts.json()["detail"] and "dissociation" in contradicts.json()["detail"]
    completed = await sessions.client.put(
        f"{url}/rems-form",
        json={"concomitant_medications": ["sertraline 100 mg"], "dose_mg": 56, "minutes_until_ready_to_leave": 110},
        headers=doctor,
    )
    assert completed.status_code == 200, completed.text
    saved = completed.json()["rems_form"]
    assert (saved["concomitant_medications"], saved["minutes_until_ready_to_leave"]) == (["sertraline 100 mg"], 110)
    assert saved["completed_by"] and saved["bp_at_40_minutes"] == form["bp_at_40_minutes"]
    submitted = await sessions.client.post(f"{url}/rems-form/submit", headers=doctor)
    assert submitted.status_code == 200 and submitted.json()["rems_submitted_at"]
    assert (await sessions.client.get("/rems-forms", headers=doctor)).json() == []
    assert (await sessions.client.get("/rems-forms", headers=sessions.as_("therapist"))).status_code == 403


async def test_a_rems_form_is_for_esketamine_only(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    reply = await sessions.client.put(f"/sessions/{session_id}/rems-form", json={}, headers=sessions.as_("clinician"))
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
    assert future.status_code == 422
    assert (
        await sessions.client.post(url, json={**entry, "duration_minutes": 5}, headers=therapist)
    ).status_code == 422
    assert (await sessions.client.get(url, headers=sessions.as_("billing"))).status_code == 403
    listed = (await sessions.client.get(url, headers=sessions.as_("clinician"))).json()
    assert [e["modality"] for e in listed] == ["emotional_processing"]
    [event] = await events(sessions, "integration_session.completed.v1")
    assert event["duration_minutes"] == 50


async def test_the_rems_deadline_is_counted_on_the_sites_calendar(database_url: str, tmp_path: Path) -> None:
    """A zone whose calendar day differs from UTC's right now: the deadline is 7 days after the local day."""
    now = datetime.now(UTC)
    to_midnight = (datetime.combine(now.date() + timedelta(days=1), time(), UTC) - now).total_seconds()
    if to_midnight < 60:  # no zone is a calendar day apart from UTC's on both sides of its midnight
        await asyncio.sleep(to_midnight + 1)
    zone = "Pacific/Kiritimati" if datetime.now(UTC).hour >= 10 else "Etc/GMT+12"  # UTC+14 or UTC-12
    settings = sessions_settings(database_url, tmp_path, time_zone=zone)
    async with app_in_process(create_app(settings)) as client:
        site = Sessions(client, settings)
        session_id = await an_esketamine_session_discharged(site)
        [due] = (await client.get("/rems-forms", headers=site.as_("clinician"))).json()
    discharged = datetime.fromisoformat(due["discharged_at"])
    local_day = discharged.astimezone(ZoneInfo(zone)).date()
    assert local_day != discharged.astimezone(UTC).date(), "the test needs a zone on another calendar day"
    assert (due["session_id"], due["deadline"]) == (session_id, (local_day + timedelta(days=7)).isoformat())
