"""The unsafe paths of the bedside-safety issue, each closed and shown through the API on SQLite and PostgreSQL.

Numbers in the test names are the issue's (point 2.1 to 2.12)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.sessions.app import create_app
from services.sessions.models import DosingSession
from shared.events.intake import SafetyFlagAcknowledged, SafetyFlagRaised
from tests.harness import app_in_process
from tests.sessions.conftest import Sessions, sessions_settings
from tests.sessions.test_session_record_api import (
    NOW,
    a_session,
    at,
    events,
    iv_dose,
    pre_dose,
    ready_to_discharge,
    recovered,
    vitals,
)


@asynccontextmanager
async def sessions_with(database_url: str, var_dir: Path, **rules: Any) -> AsyncIterator[Sessions]:
    settings = sessions_settings(database_url, var_dir, session_rules=rules)
    async with app_in_process(create_app(settings)) as client:
        yield Sessions(client, settings)


async def post(sessions: Sessions, path: str, body: dict[str, Any], role: str = "clinician") -> Any:
    return await sessions.client.post(path, json=body, headers=sessions.as_(role))


async def dosed_iv(sessions: Sessions, **dose: Any) -> str:
    session_id = await a_session(sessions)
    assert (await post(sessions, f"/sessions/{session_id}/pre-dose-checks", pre_dose())).status_code == 200
    reply = await post(sessions, f"/sessions/{session_id}/dose", iv_dose(**dose))
    assert reply.status_code == 200, reply.text
    return session_id


async def earlier_dose(
    sessions: Sessions, patient_id: uuid.UUID, route: str, days_ago: float, weight_kg: float
) -> None:
    """A session of the same patient dosed and weighed days ago: the history the server works from. Written to
    the database, because the API books no session further back than a day."""
    async with sessions.database.sessions() as db:
        course = (await sessions.plan(patient_id, route=route)).json()
        moment = NOW - timedelta(days=days_ago)
        db.add(
            DosingSession(
                course_id=uuid.UUID(course["id"]),
                patient_id=patient_id,
                starts_at=moment,
                ends_at=moment + timedelta(hours=3),
                room="History",
                clinician="dr-h",
                therapist="t-h",
                status="completed",
                record={},
                dose_route=route,
                dosed_at=moment,
                weight_kg=weight_kg,
                weighed_at=moment,
            )
        )
        await db.commit()


async def book(sessions: Sessions, patient_id: uuid.UUID, route: str = "iv_infusion") -> str:
    course = (await sessions.plan(patient_id, route=route)).json()
    booked = await post(
        sessions,
        f"/courses/{course['id']}/sessions",
        {
            "starts_at": at(140),
            "duration_minutes": 240,
            "room": f"R-{patient_id.hex[:6]}",
            "clinician": f"c-{patient_id.hex[:6]}",
            "therapist": f"t-{patient_id.hex[:6]}",
        },
        "front_desk",
    )
    assert booked.status_code == 201, booked.text
    return str(booked.json()["id"])


# --- 2.1 the infusion's end ------------------------------------------------------------------------------------


async def test_2_1_an_infusion_is_observed_from_its_recorded_end(sessions: Sessions) -> None:
    session_id = await dosed_iv(sessions, administration_end=None)
    url = f"/sessions/{session_id}"
    await ready_to_discharge(sessions, session_id)
    running = await post(sessions, f"{url}/discharge", {"escort_present": True})
    assert running.status_code == 409 and "infusion's end is not recorded" in running.json()["detail"]
    monitoring = (await sessions.client.get(f"{url}/monitoring", headers=sessions.as_("therapist"))).json()
    assert monitoring["infusion_running"] is True

    before_start = await post(sessions, f"{url}/infusion-end", {"ended_at": at(115)}, "therapist")
    assert before_start.status_code == 422 and "at or before it starts" in before_start.json()["detail"]
    too_fast = await post(sessions, f"{url}/infusion-end", {"ended_at": at(100)}, "therapist")
    assert too_fast.status_code == 422 and "under the site's minimum of 30 minutes" in too_fast.json()["detail"]
    ended = await post(sessions, f"{url}/infusion-end", {"ended_at": at(50)}, "therapist")
    assert ended.status_code == 200, ended.text
    early = await post(sessions, f"{url}/discharge", {"escort_present": True})
    assert early.status_code == 409 and "of the 1 h minimum after the end of the infusion" in early.json()["detail"]
    again = await post(sessions, f"{url}/infusion-end", {"ended_at": at(40)}, "therapist")
    assert again.status_code == 409 and "already recorded" in again.json()["detail"]


async def test_2_1_an_infusion_outside_the_site_range_needs_a_clinician(sessions: Sessions) -> None:
    session_id = await dosed_iv(sessions, administration_end=None)
    url, override = f"/sessions/{session_id}", {"reason": "Infusion paused for nausea, restarted slowly."}
    slow = {"ended_at": at(20), "override": override}  # 90 minutes
    assert (await post(sessions, f"{url}/infusion-end", slow, "therapist")).status_code == 403
    accepted = await post(sessions, f"{url}/infusion-end", slow)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["record"]["dose"]["infusion_end_override_reason"] == override["reason"]


async def test_2_1_a_duration_given_with_the_dose_sets_the_end(sessions: Sessions) -> None:
    session_id = await dosed_iv(sessions, administration_end=None, infusion_minutes=40)
    dose = (await sessions.client.get(f"/sessions/{session_id}", headers=sessions.as_("therapist"))).json()["record"]
    assert datetime.fromisoformat(dose["dose"]["administration_end"]) == datetime.fromisoformat(at(70))
    short = await a_session(sessions)
    await post(sessions, f"/sessions/{short}/pre-dose-checks", pre_dose())
    refused = await post(sessions, f"/sessions/{short}/dose", iv_dose(administration_end=None, infusion_minutes=10))
    assert refused.status_code == 422 and "ran 10 min" in refused.json()["detail"]


# --- 2.2 discharge on the latest value of each vital sign ------------------------------------------------------


async def test_2_2_a_blood_pressure_alone_does_not_clear_an_earlier_low_spo2(sessions: Sessions) -> None:
    session_id = await dosed_iv(sessions)
    url = f"/sessions/{session_id}"
    await ready_to_discharge(sessions, session_id)
    await post(sessions, f"{url}/vitals", vitals(2, spo2_percent=90, heart_rate_bpm=125), "therapist")
    bp_only = {"taken_at": at(1), "systolic_mmhg": 128, "diastolic_mmhg": 80}
    assert (await post(sessions, f"{url}/vitals", bp_only, "therapist")).status_code == 201
    refused = await post(sessions, f"{url}/discharge", {"escort_present": True})
    assert refused.status_code == 409
    assert "SpO2 90 %" in refused.json()["detail"] and "heart rate 125/min" in refused.json()["detail"]


async def test_2_2_the_discharge_blood_pressure_is_its_own_limit(sessions: Sessions) -> None:
    session_id = await dosed_iv(sessions)
    url = f"/sessions/{session_id}"
    await ready_to_discharge(sessions, session_id)
    # 165/95 raises no alert (180/110) but is above the discharge limit (159/99).
    reply = await post(sessions, f"{url}/vitals", vitals(1, systolic_mmhg=165, diastolic_mmhg=95), "therapist")
    assert reply.json()["alerts"] == []
    refused = await post(sessions, f"{url}/discharge", {"escort_present": True})
    assert refused.status_code == 409 and "above the discharge limit of 159/99" in refused.json()["detail"]


async def test_2_2_esketamine_needs_the_blood_pressure_at_40_minutes(sessions: Sessions) -> None:
    session_id = await a_session(sessions, route="intranasal_esketamine")
    url = f"/sessions/{session_id}"
    await post(sessions, f"{url}/pre-dose-checks", pre_dose())
    dose = {"dose_mg": 56, "lot_number": "S", "administration_start": at(128), "device_times": [at(128), at(123)]}
    assert (await post(sessions, f"{url}/dose", dose)).status_code == 200
    await ready_to_discharge(sessions, session_id)
    refused = await post(sessions, f"{url}/discharge", {"escort_present": True})
    assert refused.status_code == 409 and "35-50 minutes after the first device" in refused.json()["detail"]
    await post(sessions, f"{url}/vitals", vitals(88), "therapist")
    assert (await post(sessions, f"{url}/discharge", {"escort_present": True})).status_code == 200


# --- 2.3 respiratory rate and hypotension ----------------------------------------------------------------------


async def test_2_3_slow_breathing_and_a_low_pressure_raise_alerts(sessions: Sessions) -> None:
    session_id = await dosed_iv(sessions)
    url = f"/sessions/{session_id}"
    slow = await post(sessions, f"{url}/vitals", vitals(60, respiratory_rate_per_min=7), "therapist")
    fast = await post(sessions, f"{url}/vitals", vitals(55, respiratory_rate_per_min=26), "therapist")
    low = await post(sessions, f"{url}/vitals", vitals(50, systolic_mmhg=88, diastolic_mmhg=55), "therapist")
    assert [a["code"] for a in slow.json()["alerts"]] == ["respiratory_rate_low"]
    assert [a["code"] for a in fast.json()["alerts"]] == ["respiratory_rate_high"]
    assert [a["code"] for a in low.json()["alerts"]] == ["systolic_low"]
    raised = [e["code"] for e in await events(sessions, "vitals.alert_raised.v1")]
    assert raised == ["respiratory_rate_low", "respiratory_rate_high", "systolic_low"]


# --- 2.4 sedation, dissociation and respiratory depression resolved ---------------------------------------------


@pytest.mark.parametrize("route", ["intramuscular", "sublingual_oral"])
async def test_2_4_every_route_waits_for_a_recent_check(sessions: Sessions, route: str) -> None:
    session_id = await a_session(sessions, route=route)
    url = f"/sessions/{session_id}"
    await post(sessions, f"{url}/pre-dose-checks", pre_dose())
    amount = {"mg_per_kg": 0.5} if route == "intramuscular" else {"dose_mg": 100}
    assert (
        await post(sessions, f"{url}/dose", {**amount, "lot_number": "L", "administration_start": at(110)})
    ).status_code == 200
    await post(sessions, f"{url}/vitals", vitals(3), "therapist")
    await post(sessions, f"{url}/dissociation", recovered(30), "therapist")
    old = await post(sessions, f"{url}/discharge", {"escort_present": True})
    assert old.status_code == 409 and "check is 30 min" in old.json()["detail"]
    breathing = recovered(2, respiratory_depression_present=True)
    await post(sessions, f"{url}/dissociation", breathing, "therapist")
    depressed = await post(sessions, f"{url}/discharge", {"escort_present": True})
    assert depressed.status_code == 409 and "respiratory depression has not resolved" in depressed.json()["detail"]
    await post(sessions, f"{url}/dissociation", recovered(1), "therapist")
    assert (await post(sessions, f"{url}/discharge", {"escort_present": True})).status_code == 200


# --- 2.5 the first dose and the age come from the server --------------------------------------------------------


async def test_2_5_the_first_esketamine_dose_is_worked_out_from_the_history(sessions: Sessions) -> None:
    patient = await sessions.ready_patient()
    session_id = await book(sessions, patient, "intranasal_esketamine")
    url = f"/sessions/{session_id}"
    await post(sessions, f"{url}/pre-dose-checks", pre_dose())
    devices = [at(110), at(105), at(100)]
    dose = {"dose_mg": 84, "lot_number": "S", "administration_start": at(110), "device_times": devices}
    skipped = await post(sessions, f"{url}/dose", {**dose, "first_esketamine_dose": False})
    assert skipped.status_code == 422, "the flag a client could leave out no longer exists"
    refused = await post(sessions, f"{url}/dose", dose)
    assert (
        refused.status_code == 422 and "first esketamine dose: the US label starts at 56 mg" in refused.json()["detail"]
    )

    returning = await sessions.ready_patient()
    await earlier_dose(sessions, returning, "intranasal_esketamine", days_ago=3, weight_kg=80)
    later = await book(sessions, returning, "intranasal_esketamine")
    await post(sessions, f"/sessions/{later}/pre-dose-checks", pre_dose())
    given = await post(sessions, f"/sessions/{later}/dose", dose)
    assert given.status_code == 200, given.text
    assert given.json()["record"]["dose"]["first_dose"] is False


async def test_2_5_a_site_on_the_eu_label_starts_older_adults_at_28_mg(database_url: str, tmp_path: Path) -> None:
    async with sessions_with(database_url, tmp_path, esketamine_label="eu") as sessions:
        older = await sessions.ready_patient(birth_date=date(NOW.year - 70, 1, 1))
        session_id = await book(sessions, older, "intranasal_esketamine")
        url = f"/sessions/{session_id}"
        await post(sessions, f"{url}/pre-dose-checks", pre_dose())
        dose = {"lot_number": "S", "administration_start": at(110)}
        refused = await post(sessions, f"{url}/dose", {**dose, "dose_mg": 56, "device_times": [at(110), at(105)]})
        assert refused.status_code == 422 and "EU label starts at 28 mg" in refused.json()["detail"]
        given = await post(sessions, f"{url}/dose", {**dose, "dose_mg": 28, "device_times": [at(110)]})
        assert given.status_code == 200, given.text
        assert given.json()["record"]["dose"]["age_years"] >= 69


# --- 2.6 hard ceilings ------------------------------------------------------------------------------------------


async def test_2_6_no_override_passes_the_ceiling(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url = f"/sessions/{session_id}"
    await post(sessions, f"{url}/pre-dose-checks", pre_dose())
    override = {"reason": "Titrating above the usual range per protocol."}
    above = await post(sessions, f"{url}/dose", iv_dose(mg_per_kg=1.1, override=override))
    assert above.status_code == 422 and "ceiling of 1 mg/kg, which no override passes" in above.json()["detail"]
    below = await post(sessions, f"{url}/dose", iv_dose(mg_per_kg=0.9))
    assert below.status_code == 422 and "a clinician may override" in below.json()["detail"]
    assert (await post(sessions, f"{url}/dose", iv_dose(mg_per_kg=0.9, override=override))).status_code == 200


@pytest.mark.parametrize(
    "rules",
    [
        {"iv_ceiling_mg_per_kg": 1.2},
        {"observation_minutes_iv_after_infusion_end": 0},
        {"alert_spo2_below_percent": 50},
        {"discharge_systolic_max_mmhg": 185},
        {"min_hours_between_dosing_sessions": 0},
        {"esketamine_doses_mg": [56, 84, 112]},
    ],
)
async def test_2_6_and_2_11_a_site_cannot_switch_a_safety_limit_off(
    database_url: str, tmp_path: Path, rules: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        async with sessions_with(database_url, tmp_path, **rules):
            pass


# --- 2.7 weight ---------------------------------------------------------------------------------------------------


async def test_2_7_a_weight_far_from_the_last_needs_confirmation_and_pounds_are_converted(sessions: Sessions) -> None:
    patient = await sessions.ready_patient()
    await earlier_dose(sessions, patient, "iv_infusion", days_ago=7, weight_kg=80)
    session_id = await book(sessions, patient)
    url = f"/sessions/{session_id}"
    heavier = await post(sessions, f"{url}/pre-dose-checks", pre_dose(weight={"value": 90, "unit": "kg"}))
    assert heavier.status_code == 422 and "12.5 % from the last recorded 80 kg" in heavier.json()["detail"]
    confirmed = pre_dose(weight={"value": 90, "unit": "kg"}, weight_change_confirmed=True)
    assert (await post(sessions, f"{url}/pre-dose-checks", confirmed)).status_code == 200
    pounds = await post(sessions, f"{url}/pre-dose-checks", pre_dose(weight={"value": 176, "unit": "lb"}))
    assert pounds.status_code == 200, pounds.text
    assert pounds.json()["record"]["pre_dose"]["weight_kg"] == 79.8
    unlabelled = await post(sessions, f"{url}/pre-dose-checks", pre_dose(weight={"value": 176}))
    assert unlabelled.status_code == 422 and "unit" in unlabelled.text


# --- 2.8 times are instants ---------------------------------------------------------------------------------------


async def test_2_8_times_are_ordered_as_instants_whatever_the_offset(sessions: Sessions) -> None:
    session_id = await dosed_iv(sessions)
    url = f"/sessions/{session_id}"
    now = datetime.now(UTC)
    # 50 minutes ago written at +05:00 sorts after 60 minutes ago written in UTC as text, and before it as time
    # only if the offset is ignored: the timeline must hold them in the order they happened.
    later = (now - timedelta(minutes=50)).astimezone(timezone(timedelta(hours=5)))
    earlier = (now - timedelta(minutes=60)).astimezone(timezone(timedelta(hours=-7)))
    for moment in (later, earlier):
        reply = await post(sessions, f"{url}/vitals", {**vitals(0), "taken_at": moment.isoformat()}, "therapist")
        assert reply.status_code == 201, reply.text
    timeline = (await sessions.client.get(url, headers=sessions.as_("therapist"))).json()["record"]["vitals"]
    moments = [datetime.fromisoformat(r["taken_at"]) for r in timeline]
    assert moments == sorted(moments)
    assert [m for m in moments if m in (later, earlier)] == [earlier, later]
    assert all(m.utcoffset() == timedelta(0) for m in moments), "kept in UTC"


# --- 2.9 an open safety flag --------------------------------------------------------------------------------------


async def test_2_9_a_safety_flag_from_intake_blocks_planning_and_dosing_until_acknowledged(sessions: Sessions) -> None:
    patient = await sessions.ready_patient()
    session_id = await book(sessions, patient)
    flag = uuid.uuid4()
    await sessions.deliver(
        SafetyFlagRaised(
            patient_id=patient, flag_id=flag, assessment_id=uuid.uuid4(), reason="phq9_item9_above_zero", raised_at=NOW
        )
    )
    planned = await sessions.plan(patient)
    assert planned.status_code == 409 and "open PHQ-9 item-9 safety flag" in planned.json()["detail"]
    checked = await post(sessions, f"/sessions/{session_id}/pre-dose-checks", pre_dose())
    assert checked.status_code == 409 and "safety flag" in checked.json()["detail"]
    await sessions.deliver(
        SafetyFlagAcknowledged(patient_id=patient, flag_id=flag, acknowledged_at=NOW, acknowledged_by="dr-k")
    )
    assert (await sessions.plan(patient)).status_code == 201
    assert (await post(sessions, f"/sessions/{session_id}/pre-dose-checks", pre_dose())).status_code == 200


async def test_2_9_a_safety_flag_raised_during_the_course_blocks_the_dose(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url = f"/sessions/{session_id}"
    patient = (await sessions.client.get(url, headers=sessions.as_("therapist"))).json()["patient_id"]
    await post(sessions, f"{url}/pre-dose-checks", pre_dose())
    phq9 = {"instrument": "phq9", "answers": [1] * 8 + [2]}
    assert (await post(sessions, f"/patients/{patient}/assessments", phq9, "therapist")).status_code == 201
    blocked = await post(sessions, f"{url}/dose", iv_dose())
    assert blocked.status_code == 409 and "safety flag" in blocked.json()["detail"]


# --- 2.10 before the dose -----------------------------------------------------------------------------------------


async def test_2_10_a_low_spo2_before_the_dose_needs_a_decision(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url = f"/sessions/{session_id}"
    low = pre_dose(vitals={**pre_dose()["vitals"], "spo2_percent": 90})
    await post(sessions, f"{url}/pre-dose-checks", low)
    blocked = await post(sessions, f"{url}/dose", iv_dose())
    assert blocked.status_code == 409 and "SpO2 90 %" in blocked.json()["detail"]
    decision = {"proceed": True, "reason": "Chronic lung disease: 90 % is her baseline on room air."}
    assert (await post(sessions, f"{url}/pre-dose-checks", {**low, "decision": decision})).status_code == 200
    assert (await post(sessions, f"{url}/dose", iv_dose())).status_code == 200


async def test_2_10_a_pressure_at_the_alert_threshold_cannot_be_overridden(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url = f"/sessions/{session_id}"
    crisis = pre_dose(vitals={**pre_dose()["vitals"], "systolic_mmhg": 182, "diastolic_mmhg": 100})
    decision = {"proceed": True, "reason": "Patient anxious; wants to go ahead today."}
    refused = await post(sessions, f"{url}/pre-dose-checks", {**crisis, "decision": decision})
    assert refused.status_code == 422 and "no decision can accept" in refused.json()["detail"]
    await post(sessions, f"{url}/pre-dose-checks", crisis)
    blocked = await post(sessions, f"{url}/dose", iv_dose())
    assert blocked.status_code == 409 and "no dose may be given on it" in blocked.json()["detail"]


async def test_2_10_a_pre_dose_pressure_older_than_the_window_does_not_count(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url = f"/sessions/{session_id}"
    await post(sessions, f"{url}/pre-dose-checks", pre_dose())  # taken 130 minutes ago
    late = await post(sessions, f"{url}/dose", iv_dose(administration_start=at(60), administration_end=at(20)))
    assert late.status_code == 409 and "1 h 10 min old at the dose" in late.json()["detail"]


# --- 2.11 interval, eligibility --------------------------------------------------------------------------------


async def test_2_11_dosing_sessions_keep_the_minimum_interval(sessions: Sessions) -> None:
    course = (await sessions.plan(await sessions.ready_patient())).json()
    start = NOW + timedelta(days=10)
    body = {"duration_minutes": 180, "room": "Room 4", "clinician": "c", "therapist": "t"}
    first = await post(
        sessions, f"/courses/{course['id']}/sessions", {**body, "starts_at": start.isoformat()}, "front_desk"
    )
    assert first.status_code == 201
    next_day = {**body, "room": "Room 5", "starts_at": (start + timedelta(hours=24)).isoformat()}
    close = await post(sessions, f"/courses/{course['id']}/sessions", next_day, "front_desk")
    assert close.status_code == 409 and "at least 44 hours between dosing sessions" in close.json()["detail"]
    two_days = {**body, "room": "Room 5", "starts_at": (start + timedelta(hours=48)).isoformat()}
    assert (await post(sessions, f"/courses/{course['id']}/sessions", two_days, "front_desk")).status_code == 201


async def test_2_11_an_old_screening_no_longer_makes_the_patient_eligible(sessions: Sessions) -> None:
    stale = await sessions.ready_patient(screened_at=NOW - timedelta(days=181))
    refused = await sessions.plan(stale)
    assert refused.status_code == 409 and "older than the site's 180 days" in refused.json()["detail"]
    recent = await sessions.ready_patient(screened_at=NOW - timedelta(days=179))
    assert (await sessions.plan(recent)).status_code == 201


# --- 2.12 double booking under concurrency ---------------------------------------------------------------------


async def test_2_12_ten_simultaneous_bookings_of_one_room_give_one_201(sessions: Sessions) -> None:
    courses = [(await sessions.plan(await sessions.ready_patient())).json() for _ in range(10)]
    start = (NOW + timedelta(days=20)).isoformat()

    async def book_room(index: int, course: dict[str, Any]) -> int:
        body = {
            "starts_at": start,
            "duration_minutes": 120,
            "room": "Room 1",
            "clinician": f"c{index}",
            "therapist": f"t{index}",
        }
        reply = await post(sessions, f"/courses/{course['id']}/sessions", body, "front_desk")
        return int(reply.status_code)

    statuses = await asyncio.gather(*(book_room(i, c) for i, c in enumerate(courses)))
    assert sorted(statuses) == [201] + [409] * 9


# --- paths an outside review found: readings out of order, a backdated discharge, a late adverse event ---------


async def test_a_high_pressure_between_the_pre_dose_check_and_the_dose_refuses_it(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url = f"/sessions/{session_id}"
    assert (await post(sessions, f"{url}/pre-dose-checks", pre_dose(), "therapist")).status_code == 200  # 128/82
    high = await post(sessions, f"{url}/vitals", vitals(115, systolic_mmhg=195, diastolic_mmhg=118), "therapist")
    assert high.status_code == 201
    refused = await post(sessions, f"{url}/dose", iv_dose())
    assert refused.status_code == 409
    assert "systolic 195 mmHg is at or above the alert threshold" in refused.json()["detail"]
    assert "record a new pre-dose check" in refused.json()["detail"]
    # Rested and measured again after the high reading: the new check governs the dose.
    rested = pre_dose(vitals={**pre_dose()["vitals"], "taken_at": at(113)})
    assert (await post(sessions, f"{url}/pre-dose-checks", rested, "therapist")).status_code == 200
    assert (await post(sessions, f"{url}/dose", iv_dose())).status_code == 200


async def test_an_older_reading_entered_second_cannot_replace_a_refusing_pre_dose_check(sessions: Sessions) -> None:
    session_id = await a_session(sessions)
    url = f"/sessions/{session_id}"
    crisis = pre_dose(vitals={**pre_dose()["vitals"], "taken_at": at(120), "systolic_mmhg": 190, "diastolic_mmhg": 115})
    assert (await post(sessions, f"{url}/pre-dose-checks", crisis, "therapist")).status_code == 200
    older = await post(sessions, f"{url}/pre-dose-checks", pre_dose(), "therapist")  # 120/80, taken 10 min earlier
    assert older.status_code == 422 and "a new one taken after it" in older.json()["detail"]
    rewritten = pre_dose(vitals={**pre_dose()["vitals"], "taken_at": at(120)})  # same time, new numbers
    assert (await post(sessions, f"{url}/pre-dose-checks", rewritten, "therapist")).status_code == 422
    same_reading = {**crisis, "weight": {"value": 81, "unit": "kg"}}  # correcting the weight is still possible
    assert (await post(sessions, f"{url}/pre-dose-checks", same_reading, "therapist")).status_code == 200
    blocked = await post(sessions, f"{url}/dose", iv_dose())
    assert blocked.status_code == 409 and "no dose may be given on it" in blocked.json()["detail"]


async def test_a_discharge_cannot_be_dated_before_the_last_observation(sessions: Sessions) -> None:
    session_id = await dosed_iv(sessions)
    url = f"/sessions/{session_id}"
    assert (await post(sessions, f"{url}/vitals", vitals(8), "therapist")).status_code == 201
    assert (await post(sessions, f"{url}/dissociation", recovered(7), "therapist")).status_code == 200
    # Later readings that fail the criteria: a discharge backdated to before them must not skip them.
    low = vitals(3, spo2_percent=85, respiratory_rate_per_min=6)
    assert (await post(sessions, f"{url}/vitals", low, "therapist")).status_code == 201
    sedated = recovered(2, moaa_s=2, dissociation_present=True)
    assert (await post(sessions, f"{url}/dissociation", sedated, "therapist")).status_code == 200
    backdated = await post(sessions, f"{url}/discharge", {"escort_present": True, "discharged_at": at(6)})
    assert backdated.status_code == 422 and "before the last observation" in backdated.json()["detail"]
    now = await post(sessions, f"{url}/discharge", {"escort_present": True})
    assert now.status_code == 409 and "SpO2 85 %" in now.json()["detail"]
    assert await events(sessions, "session.completed.v1") == []


async def test_an_adverse_event_charted_after_discharge_and_signing_is_kept(sessions: Sessions) -> None:
    session_id = await dosed_iv(sessions)
    url = f"/sessions/{session_id}"
    await ready_to_discharge(sessions, session_id)
    assert (await post(sessions, f"{url}/discharge", {"escort_present": True})).status_code == 200
    assert (await post(sessions, f"{url}/sign", {})).status_code == 200
    report = {
        "event": {
            "type": "hypertension",
            "severity": "severe",
            "resulted_in_death": False,
            "life_threatening": False,
            "hospitalisation": False,
            "persistent_disability": False,
            "congenital_anomaly": False,
            "important_medical_event": True,
        },
        "action_taken": "labetalol 10 mg IV; BP settled in 20 minutes",
        "occurred_at": at(60),
    }
    late = await post(sessions, f"{url}/adverse-events", report, "therapist")
    assert late.status_code == 201, late.text
    assert late.json()["serious"] is True and late.json()["reported_at"] is not None
    record = (await sessions.client.get(url, headers=sessions.as_("clinician"))).json()["record"]
    assert [e["type"] for e in record["adverse_events"]] == ["hypertension"]
    [published] = await events(sessions, "adverse_event.reported.v1")
    assert published["serious"] is True
