"""What a role's endpoint may receive, checked on the real wire: events put on a site's sessions topic and on the
network's topic reach endpoints of different roles, each with only what its role may see."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from services.webhooks.app import create_app as create_webhooks
from shared.app import ServiceRuntime
from shared.bus.kafka import TopicSpec, ensure_topics, reliable_producer
from shared.bus.tables import InboxEntry
from shared.events.envelope import CloudEvent, to_kafka
from shared.events.outcomes import AggregateCell, CohortAggregatePublished
from shared.events.registry import DomainEvent, network_topic
from shared.events.sessions import SessionCompleted
from shared.settings import ServiceSettings
from tests.harness import app_in_process, auth_headers, eventually
from tests.webhooks.conftest import FAST_RETRIES, REGISTERED, SiteFactory, WebhookSite
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.broker

COMPLETED = SessionCompleted.ce_type()
CLINICAL = {"dose_mg", "dose_mg_per_kg", "dissociation_score", "dissociation_scale", "modalities"}


def a_completed_session() -> SessionCompleted:
    return SessionCompleted(
        patient_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        course_id=uuid.uuid4(),
        route="iv_infusion",
        dose_mg=35.0,
        dose_mg_per_kg=0.5,
        observation_minutes=60,
        modalities=["preparation", "integration"],
        dissociation_score=12,
        dissociation_scale="CADSS",
        discharged_at=datetime.now(UTC),
        infusion_minutes=40,
        psychotherapy_minutes=53,
    )


async def put_on(kafka: str, topic: str, event: DomainEvent, source: str) -> None:
    """As the producing service would: a binary-mode CloudEvent keyed as the event says."""
    await ensure_topics(kafka, [TopicSpec(topic, partitions=1 if event.scope == "network" else 3)], 10)
    model = type(event)
    envelope = CloudEvent(
        type=model.ce_type(), source=source, subject=event.subject(), data=json.loads(event.model_dump_json())
    )
    headers, payload = to_kafka(envelope)
    producer = reliable_producer(kafka, 10)
    await producer.start()
    try:
        await producer.send_and_wait(topic, payload, key=event.partition_key().encode(), headers=headers)
    finally:
        await producer.stop()


async def test_a_billing_endpoint_gets_no_clinical_fields(kafka: str, webhook_site: SiteFactory) -> None:
    async with webhook_site() as site:
        billing, clinician = Receiver(), Receiver()
        await billing.start()
        await clinician.start()
        try:
            await site.subscribe(billing, [COMPLETED], role="billing")
            await site.subscribe(clinician, [COMPLETED], role="clinician")
            event = a_completed_session()
            await put_on(kafka, f"kapnet.{site.site}.sessions.v1", event, f"/kapnet/{site.site}/sessions")
            await site.wait_for(billing, 1)
            await site.wait_for(clinician, 1)
        finally:
            await billing.stop()
            await clinician.stop()
        seen_by_billing, seen_by_clinician = billing.accepted[0].data, clinician.accepted[0].data
        assert CLINICAL.isdisjoint(seen_by_billing)
        assert seen_by_billing["psychotherapy_minutes"] == 53 and seen_by_billing["route"] == "iv_infusion"
        assert CLINICAL <= set(seen_by_clinician) and seen_by_clinician["dose_mg"] == 35.0


async def test_what_a_role_may_not_receive_is_refused_at_registration(webhook_site: SiteFactory) -> None:
    async with webhook_site() as site:
        receiver = Receiver()
        as_billing_admin = site.as_("site_admin", "billing")
        dose = "org.kapnet.sessions.dose.administered.v1"

        offered = await site.webhooks.get("/webhooks/event-types", params={"role": "billing"}, headers=as_billing_admin)
        assert offered.status_code == 200 and COMPLETED in offered.json() and dose not in offered.json()

        async def register(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
            reply = await site.webhooks.post("/webhooks/endpoints", json=body, headers=headers)
            return reply.status_code, reply.json().get("detail", "")

        base = {"url": receiver.url, "role": "billing", "event_types": [COMPLETED]}
        status, detail = await register({**base, "event_types": [COMPLETED, dose]}, as_billing_admin)
        assert status == 422 and dose in detail
        # An admin who is not in billing cannot set up an endpoint that sees what billing sees.
        status, detail = await register(base, site.as_("site_admin"))
        assert status == 403 and "billing" in detail
        status, detail = await register({**base, "url": "ftp://example.org/x"}, as_billing_admin)
        assert status == 422 and "url" in detail
        status, detail = await register({**base, "url": "https://user:pw@example.org/x"}, as_billing_admin)
        assert status == 422 and "credentials" in detail
        status, _ = await register({**base, "event_types": ["org.kapnet.nothing.v1"]}, as_billing_admin)
        assert status == 422
        # Only the admin manages endpoints; nothing was written by the refusals.
        status, _ = await register(base, site.as_("billing"))
        assert status == 403
        listed = await site.webhooks.get("/webhooks/endpoints", headers=site.as_("site_admin"))
        assert listed.json() == []
        missing = await site.webhooks.get(f"/webhooks/endpoints/{uuid.uuid4()}", headers=site.as_("site_admin"))
        assert missing.status_code == 404


async def test_a_deleted_endpoint_gets_nothing_more(webhook_site: SiteFactory) -> None:
    async with webhook_site() as site:
        receiver = Receiver()
        endpoint = await site.subscribe(receiver, [REGISTERED])
        await site.register_patient(0)
        await eventually(lambda: _queued(site, endpoint["id"]), within=30, what="a delivery queued")
        deleted = await site.webhooks.delete(f"/webhooks/endpoints/{endpoint['id']}", headers=site.as_("site_admin"))
        assert deleted.status_code == 204
        gone = await site.webhooks.get(f"/webhooks/endpoints/{endpoint['id']}", headers=site.as_("site_admin"))
        assert gone.status_code == 404
        await receiver.start()
        try:
            await site.register_patient(1)
            await eventually(lambda: _inbox_has(site, 2), within=30, what="the second event read")
            assert receiver.requests == 0
        finally:
            await receiver.stop()


async def _queued(site: WebhookSite, endpoint_id: str) -> bool:
    return bool(await site.deliveries(endpoint_id))


async def _inbox_has(site: WebhookSite, count: int) -> bool:
    """Whether the webhooks consumer has taken ``count`` events (queued for someone or not)."""
    runtime: ServiceRuntime = site.webhooks._transport.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.database.sessions() as session:
        found = (await session.exec(select(func.count()).select_from(InboxEntry))).one()
    return int(found) >= count


async def test_the_network_admin_receives_the_aggregates(kafka: str, tmp_path: Path) -> None:
    site = f"wn{uuid.uuid4().hex[:6]}"
    settings = ServiceSettings(
        service="webhooks",
        role="network",
        network_sites=[site],
        var_dir=tmp_path / "var",
        kafka_bootstrap_servers=kafka,
        **FAST_RETRIES,
    )
    admin = auth_headers(tmp_path / "var" / "auth", "network", "network_admin")
    receiver = Receiver()
    await receiver.start()
    try:
        async with app_in_process(create_webhooks(settings)) as webhooks:
            offered = await webhooks.get("/webhooks/event-types", params={"role": "network_admin"}, headers=admin)
            aggregate_type = CohortAggregatePublished.ce_type()
            assert offered.json() == sorted([aggregate_type, "org.kapnet.outcomes.cohort_outcomes.published.v1"])
            refused = await webhooks.post(
                "/webhooks/endpoints",
                json={"url": receiver.url, "role": "network_admin", "event_types": [REGISTERED]},
                headers=admin,
            )
            assert refused.status_code == 422
            reply = await webhooks.post(
                "/webhooks/endpoints",
                json={"url": receiver.url, "role": "network_admin", "event_types": [aggregate_type]},
                headers=admin,
            )
            assert reply.status_code == 201, reply.text
            receiver.secret = reply.json()["secret"]
            # A site's admin has no say here.
            as_site = auth_headers(tmp_path / "var" / "auth", site, "site_admin")
            assert (await webhooks.get("/webhooks/endpoints", headers=as_site)).status_code == 403

            aggregate = CohortAggregatePublished(
                site=site,
                cohort="registrations",
                measure="patients_registered",
                cells=[AggregateCell(period="2026-11", count=12)],
                total=AggregateCell(period="all", count=12),
                generated_at=datetime(2026, 12, 1, tzinfo=UTC),
            )
            await put_on(kafka, network_topic(site), aggregate, f"/kapnet/{site}/outcomes")
            await eventually(lambda: len(receiver.unique()) == 1, within=60, what="the aggregate delivered")
    finally:
        await receiver.stop()
    delivered = receiver.accepted[0]
    assert delivered.type == aggregate_type and delivered.data["total"]["count"] == 12
