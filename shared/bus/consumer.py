"""The consumer runner: inbox de-duplication, explicit commits, retries, and a dead-letter topic.

For each record: the handler's changes and the inbox entry commit in one transaction, and only then is the
offset committed. A crash before the offset commit redelivers the record; the inbox turns that into a no-op.
A handler that keeps failing sends the record, with its error, to the dead-letter topic, and the consumer
goes on with the next record.

A partition's fetched batch is first taken as a whole: one inbox lookup for all its event ids, the handlers in
record order (a run of consecutive events of one type goes to a ``Batched`` handler at once), one bulk insert of
the inbox entries, one commit. Anything unusual in it (a poison record, a handler error) rolls the whole batch
back and the records are taken one by one, with the retries and dead-lettering above.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError, MessageSizeTooLargeError
from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sqlalchemy import exc as sa_exc
from sqlmodel import select
from sqlmodel.sql.expression import SelectOfScalar

from shared.bus.health import ConsumerHealth
from shared.bus.kafka import (
    MAX_RECONNECT_BACKOFF_SECONDS,
    KafkaAccess,
    TopicSpec,
    ensure_topics,
    manual_commit_consumer,
    raise_if_cancelling,
    read_from_start,
    reliable_producer,
    reraise_unless_recoverable,
    start_with_timeout,
    stop_quietly,
)
from shared.bus.tables import InboxEntry, utcnow
from shared.bus.unreadable import (
    UNPARSEABLE_FETCH_ERRORS,
    UnreadableStretch,
    committed_offsets,
    fetch_past_unreadable,
    locate_unreadable,
)
from shared.db.bulk import insert_rows
from shared.db.database import Database
from shared.db.id_lists import IDS, one_of
from shared.db.unit_of_work import UnitOfWork
from shared.events.envelope import CloudEvent, EnvelopeError, from_kafka
from shared.events.registry import DomainEvent, InvalidEventData, decode
from shared.telemetry import context_from_headers, links_to_senders, span_in_context

log = logging.getLogger(__name__)

EventHandler = Callable[[UnitOfWork, DomainEvent, CloudEvent], Awaitable[None]]
Delivered = tuple[DomainEvent, CloudEvent]


@dataclass(frozen=True)
class Batched:
    """A handler that takes a run of consecutive events of its type in one call, so that it can look up what it
    already holds with one query for the run and insert with one statement, instead of a query per event. It
    runs in the consumer's transaction like a per-event handler; a record taken alone comes as a run of one.

    ``commutes``: what it writes neither depends on nor changes what another commuting handler writes (facts
    written once, keyed by their own ids; a table only it writes), so the consumer may gather its events from
    anywhere in a stretch of the batch where only commuting handlers run, and call it once for them all.
    ``after_facts``: it reads rows that commuting handlers write (a course's status needs the course), so in a
    stretch it is called after them."""

    handle: Callable[[UnitOfWork, Sequence[Delivered]], Awaitable[None]]
    commutes: bool = False
    after_facts: bool = False


Handler = EventHandler | Batched

# A record taken in: the record, its envelope, its event, and the handler it goes to.
Taken = tuple[ConsumerRecord[bytes, bytes], CloudEvent, DomainEvent, Handler]


def handler_calls(taken: list[Taken]) -> list[tuple[Handler, list[Taken]]]:
    """The handler calls that take a batch in, in an order that keeps what depends on order: runs of consecutive
    records with the same handler, in record order (a patient's registration is written before their update);
    except that in a stretch of records whose handlers all commute, each handler is called once with every event
    of the stretch that is its own (in record order), those that read facts after those that write them, all
    before whatever comes after the stretch."""
    calls: list[tuple[Handler, list[Taken]]] = []
    stretch: dict[Batched, list[Taken]] = {}

    def end_stretch() -> None:
        ordered = sorted(stretch.items(), key=lambda call: call[0].after_facts)  # stable: first seen first
        calls.extend(ordered)
        stretch.clear()

    for item in taken:
        handler = item[3]
        if isinstance(handler, Batched) and handler.commutes:
            stretch.setdefault(handler, []).append(item)
            continue
        end_stretch()
        if calls and calls[-1][0] == handler:
            calls[-1][1].append(item)
        else:
            calls.append((handler, [item]))
    end_stretch()
    return calls


async def handle_one(handler: Handler, uow: UnitOfWork, event: DomainEvent, envelope: CloudEvent) -> None:
    """One event through a handler of either kind, in ``uow``'s transaction."""
    if isinstance(handler, Batched):
        await handler.handle(uow, [(event, envelope)])
    else:
        await handler(uow, event, envelope)


INBOX_TABLE = cast(sa.Table, sa.inspect(InboxEntry, raiseerr=True).local_table)
INBOX_EVENT_ID_LENGTH = cast(sa.String, INBOX_TABLE.c.event_id.type).length or 200

# Event ids per inbox lookup: well under SQLite's 32,766 bound parameters and PostgreSQL's 65,535.
INBOX_LOOKUP_CHUNK = 1000


def inbox_lookup(consumer: str) -> SelectOfScalar[str]:
    """Which of the event ids given as ``ids`` this consumer has taken in; one expanding parameter."""
    return select(InboxEntry.event_id).where(InboxEntry.consumer == consumer, one_of(InboxEntry.event_id))


# Failures of the infrastructure, not of the event: the event is fine and will go through once the database
# is back, so it is retried (the consumer restarts without committing) rather than dead-lettered.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    ConnectionError,
    TimeoutError,
    sa_exc.TimeoutError,  # the pool gave no connection in time: not a builtin TimeoutError
)


# SQLSTATE classes of OperationalErrors that a statement and its data cause, the same on every try: 54, a program
# limit (an index row too large, too many arguments, a statement too complex). Retried as an outage, such an event
# stopped its consumer for good; it is the event's failure, and goes to the dead-letter topic after its retries.
STATEMENT_LIMIT_SQLSTATE_CLASSES = frozenset({"54"})


def infrastructure_failure(error: BaseException) -> bool:
    """An error of the infrastructure (retried until it is back), not of the event (dead-lettered)."""
    if isinstance(error, sa_exc.DBAPIError):
        sqlstate = getattr(error.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in STATEMENT_LIMIT_SQLSTATE_CLASSES:
            return False
    return isinstance(error, INFRASTRUCTURE_ERRORS)


def read_envelope(record: ConsumerRecord[bytes, bytes]) -> CloudEvent:
    """The record's CloudEvent, if the inbox can hold its id; an EnvelopeError (dead-lettered) if not."""
    envelope = from_kafka(list(record.headers or []), record.value)
    # The inbox keys an event by its id. One it cannot hold (too long, or a NUL, which PostgreSQL text refuses)
    # failed the inbox write, then the dead-letter entry's write the same way: the consumer restarted into the
    # record for good. Refused here, on every database, it is dead-lettered without an inbox entry.
    if len(envelope.id) > INBOX_EVENT_ID_LENGTH or "\x00" in envelope.id:
        raise EnvelopeError(f"event id the inbox cannot hold ({len(envelope.id)} characters): {envelope.id[:80]!r}")
    return envelope


class InfrastructureUnavailable(Exception):
    """The database (or another dependency) kept failing: stop consuming, commit nothing, try again later."""


class UnreadableRecord(Exception):
    """Records the Kafka client cannot parse (shared/bus/unreadable.py): dead-lettered as a notice of where."""


class PoisonEvent(Exception):
    """A record no retry can fix: not a CloudEvent, or data that does not fit its registered model."""


@dataclass(frozen=True)
class ConsumerConfig:
    name: str  # the consumer group, e.g. "outcomes@north"
    topics: list[TopicSpec]
    dead_letter_topic: str
    source: str
    site: str | None
    # The broker and this consumer's principal; a plain address: an unauthenticated PLAINTEXT broker.
    bootstrap_servers: KafkaAccess | str
    timeout_seconds: float = 10.0
    # Of the dead-letter topic it creates (its other topics are its producers').
    replication_factor: int = 1
    max_attempts: int = 3
    retry_backoff_seconds: float = 0.2
    # Records per fetch; a partition's share of them is one transaction (the pipeline benchmark: 200 -> 500
    # halved the commits without lengthening a batch past a few milliseconds of database work).
    max_batch_records: int = 500
    # For a reader whose database is only a view of its topics (the network's, of the compacted network topic):
    # the group's committed offsets outlive the database, so a new or wiped database would otherwise rebuild
    # nothing. With this, a partition the database holds no inbox entry of is read again from its start; the
    # inbox and idempotent handlers make the replay a no-op for anything already held.
    rebuild_forgotten_partitions: bool = False
    # What the topic an event came on says about it, checked before its handler: a reason to refuse it (it is
    # dead-lettered), or None. The network's: an aggregate names the site whose topic it came on.
    refuse_origin: Callable[[str, DomainEvent], str | None] | None = None

    @property
    def kafka(self) -> KafkaAccess:
        return KafkaAccess.of(self.bootstrap_servers)


class _CommitOnRevoke(ConsumerRebalanceListener):
    """Commits what this member processed before its partitions move to another member; rewinds, when the
    consumer rebuilds, the partitions its database never saw."""

    def __init__(self, runner: EventConsumer) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.runner.commit_processed([tp for tp in revoked])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("%s assigned %s", self.runner.config.name, sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))
        if self.runner.config.rebuild_forgotten_partitions:
            await self.runner.rewind_forgotten(assigned)


class EventConsumer:
    def __init__(self, database: Database, config: ConsumerConfig, handlers: dict[type[DomainEvent], Handler]):
        self.database = database
        self.config = config
        self.handlers = {model.ce_type(): handler for model, handler in handlers.items()}
        self._consumer: AIOKafkaConsumer | None = None
        self._dlq_producer: AIOKafkaProducer | None = None
        self._processed: dict[TopicPartition, int] = {}  # next offset to commit, per partition
        # Rewound to their start (rebuild_forgotten_partitions) and none of their records fetched since: their
        # committed offsets, if any, are the forgotten database's (shared/bus/unreadable.py wants where fetches began).
        self._rewound: set[TopicPartition] = set()
        self.processed_total = 0
        self.duplicates_total = 0
        self.dead_lettered_total = 0
        self.health = ConsumerHealth(config.name)

    async def run(self) -> None:
        """Consume until cancelled; a lost broker restarts the client after a backoff, however long it is gone.
        One log line per backoff step: the steps double up to MAX_RECONNECT_BACKOFF_SECONDS."""
        backoff = 0.5
        try:
            while True:
                try:
                    await self._start()
                    self.health.started()
                    backoff = 0.5
                    await self._consume()
                except BaseException as exc:
                    reraise_unless_recoverable(exc)
                    self.health.stopped(f"{type(exc).__name__}: {exc}"[:300])
                    log.warning(
                        "%s: consumer stopped (%s: %s); restarting in %.1fs",
                        self.config.name,
                        type(exc).__name__,
                        exc,
                        backoff,
                    )
                    await self._stop()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_RECONNECT_BACKOFF_SECONDS)
        finally:
            self.health.stopped("stopped")
            await self._stop()

    async def _start(self) -> None:
        # The topics it reads belong to their producers: under ACLs only they may create them. Until they do, the
        # subscription waits for them (metadata is refreshed every few seconds) and the rest is consumed meanwhile.
        waiting = await ensure_topics(
            self.config.kafka,
            [
                *self.config.topics,
                TopicSpec(
                    self.config.dead_letter_topic, partitions=1, replication_factor=self.config.replication_factor
                ),
            ],
            self.config.timeout_seconds,
            owned_elsewhere=[t.name for t in self.config.topics],
        )
        if waiting:
            log.warning(
                "%s: %s not visible to %s yet: waiting for their producers to create them (or a missing READ grant)",
                self.config.name,
                waiting,
                self.config.kafka.principal,
            )
        consumer = manual_commit_consumer(
            self.config.kafka, self.config.name, self.config.name, self.config.timeout_seconds
        )
        # Subscribed after the start: subscribed before, start() also waits for the group's assignment, which after
        # a member's crash takes the dead member's session timeout. Bounded by the broker timeout, that wait was cut
        # short again and again (the restart backoff growing each time): a consumer killed mid-load took 20-68 s
        # to resume instead of about one session timeout. The join now runs in aiokafka's coordinator; getmany
        # returns nothing until it is done.
        await start_with_timeout(consumer, self.config.timeout_seconds)
        consumer.subscribe([t.name for t in self.config.topics], listener=_CommitOnRevoke(self))
        self._consumer = consumer

    async def rewind_forgotten(self, assigned: list[TopicPartition]) -> None:
        self._rewound.difference_update(assigned)  # assigned again: rewound now or not at all
        forgotten = [tp for tp in assigned if not await self._database_has_seen(tp)]
        if forgotten and self._consumer is not None:
            log.info(
                "%s: rebuilding from the start of %s",
                self.config.name,
                sorted(f"{tp.topic}:{tp.partition}" for tp in forgotten),
            )
            await self._consumer.seek_to_beginning(*forgotten)
            self._rewound.update(forgotten)

    async def _database_has_seen(self, tp: TopicPartition) -> bool:
        async with self.database.sessions() as session:
            found = await session.exec(
                select(InboxEntry.event_id)
                .where(
                    InboxEntry.consumer == self.config.name,
                    InboxEntry.topic == tp.topic,
                    InboxEntry.partition == tp.partition,
                )
                .limit(1)
            )
            return found.first() is not None

    async def _stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_quietly(consumer, self.config.timeout_seconds)
        producer, self._dlq_producer = self._dlq_producer, None
        if producer is not None:
            await stop_quietly(producer, self.config.timeout_seconds)
        self._processed.clear()
        self._rewound.clear()

    async def _consume(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while True:
            # Python 3.11's wait_for (aiokafka's own included) can return a result and lose the cancellation that
            # met it; the task still counts it. Seen: a consumer cancelled at shutdown went on consuming for good.
            raise_if_cancelling()
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=self.config.max_batch_records)
            except UNPARSEABLE_FETCH_ERRORS as error:
                await self._step_over_unreadable(consumer, error)
                continue
            if self._rewound:
                self._rewound.difference_update(tp for tp, records in batches.items() if records)
            if any(batches.values()):
                self.health.working()
                await self._take_fetched(batches)
                await self.commit_processed(list(batches))
                self.health.progressed()
            self.health.polled(await self._lag(consumer), processed=any(batches.values()))

    async def _take_fetched(self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        """A fetch's records, every partition's, in one transaction: a fetch over 6 partitions would otherwise be
        6 transactions of a sixth of it (the scale-out benchmark: one instance on 6 partitions ran at a third of
        two). Order holds where it matters, within a partition. If that fails, each partition's records alone,
        then one by one with retries and the dead-letter topic. Marks what was processed, for commit."""
        if await self._take_together([record for records in batches.values() for record in records]):
            for tp, records in batches.items():
                if records:
                    self._processed[tp] = records[-1].offset + 1
            return
        for tp, records in batches.items():
            if await self._take_together(records):
                self._processed[tp] = records[-1].offset + 1
                continue
            for record in records:
                await self._take(record)
                self._processed[tp] = record.offset + 1

    async def _step_over_unreadable(self, consumer: AIOKafkaConsumer, error: Exception) -> None:
        """The client could not parse a fetched record (shared/bus/unreadable.py): the readable records before it
        are processed, the stretch it cannot read is dead-lettered as a notice of where it is (its bytes stay on
        the topic, for a client that can read them), and consumption goes on after it. Not found: raised, and the
        consumer restarts from its committed offsets, where it is found."""
        starts = await committed_offsets(consumer)
        rewound = sorted(self._rewound & starts.keys())
        if rewound:
            starts.update(await consumer.beginning_offsets(rewound))
        stretch = await locate_unreadable(consumer, starts, self.config.max_batch_records)
        if stretch is None:
            raise error
        if stretch.readable:
            await self._take_fetched({stretch.partition: stretch.readable})
        await self._dead_letter_unreadable(stretch)
        self._processed[stretch.partition] = stretch.end
        await self.commit_processed([stretch.partition])
        self._rewound.discard(stretch.partition)

    async def _dead_letter_unreadable(self, stretch: UnreadableStretch) -> None:
        tp = stretch.partition
        where = ConsumerRecord(tp.topic, tp.partition, stretch.first, -1, 0, None, None, None, -1, -1, ())
        await self._dead_letter(where, None, UnreadableRecord(stretch.described))

    async def _lag(self, consumer: AIOKafkaConsumer) -> int | None:
        """Records on this member's partitions not yet processed; None while the broker has not said how many."""
        total = 0
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                return None
            total += max(high - await consumer.position(tp), 0)
        return total

    async def commit_processed(self, partitions: list[TopicPartition]) -> None:
        offsets = {tp: self._processed.pop(tp) for tp in partitions if tp in self._processed}
        if not offsets or self._consumer is None:
            return
        try:
            async with asyncio.timeout(self.config.timeout_seconds):  # not wait_for: see _consume
                await self._consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group moved on; whoever owns the partition now will redeliver and the inbox absorbs it.
            log.warning("%s: commit refused after rebalance: %s", self.config.name, exc)

    async def replay(self, progress: Callable[[int, int], None] = lambda done, total: None) -> int:
        """Read every partition of this consumer's topics from its start to the end it has now, through the same
        handlers, inbox and dead-letter topic as :meth:`run`, but outside the group: the group's committed
        offsets stay where they are, so what comes after them is read again when the service starts and the
        inbox drops it. ``progress(read, total)`` after each batch. Returns the records read. For
        ``kapnet replay`` (shared/replay.py), with the service stopped."""
        timeout = self.config.timeout_seconds
        # Its own dead-letter topic, as run makes it: a replay before the service's first start had none, and the
        # dead letter's send timed out.
        dead_letters = TopicSpec(
            self.config.dead_letter_topic, partitions=1, replication_factor=self.config.replication_factor
        )
        await ensure_topics(self.config.kafka, [dead_letters], timeout)
        reader = manual_commit_consumer(self.config.kafka, None, f"{self.config.name}-replay", timeout)
        await start_with_timeout(reader, timeout)
        self._consumer = reader
        try:
            existing = await asyncio.wait_for(reader.topics(), timeout)
            topics = [t.name for t in self.config.topics if t.name in existing]
            if not topics:
                return 0
            spans = await read_from_start(reader, topics, timeout)
            ends = {tp: end for tp, (_, end) in spans.items()}
            total = sum(end - first for first, end in spans.values())
            remaining = {tp for tp, (first, end) in spans.items() if end > first}
            done = 0
            progress(done, total)
            # From the start too: a first fetch that comes back empty (a slow broker) read an unset deadline.
            deadline = asyncio.get_running_loop().time() + timeout
            while remaining:
                batches, stretch = await fetch_past_unreadable(
                    reader, remaining, timeout_ms=1000, max_records=self.config.max_batch_records
                )
                if stretch is not None:  # as in run: one such record made every rebuild fail
                    await self._dead_letter_unreadable(stretch)
                    done += max(min(stretch.end, ends[stretch.partition]) - stretch.first, 0)
                if batches:  # a long history takes as long as it takes; only a stall times out
                    deadline = asyncio.get_running_loop().time() + timeout
                elif asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"{self.config.name}: no records for {timeout}s with {total - done} to go")
                wanted = {tp: [r for r in fetched if r.offset < ends[tp]] for tp, fetched in batches.items()}
                await self._take_fetched(wanted)
                self._processed.clear()  # outside the group: nothing is committed
                done += sum(len(records) for records in wanted.values())
                for tp in batches:
                    if await reader.position(tp) >= ends[tp]:
                        remaining.discard(tp)
                progress(done, total)
            return done
        finally:
            self._consumer = None
            await stop_quietly(reader, timeout)
            producer, self._dlq_producer = self._dlq_producer, None
            if producer is not None:
                await stop_quietly(producer, timeout)

    def _processing_span(
        self, record: ConsumerRecord[bytes, bytes], headers: list[tuple[str, bytes]], batch_size: int = 1
    ) -> AbstractContextManager[Span]:
        """The consumer span of one record, a child of the producer's span carried in its headers."""
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.kafka.offset": record.offset,
            "messaging.consumer.group.name": self.config.name,
        }
        if batch_size > 1:
            attributes["messaging.batch.message_count"] = batch_size
        return span_in_context(f"{record.topic} process", context_from_headers(headers), SpanKind.CONSUMER, attributes)

    async def _take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        headers = list(record.headers or [])
        with self._processing_span(record, headers) as span:
            try:
                envelope = read_envelope(record)
            except EnvelopeError as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                await self._dead_letter(record, None, exc)
                return
            span.set_attribute("messaging.message.id", envelope.id)
            handler = self.handlers.get(envelope.type)
            if handler is None:
                return  # a type this consumer does not handle, or a newer version it does not know yet
            last_error: Exception | None = None
            for attempt in range(1, self.config.max_attempts + 1):
                try:
                    await self._handle_once(record, envelope, handler)
                    return
                except PoisonEvent as exc:
                    last_error = exc
                    break
                except Exception as exc:
                    raise_if_cancelling()
                    last_error = exc
                    log.warning(
                        "%s: event %s failed (attempt %d/%d): %s",
                        self.config.name,
                        envelope.id,
                        attempt,
                        self.config.max_attempts,
                        type(exc).__name__,
                    )
                    if attempt < self.config.max_attempts:
                        await asyncio.sleep(self.config.retry_backoff_seconds * 2 ** (attempt - 1))
            assert last_error is not None
            span.set_status(Status(StatusCode.ERROR, type(last_error).__name__))
            if infrastructure_failure(last_error):
                raise InfrastructureUnavailable(f"event {envelope.id}: {type(last_error).__name__}") from last_error
            await self._dead_letter(record, envelope, last_error)

    async def _take_together(self, records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        """The fast path: a partition's batch in one transaction, with one inbox lookup and one bulk insert of
        inbox entries. Anything unusual (a poison record, a handler error, a clash) rolls the whole batch back and
        returns False; the caller then takes the records one by one, with retries and the dead-letter topic."""
        if len(records) < 2:
            return False
        try:
            taken: list[tuple[ConsumerRecord[bytes, bytes], CloudEvent, DomainEvent, Handler]] = []
            for record in records:
                envelope = read_envelope(record)
                handler = self.handlers.get(envelope.type)
                if handler is not None:
                    taken.append((record, envelope, self._decode(record, envelope), handler))
            async with UnitOfWork(self.database, source=self.config.source, site=self.config.site) as uow:
                seen = await self._seen_among(uow, [envelope.id for _, envelope, _, _ in taken])
                fresh = []
                for item in taken:
                    if item[1].id not in seen:
                        seen.add(item[1].id)  # a second delivery of the same event in this batch
                        fresh.append(item)
                for handler, items in handler_calls(fresh):
                    if isinstance(handler, Batched):
                        with self._batch_span(items[0][0], [(r, e) for r, e, _, _ in items]):
                            await handler.handle(uow, [(event, envelope) for _, envelope, event, _ in items])
                    else:
                        for record, envelope, event, _ in items:
                            with self._processing_span(record, list(record.headers or []), len(records)) as span:
                                span.set_attribute("messaging.message.id", envelope.id)
                                await handler(uow, event, envelope)
                if fresh:
                    # The table, not the ORM entity: no per-row ORM bookkeeping. A clash (another member took one
                    # of these in meanwhile) raises and rolls the batch back, which is what the inbox is for.
                    await insert_rows(
                        uow.session,
                        self.database.dialect,
                        INBOX_TABLE,
                        [self._inbox_row(record, envelope, "processed") for record, envelope, _, _ in fresh],
                        skip_existing=False,
                    )
                await uow.commit()
        except Exception:
            raise_if_cancelling()
            return False
        self.processed_total += len(fresh)
        self.duplicates_total += len(taken) - len(fresh)
        return True

    def _batch_span(
        self, first: ConsumerRecord[bytes, bytes], records: list[tuple[ConsumerRecord[bytes, bytes], CloudEvent]]
    ) -> AbstractContextManager[Span]:
        """One span for a run taken at once, linked to the records' producer spans (OpenTelemetry's messaging
        conventions for batch processing): no single producer is its parent. The SDK keeps 128 links a span;
        a longer run links its first 128 and counts the rest."""
        links, unlinked = links_to_senders(record.headers or [] for record, _ in records)
        topics = {record.topic for record, _ in records}
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.consumer.group.name": self.config.name,
            "messaging.batch.message_count": len(records),
            "kapnet.batch.unlinked_count": unlinked,
        }
        if len(topics) == 1:
            attributes["messaging.destination.name"] = first.topic
        name = f"{first.topic} process" if len(topics) == 1 else f"{len(topics)} topics process"
        return span_in_context(name, otel_context.Context(), SpanKind.CONSUMER, attributes, links)

    def _decode(self, record: ConsumerRecord[bytes, bytes], envelope: CloudEvent) -> DomainEvent:
        try:
            event = decode(envelope)
        except InvalidEventData as exc:
            raise PoisonEvent(str(exc)) from None
        refused = self.config.refuse_origin(record.topic, event) if self.config.refuse_origin else None
        if refused:
            raise PoisonEvent(refused)
        return event

    async def _handle_once(self, record: ConsumerRecord[bytes, bytes], envelope: CloudEvent, handler: Handler) -> None:
        event = self._decode(record, envelope)
        async with UnitOfWork(self.database, source=self.config.source, site=self.config.site) as uow:
            if await self._seen(uow, envelope.id):
                self.duplicates_total += 1
                return
            uow.session.add(self._inbox_entry(record, envelope, "processed"))
            await handle_one(handler, uow, event, envelope)
            await uow.commit()
        self.processed_total += 1

    async def _seen(self, uow: UnitOfWork, event_id: str) -> bool:
        found = await uow.session.exec(
            select(InboxEntry.event_id).where(InboxEntry.consumer == self.config.name, InboxEntry.event_id == event_id)
        )
        return found.first() is not None

    async def _seen_among(self, uow: UnitOfWork, event_ids: list[str]) -> set[str]:
        """Which of these events this consumer has taken in already: one query per thousand ids, its IN list
        one expanding parameter (a list of literals is coerced element by element on every call)."""
        seen: set[str] = set()
        lookup = inbox_lookup(self.config.name)
        if self.database.dialect == "postgresql":
            # psycopg prepares a statement once it has run 5 times, and PostgreSQL may then keep one generic plan.
            # Chosen while the inbox was nearly empty, that plan reads every entry of the consumer and tests each
            # against the whole id list: on a fresh database the consumer fell from 6,000 to 1,000 events/s within
            # 20,000 events, until autovacuum's ANALYZE would invalidate it. This batch's statements are planned
            # for the tables as they are (one more statement per batch; each plans in microseconds).
            connection = await uow.session.connection()
            await connection.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
        for start in range(0, len(event_ids), INBOX_LOOKUP_CHUNK):
            found = await uow.session.exec(lookup, params={IDS: event_ids[start : start + INBOX_LOOKUP_CHUNK]})
            seen.update(found.all())
        return seen

    def _inbox_row(self, record: ConsumerRecord[bytes, bytes], envelope: CloudEvent, outcome: str) -> dict[str, Any]:
        return {
            "consumer": self.config.name,
            "event_id": envelope.id,
            "ce_type": envelope.type,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "outcome": outcome,
            "received_at": utcnow(),
        }

    def _inbox_entry(self, record: ConsumerRecord[bytes, bytes], envelope: CloudEvent, outcome: str) -> InboxEntry:
        return InboxEntry(**self._inbox_row(record, envelope, outcome))

    async def _send_dead_letter(self, value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        assert self._dlq_producer is not None
        if value is None and key is None:
            # aiokafka sends no record with neither (an AssertionError, which stopped the consumer for good on a
            # key-less tombstone); the details say what it lacked.
            value = b""
        async with asyncio.timeout(self.config.timeout_seconds):  # not wait_for: see _consume
            await self._dlq_producer.send_and_wait(self.config.dead_letter_topic, value=value, key=key, headers=headers)

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], envelope: CloudEvent | None, error: Exception
    ) -> None:
        """Park the record with its error. Raises if the broker cannot take it, so the offset is not committed
        and the record comes back rather than being lost."""
        if self._dlq_producer is None:
            producer = reliable_producer(self.config.kafka, self.config.timeout_seconds)
            await start_with_timeout(producer, self.config.timeout_seconds)
            self._dlq_producer = producer
        message = f"{type(error).__name__}: {error}"[:2000]
        details = [
            # An error may quote event data, and JSON can carry a lone surrogate UTF-8 cannot encode: a strict
            # encode() raised on every attempt and stopped the consumer on that record for good.
            ("kapnet_dlq_error", message.encode(errors="backslashreplace")),
            ("kapnet_dlq_consumer", self.config.name.encode()),
            ("kapnet_dlq_topic", record.topic.encode()),
            ("kapnet_dlq_partition", str(record.partition).encode()),
            ("kapnet_dlq_offset", str(record.offset).encode()),
        ]
        headers = [h for h in (record.headers or []) if not h[0].startswith("kapnet_dlq_")]
        try:
            await self._send_dead_letter(record.value, record.key, headers + details)
        except MessageSizeTooLargeError as exc:
            # A record near the size limit, made larger by the details, is refused for good: raised, it stopped
            # the consumer on that record for good. The details alone go, and say where the record still is.
            dropped = (
                f"value, key and headers, {type(exc).__name__}: read the record at kapnet_dlq_topic/partition/offset"
            )
            await self._send_dead_letter(None, None, [*details, ("kapnet_dlq_dropped", dropped.encode())])
        self.dead_lettered_total += 1
        log.error(
            "%s: record %s:%d@%d dead-lettered: %s",
            self.config.name,
            record.topic,
            record.partition,
            record.offset,
            type(error).__name__,
        )
        if envelope is not None:
            # Remember it, so a redelivery of the same event is not dead-lettered twice.
            async with UnitOfWork(self.database, source=self.config.source, site=self.config.site) as uow:
                if not await self._seen(uow, envelope.id):
                    uow.session.add(self._inbox_entry(record, envelope, "dead_lettered"))
                    await uow.commit()


__all__ = [
    "Batched",
    "ConsumerConfig",
    "Delivered",
    "EventConsumer",
    "EventHandler",
    "Handler",
    "KafkaError",
    "PoisonEvent",
    "Taken",
    "handle_one",
    "handler_calls",
]
