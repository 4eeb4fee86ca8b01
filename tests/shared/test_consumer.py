"""The consumer runner against the real broker: inbox de-duplication, offsets, retries, dead letters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from sqlalchemy import event, func
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import select

from services.outcomes import handlers
from services.outcomes.models import Registration
from shared.bus import health
from shared.bus.consumer import ConsumerConfig, EventConsumer, Handler, PoisonEvent
from shared.bus.kafka import TopicSpec, ensure_topics
from shared.bus.tables import InboxEntry
from shared.db.database import Database
from shared.db.unit_of_work import UnitOfWork
from shared.events.envelope import CloudEvent, to_kafka
from shared.events.intake import PatientRegistered
from shared.events.registry import DomainEvent
from tests.harness import eventually, read_topic
from tests.shared.events_for_tests import registration

pytestmark = pytest.mark.broker


@dataclass
class Scenario:
    kafka: str
    database: Database
    topic: str
    dead_letter: str
    group: str

    def consumer(self, handler: Handler = handlers.on_patient_registered, attempts: int = 3) -> EventConsumer:
        return EventConsumer(
            self.database,
            ConsumerConfig(
                name=self.group,
                topics=[TopicSpec(self.topic, partitions=2)],
                dead_letter_topic=self.dead_letter,
                source="/test/outcomes",
                site="north",
                bootstrap_servers=self.kafka,
                timeout_seconds=10,
                max_attempts=attempts,
                retry_backoff_seconds=0.05,
            ),
            {PatientRegistered: handler},
        )

    async def produce(self, *records: tuple[list[tuple[str, bytes]], bytes, bytes]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.kafka, enable_idempotence=True)
        await producer.start()
        try:
            for headers, value, key in records:
                await producer.send_and_wait(self.topic, value=value, key=key, headers=headers)
        finally:
            await producer.stop()

    async def registrations(self) -> int:
        async with self.database.sessions() as session:
            return int((await session.exec(select(func.count()).select_from(Registration))).one())

    async def inbox(self) -> list[InboxEntry]:
        async with self.database.sessions() as session:
            return list((await session.exec(select(InboxEntry).where(InboxEntry.consumer == self.group))).all())


def as_record(event: DomainEvent, event_id: str | None = None) -> tuple[list[tuple[str, bytes]], bytes, bytes]:
    envelope = CloudEvent(
        type=type(event).ce_type(),
        source="/test/intake",
        data=event.model_dump(mode="json"),
        id=event_id or str(uuid.uuid4()),
    )
    headers, value = to_kafka(envelope)
    return headers, value, event.partition_key().encode()


@pytest.fixture
async def scenario(outcomes_db: Database, kafka: str, unique: Callable[[str], str]) -> Scenario:
    s = Scenario(kafka, outcomes_db, unique("kapnet.test.intake"), unique("kapnet.test.deadletter"), unique("g"))
    await ensure_topics(kafka, [TopicSpec(s.topic, partitions=2)], 10)
    return s


@asynccontextmanager
async def consuming(consumer: EventConsumer) -> AsyncIterator[EventConsumer]:
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_same_event_delivered_twice_changes_nothing(scenario: Scenario) -> None:
    event = registration("north")
    event_id = str(uuid.uuid4())
    await scenario.produce(as_record(event, event_id), as_record(event, event_id))
    async with consuming(scenario.consumer()) as consumer:
        await eventually(lambda: consumer.processed_total + consumer.duplicates_total == 2, what="2 records")
    assert consumer.processed_total == 1 and consumer.duplicates_total == 1
    assert await scenario.registrations() == 1
    assert [e.event_id for e in await scenario.inbox()] == [event_id]


async def test_a_fetched_batch_is_taken_with_one_inbox_lookup_and_each_event_once(scenario: Scenario) -> None:
    """41 records on one key (one partition, fetched together): 30 new registrations, 5 of them delivered twice
    in the batch, one patient registered again under a new event id, and 5 events the inbox already holds. One
    inbox lookup and one lookup per projection table for the run, not one per record; each new event is taken
    once."""
    known = [registration("north") for _ in range(5)]
    async with UnitOfWork(scenario.database, source="/test", site="north") as uow:
        uow.session.add_all(
            InboxEntry(
                consumer=scenario.group,
                event_id=f"known-{n}",
                ce_type=PatientRegistered.ce_type(),
                topic=scenario.topic,
                partition=0,
                offset=n,
                outcome="processed",
                received_at=datetime.now(UTC),
            )
            for n in range(5)
        )
        await uow.commit()
    fresh = [registration("north") for _ in range(30)]
    key = b"one-patient-key"
    records = [(*as_record(e)[:2], key) for e in fresh]
    records += [(*as_record(e, f"known-{n}")[:2], key) for n, e in enumerate(known)]
    records += records[:5]
    records.append((*as_record(fresh[0])[:2], key))  # the same patient's registration again, under a new id
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(scenario.database.engine.sync_engine, "before_cursor_execute", count)
    try:
        await scenario.produce(*records)
        async with consuming(scenario.consumer()) as consumer:
            await eventually(lambda: consumer.processed_total + consumer.duplicates_total == 41, what="41 records")
    finally:
        event.remove(scenario.database.engine.sync_engine, "before_cursor_execute", count)
    assert (consumer.processed_total, consumer.duplicates_total) == (31, 10)
    assert await scenario.registrations() == 30  # a patient's row is written once
    inbox_lookups = [s for s in statements if s.lstrip().startswith("SELECT") and "FROM inbox_entry" in s]
    registration_lookups = [s for s in statements if s.lstrip().startswith("SELECT") and "FROM registration" in s]
    assert len(inbox_lookups) <= 2 and len(registration_lookups) <= 2, (inbox_lookups, registration_lookups)
    assert len(await scenario.inbox()) == 36


async def test_offsets_are_committed_after_processing(scenario: Scenario) -> None:
    await scenario.produce(*(as_record(registration("north")) for _ in range(5)))
    async with consuming(scenario.consumer()) as consumer:
        await eventually(lambda: consumer.processed_total == 5, what="5 events")
        await asyncio.sleep(0.5)
    probe = AIOKafkaConsumer(bootstrap_servers=scenario.kafka, group_id=scenario.group, enable_auto_commit=False)
    await probe.start()
    try:
        partitions = [TopicPartition(scenario.topic, p) for p in range(2)]
        ends = await probe.end_offsets(partitions)
        for tp in partitions:
            assert await probe.committed(tp) in (ends[tp], None if ends[tp] == 0 else ends[tp])
    finally:
        await probe.stop()
    # A restarted consumer of the same group starts after what was committed: nothing is processed again.
    async with consuming(scenario.consumer()) as again:
        await asyncio.sleep(3)
    assert again.processed_total == 0 and again.duplicates_total == 0
    assert await scenario.registrations() == 5


async def test_poison_events_go_to_the_dead_letter_topic_and_the_rest_go_on(scenario: Scenario) -> None:
    good = registration("north")
    garbage = ([("content-type", b"application/json")], b"\x00not an event", good.partition_key().encode())
    headers, _value, key = as_record(good)
    unreadable_data = ([*headers[:1], ("ce_id", b"bad-data"), *headers[2:]], b'{"site": 7}', key)
    await scenario.produce(garbage, unreadable_data, as_record(good))
    async with consuming(scenario.consumer()) as consumer:
        await eventually(lambda: consumer.processed_total == 1, what="the good event")
    assert await scenario.registrations() == 1
    parked = await read_topic(scenario.kafka, scenario.dead_letter, 2)
    assert len(parked) == 2
    errors = [dict(r.headers)["kapnet_dlq_error"].decode() for r in parked]
    assert any("EnvelopeError" in e for e in errors) and any("PoisonEvent" in e for e in errors)
    for record in parked:
        details = dict(record.headers)
        assert details["kapnet_dlq_topic"] == scenario.topic.encode()
        assert details["kapnet_dlq_consumer"] == scenario.group.encode()
    assert {(e.event_id, e.outcome) for e in await scenario.inbox()} >= {("bad-data", "dead_lettered")}


async def test_records_that_used_to_stop_the_consumer_are_dead_lettered(scenario: Scenario) -> None:
    """Deeply nested brackets (a RecursionError in the JSON parser) and a header with a null value (which has no
    ``decode``) were raised as themselves: the consumer restarted into the same record for good."""
    good = registration("north")
    headers, value, key = as_record(good)
    nested = (headers, b"[" * 100_000, key)
    null_id = cast(list[tuple[str, bytes]], [*headers[:1], ("ce_id", None), *headers[2:]])
    await scenario.produce(nested, (null_id, value, key), as_record(good), as_record(registration("north")))
    async with consuming(scenario.consumer()) as consumer:
        # Each record on its own partition (by key): a good one's partition may be taken before a bad one's.
        await eventually(
            lambda: consumer.processed_total == 2 and consumer.dead_lettered_total == 2,
            what="the good events taken in and the bad ones dead-lettered",
        )
    parked = await read_topic(scenario.kafka, scenario.dead_letter, 2)
    errors = sorted(dict(r.headers)["kapnet_dlq_error"].decode() for r in parked)
    assert errors[0].startswith("EnvelopeError: data is not JSON: RecursionError")
    assert errors[1].startswith("EnvelopeError: missing CloudEvents headers: ce_id")


async def test_a_replay_whose_first_fetch_comes_back_empty_goes_on(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow broker's first fetch can return nothing within its second; the replay read its stall deadline
    before setting it (UnboundLocalError)."""
    await scenario.produce(*(as_record(registration("north")) for _ in range(3)))
    real_getmany = AIOKafkaConsumer.getmany
    fetches: list[int] = []

    async def first_empty(self: AIOKafkaConsumer, *partitions: TopicPartition, **options: Any) -> Any:
        fetches.append(1)
        if len(fetches) == 1:
            return {}
        return await real_getmany(self, *partitions, **options)

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", first_empty)
    assert await scenario.consumer().replay() == 3
    assert await scenario.registrations() == 3 and len(fetches) >= 2


async def test_a_handler_that_fails_once_is_retried(scenario: Scenario) -> None:
    failures = {"left": 1}

    async def flaky(uow: UnitOfWork, event: DomainEvent, envelope: CloudEvent) -> None:
        await handlers.on_patient_registered.handle(uow, [(event, envelope)])
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database blip")

    await scenario.produce(as_record(registration("north")))
    async with consuming(scenario.consumer(flaky)) as consumer:
        await eventually(lambda: consumer.processed_total == 1, what="the retried event")
    assert await scenario.registrations() == 1 and consumer.dead_lettered_total == 0


async def test_a_cancellation_lost_during_a_batch_still_stops_the_consumer(scenario: Scenario) -> None:
    """Python 3.11's wait_for can return its result and lose the cancellation that met it; the task still counts
    it. A consumer cancelled at shutdown then consumed on for good: a test waiting for it hung 300 s. Here the
    handler loses the cancellation the same way, and the consumer stops at its next turn, its event taken in."""
    began = asyncio.Event()

    async def losing_the_cancellation(uow: UnitOfWork, event: DomainEvent, envelope: CloudEvent) -> None:
        began.set()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            pass  # what wait_for does when the awaited result is ready as the cancellation arrives
        await handlers.on_patient_registered.handle(uow, [(event, envelope)])

    await scenario.produce(as_record(registration("north")))
    consumer = scenario.consumer(losing_the_cancellation)
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(began.wait(), 30)
        task.cancel()
        await asyncio.wait({task}, timeout=20)
        assert task.done(), "the consumer went on after its cancellation"
        assert task.cancelled()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert consumer.processed_total == 1 and await scenario.registrations() == 1


async def test_a_handler_that_keeps_failing_dead_letters_and_changes_nothing(scenario: Scenario) -> None:
    doomed = registration("north")

    async def broken_for_one(uow: UnitOfWork, event: DomainEvent, envelope: CloudEvent) -> None:
        await handlers.on_patient_registered.handle(uow, [(event, envelope)])  # written, then rolled back
        assert isinstance(event, PatientRegistered)
        if event.patient_id == doomed.patient_id:
            raise ValueError("cannot place this registration")

    await scenario.produce(as_record(doomed), as_record(registration("north", patient_id=doomed.patient_id)))
    await scenario.produce(as_record(registration("north")))
    async with consuming(scenario.consumer(broken_for_one, attempts=3)) as consumer:
        await eventually(
            lambda: consumer.processed_total == 1 and consumer.dead_lettered_total == 2,
            what="one processed, two dead-lettered",
        )
    assert await scenario.registrations() == 1
    parked = await read_topic(scenario.kafka, scenario.dead_letter, 2)
    assert all(b"cannot place this registration" in dict(r.headers)["kapnet_dlq_error"] for r in parked)


DATABASE_TROUBLE: dict[str, Callable[[], Exception]] = {
    "connection refused": lambda: OperationalError("INSERT", {}, ConnectionRefusedError("database is down")),
    # The pool's own timeout (SQLite's one connection held for 30 s): not a builtin TimeoutError.
    "no pooled connection in time": lambda: PoolTimeout("QueuePool limit of size 1 overflow 0 reached"),
}


@pytest.mark.parametrize("trouble", DATABASE_TROUBLE)
async def test_a_database_outage_delays_the_event_and_never_dead_letters_it(scenario: Scenario, trouble: str) -> None:
    outage = {"failures_left": 5}  # more than the attempts per delivery: the consumer has to start over

    async def database_down_for_a_while(uow: UnitOfWork, event: DomainEvent, envelope: CloudEvent) -> None:
        if outage["failures_left"]:
            outage["failures_left"] -= 1
            raise DATABASE_TROUBLE[trouble]()
        await handlers.on_patient_registered.handle(uow, [(event, envelope)])

    await scenario.produce(as_record(registration("north")))
    async with consuming(scenario.consumer(database_down_for_a_while, attempts=2)) as consumer:
        await eventually(lambda: consumer.processed_total == 1, within=60, what="the event after the outage")
    assert outage["failures_left"] == 0 and consumer.dead_lettered_total == 0
    assert await scenario.registrations() == 1
    assert [e.outcome for e in await scenario.inbox()] == ["processed"]


async def test_a_handler_that_never_returns_shows_as_a_stall(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock never granted or a hung connection: the lag last measured may be 0, but /readyz must see it."""
    monkeypatch.setattr(health, "STALL_SECONDS", 1.0)
    entered = asyncio.Event()

    async def hangs(uow: UnitOfWork, event: DomainEvent, envelope: CloudEvent) -> None:
        entered.set()
        await asyncio.Event().wait()

    async with consuming(scenario.consumer(hangs)) as consumer:
        await eventually(lambda: consumer.health.running and consumer.health.problem() is None, what="started")
        await scenario.produce(as_record(registration("north")))
        await asyncio.wait_for(entered.wait(), 30)
        await eventually(lambda: consumer.health.problem() is not None, within=10, what="the stall reported")
        problem = consumer.health.problem()
        assert problem is not None and problem.startswith("stalled: handling the same records for")


async def test_event_ids_the_inbox_cannot_hold_are_dead_lettered(scenario: Scenario) -> None:
    """An id longer than the inbox's key (200) or holding a NUL failed the inbox write on PostgreSQL, so the event
    was dead-lettered; then writing its dead-letter inbox entry failed the same way, the error escaped, and the
    consumer restarted into the same record for good (dead-lettering it again each time). SQLite took them in; they
    are refused on both now."""
    long_id = as_record(registration("north"), "x" * 201)
    nul_id = as_record(registration("north"), "a\x00b")
    await scenario.produce(long_id, nul_id, as_record(registration("north")), as_record(registration("north")))
    async with consuming(scenario.consumer()) as consumer:
        # Each record on its own partition (by key): a good one's partition may be taken before a bad one's.
        await eventually(
            lambda: consumer.processed_total == 2 and consumer.dead_lettered_total == 2,
            what="the good events taken in and the bad ones dead-lettered",
        )
    parked = await read_topic(scenario.kafka, scenario.dead_letter, 2)
    assert {dict(r.headers)["ce_id"] for r in parked} == {b"x" * 201, b"a\x00b"}
    assert all(dict(r.headers)["kapnet_dlq_error"].startswith(b"EnvelopeError: event id the inbox") for r in parked)


async def test_a_record_too_large_to_dead_letter_whole_leaves_where_it_is(scenario: Scenario) -> None:
    """A poison record a few bytes under the producer's limit (max_request_size, 1 MiB) passes it; with the
    kapnet_dlq_* headers added it did not, the dead-letter send raised MessageSizeTooLargeError, and the consumer
    restarted into the same record for good."""
    headers, _, key = as_record(registration("north"))
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, b"", headers)
    large = (headers, b"x" * (1024 * 1024 - size - 50), key)  # not JSON: poison
    good_headers, good_value, _ = as_record(registration("north"))
    await scenario.produce(large, (good_headers, good_value, key))  # one key: the good one waits behind it
    async with consuming(scenario.consumer()) as consumer:
        await eventually(lambda: consumer.processed_total == 1, what="the good event after the large one")
    assert consumer.dead_lettered_total == 1
    [parked] = await read_topic(scenario.kafka, scenario.dead_letter, 1)
    details = dict(parked.headers)
    assert parked.value == b"" and parked.key is None and "ce_id" not in details
    assert details["kapnet_dlq_error"].startswith(b"EnvelopeError: data is not JSON")
    assert b"MessageSizeTooLargeError" in details["kapnet_dlq_dropped"]
    assert details["kapnet_dlq_topic"] == scenario.topic.encode()
    assert details["kapnet_dlq_offset"] == b"0"


async def test_a_record_with_neither_key_nor_value_is_dead_lettered(scenario: Scenario) -> None:
    """Kafka takes a record with a null key and a null value (a key-less tombstone); aiokafka's send refuses one
    ("Need at least one: key or value"), so dead-lettering it as it was raised, and the consumer restarted into
    it for good."""
    producer = AIOKafkaProducer(bootstrap_servers=scenario.kafka)
    await producer.start()
    try:
        batch = producer.create_batch()
        batch.append(key=None, value=None, timestamp=None, headers=[])
        for partition in (0, 1):  # the good event's partition, whichever it is
            await (await producer.send_batch(batch, scenario.topic, partition=partition))
    finally:
        await producer.stop()
    await scenario.produce(as_record(registration("north")))
    async with consuming(scenario.consumer()) as consumer:
        # Both partitions' empty records, whichever partition the good event went to.
        await eventually(
            lambda: consumer.processed_total == 1 and consumer.dead_lettered_total == 2,
            what="the good event and both empty records",
        )
    parked = await read_topic(scenario.kafka, scenario.dead_letter, 2)
    assert all(dict(r.headers)["kapnet_dlq_error"].startswith(b"EnvelopeError: missing") for r in parked)
    assert all(r.value == b"" and r.key is None for r in parked)


async def test_an_error_quoting_a_lone_surrogate_is_dead_lettered(scenario: Scenario) -> None:
    """JSON may escape a lone surrogate ("\\ud800"); the standard library reads it into a str that UTF-8 cannot
    encode, and a plain ``str`` field keeps it. A handler's error quoting it (as the outcomes network's PoisonEvent
    quotes a cohort) made the kapnet_dlq_error header's encode() raise UnicodeEncodeError: the consumer restarted
    into the record for good."""

    async def quoting(uow: UnitOfWork, event: DomainEvent, envelope: CloudEvent) -> None:
        assert isinstance(event, PatientRegistered)
        if event.site != "north":
            raise PoisonEvent(f"{event.site}|registrations breaks the release rules")
        await handlers.on_patient_registered.handle(uow, [(event, envelope)])

    headers, value, key = as_record(registration("north").model_copy(update={"site": "\ud800"}))
    good_headers, good_value, _ = as_record(registration("north"))
    await scenario.produce((headers, value, key), (good_headers, good_value, key))
    async with consuming(scenario.consumer(quoting)) as consumer:
        await eventually(lambda: consumer.processed_total == 1, what="the good event after the bad one")
    assert consumer.dead_lettered_total == 1
    [parked] = await read_topic(scenario.kafka, scenario.dead_letter, 1)
    assert dict(parked.headers)["kapnet_dlq_error"] == b"PoisonEvent: \\ud800|registrations breaks the release rules"


@pytest.mark.parametrize("new_database_url", ["postgresql"], indirect=True)
async def test_an_event_that_passes_a_postgresql_limit_is_dead_lettered_not_retried_for_ever(
    scenario: Scenario,
) -> None:
    """An OperationalError of SQLSTATE class 54 (a program limit: here more than 100 arguments to a function) comes
    from the statement and its data, the same on every try. Taken for an outage, it restarted the consumer into the
    event for good; it is dead-lettered after its retries, and the events after it go on."""

    async def over_a_limit_for_one_mrn(uow: UnitOfWork, event: DomainEvent, envelope: CloudEvent) -> None:
        assert isinstance(event, PatientRegistered)
        arguments = 101 if event.mrn == "LIMIT" else 2  # as a handler building a statement from the event would
        await uow.session.execute(sa.text(f"SELECT concat({', '.join(['1'] * arguments)})"))
        await handlers.on_patient_registered.handle(uow, [(event, envelope)])

    patient = uuid.uuid4()  # one key: the good event waits behind the other
    over, after = registration("north", patient, mrn="LIMIT"), registration("north", patient, mrn="T-2")
    await scenario.produce(as_record(over), as_record(after))
    async with consuming(scenario.consumer(over_a_limit_for_one_mrn)) as consumer:
        await eventually(lambda: consumer.processed_total == 1, what="the event after the one over the limit")
    assert consumer.dead_lettered_total == 1
    [parked] = await read_topic(scenario.kafka, scenario.dead_letter, 1)
    assert dict(parked.headers)["kapnet_dlq_error"].startswith(b"OperationalError: (psycopg.errors.TooManyArguments)")
