"""Intake's events over the real broker: every type is produced by the API, validates against the JSON Schema
the registry publishes, and is taken in by a consumer running the shared consumer runner."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from services.intake.app import create_app
from shared.bus.consumer import ConsumerConfig, EventConsumer, Handler
from shared.bus.kafka import TopicSpec
from shared.db.database import Database
from shared.db.migrate import upgrade_to_head
from shared.db.unit_of_work import UnitOfWork
from shared.events import CloudEvent, DomainEvent, event_types, json_schemas
from shared.settings import ServiceSettings
from tests.conftest import ROOT
from tests.harness import app_in_process, auth_headers, eventually
from tests.intake.test_consent_and_screening_api import DOCUMENT, NO_FLAGS, SIGNATURE

pytestmark = pytest.mark.broker

INTAKE_EVENTS = {t for t in event_types(produced_only=True) if t.startswith("org.kapnet.intake.")}


@pytest.fixture
async def consumer_db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite:///{tmp_path / 'consumer.db'}"
    await asyncio.to_thread(upgrade_to_head, url, ROOT / "services" / "sessions" / "migrations" / "versions")
    database = Database(url)
    yield database
    await database.dispose()


async def drive_every_intake_event(client: Any, key_dir: Path, site: str) -> None:
    def as_(role: str) -> dict[str, str]:
        return auth_headers(key_dir, site, role)

    body = {"given_name": "Contract", "family_name": "Test", "birth_date": "1980-03-03", "sex": "male"}
    patient = (await client.post("/patients", json=body, headers=as_("front_desk"))).json()
    base = f"/patients/{patient['id']}"
    updated = await client.patch(base, json={"preferred_name": "C"}, headers={**as_("front_desk"), "If-Match": 'W/"1"'})
    assert updated.status_code == 200
    document = (await client.post("/consent-documents", json=DOCUMENT, headers=as_("site_admin"))).json()
    consent = (
        await client.post(
            f"{base}/consents", json={**SIGNATURE, "document_id": document["id"]}, headers=as_("front_desk")
        )
    ).json()
    assert (
        await client.post(
            f"{base}/consents/{consent['id']}/withdraw", json={"reason": "changed mind"}, headers=as_("front_desk")
        )
    ).status_code == 200
    screening = (
        await client.post(f"{base}/screenings", json={**NO_FLAGS, "takes_stimulants": True}, headers=as_("clinician"))
    ).json()
    review = {"decision": "approve", "rationale": "Stimulant paused 48 h before each session."}
    assert (
        await client.post(f"{base}/screenings/{screening['id']}/medical-review", json=review, headers=as_("clinician"))
    ).status_code == 200
    assessment = (
        await client.post(
            f"{base}/assessments", json={"instrument": "phq9", "answers": [0] * 8 + [2]}, headers=as_("clinician")
        )
    ).json()
    flag = assessment["safety_flag"]
    assert (
        await client.post(
            f"{base}/safety-flags/{flag['id']}/acknowledge",
            json={"note": "Assessed in person; no plan or intent."},
            headers=as_("clinician"),
        )
    ).status_code == 200
    trial = {
        "kind": "antidepressant_trial",
        "drug": "sertraline",
        "daily_dose_mg": 150,
        "duration_weeks": 8,
        "outcome": "no_response",
        "current_episode": True,
    }
    assert (await client.post(f"{base}/prior-treatments", json=trial, headers=as_("clinician"))).status_code == 201
    assert (
        await client.post(f"{base}/deactivate", json={"reason": "contract test done"}, headers=as_("front_desk"))
    ).status_code == 200


async def test_every_intake_event_matches_its_schema_and_is_consumed(
    kafka: str, tmp_path: Path, consumer_db: Database
) -> None:
    site = f"ct{uuid.uuid4().hex[:6]}"
    settings = ServiceSettings(
        service="intake", site=site, var_dir=tmp_path, kafka_bootstrap_servers=kafka, outbox_poll_interval_seconds=0.2
    )
    received: list[tuple[DomainEvent, CloudEvent]] = []

    async def collect(uow: UnitOfWork, event: DomainEvent, envelope: CloudEvent) -> None:
        received.append((event, envelope))

    handlers: dict[type[DomainEvent], Handler] = {event_types()[t]: collect for t in INTAKE_EVENTS}
    consumer = EventConsumer(
        consumer_db,
        ConsumerConfig(
            name=f"contract-{site}",
            topics=[TopicSpec(f"kapnet.{site}.intake.v1")],
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
            await drive_every_intake_event(client, settings.dev_key_dir, site)
            await eventually(
                lambda: {e.type for _, e in received} == INTAKE_EVENTS, within=60, what="one event of every intake type"
            )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert len(INTAKE_EVENTS) == 11 and consumer.dead_lettered_total == 0
    schemas = json_schemas()
    for event, envelope in received:
        jsonschema.validate(envelope.data, schemas[envelope.type])
        assert envelope.subject == f"patients/{event.partition_key()}"
        assert envelope.source == f"/kapnet/{site}/intake"
        # The name travels only with the patient's own record events (for billing), on the site's topic.
        if not envelope.type.startswith("org.kapnet.intake.patient."):
            for private in ("Contract", "Test"):
                assert private not in str(envelope.data), f"a name left intake in {envelope.type}"
    # One patient: every event on one key, so in the order they happened.
    order = [e.type.split(".")[3] for _, e in received]
    assert order[0] == "patient" and order[-1] == "patient"
