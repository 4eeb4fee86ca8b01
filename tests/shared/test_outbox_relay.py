"""The outbox and its relay against the real broker, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlmodel import col, select

from shared.bus.kafka import TopicSpec, ensure_topics
from shared.bus.outbox import OutboxRelay
from shared.bus.tables import OutboxMessage
from shared.db.database import Database
from shared.db.unit_of_work import UnitOfWork
from shared.events import network_topic
from shared.events.outcomes import AggregateCell, CohortAggregatePublished
from shared.events.registry import topic_for
from tests.harness import eventually, read_topic
from tests.shared.events_for_tests import registration

pytestmark = pytest.mark.broker


async def write_registrations(database: Database, site: str, count: int, patient_ids: list[uuid.UUID]) -> None:
    for n in range(count):
        async with UnitOfWork(database, source="/test", site=site) as uow:
            await uow.publish(registration(site, patient_ids[n % len(patient_ids)], mrn=f"M-{n}"))
            await uow.commit()


async def unsent(database: Database) -> int:
    async with database.sessions() as session:
        return len((await session.exec(select(OutboxMessage).where(col(OutboxMessage.sent_at).is_(None)))).all())


async def test_relay_publishes_every_event_once_in_per_key_order(
    intake_db: Database, kafka: str, unique: Callable[[str], str]
) -> None:
    site = unique("relay").replace(".", "")
    topic = topic_for(type(registration(site)), site)
    await ensure_topics(kafka, [TopicSpec(topic, partitions=3)], 10)
    patients = [uuid.uuid4() for _ in range(4)]
    await write_registrations(intake_db, site, 40, patients)

    relay = OutboxRelay(intake_db, kafka, timeout_seconds=10, batch_size=7)
    published = 0
    while await unsent(intake_db):
        published += await relay.publish_pending()
    assert published == 40

    records = await read_topic(kafka, topic, 40)
    assert len(records) == 40
    by_patient: dict[str, list[int]] = defaultdict(list)
    for record in records:
        headers = dict(record.headers)
        assert headers["ce_type"] == b"org.kapnet.intake.patient.registered.v1"
        assert headers["content-type"] == b"application/json"
        data = json.loads(record.value)
        assert record.key == data["patient_id"].encode()
        by_patient[data["patient_id"]].append(int(data["mrn"].split("-")[1]))
    assert len(by_patient) == 4
    for sequence in by_patient.values():
        assert sequence == sorted(sequence), "events of one patient arrived out of order"


async def test_a_dead_broker_delays_events_and_loses_none(intake_db: Database, kafka: str) -> None:
    site = f"down{uuid.uuid4().hex[:6]}"
    await write_registrations(intake_db, site, 3, [uuid.uuid4()])
    dead = OutboxRelay(intake_db, "127.0.0.1:1", timeout_seconds=2)
    started = asyncio.get_running_loop().time()
    with pytest.raises(Exception):  # noqa: B017 - whichever connection error aiokafka raises
        await dead.publish_pending()
    assert asyncio.get_running_loop().time() - started < 10, "a dead broker must not hang the relay"
    assert await unsent(intake_db) == 3

    topic = topic_for(type(registration(site)), site)
    await ensure_topics(kafka, [TopicSpec(topic)], 10)
    assert await OutboxRelay(intake_db, kafka).publish_pending() == 3
    assert await unsent(intake_db) == 0
    assert len(await read_topic(kafka, topic, 3)) == 3


async def test_relay_run_is_woken_by_a_commit(intake_db: Database, kafka: str) -> None:
    site = f"wake{uuid.uuid4().hex[:6]}"
    topic = topic_for(type(registration(site)), site)
    await ensure_topics(kafka, [TopicSpec(topic)], 10)
    # A long poll interval: only the commit's wake-up can get the event out quickly.
    relay = OutboxRelay(intake_db, kafka, poll_interval_seconds=120)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(1)
        await write_registrations(intake_db, site, 1, [uuid.uuid4()])
        # Well under the poll interval, and room for a first produce (connect, a new topic's metadata) on a
        # loaded machine.
        await eventually(lambda: relay.published_total == 1, 60, "the commit to wake the relay")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class RelayKilled(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


class RelayKilledBeforeMarking(OutboxRelay):
    async def _mark_sent(self, ids: list[int], when: object) -> None:  # type: ignore[override]
        raise RelayKilled


async def test_a_relay_killed_between_publishing_and_marking_loses_nothing_and_doubles_nothing(
    intake_db: Database, outcomes_db: Database, kafka: str
) -> None:
    from services.outcomes import handlers
    from services.outcomes.models import Registration
    from shared.bus.consumer import ConsumerConfig, EventConsumer
    from shared.events.intake import PatientRegistered

    site = f"crash{uuid.uuid4().hex[:6]}"
    topic = topic_for(PatientRegistered, site)
    await ensure_topics(kafka, [TopicSpec(topic)], 10)
    await write_registrations(intake_db, site, 10, [uuid.uuid4() for _ in range(10)])

    with pytest.raises(RelayKilled):
        await RelayKilledBeforeMarking(intake_db, kafka).publish_pending()
    assert await unsent(intake_db) == 10, "published, but never marked"
    assert await OutboxRelay(intake_db, kafka).publish_pending() == 10  # the restarted relay sends them again
    assert await unsent(intake_db) == 0
    assert len(await read_topic(kafka, topic, 20)) == 20  # every event is on the topic twice

    consumer = EventConsumer(
        outcomes_db,
        ConsumerConfig(
            name=f"crash-{site}",
            topics=[TopicSpec(topic)],
            dead_letter_topic=f"{topic}.dlq",
            source="/test",
            site=site,
            bootstrap_servers=kafka,
        ),
        {PatientRegistered: handlers.on_patient_registered},
    )
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: consumer.processed_total + consumer.duplicates_total == 20, what="20 deliveries")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert (consumer.processed_total, consumer.duplicates_total) == (10, 10)
    async with outcomes_db.sessions() as session:
        assert len((await session.exec(select(Registration))).all()) == 10


async def test_a_network_aggregate_carries_its_release_boundary_as_ce_time_and_kafka_timestamp(
    intake_db: Database, kafka: str, unique: Callable[[str], str]
) -> None:
    # The site's aggregate says it was made in January: neither its envelope nor the broker's timestamp may say
    # the minute it was written (that would date a single registration).
    site = unique("stamp").replace(".", "")[:30]
    boundary = datetime(2026, 1, 1, tzinfo=UTC)
    aggregate = CohortAggregatePublished(
        site=site,
        cohort="registrations",
        measure="patients_registered",
        cells=[AggregateCell(period="2026-01", suppressed=True)],
        total=AggregateCell(period="all", suppressed=True),
        generated_at=boundary,
    )
    await ensure_topics(kafka, [TopicSpec(network_topic(site), partitions=1)], 10)
    async with UnitOfWork(intake_db, source="/test", site=site) as uow:
        await uow.publish(aggregate)
        await uow.commit()
    relay = OutboxRelay(intake_db, kafka, timeout_seconds=10, batch_size=7)
    while await unsent(intake_db):
        await relay.publish_pending()
    records = [r for r in await whole_topic(kafka, network_topic(site)) if r.key == f"{site}|registrations".encode()]
    assert len(records) == 1
    assert records[0].timestamp == int(boundary.timestamp() * 1000)
    assert dict(records[0].headers)["ce_time"] == b"2026-01-01T00:00:00Z"


async def whole_topic(kafka: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record up to the end offsets as they stand now: the network topic is shared by the whole suite, so
    reading "at least n" records could stop before this test's."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()
