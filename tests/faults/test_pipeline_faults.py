"""The fault suite: a load of 10,000 registrations goes through intake's outbox, its relay, the broker and outcomes'
consumer, each stage in a process of its own (tests/faults/stage.py), and something breaks in the middle of it.
Every case ends by comparing outcomes' projection with the ground truth in intake's database: every event taken in
once, nothing lost, nothing counted twice. The 60-second broker outage under API writes is
tests/faults/test_broker_outage.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from deploy.kafka.launcher import KafkaNode, free_port
from shared.bus.kafka import TopicSpec, ensure_topics
from shared.db.database import Database, sync_url
from shared.db.migrate import upgrade_to_head
from shared.db.unit_of_work import UnitOfWork
from shared.events.intake import PatientRegistered
from shared.events.registry import topic_for
from tests.conftest import INTAKE_MIGRATIONS, OUTCOMES_SITE_MIGRATIONS
from tests.faults.stage import PARTITIONS, dead_letter_topic
from tests.harness import TEST_BROKER_JVM, PostgresDatabases, read_topic

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 10_000
PER_TRANSACTION = 100
# The writer's pace: the load lasts about 5 s, so a fault at 30 % lands in the middle of it.
WRITES_PER_SECOND = 2_000
SETTLE_SECONDS = 180.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaNode]:
    """A broker of this module's own: one case stops it."""
    with KafkaNode(tmp_path_factory.mktemp("faults") / "kafka", port=free_port(), jvm_options=TEST_BROKER_JVM) as node:
        yield node


def count(url: str, sql: str) -> int:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def column(url: str, sql: str) -> list[Any]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql)).scalars())
    finally:
        engine.dispose()


@dataclass
class Pipeline:
    broker: KafkaNode
    workdir: Path
    intake_url: str
    outcomes_url: str
    site: str = field(default_factory=lambda: f"f{uuid.uuid4().hex[:8]}")
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    written: int = 0

    @property
    def topic(self) -> str:
        return topic_for(PatientRegistered, self.site)

    def start(self, stage: str) -> subprocess.Popen[bytes]:
        database = self.intake_url if stage == "relay" else self.outcomes_url
        log = (self.workdir / f"{stage}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.faults.stage",
                stage,
                "--database",
                database,
                "--site",
                self.site,
                "--bootstrap",
                self.broker.bootstrap_servers,
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.processes.append(process)
        return process

    def running(self, stage: str) -> list[subprocess.Popen[bytes]]:
        return [q for q in self.processes if q.args[3] == stage and q.poll() is None]  # type: ignore[index]

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    @staticmethod
    def leave(process: subprocess.Popen[bytes]) -> None:
        """A clean stop: a consumer leaves its group, and the others take its partitions."""
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    def published(self) -> int:
        return count(self.intake_url, "SELECT count(*) FROM outbox_message WHERE sent_at IS NOT NULL")

    def processed(self) -> int:
        return count(self.outcomes_url, "SELECT count(*) FROM inbox_entry WHERE outcome = 'processed'")

    async def write(self) -> None:
        """EVENTS registrations into intake's outbox, PER_TRANSACTION per transaction, at WRITES_PER_SECOND."""
        database = Database(self.intake_url)
        started = time.monotonic()
        try:
            for first in range(0, EVENTS, PER_TRANSACTION):
                async with UnitOfWork(database, source=f"/kapnet/{self.site}/intake", site=self.site) as uow:
                    for n in range(first, first + PER_TRANSACTION):
                        await uow.publish(
                            PatientRegistered(
                                patient_id=uuid.uuid4(),
                                site=self.site,
                                mrn=f"F-{n:06d}",
                                birth_date=date(1960 + n % 40, 1 + n % 12, 1 + n % 28),
                                sex=("female", "male", "other")[n % 3],
                                registered_at=datetime.now(UTC),
                            )
                        )
                    await uow.commit()
                self.written = first + PER_TRANSACTION
                await asyncio.sleep(max(0.0, started + self.written / WRITES_PER_SECOND - time.monotonic()))
        finally:
            await database.dispose()

    async def when(self, progress: Callable[[], int], reaches: int) -> None:
        deadline = time.monotonic() + SETTLE_SECONDS
        while await asyncio.to_thread(progress) < reaches:
            if time.monotonic() > deadline:
                raise TimeoutError(f"progress stuck at {progress()} of {reaches}\n{self.logs()}")
            await asyncio.sleep(0.05)

    async def settled(self) -> float:
        """Seconds until every written event is published and taken in."""
        started = time.monotonic()
        await self.when(self.published, EVENTS)
        await self.when(self.processed, EVENTS)
        return time.monotonic() - started

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.workdir.glob("*.log")))

    async def assert_exactly_once(self, dead_lettered: int = 0) -> None:
        """outcomes' projection against the ground truth, intake's outbox: every event once, none twice."""
        await asyncio.sleep(1.0)  # a duplicate still on its way has a moment to land
        truth = column(self.intake_url, "SELECT event_id FROM outbox_message")
        payloads = column(self.intake_url, "SELECT payload FROM outbox_message")
        assert len(truth) == len(set(truth)) == EVENTS
        patients = {uuid.UUID(json.loads(bytes(payload))["patient_id"]) for payload in payloads}
        taken = column(self.outcomes_url, "SELECT event_id FROM inbox_entry WHERE outcome = 'processed'")
        assert len(taken) == EVENTS and set(taken) == set(truth), "each event taken in exactly once"
        registered = column(self.outcomes_url, "SELECT patient_id FROM registration")
        assert {uuid.UUID(str(p)) for p in registered} == patients and len(registered) == EVENTS
        assert count(self.outcomes_url, "SELECT count(*) FROM outcome_patient") == EVENTS
        assert count(self.outcomes_url, "SELECT count(*) FROM inbox_entry WHERE outcome != 'processed'") == 0
        if dead_lettered:
            parked = await read_topic(self.broker.bootstrap_servers, dead_letter_topic(self.site), dead_lettered)
            assert {r.value for r in parked} == {POISON}
        for process in self.processes:
            assert process.poll() in (None, 0, -signal.SIGKILL, -signal.SIGTERM), self.logs()


POISON = b"\x00 not a CloudEvent"


@asynccontextmanager
async def pipeline(broker: KafkaNode, workdir: Path, outcomes_url: str | None = None) -> AsyncIterator[Pipeline]:
    intake_url = f"sqlite:///{workdir / 'intake.db'}"
    outcomes_url = outcomes_url or f"sqlite:///{workdir / 'outcomes.db'}"
    await asyncio.to_thread(upgrade_to_head, intake_url, INTAKE_MIGRATIONS)
    await asyncio.to_thread(upgrade_to_head, outcomes_url, OUTCOMES_SITE_MIGRATIONS)
    p = Pipeline(broker, workdir, intake_url, outcomes_url)
    await ensure_topics(broker.bootstrap_servers, [TopicSpec(p.topic, partitions=PARTITIONS)], 10)
    try:
        yield p
    finally:
        for process in p.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


async def under_load(p: Pipeline, fault: Callable[[], Awaitable[None]]) -> float:
    """Start a relay and a consumer, write the load, break something on the way; seconds to settle after."""
    p.start("relay")
    p.start("consumer")
    writing = asyncio.create_task(p.write())
    try:
        await fault()
        await writing
    finally:
        writing.cancel()
        await asyncio.gather(writing, return_exceptions=True)
    settle = await p.settled()
    print(f"settled {settle:.1f} s after the load ended")
    return settle


async def test_a_relay_killed_mid_load_loses_nothing_and_doubles_nothing(broker: KafkaNode, tmp_path: Path) -> None:
    async with pipeline(broker, tmp_path) as p:

        async def kill_the_relay() -> None:
            await p.when(p.published, EVENTS * 3 // 10)
            [relay] = p.running("relay")
            p.kill(relay)
            await asyncio.sleep(1.0)
            p.start("relay")

        await under_load(p, kill_the_relay)
        await p.assert_exactly_once()


async def test_a_consumer_killed_mid_load_loses_nothing_and_doubles_nothing(broker: KafkaNode, tmp_path: Path) -> None:
    async with pipeline(broker, tmp_path) as p:

        async def kill_the_consumer() -> None:
            await p.when(p.processed, EVENTS * 3 // 10)
            [consumer] = p.running("consumer")
            p.kill(consumer)
            await asyncio.sleep(1.0)
            p.start("consumer")

        await under_load(p, kill_the_consumer)
        await p.assert_exactly_once()


async def test_a_hung_broker_resumed_mid_load_loses_nothing(broker: KafkaNode, tmp_path: Path) -> None:
    async with pipeline(broker, tmp_path) as p:

        async def hang_the_broker() -> None:
            await p.when(p.processed, EVENTS * 3 // 10)
            assert broker.pid is not None
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(8.0)  # past the clients' 3 s request timeout
            finally:
                os.kill(broker.pid, signal.SIGCONT)

        await under_load(p, hang_the_broker)
        await p.assert_exactly_once()


async def test_a_poison_record_mid_load_is_dead_lettered_and_the_rest_go_on(broker: KafkaNode, tmp_path: Path) -> None:
    async with pipeline(broker, tmp_path) as p:

        async def poison() -> None:
            await p.when(p.processed, EVENTS * 3 // 10)
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, enable_idempotence=True)
            await producer.start()
            try:
                await producer.send_and_wait(p.topic, value=POISON, key=b"poison")
            finally:
                await producer.stop()

        await under_load(p, poison)
        await p.assert_exactly_once(dead_lettered=1)


async def test_a_rebalance_mid_load_a_second_consumer_joins_then_leaves(broker: KafkaNode, tmp_path: Path) -> None:
    async with pipeline(broker, tmp_path) as p:
        joined = tmp_path / "consumer-2.log"

        def took_partitions() -> int:
            return int("assigned" in joined.read_text()) if joined.exists() else 0

        async def join_then_leave() -> None:
            await p.when(p.processed, EVENTS * 2 // 10)
            second = p.start("consumer")
            # It leaves once its joining has moved partitions to it. Waiting for 60 % processed instead raced its
            # start-up (1-2 s of imports) against a consumer that now gets through 40 % of the load in about that.
            await p.when(took_partitions, 1)
            p.leave(second)

        await under_load(p, join_then_leave)
        await p.assert_exactly_once()
        assert took_partitions(), p.logs()


async def test_a_database_briefly_unavailable_is_waited_for_and_no_offset_skips_work(
    broker: KafkaNode, tmp_path: Path, postgres: PostgresDatabases
) -> None:
    """outcomes' database on PostgreSQL refuses every connection for 4 s: the consumer's transaction fails, it
    retries, stops without committing an offset, and starts again; nothing is dead-lettered or skipped."""
    outcomes_url = postgres.fresh()
    name = make_url(outcomes_url).database
    admin = create_engine(
        sync_url(make_url(outcomes_url).set(database="postgres").render_as_string(hide_password=False)),
        isolation_level="AUTOCOMMIT",
    )
    async with pipeline(broker, tmp_path, outcomes_url) as p:

        async def take_the_database_away() -> None:
            await p.when(p.processed, EVENTS * 3 // 10)
            with admin.connect() as connection:
                connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
                connection.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                    {"name": name},
                )
            await asyncio.sleep(4.0)
            with admin.connect() as connection:
                connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))

        try:
            await under_load(p, take_the_database_away)
        finally:
            admin.dispose()
        await p.assert_exactly_once()
        logs = p.logs()
        assert "consumer stopped" in logs or "failed (attempt" in logs, logs
