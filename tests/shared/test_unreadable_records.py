"""Records the Kafka client cannot parse (shared/bus/unreadable.py), against the real broker: a header name that is
not UTF-8 made aiokafka's getmany raise on every try, and the consumer restarted into it for good."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.producer import message_accumulator
from aiokafka.producer import producer as producer_module
from aiokafka.record import default_records
from sqlmodel import delete

from services.outcomes import handlers
from services.outcomes.models import Registration
from shared.bus.consumer import EventConsumer
from shared.bus.tables import InboxEntry
from shared.events.intake import PatientRegistered
from tests.harness import eventually, read_topic
from tests.shared.events_for_tests import registration
from tests.shared.test_consumer import Scenario, as_record, consuming
from tests.shared.test_consumer import scenario as scenario  # the fixture

pytestmark = pytest.mark.broker


class NameAsBytes(str):
    """A header name the producer writes as these bytes: invalid UTF-8, which Kafka itself stores as given."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"\xff\xfe-not-utf-8"


@contextmanager
def header_names_written_as_given() -> Iterator[None]:
    """aiokafka's C batch builder takes a name's UTF-8 from the str itself; its Python one calls encode()."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(message_accumulator, "DefaultRecordBatchBuilder", default_records._DefaultRecordBatchBuilderPy)
        patch.setattr(producer_module, "DefaultRecordBatchBuilder", default_records._DefaultRecordBatchBuilderPy)
        yield


Record = tuple[list[tuple[str, bytes]], bytes, bytes]


async def send_batches(scenario: Scenario, *batches: list[Record]) -> None:
    """Each list as one stored batch: its records are sent before the producer's sender runs, then awaited."""
    with header_names_written_as_given():
        producer = AIOKafkaProducer(bootstrap_servers=scenario.kafka, enable_idempotence=True)
        await producer.start()
        try:
            for batch in batches:
                sent = [
                    await producer.send(scenario.topic, value=value, key=key, headers=headers)
                    for headers, value, key in batch
                ]
                for future in sent:
                    await future
        finally:
            await producer.stop()


def unreadable(key: bytes) -> Record:
    headers, value, _ = as_record(registration("north"))
    return ([*headers, (NameAsBytes("x-trace"), b"1")], value, key)


def good(key: bytes) -> Record:
    headers, value, _ = as_record(registration("north"))
    return (headers, value, key)


async def test_an_unreadable_record_alone_in_its_batch_is_dead_lettered_and_the_rest_go_on(
    scenario: Scenario,
) -> None:
    key = b"one-patient"  # one partition, in this order
    await send_batches(scenario, [good(key)], [unreadable(key)], [good(key)])
    async with consuming(scenario.consumer()) as consumer:
        await eventually(lambda: consumer.processed_total == 2, within=30, what="both readable events")
    assert consumer.dead_lettered_total == 1
    assert await scenario.registrations() == 2
    [notice] = await read_topic(scenario.kafka, scenario.dead_letter, 1)
    details = dict(notice.headers)
    assert notice.value == b"" and notice.key is None
    assert details["kapnet_dlq_topic"] == scenario.topic.encode()
    assert details["kapnet_dlq_offset"] == b"1"
    assert details["kapnet_dlq_error"].startswith(b"UnreadableRecord: offsets 1 to 1 cannot be parsed: UnicodeDecode")


async def test_the_readable_records_before_it_in_its_batch_are_taken_and_those_after_it_are_named(
    scenario: Scenario,
) -> None:
    """aiokafka parses a stored batch from its start: what follows the unreadable record in its batch cannot be read
    by this client either. The notice names that stretch; the record before it and the next batch are taken."""
    key = b"one-patient"
    before, after, next_batch = good(key), good(key), good(key)
    await send_batches(scenario, [before, unreadable(key), after], [next_batch])
    async with consuming(scenario.consumer()) as consumer:
        await eventually(lambda: consumer.processed_total == 2, within=30, what="the records either side")
    assert consumer.dead_lettered_total == 1
    [notice] = await read_topic(scenario.kafka, scenario.dead_letter, 1)
    details = dict(notice.headers)
    assert details["kapnet_dlq_offset"] == b"1"
    assert details["kapnet_dlq_error"].startswith(b"UnreadableRecord: offsets 1 to 2 cannot be parsed")
    taken = {entry.offset for entry in await scenario.inbox()}
    assert taken == {0, 3}


async def test_records_on_other_partitions_in_the_failed_fetch_are_not_lost(scenario: Scenario) -> None:
    """The fetch that raised had already moved other partitions past records it never returned: each is read
    again from its committed offset."""
    first, second = b"patient-a", b"patient-b"  # partitions 0 and 1 (murmur2, as Kafka's default partitioner)
    records = [good(first), good(second), good(first), good(second)]
    await send_batches(scenario, records, [unreadable(first)], [unreadable(second)], [good(first), good(second)])
    async with consuming(scenario.consumer()) as consumer:
        await eventually(lambda: consumer.processed_total == 6, within=60, what="every readable event")
    assert consumer.dead_lettered_total == 2
    assert await scenario.registrations() == 6
    assert {entry.partition for entry in await scenario.inbox()} == {0, 1}


async def test_a_replay_steps_over_an_unreadable_record(scenario: Scenario) -> None:
    """`kapnet replay` reads every record from the start: one such record on a topic that keeps its records failed
    every rebuild of the projections."""
    key = b"one-patient"
    await send_batches(scenario, [good(key), unreadable(key), good(key)], [good(key)])
    consumer = scenario.consumer()
    assert await consumer.replay() == 4  # read: two taken, the stretch of two (offsets 1 and 2) named
    assert await scenario.registrations() == 2
    assert {entry.offset for entry in await scenario.inbox()} == {0, 3}
    [notice] = await read_topic(scenario.kafka, scenario.dead_letter, 1)
    assert dict(notice.headers)["kapnet_dlq_error"].startswith(b"UnreadableRecord: offsets 1 to 2 cannot be parsed")


async def test_a_rebuild_whose_first_fetch_meets_one_starts_from_the_partitions_start(scenario: Scenario) -> None:
    """A consumer that rebuilds a partition its database forgot (rebuild_forgotten_partitions) reads it from its
    start, while its committed offset is the forgotten database's, past the record: sought there, the unreadable
    record was not found, and the consumer restarted into it for good."""
    key = b"one-patient"
    await send_batches(scenario, [good(key)], [unreadable(key)], [good(key)])
    first = scenario.consumer()
    async with consuming(first):
        await eventually(lambda: first.processed_total == 2, within=30, what="the first database's events")
    async with scenario.database.sessions() as session:  # the database forgets: a new one, to rebuild
        await session.exec(delete(InboxEntry))
        await session.exec(delete(Registration))
        await session.commit()
    config = dataclasses.replace(scenario.consumer().config, rebuild_forgotten_partitions=True)
    rebuilding = EventConsumer(scenario.database, config, {PatientRegistered: handlers.on_patient_registered})
    async with consuming(rebuilding):
        await eventually(lambda: rebuilding.processed_total == 2, within=30, what="the rebuilt events")
    assert rebuilding.dead_lettered_total == 1
    assert await scenario.registrations() == 2
