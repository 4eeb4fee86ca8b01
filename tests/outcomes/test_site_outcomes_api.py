"""Outcomes' site role on SQLite and PostgreSQL: one patient's course fed in as intake's, sessions' and billing's
events, then read back as a clinician would (JSON trajectory, FHIR Observation series, follow-ups due), and the
beat that stores results under their definition, announces follow-ups and publishes cohorts.

The course: treatment-resistant depression, IV ketamine 0.5 mg/kg twice a week, six infusions; PHQ-9 20 at
baseline, 14 four hours after the first infusion, 9 at the third (a response: 55 % down), 6 at the end (a
response, not a remission: 6 is not below 5), 8 at four weeks (the response held). The course ended 82 days ago,
so the 12-week follow-up's window is open today and the 26-week one is still ahead."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import exc as sa_exc
from sqlmodel import select

from services.outcomes.models import OutcomeDose, OutcomeResult
from services.outcomes.service import publication
from services.outcomes.service.beat import PrivacyBudgetSettings, watermark
from shared.bus.tables import InboxEntry, OutboxMessage
from shared.events.billing import AccessBarrierRecorded, CoverageDetermined
from shared.events.intake import AssessmentRecorded, PatientRegistered, PriorTreatmentRecorded
from shared.events.sessions import (
    AdverseEventReported,
    CoursePlanned,
    CourseStatusChanged,
    DoseAdministered,
    InCourseAssessmentRecorded,
    SessionScheduled,
    VitalsAlertRaised,
)
from shared.privacy.release import ReleasePeriod
from shared.privacy.suppression_process import SuppressionProcess
from shared.treatment import AdverseEventType, CourseStatus, Indication, Route, VitalsAlertCode
from tests.fhir_validation import assert_valid_r4
from tests.outcomes.conftest import Outcomes

# Mid-morning in the site's zone (America/New_York): a response three hours after a dose is then on the same
# calendar day whenever the suite runs (time to response counts the site's calendar days).
_HERE = datetime.now(ZoneInfo("America/New_York"))
_MORNING = _HERE.replace(hour=10, minute=0, second=0, microsecond=0)
NOW = (_MORNING if _MORNING <= _HERE else _MORNING - timedelta(days=1)).astimezone(UTC)
ENDED = NOW - timedelta(days=82)
FIRST_DOSE = ENDED - timedelta(days=12)  # the course is closed the day after its last infusion
DOSES = [FIRST_DOSE + timedelta(days=d) for d in (0, 2, 4, 7, 9, 11)]


def score(patient_id: uuid.UUID, instrument: str, total: int, at: datetime, *, in_course: bool) -> object:
    kind = InCourseAssessmentRecorded if in_course else AssessmentRecorded
    return kind(
        patient_id=patient_id,
        assessment_id=uuid.uuid4(),
        instrument=instrument,  # type: ignore[arg-type]
        instrument_version="test",
        total=total,
        context="in_course" if in_course else ("follow_up" if at > ENDED else "baseline"),
        administered_at=at,
    )


async def a_course(outcomes: Outcomes, pcl5: tuple[int, int] = (40, 32)) -> tuple[uuid.UUID, uuid.UUID]:
    patient_id, course_id = uuid.uuid4(), uuid.uuid4()
    registered = FIRST_DOSE - timedelta(days=20)
    events: list[object] = [
        PatientRegistered(
            patient_id=patient_id,
            site="north",
            mrn="N-1",
            birth_date=date(1980, 3, 1),
            sex="female",
            registered_at=registered,
        ),
        PriorTreatmentRecorded.model_validate(
            {
                "patient_id": patient_id,
                "prior_treatment_id": uuid.uuid4(),
                "kind": "antidepressant_trial",
                "drug": "sertraline",
                "current_episode": True,
                "adequate": True,
                "outcome": "no_response",
                "description": "sertraline 100 mg for 8 weeks, no response",
                "treatment_resistant": False,
                "recorded_at": registered,
            }
        ),
        CoursePlanned(
            patient_id=patient_id,
            course_id=course_id,
            indication=Indication.treatment_resistant_depression,
            route=Route.iv_infusion,
            planned_dosing_sessions=6,
            dosing_sessions_per_week=2,
            planned_integration_sessions=3,
            prescriber="dr-who",
            planned_at=registered + timedelta(days=5),
        ),
        CoverageDetermined(
            patient_id=patient_id,
            course_id=course_id,
            kind="not_covered",
            reason="off-label",
            payer_type="self_pay",
            prior_auth_needed=False,
            determined_at=registered + timedelta(days=6),
        ),
        AccessBarrierRecorded(
            patient_id=patient_id,
            barrier_id=uuid.uuid4(),
            course_id=None,
            reason="cannot_pay",
            outcome="deferred",
            estimated_out_of_pocket_cents=360_000,
            currency="USD",
            recorded_automatically=False,
            recorded_at=registered + timedelta(days=7),
        ),
        score(patient_id, "phq9", 20, FIRST_DOSE - timedelta(hours=1), in_course=False),
        score(patient_id, "pcl5", pcl5[0], FIRST_DOSE - timedelta(hours=1), in_course=False),
    ]
    for n, at in enumerate(DOSES):
        session_id = uuid.uuid4()
        events += [
            SessionScheduled(
                patient_id=patient_id,
                session_id=session_id,
                course_id=course_id,
                route=Route.iv_infusion,
                starts_at=at,
                ends_at=at + timedelta(hours=2),
                weekly_cap_overridden=False,
            ),
            DoseAdministered(
                patient_id=patient_id,
                session_id=session_id,
                course_id=course_id,
                route=Route.iv_infusion,
                dose_mg=35.0,
                dose_mg_per_kg=0.5,
                within_range=True,
                administered_at=at,
            ),
        ]
        if n == 0:
            events += [
                AdverseEventReported(
                    patient_id=patient_id,
                    session_id=session_id,
                    adverse_event_id=uuid.uuid4(),
                    type=AdverseEventType.nausea,
                    severity="mild",  # type: ignore[arg-type]
                    serious=False,
                    action_taken="ondansetron",
                    occurred_at=at + timedelta(minutes=30),
                ),
                VitalsAlertRaised(
                    patient_id=patient_id,
                    session_id=session_id,
                    code=VitalsAlertCode.systolic_high,
                    value=182,
                    threshold=180,
                    message="systolic 182",
                    taken_at=at + timedelta(minutes=20),
                ),
                score(patient_id, "phq9", 14, at + timedelta(hours=4), in_course=True),
            ]
        if n == 2:
            events.append(score(patient_id, "phq9", 9, at + timedelta(hours=3), in_course=True))
    events += [
        score(patient_id, "phq9", 6, DOSES[-1] + timedelta(hours=3), in_course=True),
        score(patient_id, "pcl5", pcl5[1], DOSES[-1] + timedelta(hours=3), in_course=True),
        CourseStatusChanged(
            patient_id=patient_id,
            course_id=course_id,
            previous_status=CourseStatus.active,
            status=CourseStatus.completed,
            changed_at=ENDED,
        ),
        score(patient_id, "phq9", 8, ENDED + timedelta(weeks=4, days=-1), in_course=False),
    ]
    await outcomes.deliver(*events)  # type: ignore[arg-type]
    return patient_id, course_id


async def test_a_clinician_reads_the_trajectory_response_time_to_response_and_follow_ups(outcomes: Outcomes) -> None:
    patient_id, course_id = await a_course(outcomes)
    reply = await outcomes.client.get(f"/patients/{patient_id}/outcomes", headers=outcomes.as_("therapist"))
    assert reply.status_code == 200, reply.text
    [course] = reply.json()["courses"]
    assert course["course_id"] == str(course_id)
    assert course["definition"] == "response>=50%;phq9<5;gad7<5;pcl5<33"
    phq9 = course["results"]["phq9"]
    assert (phq9["baseline"], phq9["last_in_course"], phq9["change"]) == (20, 6, -14)
    assert (phq9["responded"], phq9["remitted"]) == (True, False)
    # First response: 9 at the third infusion, day 4, three hours after that infusion.
    assert phq9["time_to_response"] == {"hours": 4 * 24 + 3.0, "days": 4}
    phases = [(p["total"], p["phase"], p["hours_from_first_dose"]) for p in phq9["points"]]
    assert phases[:2] == [(20, "baseline", -1.0), (14, "in_course", 4.0)]
    assert phases[-1][:2] == (8, "follow_up")
    assert course["results"]["gad7"]["baseline"] is None
    follow_ups = {(f["instrument"], f["week"]): f for f in course["follow_ups"]}
    assert follow_ups["phq9", 4]["status"] == "done" and follow_ups["phq9", 4]["held"] is True
    assert follow_ups["phq9", 12]["status"] == "due"
    assert follow_ups["phq9", 26]["status"] == "upcoming"
    summary = course["summary"]
    assert summary["dose_count"] == 6
    assert (summary["dose_band"], summary["frequency"], summary["payer"]) == ("0.5-0.74 mg/kg", ">=2/week", "self_pay")
    assert summary["prior_trials"] == "1"
    assert summary["adverse_events_by_type"] == {"nausea": 1}
    assert summary["vitals_alerts_by_code"] == {"systolic_high": 1}
    assert summary["days_to_first_dose"] == 20
    assert summary["barriers_by_reason"] == {"cannot_pay": 1}
    assert summary["estimated_out_of_pocket_cents"] == 360_000
    assert summary["dropped_out"] is False

    due = await outcomes.client.get("/followups/due", headers=outcomes.as_("clinician"))
    assert due.status_code == 200, due.text
    assert [(f["patient_id"], f["week"], f["instruments"]) for f in due.json()] == [
        (str(patient_id), 12, ["phq9", "pcl5"])
    ]


async def test_outcomes_are_for_clinicians_and_therapists_and_a_stranger_is_404(outcomes: Outcomes) -> None:
    patient_id, _ = await a_course(outcomes)
    for role in ("front_desk", "billing", "site_admin"):
        reply = await outcomes.client.get(f"/patients/{patient_id}/outcomes", headers=outcomes.as_(role))
        assert reply.status_code == 403, role
    missing = await outcomes.client.get(f"/patients/{uuid.uuid4()}/outcomes", headers=outcomes.as_("clinician"))
    assert missing.status_code == 404
    assert "patient" in missing.json()["detail"]


async def test_a_redelivered_event_adds_nothing(outcomes: Outcomes) -> None:
    patient_id, course_id = await a_course(outcomes)
    dose = DoseAdministered(
        patient_id=patient_id,
        session_id=uuid.uuid4(),
        course_id=course_id,
        route=Route.iv_infusion,
        dose_mg=35.0,
        dose_mg_per_kg=0.5,
        within_range=True,
        administered_at=ENDED - timedelta(hours=1),
    )
    await outcomes.deliver(dose)
    before = await outcomes.count(OutcomeDose)
    await outcomes.deliver(dose, dose)
    assert await outcomes.count(OutcomeDose) == before == 7


async def test_the_beat_stores_each_result_with_its_definition_and_a_new_cutoff_adds_rather_than_rewrites(
    outcomes: Outcomes,
) -> None:
    _, course_id = await a_course(outcomes, pcl5=(40, 32))
    first = await outcomes.beat(pcl5_cutoff=33)
    assert (first.courses, first.results_written, first.follow_ups_announced) == (1, 2, 1)
    assert first.cohorts_published > 0
    again = await outcomes.beat(pcl5_cutoff=33)
    assert (again.results_written, again.follow_ups_announced, again.cohorts_published) == (0, 0, 0)
    stricter = await outcomes.beat(pcl5_cutoff=31)
    assert stricter.results_written == 2
    async with outcomes.database.sessions() as session:
        rows = (await session.exec(select(OutcomeResult).where(OutcomeResult.course_id == course_id))).all()
    pcl5 = {r.definition: r.remitted for r in rows if r.instrument == "pcl5"}
    # 32 is below 33 but not below 31: the earlier result stands beside the new one.
    assert pcl5 == {"response>=50%;phq9<5;gad7<5;pcl5<33": True, "response>=50%;phq9<5;gad7<5;pcl5<31": False}


async def test_a_follow_up_due_is_announced_once_on_the_sites_own_topic(outcomes: Outcomes) -> None:
    patient_id, course_id = await a_course(outcomes)
    await outcomes.beat()
    await outcomes.beat()
    async with outcomes.database.sessions() as session:
        messages = (await session.exec(select(OutboxMessage))).all()
    due = [m for m in messages if m.ce_type == "org.kapnet.outcomes.followup.due.v1"]
    assert len(due) == 1
    assert due[0].topic == "kapnet.north.outcomes.v1" and due[0].partition_key == str(patient_id)
    data = json.loads(due[0].payload)
    assert (data["course_id"], data["week"]) == (str(course_id), 12)
    assert data["due_on"] == (ENDED.astimezone(outcomes.settings.zone).date() + timedelta(weeks=12)).isoformat()
    cohorts = [m for m in messages if m.ce_type == "org.kapnet.outcomes.cohort_outcomes.published.v1"]
    assert cohorts and all(m.topic == "kapnet.network.north.aggregates.v1" for m in cohorts)
    for message in cohorts:
        # One course: every count is suppressed, nothing names the patient.
        assert str(patient_id) not in message.payload.decode()
        figures = json.loads(message.payload)
        assert figures["courses"] == {"count": None, "suppressed": True}


async def test_follow_ups_are_announced_while_the_privacy_solver_is_out(
    outcomes: Outcomes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The solver's process cannot run (here: it exits at once). The patient's follow-up is announced anyway, the
    # release waits, and the next beat with a solver makes it.
    await a_course(outcomes)
    out = SuppressionProcess(idle_seconds=1, command=[sys.executable, "-c", "raise SystemExit(3)"])
    monkeypatch.setattr(publication, "SUPPRESSION", out)
    deferred = await outcomes.beat()
    assert deferred.release_deferred and deferred.released_for is None and deferred.cohorts_published == 0
    assert deferred.follow_ups_announced == 1

    async def published(ce_type: str) -> int:
        async with outcomes.database.sessions() as session:
            messages = (await session.exec(select(OutboxMessage).where(OutboxMessage.ce_type == ce_type))).all()
        return len(messages)

    assert await published("org.kapnet.outcomes.followup.due.v1") == 1
    assert await published("org.kapnet.outcomes.cohort_outcomes.published.v1") == 0
    monkeypatch.undo()
    released = await outcomes.beat()
    assert not released.release_deferred and released.cohorts_published > 0
    assert await published("org.kapnet.outcomes.followup.due.v1") == 1  # announced once


async def test_a_release_that_fails_half_written_holds_back_no_follow_up(
    outcomes: Outcomes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A defect that strikes after the release has written its cohorts into the outbox: the release's
    # transaction rolls back whole (no cohort leaves), the patient's follow-up is announced anyway, and the
    # release, still due, is made at the next beat.
    await a_course(outcomes)
    real_publish = publication.publish_release

    async def publish_then_fail(*args: Any, **kwargs: Any) -> int:
        written = await real_publish(*args, **kwargs)
        assert written > 0
        raise RuntimeError("a defect after the cohorts were written")

    monkeypatch.setattr(publication, "publish_release", publish_then_fail)
    failed = await outcomes.beat()
    assert failed.release_deferred and failed.released_for is None and failed.cohorts_published == 0
    assert failed.follow_ups_announced == 1
    async with outcomes.database.sessions() as session:
        types = [m.ce_type for m in (await session.exec(select(OutboxMessage))).all()]
    assert types.count("org.kapnet.outcomes.followup.due.v1") == 1
    assert "org.kapnet.outcomes.cohort_outcomes.published.v1" not in types
    monkeypatch.undo()
    released = await outcomes.beat()
    assert not released.release_deferred and released.cohorts_published > 0
    assert released.follow_ups_announced == 0  # announced once, by the failed beat


async def test_follow_ups_are_announced_when_the_privacy_budget_cannot_be_spent(
    outcomes: Outcomes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Differential-privacy mode; the budget's transaction fails (here: a statement timeout). The patient's follow-up
    # is announced anyway, nothing is released, and the next beat spends and releases.
    await a_course(outcomes)
    budget = PrivacyBudgetSettings(epsilon_per_month=1.0, epsilon_per_release=0.25)

    async def timed_out(*_: Any, **__: Any) -> None:
        raise sa_exc.OperationalError("SELECT", {}, psycopg.errors.QueryCanceled("canceling statement due to timeout"))

    monkeypatch.setattr(publication, "spend_privacy_budget", timed_out)
    deferred = await outcomes.beat(noise=budget)
    assert deferred.release_deferred and deferred.released_for is None and deferred.cohorts_published == 0
    assert deferred.follow_ups_announced == 1
    monkeypatch.undo()
    released = await outcomes.beat(noise=budget)
    assert not released.release_deferred and released.cohorts_published > 0
    assert released.follow_ups_announced == 0  # announced once, by the beat the budget failed


async def test_the_trajectory_is_a_valid_fhir_observation_series(outcomes: Outcomes) -> None:
    patient_id, _ = await a_course(outcomes)
    reply = await outcomes.client.get(
        "/fhir/Observation", params={"patient": f"Patient/{patient_id}"}, headers=outcomes.as_("clinician")
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/fhir+json")
    bundle = reply.json()
    assert_valid_r4(bundle)
    observations = [e["resource"] for e in bundle["entry"]]
    phq9 = [o for o in observations if o["code"]["text"] == "PHQ-9 total score"]
    assert [o["valueInteger"] for o in phq9] == [20, 14, 9, 6, 8]
    third = phq9[2]
    components = {c["code"]["coding"][0]["code"]: c for c in third["component"]}
    assert components["response"]["valueBoolean"] is True
    assert components["change-from-baseline"]["valueQuantity"]["value"] == -11
    assert components["definition"]["valueString"] == "response>=50%;phq9<5;gad7<5;pcl5<33"
    missing = await outcomes.client.get("/fhir/Observation", headers=outcomes.as_("clinician"))
    assert missing.status_code == 400 and missing.json()["resourceType"] == "OperationOutcome"


async def test_the_beat_judges_again_only_once_an_event_was_taken_in(outcomes: Outcomes) -> None:
    zone = outcomes.settings.zone
    async with outcomes.runtime.unit_of_work() as uow:
        before = await watermark(uow, zone, ReleasePeriod.day)
        assert await watermark(uow, zone, ReleasePeriod.day) == before
        uow.session.add(
            InboxEntry(
                consumer="outcomes@north",
                event_id="e-1",
                ce_type="org.kapnet.sessions.dose.administered.v1",
                topic="kapnet.north.sessions.v1",
                partition=0,
                offset=7,
                outcome="processed",
                received_at=NOW,
            )
        )
        await uow.commit()
        after = await watermark(uow, zone, ReleasePeriod.day)
    assert after != before and after.events_taken_in == before.events_taken_in + 1
