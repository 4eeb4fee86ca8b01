"""Throughput of the event pipeline against raw aiokafka, on a real broker and a real database.

    python -m bench.pipeline [--events N] [--database sqlite|postgresql] [--bootstrap HOST:PORT]
                             [--rounds R] [--transaction-size T] [--quick]

Pipeline: N ``PatientRegistered`` events written to intake's outbox through ``UnitOfWork`` (T events per
transaction), published by ``OutboxRelay.run()``, consumed by ``EventConsumer`` running outcomes' real
``on_patient_registered`` (registration row + inbox entry in one transaction). Clock: from the first outbox
write to the commit of the N-th registration.

Baseline: the same N records (same value bytes, same header names) produced by an idempotent
``AIOKafkaProducer`` and read back by a plain ``AIOKafkaConsumer``. Clock: first send to N-th record read.

Stages: the same pipeline code on a pipeline of its own, each stage alone (write all, then publish all,
then consume all), to show where the time goes without the stages taking turns on the one event loop.

Each round runs baseline, pipeline, stages; medians are printed because the machine is shared and noisy.
Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from opentelemetry.trace import SpanKind
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlmodel import select

from services.outcomes.handlers import on_patient_registered
from services.outcomes.models import Registration
from shared.app import freeze_long_lived_objects
from shared.bus.consumer import ConsumerConfig, EventConsumer
from shared.bus.kafka import TopicSpec, ensure_topics, reliable_producer, start_with_timeout, stop_quietly
from shared.bus.outbox import OutboxRelay
from shared.db.database import Database
from shared.db.migrate import upgrade_to_head
from shared.db.unit_of_work import UnitOfWork, outbox_record
from shared.events.intake import PatientRegistered
from shared.events.registry import topic_for
from shared.settings import ServiceSettings
from shared.telemetry import configure_tracing, trace_headers, tracer

ROOT = Path(__file__).resolve().parent.parent
INTAKE_MIGRATIONS = ROOT / "services" / "intake" / "migrations" / "versions"
OUTCOMES_SITE_MIGRATIONS = ROOT / "services" / "outcomes" / "migrations" / "site"

DEFAULT_EVENTS = 2000
QUICK_EVENTS = 200
DEFAULT_ROUNDS = 3
DEFAULT_TRANSACTION_SIZE = 100
# How often the clock looks at the consumer's counter: small next to any round, cheap for the event loop.
POLL_SECONDS = 0.002

KafkaHeaders = list[tuple[str, bytes]]

log = logging.getLogger("bench.pipeline")


@dataclass(frozen=True)
class BusSettings:
    """The bus settings a service runs with by default. Read from the settings model's field defaults, not
    by instantiating it: KAPNET_* in the environment and its per-service checks are not a benchmark's business."""

    kafka_timeout_seconds: float
    kafka_site_topic_partitions: int
    outbox_poll_interval_seconds: float
    outbox_batch_size: int
    consumer_max_attempts: int
    consumer_retry_backoff_seconds: float

    @classmethod
    def defaults(cls) -> BusSettings:
        fields = ServiceSettings.model_fields
        return cls(**{name: fields[name].default for name in cls.__dataclass_fields__})


SETTINGS = BusSettings.defaults()


# ------------------------------------------------------------------------------------------ options


@dataclass(frozen=True)
class Options:
    events: int
    database: str
    bootstrap: str | None
    rounds: int
    transaction_size: int
    json_path: Path | None = None


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description="Outbox -> relay -> Kafka -> consumer with inbox, against raw aiokafka. Prints figures.",
    )
    parser.add_argument("--events", type=int, default=None, help=f"events per round (default {DEFAULT_EVENTS})")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--bootstrap", help="a running broker (else $KAFKA_BOOTSTRAP_SERVERS, else a temp node)")
    parser.add_argument("--rounds", type=int, default=None, help=f"baseline/pipeline pairs (default {DEFAULT_ROUNDS})")
    parser.add_argument(
        "--transaction-size",
        type=int,
        default=DEFAULT_TRANSACTION_SIZE,
        help=f"outbox events per UnitOfWork transaction (default {DEFAULT_TRANSACTION_SIZE})",
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EVENTS} events, 1 round (for a smoke test)")
    parser.add_argument("--json", type=Path, help="also write the medians and every round's figures to this file")
    args = parser.parse_args(argv)
    events = args.events if args.events is not None else (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else DEFAULT_ROUNDS)
    if events < 1 or rounds < 1 or args.transaction_size < 1:
        parser.error("--events, --rounds and --transaction-size must be at least 1")
    bootstrap = args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None
    return Options(events, args.database, bootstrap, rounds, args.transaction_size, args.json)


# ----------------------------------------------------------------------------------- infrastructure


@dataclass
class Infrastructure:
    """A broker and a place for fresh databases, each either given or started here for this run."""

    bootstrap: str
    kafka_note: str
    database: str
    database_note: str
    workdir: Path
    fresh_database: Callable[[str], str]  # name -> URL of a new, empty database
    drop_database: Callable[[str], None]
    owns_broker: bool


@contextlib.contextmanager
def infrastructure(options: Options) -> Iterator[Infrastructure]:
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kapnet-bench-")))
        if options.bootstrap:
            bootstrap, kafka_note, owns_broker = options.bootstrap, f"given ({options.bootstrap})", False
        else:
            from deploy.kafka.launcher import KAFKA_VERSION, KafkaNode, free_port

            print("starting a Kafka node (KafkaNode) in a temp dir ...", flush=True)
            node = KafkaNode(workdir / "kafka", port=free_port())
            stack.callback(node.stop)
            node.start()
            bootstrap = node.bootstrap_servers
            kafka_note, owns_broker = f"KafkaNode {KAFKA_VERSION} started here ({bootstrap})", True

        if options.database == "sqlite":

            def fresh_sqlite(name: str) -> str:
                return f"sqlite:///{workdir / f'{name}.db'}"

            yield Infrastructure(
                bootstrap,
                kafka_note,
                "sqlite",
                "SQLite files in a temp dir",
                workdir,
                fresh_sqlite,
                lambda _url: None,  # the temp dir goes at the end
                owns_broker,
            )
            return

        named = os.environ.get("DATABASE_URL")
        if named:
            admin_url = make_url(named).set(drivername="postgresql")
            note = f"PostgreSQL given by DATABASE_URL ({admin_url.host}:{admin_url.port})"
        else:
            from deploy.postgres.launcher import PostgresServer

            print("starting PostgreSQL (PostgresServer) in a temp dir ...", flush=True)
            server = PostgresServer(workdir / "postgres")
            stack.callback(server.destroy)  # also removes a cluster relocated under /tmp
            server.start()
            admin_url = make_url(server.url("postgres"))
            note = f"PostgreSQL started here (127.0.0.1:{server.port})"
        admin = admin_url.render_as_string(hide_password=False)

        def fresh_postgres(name: str) -> str:
            import psycopg
            from psycopg import sql

            with psycopg.connect(admin, autocommit=True, connect_timeout=10) as connection:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return admin_url.set(database=name).render_as_string(hide_password=False)

        def drop_postgres(url: str) -> None:
            import psycopg
            from psycopg import sql

            name = make_url(url).database or ""
            with psycopg.connect(admin, autocommit=True, connect_timeout=10) as connection:
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

        yield Infrastructure(
            bootstrap, kafka_note, "postgresql", note, workdir, fresh_postgres, drop_postgres, owns_broker
        )


# ------------------------------------------------------------------------------------------ events


def make_events(site: str, count: int) -> list[PatientRegistered]:
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    return [
        PatientRegistered(
            patient_id=uuid.uuid4(),
            site=site,
            mrn=f"B-{n:07d}",
            birth_date=date(1950 + n % 50, 1 + n % 12, 1 + n % 28),
            sex=("female", "male", "other")[n % 3],
            registered_at=start + timedelta(hours=n),
        )
        for n in range(count)
    ]


@dataclass(frozen=True)
class WireRecord:
    key: bytes
    value: bytes
    headers: KafkaHeaders


def wire_records(events: Sequence[PatientRegistered], source: str) -> list[WireRecord]:
    """What the relay puts on the wire for these events, built the way UnitOfWork.publish builds the
    envelope (inside the writer's span, whose traceparent the relay sends on as the creation context).
    Checked against a record the relay really sent after the first pipeline round."""
    records = []
    for event in events:
        with tracer.start_as_current_span("bench register", kind=SpanKind.SERVER):
            record = outbox_record(event, source, trace_headers())
        headers = [(name, value.encode()) for name, value in record.headers]
        records.append(WireRecord(event.partition_key().encode(), record.payload, headers))
    return records


# --------------------------------------------------------------------------------------------- runs


@dataclass
class BaselineResult:
    elapsed: float
    produced_at: float  # every send acknowledged
    cpu_seconds: float = 0.0  # this process's, every thread's, over the same clock


@dataclass
class PipelineResult:
    elapsed: float  # first outbox write -> N-th registration committed
    written_at: float  # last outbox transaction committed
    published_at: float  # relay has published (and marked sent) all N
    first_processed_at: float  # first registration committed
    cpu_seconds: float = 0.0  # this process's, every thread's, first outbox write -> N-th registration


@dataclass
class StageResult:
    """Seconds for N events through each stage alone (writer, then relay, then consumer)."""

    write: float
    publish: float
    consume: float


@dataclass
class Round:
    baseline: BaselineResult
    pipeline: PipelineResult
    stages: StageResult
    events: int

    @property
    def baseline_rate(self) -> float:
        return self.events / self.baseline.elapsed

    @property
    def pipeline_rate(self) -> float:
        return self.events / self.pipeline.elapsed

    @property
    def ratio(self) -> float:
        return self.pipeline_rate / self.baseline_rate


@dataclass
class WireCheck:
    same_value: bool
    same_header_names: bool
    value_bytes: int
    header_bytes: int
    header_names: list[str] = field(default_factory=list)


async def _deadline_loop(
    done: Callable[[], bool], within: float, what: Callable[[], str], step: Callable[[], Awaitable[None]] | None = None
) -> None:
    deadline = time.perf_counter() + within
    while not done():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {within:.0f}s waiting for {what()}")
        if step is not None:
            await step()
        else:
            await asyncio.sleep(POLL_SECONDS)


async def create_topic(bootstrap: str, spec: TopicSpec, timeout_seconds: float) -> None:
    """Create the topic and wait until every partition has a leader: a fetch or produce that races the
    broker's metadata retries after a backoff, and that start-up cost would land inside a clock."""
    timeout = timeout_seconds
    await ensure_topics(bootstrap, [spec], timeout)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await asyncio.wait_for(admin.start(), timeout)
    try:
        deadline = time.perf_counter() + 30
        while True:
            described = await asyncio.wait_for(admin.describe_topics([spec.name]), timeout)
            partitions = [p for t in described if t["topic"] == spec.name for p in t["partitions"]]
            led = [p for p in partitions if p["error_code"] == 0 and p["leader"] >= 0]
            if len(led) == spec.partitions:
                return
            if time.perf_counter() > deadline:
                raise TimeoutError(f"topic {spec.name} has no leader for every partition")
            await asyncio.sleep(0.05)
    finally:
        await asyncio.wait_for(admin.close(), timeout)


def _round_timeout(events: int) -> float:
    # Generous: a stuck round should fail with its counters, not hang a shared machine forever.
    return 60.0 + events * 0.05


async def run_baseline(infra: Infrastructure, topic: str, records: Sequence[WireRecord]) -> BaselineResult:
    partitions = SETTINGS.kafka_site_topic_partitions
    await create_topic(infra.bootstrap, TopicSpec(topic, partitions=partitions), SETTINGS.kafka_timeout_seconds)
    # The relay's own producer (its settings and its key partitioner), so the gap is not producer tuning.
    producer = reliable_producer(infra.bootstrap, SETTINGS.kafka_timeout_seconds)
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.bootstrap, enable_auto_commit=False)
    await start_with_timeout(producer, SETTINGS.kafka_timeout_seconds)
    try:
        # The new topic's leaders before the clock: a metadata wait is start-up (the relay's is warmed too).
        await producer.partitions_for(topic)
        await start_with_timeout(consumer, SETTINGS.kafka_timeout_seconds)
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
            await consumer.seek_to_beginning()
            # One empty fetch before the clock: the consumer's start-up is not throughput (same for the pipeline).
            await consumer.getmany(timeout_ms=100)
            received = 0
            produced_at = 0.0
            started, cpu_started = time.perf_counter(), time.process_time()

            async def produce() -> None:
                nonlocal produced_at
                futures = [
                    await producer.send(topic, value=r.value, key=r.key, headers=list(r.headers)) for r in records
                ]
                await asyncio.gather(*futures)
                produced_at = time.perf_counter() - started

            async def fetch() -> None:
                nonlocal received
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    received += len(batch)

            sending = asyncio.create_task(produce())
            try:
                await _deadline_loop(
                    lambda: received >= len(records),
                    _round_timeout(len(records)),
                    lambda: f"baseline: {received} of {len(records)} records",
                    fetch,
                )
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                await sending
            finally:
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
        finally:
            await stop_quietly(consumer, SETTINGS.kafka_timeout_seconds)
    finally:
        await stop_quietly(producer, SETTINGS.kafka_timeout_seconds)
    return BaselineResult(elapsed, produced_at, cpu)


def intake_relay(database: Database, bootstrap: str) -> OutboxRelay:
    """Intake's relay, configured as ServiceRuntime configures it (shared/app.py)."""
    return OutboxRelay(
        database,
        bootstrap,
        timeout_seconds=SETTINGS.kafka_timeout_seconds,
        poll_interval_seconds=SETTINGS.outbox_poll_interval_seconds,
        batch_size=SETTINGS.outbox_batch_size,
    )


def outcomes_consumer(database: Database, bootstrap: str, site: str, topic: TopicSpec) -> EventConsumer:
    """Outcomes' consumer of registrations with its real handler, configured as ServiceRuntime configures it."""
    return EventConsumer(
        database,
        ConsumerConfig(
            name=f"outcomes@{site}",
            topics=[topic],
            dead_letter_topic=f"kapnet.{site}.outcomes.deadletter.v1",
            source=f"/kapnet/{site}/outcomes",
            site=site,
            bootstrap_servers=bootstrap,
            timeout_seconds=SETTINGS.kafka_timeout_seconds,
            max_attempts=SETTINGS.consumer_max_attempts,
            retry_backoff_seconds=SETTINGS.consumer_retry_backoff_seconds,
        ),
        {PatientRegistered: on_patient_registered},
    )


async def write_outbox(database: Database, site: str, events: Sequence[PatientRegistered], size: int) -> None:
    """The events written to intake's outbox, ``size`` to a transaction."""
    for start in range(0, len(events), size):
        # A span per transaction, as an API request would have: the outbox rows carry its traceparent.
        with tracer.start_as_current_span("bench register", kind=SpanKind.SERVER):
            async with UnitOfWork(database, source=f"/kapnet/{site}/intake", site=site) as uow:
                for event in events[start : start + size]:
                    await uow.publish(event)
                await uow.commit()


async def check_done_once(database: Database, consumer: EventConsumer, n: int) -> None:
    """The figures count only if the work was really done, once."""
    async with database.sessions() as session:
        rows = int((await session.exec(select(func.count()).select_from(Registration))).one())
    c = consumer
    if rows != n or c.duplicates_total or c.dead_lettered_total or c.processed_total != n:
        raise RuntimeError(
            f"the pipeline did not do the work once: {rows} registrations, {c.processed_total} processed, "
            f"{c.duplicates_total} duplicates, {c.dead_lettered_total} dead-lettered, for {n} events"
        )


async def joined(consumer: EventConsumer) -> None:
    """Wait until a started consumer has joined its group: the join is start-up, not throughput.
    (EventConsumer has no public readiness signal, so this looks at its client.)"""

    def assigned() -> bool:
        client = consumer._consumer
        return client is not None and bool(client.assignment())

    await _deadline_loop(assigned, 60.0, lambda: f"{consumer.config.name} to be assigned its partitions")


class Rig:
    """One round's pipeline: intake's and outcomes' fresh databases (migrated as the services migrate
    themselves), a fresh site topic, and a relay and a consumer configured as ServiceRuntime configures them
    (shared/app.py). Running tasks are cancelled and the work is checked (N registrations, once) on exit."""

    def __init__(self, infra: Infrastructure, site: str, events: Sequence[PatientRegistered]) -> None:
        self.infra = infra
        self.site = site
        self.events = events
        self.topic = TopicSpec(topic_for(PatientRegistered, site), partitions=SETTINGS.kafka_site_topic_partitions)
        self.urls: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.writer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Rig:
        stem = self.site.replace("-", "_")
        for name, migrations in (("intake", INTAKE_MIGRATIONS), ("outcomes", OUTCOMES_SITE_MIGRATIONS)):
            url = await asyncio.to_thread(self.infra.fresh_database, f"{stem}_{name}")
            self.urls.append(url)
            await asyncio.to_thread(upgrade_to_head, url, migrations)
        self.intake_db, self.outcomes_db = Database(self.urls[0]), Database(self.urls[1])
        await create_topic(self.infra.bootstrap, self.topic, SETTINGS.kafka_timeout_seconds)
        self.relay = intake_relay(self.intake_db, self.infra.bootstrap)
        self.consumer = outcomes_consumer(self.outcomes_db, self.infra.bootstrap, self.site, self.topic)
        # One pooled connection per database before any clock, as the baseline's clients are connected.
        await self.intake_db.ping()
        await self.outcomes_db.ping()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            if exc is None:
                await check_done_once(self.outcomes_db, self.consumer, len(self.events))
        finally:
            await self.intake_db.dispose()
            await self.outcomes_db.dispose()
            for url in self.urls:
                await asyncio.to_thread(self.infra.drop_database, url)

    async def start_consumer(self) -> None:
        """Start the consumer and wait until it has joined its group."""
        self.tasks.append(asyncio.create_task(self.consumer.run()))
        await joined(self.consumer)

    async def warm_relay(self) -> None:
        """Connect the relay's producer and fetch the topic's metadata before any clock: the baseline's
        producer is warm too. (The relay has no public way to do it, so this calls its own lazy start.)"""
        producer = await self.relay._ensure_producer()
        await producer.partitions_for(self.topic.name)

    def start_relay(self) -> None:
        self.tasks.append(asyncio.create_task(self.relay.run()))

    def start_writer(self, transaction_size: int) -> None:
        self.writer = asyncio.create_task(write_outbox(self.intake_db, self.site, self.events, transaction_size))
        self.tasks.append(self.writer)

    def writer_done(self) -> bool:
        return self.writer is not None and self.writer.done()

    def progress(self) -> str:
        return (
            f"{self.site}: {self.relay.published_total} published (relay's last error: {self.relay.last_error}), "
            f"{self.consumer.processed_total} of {len(self.events)} processed, "
            f"{self.consumer.dead_lettered_total} dead-lettered"
        )

    def check_health(self) -> None:
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"a pipeline task failed: {self.progress()}") from task.exception()
        if self.consumer.dead_lettered_total:
            raise RuntimeError(f"events were dead-lettered: {self.progress()}")


async def run_pipeline(
    infra: Infrastructure, site: str, events: Sequence[PatientRegistered], size: int
) -> PipelineResult:
    """Writer, relay and consumer all at once, as in the running system."""
    n = len(events)
    async with Rig(infra, site, events) as rig:
        await rig.start_consumer()
        await rig.warm_relay()
        rig.start_relay()
        await asyncio.sleep(0.05)  # the relay's first (empty) look at the outbox happens before the clock
        started, cpu_started = time.perf_counter(), time.process_time()
        rig.start_writer(size)
        written_at = published_at = first_processed_at = None

        def finished() -> bool:
            nonlocal written_at, published_at, first_processed_at
            rig.check_health()
            now = time.perf_counter() - started
            if written_at is None and rig.writer_done():
                written_at = now
            if published_at is None and rig.relay.published_total >= n:
                published_at = now
            if first_processed_at is None and rig.consumer.processed_total > 0:
                first_processed_at = now
            return rig.consumer.processed_total >= n

        await _deadline_loop(finished, _round_timeout(n), rig.progress)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        if published_at is None:  # the relay marks rows sent after the acks: a fast consumer can finish first
            await _deadline_loop(lambda: rig.relay.published_total >= n, 30.0, rig.progress)
            published_at = time.perf_counter() - started
        assert written_at is not None and first_processed_at is not None
    return PipelineResult(elapsed, written_at, published_at, first_processed_at, cpu)


async def run_stages(infra: Infrastructure, site: str, events: Sequence[PatientRegistered], size: int) -> StageResult:
    """Each stage alone, one after the other, on a pipeline of its own: what each costs without the others
    competing for the event loop."""
    n = len(events)

    async def timed(done: Callable[[], bool], rig: Rig, start: Callable[[], object] = lambda: None) -> float:
        started = time.perf_counter()
        start()

        def check() -> bool:
            rig.check_health()
            return done()

        await _deadline_loop(check, _round_timeout(n), rig.progress)
        return time.perf_counter() - started

    async with Rig(infra, site, events) as rig:
        write = await timed(rig.writer_done, rig, lambda: rig.start_writer(size))
        await rig.warm_relay()
        publish = await timed(lambda: rig.relay.published_total >= n, rig, rig.start_relay)
        await rig.start_consumer()
        # The consumer may have taken a few events between its join and the clock: scale to all N.
        before = rig.consumer.processed_total
        consume = await timed(lambda: rig.consumer.processed_total >= n, rig) * n / (n - before)
    return StageResult(write, publish, consume)


async def check_wire(infra: Infrastructure, topic: str, expected: Sequence[WireRecord]) -> WireCheck:
    """Read back a few records the relay sent and compare them with the baseline's records of the same events."""
    by_key = {r.key: r for r in expected}
    partitions = SETTINGS.kafka_site_topic_partitions
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.bootstrap, enable_auto_commit=False)
    await start_with_timeout(consumer, SETTINGS.kafka_timeout_seconds)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        sent: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.perf_counter() + 30
        while not sent and time.perf_counter() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500, max_records=20)).values():
                sent.extend(batch)
    finally:
        await stop_quietly(consumer, SETTINGS.kafka_timeout_seconds)
    if not sent:
        raise RuntimeError(f"nothing to read back on {topic}")
    record = sent[0]
    ours = by_key[record.key]
    theirs = list(record.headers or [])
    return WireCheck(
        same_value=all(r.value == by_key[r.key].value for r in sent),
        same_header_names=all([h[0] for h in r.headers] == [h[0] for h in by_key[r.key].headers] for r in sent),
        value_bytes=len(ours.value),
        header_bytes=sum(len(name) + len(value) for name, value in theirs),
        header_names=[name for name, _ in theirs],
    )


async def delete_topics(infra: Infrastructure, topics: list[str]) -> None:
    """Leave a given broker as we found it (bar consumer groups, which aiokafka's admin cannot delete)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.bootstrap)
    try:
        await asyncio.wait_for(admin.start(), 10)
        await asyncio.wait_for(admin.delete_topics(topics), 10)
    except Exception as exc:
        log.warning("could not delete topics %s: %s", topics, type(exc).__name__)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(admin.close(), 10)


# ------------------------------------------------------------------------------------------ report


def _fmt_rate(rate: float) -> str:
    return f"{rate:,.0f} ev/s"


def _stage_line(events: int, stages: StageResult) -> str:
    return (
        f"outbox write {_fmt_rate(events / stages.write)} ({stages.write:.2f} s), "
        f"relay {_fmt_rate(events / stages.publish)} ({stages.publish:.2f} s), "
        f"consumer {_fmt_rate(events / stages.consume)} ({stages.consume:.2f} s)"
    )


def _round_lines(number: int, r: Round) -> str:
    p = r.pipeline
    return (
        f"round {number}  baseline {_fmt_rate(r.baseline_rate):>12} ({r.baseline.elapsed:5.2f} s, "
        f"all acked at {r.baseline.produced_at:.2f} s) | "
        f"pipeline {_fmt_rate(r.pipeline_rate):>10} ({p.elapsed:5.2f} s) | ratio {r.ratio:.3f}\n"
        f"         pipeline: outbox all written at {p.written_at:.2f} s, relay done at {p.published_at:.2f} s, "
        f"first registration at {p.first_processed_at:.2f} s; CPU an event: baseline "
        f"{r.baseline.cpu_seconds * 1e6 / r.events:.0f} µs, pipeline {p.cpu_seconds * 1e6 / r.events:.0f} µs\n"
        f"         each stage alone: {_stage_line(r.events, r.stages)}"
    )


def gap_note(rounds: Sequence[Round], database: str, transaction_size: int) -> str:
    """One line on what the gap consists of, from the stages measured alone."""
    n = rounds[0].events
    stages = {
        "consumer": statistics.median(r.stages.consume for r in rounds),
        "outbox write": statistics.median(r.stages.write for r in rounds),
        "relay": statistics.median(r.stages.publish for r in rounds),
    }
    why = {
        "consumer": f"one {database} transaction per fetch (every partition): one inbox SELECT, one INSERT "
        "... ON CONFLICT DO NOTHING per projection table and one for the inbox; per event the envelope and model "
        "decoded",
        "outbox write": f"per event an envelope built and serialised; per {transaction_size} events one multi-row "
        "INSERT and a COMMIT"
        + (", after one advisory-lock statement for their keys" if database == "postgresql" else ""),
        "relay": f"per batch of {SETTINGS.outbox_batch_size}: SELECT unsent rows, send, wait for acks, UPDATE sent_at",
    }
    slowest = max(stages, key=lambda s: stages[s])
    total = sum(stages.values())
    baseline = statistics.median(r.baseline.elapsed for r in rounds)
    others = ", ".join(f"{name} {stages[name]:.2f} s" for name in stages if name != slowest)
    return (
        f"gap: of {total:.2f} s for the stages alone (vs {baseline:.2f} s for raw Kafka), the {slowest} takes "
        f"{stages[slowest]:.2f} s ({n / stages[slowest]:,.0f} ev/s; {why[slowest]}); {others}"
    )


def print_summary(options: Options, infra: Infrastructure, rounds: Sequence[Round]) -> None:
    n = options.events

    def median(values: Iterable[float]) -> float:
        return statistics.median(list(values))

    print()
    print(f"N = {n} events, database = {infra.database}, {len(rounds)} round(s); medians:")
    print(
        f"  baseline  {_fmt_rate(median(r.baseline_rate for r in rounds)):>12}  "
        f"{median(r.baseline.elapsed for r in rounds):6.2f} s  raw aiokafka: idempotent producer -> plain consumer"
    )
    print(
        f"  pipeline  {_fmt_rate(median(r.pipeline_rate for r in rounds)):>12}  "
        f"{median(r.pipeline.elapsed for r in rounds):6.2f} s  outbox (transactions of {options.transaction_size}) "
        f"-> OutboxRelay -> EventConsumer + inbox"
    )
    print(f"  ratio     {median(r.ratio for r in rounds):12.3f}            pipeline rate / baseline rate")
    stages = StageResult(
        median(r.stages.write for r in rounds),
        median(r.stages.publish for r in rounds),
        median(r.stages.consume for r in rounds),
    )
    print(f"  stages alone: {_stage_line(n, stages)}")
    print(f"  {gap_note(rounds, infra.database, options.transaction_size)}")


async def run(options: Options, infra: Infrastructure) -> list[Round]:
    print(f"kafka:    {infra.kafka_note}")
    print(f"database: {infra.database_note}; intake and outcomes each get a fresh database per pass")
    print(
        f"events:   {options.events} PatientRegistered per pass, outbox in transactions of "
        f"{options.transaction_size}; {SETTINGS.kafka_site_topic_partitions} partitions, relay batch "
        f"{SETTINGS.outbox_batch_size}; writer, relay and consumer share one asyncio event loop",
        flush=True,
    )
    run_id = uuid.uuid4().hex[:8]
    # One uncounted pass first: a just-started broker (JVM JIT, the offsets topic) would tax round 1 only.
    warm_site = f"b{run_id}-warm"
    warm_topic = f"kapnet.{warm_site}.baseline.v1"
    try:
        warm = await run_baseline(
            infra, warm_topic, wire_records(make_events(warm_site, options.events), f"/kapnet/{warm_site}/intake")
        )
    finally:
        if not infra.owns_broker:
            await delete_topics(infra, [warm_topic])
    print(f"warm-up:  one baseline pass, not counted ({options.events / warm.elapsed:,.0f} ev/s)", flush=True)
    rounds: list[Round] = []
    for number in range(1, options.rounds + 1):
        # Fresh topics, databases and consumer groups for every pass: nothing left over is counted.
        site, stage_site = f"b{run_id}-r{number}", f"b{run_id}-r{number}s"
        events = make_events(site, options.events)
        records = wire_records(events, f"/kapnet/{site}/intake")
        stage_events = make_events(stage_site, options.events)
        # As a service does once started (shared/app.py serve): what lives for the run, the inputs included, is out
        # of the collector's reach, so a full collection walks only what the work makes, as in production.
        freeze_long_lived_objects()
        baseline_topic = f"kapnet.{site}.baseline.v1"
        topics = [baseline_topic]
        for s in (site, stage_site):
            topics += [topic_for(PatientRegistered, s), f"kapnet.{s}.outcomes.deadletter.v1"]
        try:
            baseline = await run_baseline(infra, baseline_topic, records)
            pipeline = await run_pipeline(infra, site, events, options.transaction_size)
            if number == 1:
                check = await check_wire(infra, topic_for(PatientRegistered, site), records)
                verdict = "same" if check.same_value and check.same_header_names else "DIFFERENT"
                print(
                    f"wire:     baseline records vs what the relay sent: {verdict} value bytes and header names "
                    f"(value {check.value_bytes} B, headers {check.header_bytes} B: {', '.join(check.header_names)})"
                )
            stages = await run_stages(infra, stage_site, stage_events, options.transaction_size)
        finally:
            if not infra.owns_broker:
                await delete_topics(infra, topics)
        result = Round(baseline, pipeline, stages, options.events)
        rounds.append(result)
        print(_round_lines(number, result), flush=True)
    return rounds


def figures(options: Options, infra: Infrastructure, rounds: Sequence[Round]) -> dict[str, object]:
    """What bench/RESULTS.md quotes, as JSON: every rate in events per second, the ratio against the baseline
    measured in the same round."""

    def per_round(r: Round) -> dict[str, float]:
        return {
            "baseline_ev_s": round(r.baseline_rate),
            "pipeline_ev_s": round(r.pipeline_rate),
            "ratio": round(r.ratio, 4),
            "baseline_cpu_us_per_event": round(r.baseline.cpu_seconds * 1e6 / r.events),
            "pipeline_cpu_us_per_event": round(r.pipeline.cpu_seconds * 1e6 / r.events),
            "outbox_write_ev_s": round(r.events / r.stages.write),
            "relay_ev_s": round(r.events / r.stages.publish),
            "consumer_ev_s": round(r.events / r.stages.consume),
        }

    each = [per_round(r) for r in rounds]
    return {
        "benchmark": "pipeline",
        "database": infra.database,
        "events": options.events,
        "transaction_size": options.transaction_size,
        "rounds": each,
        "median": {name: statistics.median(r[name] for r in each) for name in each[0]},
    }


def benchmark(argv: Sequence[str] | None = None) -> list[Round]:
    """Run the benchmark as the command line would, print its figures and return them (for a test's use:
    ``benchmark(["--quick"])``; a test may check that it ran, never how fast)."""
    options = parse_args(argv)
    # As the services do (shared/app.py): real spans, so records carry traceparent as in production.
    configure_tracing("bench@pipeline")
    with infrastructure(options) as infra:
        try:
            rounds = asyncio.run(run(options, infra))
        finally:
            gc.unfreeze()  # a caller in the same process (a test) gets its collector back as it was
        print_summary(options, infra, rounds)
        if options.json_path is not None:
            options.json_path.parent.mkdir(parents=True, exist_ok=True)
            options.json_path.write_text(json.dumps(figures(options, infra, rounds), indent=2) + "\n")
            print(f"figures written to {options.json_path}")
    return rounds


def quiet_kafka_logs() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # aiokafka warns about metadata of topics made a moment ago; ours are made on purpose right before use.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    # A fresh broker has no offsets topic until the first group joins: that first join is retried, not an error.
    logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(
        lambda record: "GroupCoordinatorNotAvailable" not in record.getMessage()
    )


def main(argv: Sequence[str] | None = None) -> int:
    quiet_kafka_logs()
    try:
        benchmark(argv)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
