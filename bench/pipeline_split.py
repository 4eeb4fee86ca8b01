"""The pipeline as production runs it, in two processes, against raw aiokafka in two processes.

    python -m bench.pipeline_split [--events N] [--database sqlite|postgresql] [--rounds R] [--json PATH]

``bench/pipeline.py`` runs the writer, the relay and the consumer on one event loop, and its baseline's producer
and consumer on one loop too. In production the relay runs in intake's process (beside the API's writes) and the
consumer in outcomes' own. Here:

- Pipeline: intake's process (this one) writes N ``PatientRegistered`` to its outbox through ``UnitOfWork``
  (T events a transaction) while its ``OutboxRelay`` publishes them; outcomes' process (a child) runs
  ``EventConsumer`` with the real ``on_patient_registered``. Clock: the first outbox write to the commit of the
  N-th registration, as the child reports it.
- Baseline: the same records from an idempotent ``AIOKafkaProducer`` in this process, read by a plain
  ``AIOKafkaConsumer`` in a child. Clock: the first send to the N-th record read.
- Bare pipeline (SQLite only): the same durable work in bare Python (``bench/pipeline_ceiling.py``), split the
  same way: its writer and relay here, its consumer in a child. What two processes allow this design at best.

Both children join or are assigned before the clock starts. The clocks compare because ``time.perf_counter`` is
the system's monotonic clock, one for every process. The machine's cores are shared by the two processes and the
broker. Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.pipeline import (
    INTAKE_MIGRATIONS,
    OUTCOMES_SITE_MIGRATIONS,
    POLL_SECONDS,
    SETTINGS,
    Infrastructure,
    WireRecord,
    _deadline_loop,
    _round_timeout,
    check_done_once,
    create_topic,
    delete_topics,
    infrastructure,
    intake_relay,
    joined,
    make_events,
    outcomes_consumer,
    quiet_kafka_logs,
    wire_records,
    write_outbox,
)
from bench.pipeline import Options as InfrastructureOptions
from bench.pipeline_ceiling import BareIntake, BareOutcomes, bare_databases
from shared.app import freeze_long_lived_objects
from shared.bus.kafka import TopicSpec, reliable_producer, start_with_timeout, stop_quietly
from shared.db.database import Database
from shared.db.migrate import upgrade_to_head
from shared.events.intake import PatientRegistered
from shared.events.registry import topic_for
from shared.telemetry import configure_tracing

DEFAULT_EVENTS = 20000
DEFAULT_ROUNDS = 3
DEFAULT_TRANSACTION_SIZE = 100
# How long a child may take to start, join its group or be assigned its partitions.
CHILD_READY_SECONDS = 90.0


@dataclass(frozen=True)
class ConsumerTask:
    """What a child process consumes: a pipeline's (outcomes' EventConsumer into ``database_url``) or the
    baseline's (a plain consumer; ``database_url`` None)."""

    bootstrap: str
    site: str
    topic: str
    events: int
    database_url: str | None
    bare: bool = False  # the bare pipeline's consumer (bench/pipeline_ceiling.py) into ``database_url``


def consumer_process(task: ConsumerTask, reply: Connection) -> None:
    """A child's entry point: get ready, say so, consume N events, report when the last one was done
    (perf_counter, system-wide) or why it failed. Plain tuples: a class of this module is ``__mp_main__``'s in
    the child, which the parent could not unpickle."""
    configure_tracing("bench@outcomes")  # as the service: the consumer continues the records' traces
    quiet_kafka_logs()
    try:
        run = _plain_consumer if task.database_url is None else _bare_consumer if task.bare else _pipeline_consumer
        at = asyncio.run(run(task, reply))
        reply.send(("done", at))
    except Exception as exc:  # reported to the parent, which fails the round with it
        reply.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        reply.close()


async def _pipeline_consumer(task: ConsumerTask, reply: Connection) -> float:
    assert task.database_url is not None
    database = Database(task.database_url)
    spec = TopicSpec(task.topic, partitions=SETTINGS.kafka_site_topic_partitions)
    consumer = outcomes_consumer(database, task.bootstrap, task.site, spec)
    running = asyncio.create_task(consumer.run())
    try:
        await database.ping()
        await joined(consumer)
        freeze_long_lived_objects()  # as the service's process once started (shared/app.py serve)
        reply.send("ready")

        def done() -> bool:
            if running.done():
                raise RuntimeError(f"the consumer stopped: {running.exception()!r}")
            if consumer.dead_lettered_total:
                raise RuntimeError(f"{consumer.dead_lettered_total} events were dead-lettered")
            return consumer.processed_total >= task.events

        await _deadline_loop(done, _round_timeout(task.events), lambda: f"{consumer.processed_total} processed")
        at = time.perf_counter()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await check_done_once(database, consumer, task.events)
        return at
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await database.dispose()


async def _bare_consumer(task: ConsumerTask, reply: Connection) -> float:
    assert task.database_url is not None
    outcomes = BareOutcomes(task.bootstrap, task.site, task.database_url.removeprefix("sqlite:///"))
    running: asyncio.Task[None] | None = None
    try:
        await outcomes.start()
        freeze_long_lived_objects()  # as the pipeline's child
        reply.send("ready")
        consuming = running = asyncio.create_task(outcomes.consume())

        def done() -> bool:
            if consuming.done():
                raise RuntimeError(f"the bare consumer stopped: {consuming.exception()!r}")
            return outcomes.processed >= task.events

        await _deadline_loop(done, _round_timeout(task.events), lambda: f"{outcomes.processed} processed")
        at = time.perf_counter()
        outcomes.check_done_once(task.events)
        return at
    finally:
        if running is not None:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        await outcomes.close()


async def _plain_consumer(task: ConsumerTask, reply: Connection) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=task.bootstrap, enable_auto_commit=False)
    await start_with_timeout(consumer, SETTINGS.kafka_timeout_seconds)
    try:
        consumer.assign([TopicPartition(task.topic, p) for p in range(SETTINGS.kafka_site_topic_partitions)])
        await consumer.seek_to_beginning()
        await consumer.getmany(timeout_ms=100)  # start-up is not throughput (as bench/pipeline.py)
        freeze_long_lived_objects()  # as the pipeline's child
        reply.send("ready")
        received = 0

        async def fetch() -> None:
            nonlocal received
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                received += len(batch)

        await _deadline_loop(
            lambda: received >= task.events, _round_timeout(task.events), lambda: f"{received} read", fetch
        )
        return time.perf_counter()
    finally:
        await stop_quietly(consumer, SETTINGS.kafka_timeout_seconds)


class Child:
    """A consumer process of this round, and the pipe it reports on."""

    def __init__(self, task: ConsumerTask) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no event loop or sockets inherited
        self.replies, ends = context.Pipe(duplex=False)
        self.process = context.Process(target=consumer_process, args=(task, ends), daemon=True)
        self.process.start()
        ends.close()

    async def _receive(self, within: float) -> object:
        if not await asyncio.to_thread(self.replies.poll, within):
            raise TimeoutError(f"no word from the consumer process within {within:.0f} s")
        return self.replies.recv()

    async def ready(self) -> None:
        said = await self._receive(CHILD_READY_SECONDS)
        if said != "ready":
            raise RuntimeError(f"the consumer process failed to start: {said}")

    async def finished(self, within: float) -> float:
        said = await self._receive(within)
        match said:
            case ("done", float(at)):
                return at
            case _:
                raise RuntimeError(f"the consumer process failed: {said}")

    async def finished_beside(self, tasks: Sequence[asyncio.Task[None]], events: int) -> float:
        """``finished``, while this process's writer and relay run: one that fails fails the round at once, not
        at the timeout."""
        finishing = asyncio.create_task(self.finished(_round_timeout(events)))
        while not finishing.done():
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    finishing.cancel()
                    raise RuntimeError("the writer or the relay failed") from task.exception()
            await asyncio.sleep(POLL_SECONDS * 10)
        return finishing.result()

    def stop(self) -> None:
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.replies.close()


@dataclass(frozen=True)
class SplitRound:
    events: int
    baseline_seconds: float
    pipeline_seconds: float
    bare_seconds: float | None  # None on PostgreSQL

    @property
    def bare_rate(self) -> float | None:
        return None if self.bare_seconds is None else self.events / self.bare_seconds

    @property
    def baseline_rate(self) -> float:
        return self.events / self.baseline_seconds

    @property
    def pipeline_rate(self) -> float:
        return self.events / self.pipeline_seconds

    @property
    def ratio(self) -> float:
        return self.pipeline_rate / self.baseline_rate


async def run_baseline(infra: Infrastructure, topic: str, records: Sequence[WireRecord]) -> float:
    await create_topic(infra.bootstrap, TopicSpec(topic, partitions=SETTINGS.kafka_site_topic_partitions), 30)
    producer = reliable_producer(infra.bootstrap, SETTINGS.kafka_timeout_seconds)  # the relay's, as bench/pipeline.py
    await start_with_timeout(producer, SETTINGS.kafka_timeout_seconds)
    child = Child(ConsumerTask(infra.bootstrap, "baseline", topic, len(records), None))
    try:
        await producer.partitions_for(topic)
        await child.ready()
        started = time.perf_counter()
        futures = [await producer.send(topic, value=r.value, key=r.key, headers=list(r.headers)) for r in records]
        await asyncio.gather(*futures)
        return await child.finished(_round_timeout(len(records))) - started
    finally:
        await stop_quietly(producer, SETTINGS.kafka_timeout_seconds)
        child.stop()


async def run_pipeline(infra: Infrastructure, site: str, events: Sequence[PatientRegistered], size: int) -> float:
    stem = site.replace("-", "_")
    urls = []
    for name, migrations in (("intake", INTAKE_MIGRATIONS), ("outcomes", OUTCOMES_SITE_MIGRATIONS)):
        url = await asyncio.to_thread(infra.fresh_database, f"{stem}_{name}")
        urls.append(url)
        await asyncio.to_thread(upgrade_to_head, url, migrations)
    topic = TopicSpec(topic_for(PatientRegistered, site), partitions=SETTINGS.kafka_site_topic_partitions)
    await create_topic(infra.bootstrap, topic, SETTINGS.kafka_timeout_seconds)
    intake = Database(urls[0])
    relay = intake_relay(intake, infra.bootstrap)
    child = Child(ConsumerTask(infra.bootstrap, site, topic.name, len(events), urls[1]))
    tasks: list[asyncio.Task[None]] = []
    try:
        await intake.ping()
        producer = await relay._ensure_producer()  # warm, as bench/pipeline.py's Rig.warm_relay
        await producer.partitions_for(topic.name)
        await child.ready()
        tasks.append(asyncio.create_task(relay.run()))
        await asyncio.sleep(0.05)  # the relay's first (empty) look at the outbox happens before the clock
        started = time.perf_counter()
        tasks.append(asyncio.create_task(write_outbox(intake, site, events, size)))
        return await child.finished_beside(tasks, len(events)) - started
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await intake.dispose()
        child.stop()
        for url in urls:
            await asyncio.to_thread(infra.drop_database, url)


async def run_bare_pipeline(infra: Infrastructure, site: str, events: Sequence[PatientRegistered], size: int) -> float:
    intake_path, outcomes_path = await bare_databases(infra, site)
    topic = TopicSpec(topic_for(PatientRegistered, site), partitions=SETTINGS.kafka_site_topic_partitions)
    await create_topic(infra.bootstrap, topic, SETTINGS.kafka_timeout_seconds)
    intake = BareIntake(infra.bootstrap, site, events, intake_path)
    child = Child(ConsumerTask(infra.bootstrap, site, topic.name, len(events), f"sqlite:///{outcomes_path}", True))
    tasks: list[asyncio.Task[None]] = []
    try:
        await intake.start()
        await child.ready()
        tasks.append(asyncio.create_task(intake.relay()))
        started = time.perf_counter()
        tasks.append(asyncio.create_task(intake.write(size)))
        return await child.finished_beside(tasks, len(events)) - started
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await intake.close()
        child.stop()


async def run(options: SplitOptions, infra: Infrastructure) -> list[SplitRound]:
    print(f"kafka:    {infra.kafka_note}")
    print(f"database: {infra.database_note}")
    print(
        f"events:   {options.events} PatientRegistered per pass, outbox in transactions of "
        f"{options.transaction_size}; intake (writer + relay) in this process, outcomes' consumer in another",
        flush=True,
    )
    run_id = uuid.uuid4().hex[:8]
    rounds: list[SplitRound] = []
    for number in range(0, options.rounds + 1):  # round 0 warms a just-started broker and is not counted
        site = f"s{run_id}-r{number}"
        events = make_events(site, options.events)
        records = wire_records(events, f"/kapnet/{site}/intake")
        freeze_long_lived_objects()  # as bench/pipeline.py, and as a service once started (shared/app.py serve)
        baseline_topic = f"kapnet.{site}.baseline.v1"
        bare_site = f"{site}b"
        topics = [baseline_topic, topic_for(PatientRegistered, site), f"kapnet.{site}.outcomes.deadletter.v1"]
        topics.append(topic_for(PatientRegistered, bare_site))
        bare = None
        try:
            baseline = await run_baseline(infra, baseline_topic, records)
            pipeline = await run_pipeline(infra, site, events, options.transaction_size)
            if infra.database == "sqlite":
                bare_events = make_events(bare_site, options.events)
                bare = await run_bare_pipeline(infra, bare_site, bare_events, options.transaction_size)
        finally:
            if not infra.owns_broker:
                await delete_topics(infra, topics)
        result = SplitRound(options.events, baseline, pipeline, bare)
        label = "warm-up (not counted)" if number == 0 else f"round {number}"
        bare_text = (
            ""
            if bare is None
            else f" | bare pipeline {options.events / bare:>7,.0f} ev/s ({bare:5.2f} s), ratio "
            f"{options.events / bare / result.baseline_rate:.3f}"
        )
        print(
            f"{label:22} baseline {result.baseline_rate:>9,.0f} ev/s ({baseline:5.2f} s) | "
            f"pipeline {result.pipeline_rate:>8,.0f} ev/s ({pipeline:5.2f} s) | ratio {result.ratio:.3f}{bare_text}",
            flush=True,
        )
        if number:
            rounds.append(result)
    return rounds


@dataclass(frozen=True)
class SplitOptions:
    events: int
    database: str
    rounds: int
    transaction_size: int
    json_path: Path | None


def parse_args(argv: Sequence[str] | None) -> SplitOptions:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_split", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--transaction-size", type=int, default=DEFAULT_TRANSACTION_SIZE)
    parser.add_argument("--json", type=Path, help="also write every round's figures and the medians here")
    args = parser.parse_args(argv)
    if args.events < 1 or args.rounds < 1 or args.transaction_size < 1:
        parser.error("--events, --rounds and --transaction-size must be at least 1")
    return SplitOptions(args.events, args.database, args.rounds, args.transaction_size, args.json)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    quiet_kafka_logs()
    configure_tracing("bench@intake")  # real spans, so records carry traceparent as in production
    given = InfrastructureOptions(options.events, options.database, None, options.rounds, options.transaction_size)
    with infrastructure(given) as infra:
        try:
            rounds = asyncio.run(run(options, infra))
        finally:
            gc.unfreeze()  # a caller in the same process (a test) gets its collector back as it was
    median: dict[str, float] = {
        "baseline_ev_s": round(statistics.median(r.baseline_rate for r in rounds)),
        "pipeline_ev_s": round(statistics.median(r.pipeline_rate for r in rounds)),
        "ratio": round(statistics.median(r.ratio for r in rounds), 4),
    }
    bare_rates = [(rate, r.baseline_rate) for r in rounds if (rate := r.bare_rate) is not None]
    if bare_rates:
        median["bare_pipeline_ev_s"] = round(statistics.median(rate for rate, _ in bare_rates))
        median["bare_pipeline_ratio"] = round(statistics.median(rate / base for rate, base in bare_rates), 4)
    print(
        f"\nN = {options.events}, {options.database}, {len(rounds)} rounds; medians: baseline "
        f"{median['baseline_ev_s']:,} ev/s, pipeline {median['pipeline_ev_s']:,} ev/s, ratio {median['ratio']:.3f}"
        + (
            f"; bare pipeline {median['bare_pipeline_ev_s']:,} ev/s, ratio {median['bare_pipeline_ratio']:.3f}"
            if "bare_pipeline_ev_s" in median
            else ""
        )
    )
    if options.json_path is not None:
        figures = {
            "benchmark": "pipeline_split",
            "database": options.database,
            "events": options.events,
            "transaction_size": options.transaction_size,
            "rounds": [
                {
                    "baseline_ev_s": round(r.baseline_rate),
                    "pipeline_ev_s": round(r.pipeline_rate),
                    "ratio": round(r.ratio, 4),
                    **(
                        {}
                        if (rate := r.bare_rate) is None
                        else {
                            "bare_pipeline_ev_s": round(rate),
                            "bare_pipeline_ratio": round(rate / r.baseline_rate, 4),
                        }
                    ),
                }
                for r in rounds
            ],
            "median": median,
        }
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {options.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
