"""The prior-treatment history through the API, on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import jsonschema
import pytest
from sqlmodel import col, select

from services.intake.models import PriorTreatmentRecord
from shared.audit import AuditEntry
from shared.events import json_schemas
from shared.events.intake import PriorTreatmentRecorded
from tests.intake.conftest import Intake

SERTRALINE: dict[str, Any] = {
    "kind": "antidepressant_trial",
    "drug": "sertraline",
    "daily_dose_mg": 150,
    "duration_weeks": 8,
    "outcome": "no_response",
    "current_episode": True,
    "start_date": "2025-01-06",
    "end_date": "2025-03-09",
}
VENLAFAXINE: dict[str, Any] = {
    **SERTRALINE,
    "drug": "venlafaxine",
    "daily_dose_mg": 225,
    "duration_weeks": 10,
    "outcome": "partial_response",
    "start_date": "2025-04-01",
    "end_date": None,
}
CBT: dict[str, Any] = {
    "kind": "psychotherapy",
    "therapy": "cbt",
    "sessions": 16,
    "outcome": "partial_response",
    "current_episode": True,
}


async def audit_actions(intake: Intake) -> list[tuple[str, str]]:
    async with intake.database.sessions() as session:
        rows = (await session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
    return [(r.action, r.resource) for r in rows if r.action.startswith("prior_treatment.")]


async def test_record_the_history_and_read_it_with_the_verdict(intake: Intake) -> None:
    patient = await intake.register()
    base = f"/patients/{patient['id']}/prior-treatments"
    clinician, therapist = intake.as_("clinician", sub="dr-1"), intake.as_("therapist", sub="th-1")

    first = await intake.client.post(base, json=VENLAFAXINE, headers=clinician)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["adequate"] is True and body["recorded_by"] == "dr-1" and body["patient_id"] == patient["id"]
    assert body["summary"] == (
        "venlafaxine 225 mg/day for 10 weeks (adequate): partial response; current episode, from 2025-04-01"
    )
    assert body["treatment"]["drug"] == "venlafaxine" and body["treatment"]["kind"] == "antidepressant_trial"
    therapy = await intake.client.post(base, json=CBT, headers=therapist)
    assert therapy.status_code == 201 and therapy.json()["adequate"] is None

    history = await intake.client.get(base, headers=clinician)
    assert history.status_code == 200
    assert history.json()["treatment_resistant"] is False, "one adequate antidepressant trial"

    second = await intake.client.post(base, json=SERTRALINE, headers=clinician)
    assert second.status_code == 201
    history = (await intake.client.get(base, headers=intake.as_("billing"))).json()
    assert history["treatment_resistant"] is True
    # Oldest first by start date; undated last.
    assert [t["summary"] for t in history["treatments"]] == [
        "sertraline 150 mg/day for 8 weeks (adequate): no response; current episode, 2025-01-06 to 2025-03-09",
        "venlafaxine 225 mg/day for 10 weeks (adequate): partial response; current episode, from 2025-04-01",
        "psychotherapy (CBT), 16 sessions: partial response; current episode",
    ]

    events = [json.loads(e.payload) for e in await intake.events("prior_treatment.recorded.v1")]
    assert [e["treatment_resistant"] for e in events] == [False, False, True]
    schema = json_schemas()[PriorTreatmentRecorded.ce_type()]
    for event in events:
        jsonschema.validate(event, schema)
    trial = events[2]
    assert trial["prior_treatment_id"] == second.json()["id"] and trial["patient_id"] == patient["id"]
    assert {k: trial[k] for k in ("kind", "drug", "daily_dose_mg", "duration_weeks", "adequate", "outcome")} == {
        "kind": "antidepressant_trial",
        "drug": "sertraline",
        "daily_dose_mg": 150,
        "duration_weeks": 8,
        "adequate": True,
        "outcome": "no_response",
    }
    assert trial["start_date"] == "2025-01-06" and trial["current_episode"] is True
    assert trial["description"] == second.json()["summary"]
    assert events[1]["kind"] == "psychotherapy" and events[1]["therapy"] == "cbt" and events[1]["sessions"] == 16
    assert events[1]["drug"] is None and events[1]["adequate"] is None

    resource = f"patients/{patient['id']}/prior-treatments"
    assert await audit_actions(intake) == [
        ("prior_treatment.record", f"{resource}/{first.json()['id']}"),
        ("prior_treatment.record", f"{resource}/{therapy.json()['id']}"),
        ("prior_treatment.read", resource),
        ("prior_treatment.record", f"{resource}/{second.json()['id']}"),
        ("prior_treatment.read", resource),
    ]


async def test_two_trials_recorded_at_once_make_one_event_say_treatment_resistant(intake: Intake) -> None:
    patient = await intake.register()
    base, clinician = f"/patients/{patient['id']}/prior-treatments", intake.as_("clinician")
    replies = await asyncio.gather(
        intake.client.post(base, json=SERTRALINE, headers=clinician),
        intake.client.post(base, json=VENLAFAXINE, headers=clinician),
    )
    assert [r.status_code for r in replies] == [201, 201]
    events = [json.loads(e.payload) for e in await intake.events("prior_treatment.recorded.v1")]
    assert [e["treatment_resistant"] for e in events] == [False, True]


async def test_every_kind_is_recorded(intake: Intake) -> None:
    patient = await intake.register()
    base, clinician = f"/patients/{patient['id']}/prior-treatments", intake.as_("clinician")
    entries = [
        {"kind": "ect", "sessions": 12, "outcome": "response_then_relapse", "current_episode": False},
        {"kind": "tms", "sessions": 36, "outcome": "no_response", "current_episode": True},
        {
            "kind": "other_augmentation",
            "agent": "aripiprazole",
            "daily_dose_mg": 5,
            "duration_weeks": 8,
            "outcome": "not_tolerated",
            "current_episode": True,
        },
        {**SERTRALINE, "drug": "other", "drug_name": "agomelatine", "daily_dose_mg": 50},
    ]
    for entry in entries:
        reply = await intake.client.post(base, json=entry, headers=clinician)
        assert reply.status_code == 201, reply.text
    summaries = [t["summary"] for t in (await intake.client.get(base, headers=clinician)).json()["treatments"]]
    assert summaries == [
        "agomelatine 50 mg/day for 8 weeks (adequacy not judged: no minimum effective dose on file): no response; "
        "current episode, 2025-01-06 to 2025-03-09",
        "ECT, 12 sessions: response, then relapse; earlier episode",
        "TMS, 36 sessions: no response; current episode",
        "aripiprazole augmentation 5 mg/day for 8 weeks: not tolerated; current episode",
    ]
    assert [e.ce_type for e in await intake.events("prior_treatment.recorded.v1")] == [
        "org.kapnet.intake.prior_treatment.recorded.v1"
    ] * 4


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({**SERTRALINE, "daily_dose_mg": 0}, "/body/daily_dose_mg"),
        ({**SERTRALINE, "daily_dose_mg": 1500}, "/body/daily_dose_mg"),
        ({**SERTRALINE, "duration_weeks": "eight"}, "/body/duration_weeks"),
        ({**SERTRALINE, "drug": "other"}, "/body/drug_name"),
        ({**SERTRALINE, "drug": "zoloftine"}, "/body/drug"),
        ({**SERTRALINE, "end_date": "2024-12-31"}, "/body/end_date"),
        ({**SERTRALINE, "start_date": "2999-01-01", "end_date": None}, "/body/start_date"),
        ({**SERTRALINE, "duration_weeks": 12}, "/body/duration_weeks"),
        ({k: v for k, v in SERTRALINE.items() if k != "current_episode"}, "/body/current_episode"),
        ({**SERTRALINE, "sessions": 4}, "/body/sessions"),
        ({**CBT, "sessions": 0}, "/body/sessions"),
        ({**CBT, "therapy": "other"}, "/body/therapy_name"),
        ({**CBT, "kind": "hypnosis"}, "/body/kind"),
        ({k: v for k, v in CBT.items() if k != "kind"}, "/body/kind"),
    ],
)
async def test_bad_input_is_422_naming_the_field_and_writes_nothing(
    intake: Intake, body: dict[str, Any], pointer: str
) -> None:
    patient = await intake.register()
    reply = await intake.client.post(
        f"/patients/{patient['id']}/prior-treatments", json=body, headers=intake.as_("clinician")
    )
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert [e["pointer"] for e in reply.json()["errors"]] == [pointer]
    assert "zoloftine" not in reply.text and "hypnosis" not in reply.text, "the reply echoes what was sent"
    assert await intake.count(PriorTreatmentRecord) == 0
    assert await intake.events("prior_treatment.recorded.v1") == []
    assert await audit_actions(intake) == []


async def test_an_unknown_patient_is_404(intake: Intake) -> None:
    base = f"/patients/{uuid.uuid4()}/prior-treatments"
    recorded = await intake.client.post(base, json=SERTRALINE, headers=intake.as_("clinician"))
    assert recorded.status_code == 404 and recorded.json()["detail"] == "no such patient at this site"
    assert (await intake.client.get(base, headers=intake.as_("billing"))).status_code == 404
    assert await intake.count(PriorTreatmentRecord) == 0 and await audit_actions(intake) == []


async def test_who_may_record_and_read(intake: Intake) -> None:
    patient = await intake.register()
    base = f"/patients/{patient['id']}/prior-treatments"
    for role in ("front_desk", "billing", "site_admin"):
        refused = await intake.client.post(base, json=SERTRALINE, headers=intake.as_(role))
        assert refused.status_code == 403, role
    for role in ("front_desk", "site_admin"):
        refused = await intake.client.get(base, headers=intake.as_(role))
        assert refused.status_code == 403, role
        assert patient["id"] not in refused.text
    assert await intake.count(PriorTreatmentRecord) == 0
    for role in ("clinician", "therapist"):
        assert (await intake.client.post(base, json=SERTRALINE, headers=intake.as_(role))).status_code == 201
    for role in ("clinician", "therapist", "billing"):
        assert (await intake.client.get(base, headers=intake.as_(role))).status_code == 200


async def test_a_deactivated_patient_takes_no_new_history_but_keeps_the_old(intake: Intake) -> None:
    patient = await intake.register()
    base = f"/patients/{patient['id']}/prior-treatments"
    assert (await intake.client.post(base, json=SERTRALINE, headers=intake.as_("clinician"))).status_code == 201
    deactivated = await intake.client.post(
        f"/patients/{patient['id']}/deactivate", json={"reason": "moved away"}, headers=intake.as_("front_desk")
    )
    assert deactivated.status_code == 200
    refused = await intake.client.post(base, json=VENLAFAXINE, headers=intake.as_("clinician"))
    assert refused.status_code == 409
    assert len((await intake.client.get(base, headers=intake.as_("billing"))).json()["treatments"]) == 1
