"""P1's ceiling: the pipeline's work in bare Python, against the same raw-aiokafka baseline.

    python -m bench.pipeline_ceiling [--events N] [--rounds R] [--transaction-size T] [--quick] [--json PATH]

P1's goal is the pipeline at half of raw aiokafka. This asks what the design itself allows on this machine, in
Python, without kapnet's layers: the same durable work as ``bench.pipeline`` measures, written with nothing but
``sqlite3``, pydantic and aiokafka, on the same broker, the same SQLite files (migrated by the services' own
migrations, WAL, ``synchronous`` at its default), the same producer (``reliable_producer``: idempotent, kapnet's
key partitioner) and the same baseline, measured in the same round:

- writer: per transaction of T events, each event serialised by pydantic (the same value bytes), a fresh CloudEvent
  id, its headers as JSON, one ``executemany`` INSERT into ``outbox_message``, COMMIT;
- relay: SELECT up to 500 unsent rows, send each and wait for every ack, UPDATE their ``sent_at``, COMMIT;
- consumer: a group member with manual commits; per fetch, every record's type read from its headers and its value
  validated by pydantic, one inbox SELECT, ``executemany`` INSERTs into ``registration``, ``outcome_patient`` and
  ``inbox_entry``, COMMIT, then the offsets.

What it leaves out, on purpose, is what kapnet adds around that work: SQLAlchemy, the unit of work, tracing spans,
audit, the inbox's per-record dead-letter and retry paths, health and metrics. BEGIN IMMEDIATE and COMMIT run on a
worker thread (a wait for the lock or an fsync would stall the loop), every other statement on the loop, as
``shared/db/sqlite_statements.py`` does. SQLite only: the question is the design's, not the database's.

So: a ratio here near 0.5 says the goal needs nearly bare code; far above it, that kapnet's layers are what stands
between. Figures only: nothing here asserts a timing; the work is checked (N rows, once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from opentelemetry.trace import SpanKind

from bench.pipeline import (
    INTAKE_MIGRATIONS,
    OUTCOMES_SITE_MIGRATIONS,
    SETTINGS,
    BaselineResult,
    Infrastructure,
    Options,
    PipelineResult,
    _deadline_loop,
    _round_timeout,
    create_topic,
    delete_topics,
    infrastructure,
    make_events,
    quiet_kafka_logs,
    run_baseline,
    run_pipeline,
    wire_records,
)
from shared.app import freeze_long_lived_objects
from shared.bus.kafka import TopicSpec, reliable_producer, start_with_timeout, stop_quietly
from shared.db.migrate import upgrade_to_head
from shared.events.envelope import JSON_CONTENT_TYPE, SPEC_VERSION, new_event_id
from shared.events.intake import PatientRegistered
from shared.events.registry import topic_for
from shared.telemetry import configure_tracing, trace_headers, tracer

DEFAULT_EVENTS = 20_000
QUICK_EVENTS = 200
DEFAULT_ROUNDS = 3
RELAY_BATCH = SETTINGS.outbox_batch_size
CONSUMER = "outcomes@ceiling"


def _stored_time(moment: datetime) -> str:
    """A time as SQLAlchemy stores a UtcDateTime in SQLite."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _connect(path: str) -> sqlite3.Connection:
    # Autocommit at the driver (isolation_level None): BEGIN and COMMIT are said here, as kapnet says them.
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


@dataclass
class CeilingResult:
    elapsed: float
    written_at: float
    cpu_seconds: float  # this process's, every thread's, over the same clock


class BareIntake:
    """Intake's side: the writer and the relay. They take turns on one connection to intake's file, as kapnet's
    Database does (one writing connection a process, its queue an asyncio one: nothing sleeps in SQLite's busy
    handler)."""

    def __init__(self, bootstrap: str, site: str, events: Sequence[PatientRegistered], path: str) -> None:
        self.bootstrap, self.events = bootstrap, events
        self.topic = topic_for(PatientRegistered, site)
        self.source = f"/kapnet/{site}/intake"
        self.ce_type = PatientRegistered.ce_type()
        self.db = _connect(path)
        self.turn = asyncio.Lock()
        self.written = asyncio.Event()
        self.published = 0
        self.writer_done = False
        self.producer = reliable_producer(bootstrap, SETTINGS.kafka_timeout_seconds)

    async def start(self) -> None:
        await start_with_timeout(self.producer, SETTINGS.kafka_timeout_seconds)
        await self.producer.partitions_for(self.topic)

    async def close(self) -> None:
        await stop_quietly(self.producer, SETTINGS.kafka_timeout_seconds)
        self.db.close()

    async def write(self, size: int) -> None:
        insert = (
            "INSERT INTO outbox_message (event_id, topic, partition_key, ce_type, headers, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        dataschema = f"urn:{self.ce_type}"
        for start in range(0, len(self.events), size):
            # A span per transaction, as the pipeline's writer has: the rows carry its traceparent.
            with tracer.start_as_current_span("bench register", kind=SpanKind.SERVER):
                trace = list(trace_headers().items())
                created_at = _stored_time(datetime.now(UTC))
                rows = []
                for event in self.events[start : start + size]:
                    event_id = new_event_id()
                    headers = [
                        ("ce_specversion", SPEC_VERSION),
                        ("ce_id", event_id),
                        ("ce_source", self.source),
                        ("ce_type", self.ce_type),
                        ("ce_time", datetime.now(UTC).isoformat().replace("+00:00", "Z")),
                        ("content-type", JSON_CONTENT_TYPE),
                        ("ce_subject", event.subject()),
                        ("ce_dataschema", dataschema),
                        *trace,
                    ]
                    key = event.partition_key()
                    payload = event.model_dump_json().encode()
                    rows.append((event_id, self.topic, key, self.ce_type, json.dumps(headers), payload, created_at))
                async with self.turn:
                    await asyncio.to_thread(self.db.execute, "BEGIN IMMEDIATE")
                    self.db.executemany(insert, rows)
                    await asyncio.to_thread(self.db.execute, "COMMIT")
            self.written.set()
        self.writer_done = True

    async def relay(self) -> None:
        select = (
            "SELECT id, topic, partition_key, headers, payload FROM outbox_message WHERE sent_at IS NULL "
            f"ORDER BY id LIMIT {RELAY_BATCH}"
        )
        while True:
            async with self.turn:
                rows = self.db.execute(select).fetchall()
            if not rows:
                self.written.clear()  # no await since the SELECT: a write in between cannot be missed
                await self.written.wait()
                continue
            futures = [
                await self.producer.send(
                    topic,
                    value=payload,
                    key=key.encode(),
                    headers=[(name, value.encode()) for name, value in json.loads(headers)],
                )
                for _id, topic, key, headers, payload in rows
            ]
            await asyncio.gather(*futures)
            ids = [row[0] for row in rows]
            async with self.turn:
                await asyncio.to_thread(self.db.execute, "BEGIN IMMEDIATE")
                self.db.execute(
                    f"UPDATE outbox_message SET sent_at = ? WHERE id IN ({','.join('?' * len(ids))})",
                    [_stored_time(datetime.now(UTC)), *ids],
                )
                await asyncio.to_thread(self.db.execute, "COMMIT")
            self.published += len(rows)


class BareOutcomes:
    """Outcomes' side: a group member with manual commits, its inbox and the registration's two rows."""

    def __init__(self, bootstrap: str, site: str, path: str) -> None:
        self.topic = topic_for(PatientRegistered, site)
        self.ce_type = PatientRegistered.ce_type()
        self.db = _connect(path)
        self.processed = 0
        self.consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=bootstrap,
            group_id=f"{CONSUMER}-{site}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    async def start(self) -> None:
        await start_with_timeout(self.consumer, SETTINGS.kafka_timeout_seconds)
        await _deadline_loop(lambda: bool(self.consumer.assignment()), 60.0, lambda: "the consumer's partitions")

    async def close(self) -> None:
        await stop_quietly(self.consumer, SETTINGS.kafka_timeout_seconds)
        self.db.close()

    async def consume(self) -> None:
        db = self.db
        ce_type = self.ce_type.encode()
        while True:
            fetched = await self.consumer.getmany(timeout_ms=500)
            records = [record for batch in fetched.values() for record in batch]
            if not records:
                continue
            received = _stored_time(datetime.now(UTC))
            taken: dict[str, tuple[PatientRegistered, str, int, int]] = {}
            for record in records:
                headers = dict(record.headers)
                if headers.get("ce_type") != ce_type:
                    raise RuntimeError(f"unexpected record at {record.topic}:{record.partition}@{record.offset}")
                event = PatientRegistered.model_validate_json(record.value or b"")
                taken[headers["ce_id"].decode()] = (event, record.topic, record.partition, record.offset)
            await asyncio.to_thread(db.execute, "BEGIN IMMEDIATE")
            ids = list(taken)
            seen = {
                row[0]
                for row in db.execute(
                    f"SELECT event_id FROM inbox_entry WHERE consumer = ? AND event_id IN ({','.join('?' * len(ids))})",
                    [CONSUMER, *ids],
                )
            }
            new = [(event_id, taken[event_id]) for event_id in ids if event_id not in seen]
            db.executemany(
                "INSERT INTO registration (patient_id, registered_month) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(e.patient_id.hex, e.registered_at.strftime("%Y-%m")) for _, (e, *_rest) in new],
            )
            db.executemany(
                "INSERT INTO outcome_patient (patient_id, birth_date, registered_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(e.patient_id.hex, e.birth_date.isoformat(), _stored_time(e.registered_at)) for _, (e, *_r) in new],
            )
            db.executemany(
                'INSERT INTO inbox_entry (consumer, event_id, ce_type, topic, partition, "offset", outcome, '
                "received_at) VALUES (?, ?, ?, ?, ?, ?, 'processed', ?)",
                [(CONSUMER, event_id, self.ce_type, t, p, o, received) for event_id, (_e, t, p, o) in new],
            )
            await asyncio.to_thread(db.execute, "COMMIT")
            await self.consumer.commit()
            self.processed += len(new)

    def check_done_once(self, expected: int) -> None:
        (rows,) = self.db.execute("SELECT count(*) FROM registration").fetchone()
        if rows != expected or self.processed != expected:
            raise RuntimeError(f"the bare pipeline did {rows} registrations ({self.processed} processed)")


async def bare_databases(infra: Infrastructure, site: str) -> tuple[str, str]:
    """Intake's and outcomes' fresh SQLite files, migrated as the services migrate themselves: their paths."""
    stem = site.replace("-", "_")
    paths = []
    for name, migrations in (("intake", INTAKE_MIGRATIONS), ("outcomes", OUTCOMES_SITE_MIGRATIONS)):
        url = infra.fresh_database(f"{stem}_{name}")
        await asyncio.to_thread(upgrade_to_head, url, migrations)
        paths.append(url.removeprefix("sqlite:///"))
    return paths[0], paths[1]


async def run_ceiling(
    infra: Infrastructure, site: str, events: Sequence[PatientRegistered], size: int
) -> CeilingResult:
    intake_path, outcomes_path = await bare_databases(infra, site)
    topic = TopicSpec(topic_for(PatientRegistered, site), partitions=SETTINGS.kafka_site_topic_partitions)
    await create_topic(infra.bootstrap, topic, SETTINGS.kafka_timeout_seconds)
    intake = BareIntake(infra.bootstrap, site, events, intake_path)
    outcomes = BareOutcomes(infra.bootstrap, site, outcomes_path)
    tasks: list[asyncio.Task[None]] = []
    try:
        await intake.start()
        await outcomes.start()
        tasks += [asyncio.create_task(outcomes.consume()), asyncio.create_task(intake.relay())]
        started, cpu_started = time.perf_counter(), time.process_time()
        tasks.append(asyncio.create_task(intake.write(size)))
        written_at = None

        def finished() -> bool:
            nonlocal written_at
            for task in tasks:
                if task.done() and task.exception() is not None:
                    raise RuntimeError("a bare pipeline task failed") from task.exception()
            if written_at is None and intake.writer_done:
                written_at = time.perf_counter() - started
            return outcomes.processed >= len(events)

        progress = lambda: f"{intake.published} published, {outcomes.processed} of {len(events)} processed"  # noqa: E731
        await _deadline_loop(finished, _round_timeout(len(events)), progress)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        outcomes.check_done_once(len(events))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await outcomes.close()
        await intake.close()
    assert written_at is not None
    return CeilingResult(elapsed, written_at, cpu)


@dataclass
class CeilingRound:
    baseline: BaselineResult
    pipeline: PipelineResult  # kapnet's own, as bench.pipeline runs it
    ceiling: CeilingResult
    events: int

    @property
    def baseline_rate(self) -> float:
        return self.events / self.baseline.elapsed

    @property
    def ceiling_rate(self) -> float:
        return self.events / self.ceiling.elapsed

    @property
    def ratio(self) -> float:
        return self.ceiling_rate / self.baseline_rate

    @property
    def pipeline_rate(self) -> float:
        return self.events / self.pipeline.elapsed

    @property
    def pipeline_cpu_us(self) -> float:
        return self.pipeline.cpu_seconds * 1e6 / self.events

    @property
    def baseline_cpu_us(self) -> float:
        return self.baseline.cpu_seconds * 1e6 / self.events

    @property
    def ceiling_cpu_us(self) -> float:
        return self.ceiling.cpu_seconds * 1e6 / self.events


async def run(options: Options, infra: Infrastructure) -> list[CeilingRound]:
    print(f"kafka:    {infra.kafka_note}")
    print(
        f"events:   {options.events} PatientRegistered per pass, outbox in transactions of {options.transaction_size}"
    )
    run_id = uuid.uuid4().hex[:8]
    warm_site = f"c{run_id}-warm"
    warm_topic = f"kapnet.{warm_site}.baseline.v1"
    try:
        warm = await run_baseline(infra, warm_topic, wire_records(make_events(warm_site, options.events), warm_site))
    finally:
        if not infra.owns_broker:
            await delete_topics(infra, [warm_topic])
    print(f"warm-up:  one baseline pass, not counted ({options.events / warm.elapsed:,.0f} ev/s)", flush=True)
    rounds = []
    for number in range(1, options.rounds + 1):
        site, bare_site = f"c{run_id}-r{number}", f"c{run_id}-r{number}b"
        events = make_events(site, options.events)
        bare_events = make_events(bare_site, options.events)
        records = wire_records(events, f"/kapnet/{site}/intake")
        freeze_long_lived_objects()
        baseline_topic = f"kapnet.{site}.baseline.v1"
        topics = [baseline_topic, topic_for(PatientRegistered, site), f"kapnet.{site}.outcomes.deadletter.v1"]
        topics.append(topic_for(PatientRegistered, bare_site))
        try:
            baseline = await run_baseline(infra, baseline_topic, records)
            pipeline = await run_pipeline(infra, site, events, options.transaction_size)
            ceiling = await run_ceiling(infra, bare_site, bare_events, options.transaction_size)
        finally:
            if not infra.owns_broker:  # leave a given broker as it was found
                await delete_topics(infra, topics)
        result = CeilingRound(baseline, pipeline, ceiling, options.events)
        rounds.append(result)
        print(
            f"round {number}  baseline {result.baseline_rate:>9,.0f} ev/s ({baseline.elapsed:.2f} s) | kapnet's "
            f"pipeline {result.pipeline_rate:>7,.0f} ev/s ({pipeline.elapsed:.2f} s), ratio "
            f"{result.pipeline_rate / result.baseline_rate:.3f} | bare pipeline {result.ceiling_rate:>7,.0f} ev/s "
            f"({ceiling.elapsed:.2f} s), ratio {result.ratio:.3f}\n"
            f"         CPU an event: baseline {result.baseline_cpu_us:.0f} µs, kapnet's pipeline "
            f"{result.pipeline_cpu_us:.0f} µs, bare pipeline {result.ceiling_cpu_us:.0f} µs; kapnet's rate / bare "
            f"{result.pipeline_rate / result.ceiling_rate:.3f}",
            flush=True,
        )
    return rounds


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_ceiling", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=None, help=f"events per round (default {DEFAULT_EVENTS})")
    parser.add_argument("--rounds", type=int, default=None, help=f"rounds (default {DEFAULT_ROUNDS})")
    parser.add_argument("--transaction-size", type=int, default=100, help="outbox events per transaction")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EVENTS} events, 1 round (a smoke test)")
    parser.add_argument("--json", type=Path, help="also write every round's figures and the medians here")
    args = parser.parse_args(argv)
    events = args.events if args.events is not None else (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else DEFAULT_ROUNDS)
    if events < 1 or rounds < 1 or args.transaction_size < 1:
        parser.error("--events, --rounds and --transaction-size must be at least 1")
    return Options(events, "sqlite", None, rounds, args.transaction_size, args.json)


def benchmark(argv: Sequence[str] | None = None) -> list[CeilingRound]:
    options = parse_args(argv)
    configure_tracing("bench@pipeline-ceiling")
    with infrastructure(options) as infra:
        rounds = asyncio.run(run(options, infra))
    median = statistics.median
    print(
        f"\nN = {options.events}, {len(rounds)} round(s); medians: baseline "
        f"{median(r.baseline_rate for r in rounds):,.0f} ev/s ({median(r.baseline_cpu_us for r in rounds):.0f} µs "
        f"CPU an event); kapnet's pipeline {median(r.pipeline_rate for r in rounds):,.0f} ev/s "
        f"({median(r.pipeline_cpu_us for r in rounds):.0f} µs), ratio "
        f"{median(r.pipeline_rate / r.baseline_rate for r in rounds):.3f}; bare pipeline "
        f"{median(r.ceiling_rate for r in rounds):,.0f} ev/s ({median(r.ceiling_cpu_us for r in rounds):.0f} µs), "
        f"ratio {median(r.ratio for r in rounds):.3f}"
    )
    if options.json_path is not None:
        each = [
            {
                "baseline_ev_s": round(r.baseline_rate),
                "pipeline_ev_s": round(r.pipeline_rate),
                "bare_pipeline_ev_s": round(r.ceiling_rate),
                "pipeline_ratio": round(r.pipeline_rate / r.baseline_rate, 4),
                "bare_pipeline_ratio": round(r.ratio, 4),
                "baseline_cpu_us_per_event": round(r.baseline_cpu_us),
                "pipeline_cpu_us_per_event": round(r.pipeline_cpu_us),
                "bare_pipeline_cpu_us_per_event": round(r.ceiling_cpu_us),
            }
            for r in rounds
        ]
        figures = {
            "benchmark": "pipeline-ceiling",
            "database": "sqlite",
            "events": options.events,
            "transaction_size": options.transaction_size,
            "rounds": each,
            "median": {name: statistics.median(r[name] for r in each) for name in each[0]},
        }
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(figures, indent=2) + "\n")
    return rounds


def main(argv: Sequence[str] | None = None) -> int:
    quiet_kafka_logs()
    benchmark(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
