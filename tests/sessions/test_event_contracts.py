"""Sessions' events over the real broker: every type is produced by the API, validates against the JSON Schema
the registry publishes, and is taken in by a consumer running the shared consumer runner."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import jsonschema
import pytest

from services.sessions.app import create_app
from shared.bus.consumer import ConsumerConfig, EventConsumer, Handler
from shared.bus.kafka import TopicSpec
from shared.db.database import Database
from shared.db.unit_of_work import UnitOfWork
from shared.events import CloudEvent, DomainEvent, event_types, json_schemas
from shared.settings import ServiceSettings
from tests.harness import app_in_process, eventually
from tests.intake.test_event_contracts import consumer_db  # noqa: F401 - a fixture
from tests.sessions.conftest import Sessions
from tests.sessions.test_session_record_api import a_session, at, pre_dose, ready_to_discharge, vitals

pytestmark = pytest.mark.broker

SESSIONS_EVENTS = {t for t in event_types(produced_only=True) if t.startswith("org.kapnet.sessions.")}


async def drive_every_sessions_event(sessions: Sessions) -> None:
    doctor, nurse, desk = sessions.as_("clinician"), sessions.as_("therapist"), sessions.as_("front_desk")
    session_id = await a_session(sessions)  # course.planned, session.scheduled
    url = f"/sessions/{session_id}"
    await sessions.client.post(f"{url}/pre-dose-checks", json=pre_dose(), headers=doctor)
    await sessions.client.post(
        f"{url}/dose",
        headers=doctor,
        json={"mg_per_kg": 0.5, "lot_number": "L", "administration_start": at(110), "administration_end": at(70)},
    )
    await sessions.client.post(f"{url}/vitals", json=vitals(65, spo2_percent=89), headers=nurse)
    event = {
        "event": {
            "type": "vomiting",
            "severity": "moderate",
            "resulted_in_death": False,
            "life_threatening": False,
            "hospitalisation": False,
            "persistent_disability": False,
            "congenital_anomaly": False,
            "important_medical_event": False,
        },
        "action_taken": "antiemetic",
        "occurred_at": at(80),
    }
    await sessions.client.post(f"{url}/adverse-events", json=event, headers=nurse)
    await ready_to_discharge(sessions, session_id)
    done = await sessions.client.post(f"{url}/discharge", json={"escort_present": True}, headers=doctor)
    assert done.status_code == 200, done.text
    patient, course_id = done.json()["patient_id"], done.json()["course_id"]
    await sessions.client.post(
        f"/patients/{patient}/assessments", headers=nurse, json={"instrument": "phq9", "answers": [0] * 8 + [1]}
    )
    flags = (await sessions.client.get(f"/patients/{patient}/safety-flags", headers=nurse)).json()
    await sessions.client.post(
        f"/patients/{patient}/safety-flags/{flags[0]['id']}/acknowledge",
        headers=doctor,
        json={"note": "Seen after the session: no plan, safety plan reviewed."},
    )
    await sessions.client.post(
        f"/courses/{course_id}/integration-sessions",
        headers=nurse,
        json={"held_at": at(30), "modality": "visualization", "notes": "Integration.", "duration_minutes": 50},
    )
    second = await sessions.client.post(
        f"/courses/{course_id}/sessions",
        headers=desk,
        json={"starts_at": at(-60 * 24 * 8), "duration_minutes": 120, "room": "Z", "clinician": "c", "therapist": "t"},
    )
    third = await sessions.client.post(
        f"/courses/{course_id}/sessions",
        headers=desk,
        json={"starts_at": at(-60 * 24 * 11), "duration_minutes": 120, "room": "Z", "clinician": "c", "therapist": "t"},
    )
    await sessions.client.post(f"/sessions/{second.json()['id']}/cancel", json={"reason": "unwell"}, headers=desk)
    await sessions.client.post(f"/sessions/{third.json()['id']}/no-show", json={"reason": "absent"}, headers=desk)
    held = await sessions.client.post(
        f"/courses/{course_id}/status", json={"status": "on_hold", "reason": "travel"}, headers=doctor
    )
    assert held.status_code == 200, held.text


async def test_every_sessions_event_matches_its_schema_and_is_consumed(
    kafka: str,
    tmp_path: Path,
    consumer_db: Database,  # noqa: F811 - the fixture imported above
) -> None:
    site = f"sc{uuid.uuid4().hex[:6]}"
    settings = ServiceSettings(
        service="sessions", site=site, var_dir=tmp_path, kafka_bootstrap_servers=kafka, outbox_poll_interval_seconds=0.2
    )
    received: list[CloudEvent] = []

    async def collect(uow: UnitOfWork, event: DomainEvent, envelope: CloudEvent) -> None:
        received.append(envelope)

    handlers: dict[type[DomainEvent], Handler] = {event_types()[t]: collect for t in SESSIONS_EVENTS}
    consumer = EventConsumer(
        consumer_db,
        ConsumerConfig(
            name=f"contract-{site}",
            topics=[TopicSpec(f"kapnet.{site}.sessions.v1")],
            dead_letter_topic=f"kapnet.{site}.contract.deadletter.v1",
            source="/test",
            site=site,
            bootstrap_servers=kafka,
        ),
        handlers,
    )
    task = asyncio.create_task(consumer.run())
    try:
        async with app_in_process(create_app(settings)) as client:
            sessions = Sessions(client, settings)
            await drive_every_sessions_event(sessions)
            await eventually(
                lambda: {e.type for e in received} == SESSIONS_EVENTS,
                within=60,
                what="one event of every sessions type",
            )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(SESSIONS_EVENTS) == 13 and consumer.dead_lettered_total == 0
    schemas = json_schemas()
    for envelope in received:
        jsonschema.validate(envelope.data, schemas[envelope.type])
        assert envelope.source == f"/kapnet/{site}/sessions"
