"""Courses and the schedule through the API, on a real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.sessions.domain.eligibility import PatientStanding, ScreeningOutcome, treatment_blockers
from services.sessions.domain.settings import DEFAULT_SETTINGS
from shared.events.intake import ConsentWithdrawn, MedicalReviewDecided, ScreeningCompleted
from tests.sessions.conftest import Sessions

NOW = datetime.now(UTC)
READY = PatientStanding(
    known=True,
    active=True,
    eligible=True,
    screening_outcome=ScreeningOutcome.eligible,
    screened_at=NOW,
    consented=True,
    ever_consented=True,
)


@pytest.mark.parametrize(
    ("change", "blocker"),
    [
        ({"known": False}, "has not learnt of this patient"),
        ({"active": False}, "deactivated"),
        ({"eligible": False, "screening_outcome": None}, "not been screened"),
        ({"eligible": False, "screening_outcome": ScreeningOutcome.needs_medical_review}, "medical review"),
        ({"eligible": False, "screening_outcome": ScreeningOutcome.ineligible}, "absolute contraindication"),
        ({"screened_at": NOW - timedelta(days=181)}, "older than the site's 180 days"),
        ({"open_safety_flags": 1}, "safety flag"),
        ({"consented": False, "ever_consented": False}, "no signed consent"),
        ({"consented": False}, "consent was withdrawn"),
    ],
)
def test_what_blocks_a_course(change: dict[str, object], blocker: str) -> None:
    assert treatment_blockers(READY, NOW, DEFAULT_SETTINGS) == []
    blockers = treatment_blockers(READY.model_copy(update=change), NOW, DEFAULT_SETTINGS)
    assert len(blockers) == 1 and blocker in blockers[0]


async def test_a_course_needs_eligibility_and_consent(sessions: Sessions) -> None:
    ready = await sessions.ready_patient()
    planned = await sessions.plan(ready)
    assert planned.status_code == 201, planned.text
    assert (planned.json()["status"], planned.json()["prescriber"]) == ("planned", "dr-k")

    ineligible = await sessions.ready_patient(eligible=False)
    refused = await sessions.plan(ineligible)
    assert refused.status_code == 409 and "contraindication" in refused.json()["detail"]
    unconsented = await sessions.ready_patient(consented=False)
    assert "no signed consent" in (await sessions.plan(unconsented)).json()["detail"]
    unknown = await sessions.plan(uuid.uuid4())
    assert unknown.status_code == 409


async def test_an_approved_medical_review_makes_the_patient_eligible(sessions: Sessions) -> None:
    patient = await sessions.ready_patient(eligible=False)
    screening_id = uuid.uuid4()
    now = datetime.now(UTC)
    await sessions.deliver(
        ScreeningCompleted(
            patient_id=patient,
            screening_id=screening_id,
            outcome="needs_medical_review",
            reason_codes=["bp_above_threshold"],
            screened_at=now,
        )
    )
    assert (await sessions.plan(patient)).status_code == 409
    await sessions.deliver(
        MedicalReviewDecided(
            patient_id=patient, screening_id=screening_id, decision="approve", eligible=True, decided_at=now
        )
    )
    assert (await sessions.plan(patient)).status_code == 201


async def test_a_withdrawn_consent_puts_open_courses_on_hold(sessions: Sessions) -> None:
    patient = await sessions.ready_patient(consented=False)
    consent_id = uuid.uuid4()
    from shared.events.intake import ConsentSigned

    await sessions.deliver(
        ConsentSigned(patient_id=patient, consent_id=consent_id, document_version="1", signed_at=datetime.now(UTC))
    )
    course = (await sessions.plan(patient)).json()
    await sessions.deliver(ConsentWithdrawn(patient_id=patient, consent_id=consent_id, withdrawn_at=datetime.now(UTC)))
    held = (await sessions.client.get(f"/courses/{course['id']}", headers=sessions.as_("therapist"))).json()
    assert (held["status"], held["status_reason"]) == ("on_hold", "consent was withdrawn")
    resume = await sessions.client.post(
        f"/courses/{course['id']}/status",
        json={"status": "active", "reason": "patient asks to resume"},
        headers=sessions.as_("clinician"),
    )
    assert resume.status_code == 409 and "consent was withdrawn" in resume.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"route": "rectal"}, "route"),
        ({"indication": "other"}, "indication_other"),
        ({"planned_dosing_sessions": 0}, "planned_dosing_sessions"),
    ],
)
async def test_a_bad_course_is_422(sessions: Sessions, change: dict[str, object], field: str) -> None:
    patient = await sessions.ready_patient()
    reply = await sessions.plan(patient, **change)
    assert reply.status_code == 422 and field in reply.text


def a_monday_ahead(weeks: int) -> datetime:
    """09:00 UTC on an ISO week's Monday a few weeks from now (bookings are taken up to 400 days ahead)."""
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    return today + timedelta(days=7 * weeks - today.weekday())


def booking(start: datetime, **changes: object) -> dict[str, object]:
    return {
        "starts_at": start.isoformat(),
        "duration_minutes": 180,
        "room": "Room 1",
        "clinician": "dr-k",
        "therapist": "th-1",
        **changes,
    }


async def test_double_booking_and_the_weekly_cap(sessions: Sessions) -> None:
    course = (await sessions.plan(await sessions.ready_patient())).json()
    other = (await sessions.plan(await sessions.ready_patient())).json()
    url, desk = f"/courses/{course['id']}/sessions", sessions.as_("front_desk")
    monday = a_monday_ahead(weeks=4)
    assert (await sessions.client.post(url, json=booking(monday), headers=desk)).status_code == 201

    clash = await sessions.client.post(
        f"/courses/{other['id']}/sessions",
        json=booking(monday + timedelta(hours=1), therapist="th-2", clinician="dr-z"),
        headers=desk,
    )
    assert clash.status_code == 409 and "room Room 1" in clash.json()["detail"]
    staff = await sessions.client.post(
        f"/courses/{other['id']}/sessions",
        json=booking(monday + timedelta(hours=2), room="Room 2", clinician="dr-z"),
        headers=desk,
    )
    assert staff.status_code == 409 and "therapist th-1" in staff.json()["detail"]
    back_to_back = await sessions.client.post(
        f"/courses/{other['id']}/sessions", json=booking(monday + timedelta(hours=3)), headers=desk
    )
    assert back_to_back.status_code == 201, "a session may start when the last one ends"

    assert (await sessions.client.post(url, json=booking(monday + timedelta(days=2)), headers=desk)).status_code == 201
    third = await sessions.client.post(url, json=booking(monday + timedelta(days=4)), headers=desk)
    assert third.status_code == 409 and "cap of 2" in third.json()["detail"]
    reason = {"weekly_cap_override": {"reason": "Loading phase agreed with the patient's psychiatrist."}}
    by_desk = await sessions.client.post(url, json=booking(monday + timedelta(days=4), **reason), headers=desk)
    assert by_desk.status_code == 403 and "only a clinician" in by_desk.json()["detail"]
    by_clinician = await sessions.client.post(
        url, json=booking(monday + timedelta(days=4), **reason), headers=sessions.as_("clinician")
    )
    assert by_clinician.status_code == 201 and by_clinician.json()["weekly_cap_override"]
    next_week = await sessions.client.post(url, json=booking(monday + timedelta(days=7)), headers=desk)
    assert next_week.status_code == 201


async def test_cancellations_and_no_shows_are_recorded_with_a_reason(sessions: Sessions) -> None:
    course = (await sessions.plan(await sessions.ready_patient())).json()
    desk = sessions.as_("front_desk")
    start = a_monday_ahead(weeks=6)
    first = (await sessions.client.post(f"/courses/{course['id']}/sessions", json=booking(start), headers=desk)).json()
    cancelled = await sessions.client.post(
        f"/sessions/{first['id']}/cancel", json={"reason": "patient unwell"}, headers=desk
    )
    assert (cancelled.json()["status"], cancelled.json()["status_reason"]) == ("cancelled", "patient unwell")
    # The freed slot can be booked again.
    second = (await sessions.client.post(f"/courses/{course['id']}/sessions", json=booking(start), headers=desk)).json()
    missed = await sessions.client.post(
        f"/sessions/{second['id']}/no-show", json={"reason": "did not attend"}, headers=desk
    )
    assert missed.json()["status"] == "no_show"
    assert (
        await sessions.client.post(f"/sessions/{second['id']}/cancel", json={"reason": "late"}, headers=desk)
    ).status_code == 409
