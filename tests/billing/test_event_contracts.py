"""Billing's events over the real broker: every type is produced by the API (or by the handlers fed intake's and
sessions' events), validates against the JSON Schema the registry publishes, and is consumed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema

from services.billing.app import create_app
from shared.bus.consumer import ConsumerConfig, EventConsumer, Handler
from shared.bus.kafka import TopicSpec
from shared.db.database import Database
from shared.db.unit_of_work import UnitOfWork
from shared.events import CloudEvent, DomainEvent, event_types, json_schemas
from shared.events.sessions import SessionScheduled
from shared.settings import ServiceSettings
from shared.treatment import Route
from tests.billing.conftest import PROVIDER, Billing
from tests.billing.test_billing_api import NOON_2026, completed, course, priced, usd
from tests.billing.test_claims_api import INSURED, PLAN, approved
from tests.harness import app_in_process, eventually
from tests.intake.test_event_contracts import consumer_db  # noqa: F401 - a fixture

BILLING_EVENTS = {t for t in event_types(produced_only=True) if t.startswith("org.kapnet.billing.")}


async def drive_every_billing_event(billing: Billing) -> None:
    client, clerk, desk = billing.client, billing.as_("billing"), billing.as_("front_desk")
    await priced(billing)
    assert (await client.put("/plans", json=PLAN, headers=clerk)).status_code == 200
    # Insured, esketamine at a certified site: coverage, prior authorisation, a charge, a claim and its decision.
    insured = await billing.registered(INSURED)
    esketamine = await course(billing, insured, Route.intranasal_esketamine)
    await approved(client, esketamine, clerk)
    await completed(billing, insured, esketamine, Route.intranasal_esketamine, NOON_2026)
    claim = (await client.post(f"/courses/{esketamine}/claims", headers=clerk)).json()
    await client.post(f"/claims/{claim['id']}/submit", headers=clerk)
    decision = {"outcome": "paid", "paid": usd(800_00), "patient_responsibility": usd(20_00)}
    assert (await client.post(f"/claims/{claim['id']}/adjudication", json=decision, headers=clerk)).status_code == 200
    # Self-pay: an estimate owed on booking and issued, an invoice, a payment, and a barrier.
    self_pay = await billing.registered()
    iv = await course(billing, self_pay)
    start = datetime.now(UTC) + timedelta(days=30)
    await billing.deliver(
        SessionScheduled(
            patient_id=self_pay,
            session_id=uuid.uuid4(),
            course_id=iv,
            route=Route.iv_infusion,
            starts_at=start,
            ends_at=start + timedelta(hours=3),
            weekly_cap_overridden=False,
        )
    )
    [owed] = (await client.get("/estimates", headers=clerk)).json()
    assert (await client.post(f"/estimates/{owed['id']}/issue", headers=desk)).status_code == 200
    await completed(billing, self_pay, iv, Route.iv_infusion, NOON_2026, infusion_minutes=40)
    assert (await client.post(f"/patients/{self_pay}/invoices", headers=desk)).status_code == 201
    paid = {"amount": usd(100_00), "method": "cash"}
    assert (await client.post(f"/patients/{self_pay}/payments", json=paid, headers=desk)).status_code == 201
    barrier = {"reason": "cannot_pay", "outcome": "deferred", "estimated_out_of_pocket": usd(500_00)}
    assert (await client.post(f"/patients/{self_pay}/access-barriers", json=barrier, headers=desk)).status_code == 201


async def test_every_billing_event_matches_its_schema_and_is_consumed(
    kafka: str,
    tmp_path: Path,
    consumer_db: Database,  # noqa: F811 - the fixture imported above
) -> None:
    site = f"bc{uuid.uuid4().hex[:6]}"
    settings = ServiceSettings(
        service="billing",
        site=site,
        var_dir=tmp_path,
        kafka_bootstrap_servers=kafka,
        outbox_poll_interval_seconds=0.2,
        time_zone="America/New_York",
        billing_rules={"provider": PROVIDER, "rems_certified": True},
    )
    received: list[CloudEvent] = []

    async def collect(uow: UnitOfWork, event: DomainEvent, envelope: CloudEvent) -> None:
        received.append(envelope)

    handlers: dict[type[DomainEvent], Handler] = {event_types()[t]: collect for t in BILLING_EVENTS}
    consumer = EventConsumer(
        consumer_db,
        ConsumerConfig(
            name=f"contract-{site}",
            topics=[TopicSpec(f"kapnet.{site}.billing.v1")],
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
            await drive_every_billing_event(Billing(client, settings))
            await eventually(
                lambda: {e.type for e in received} == BILLING_EVENTS, within=60, what="one event of every billing type"
            )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(BILLING_EVENTS) == 9 and consumer.dead_lettered_total == 0
    schemas = json_schemas()
    for envelope in received:
        jsonschema.validate(envelope.data, schemas[envelope.type])
        assert envelope.source == f"/kapnet/{site}/billing"
