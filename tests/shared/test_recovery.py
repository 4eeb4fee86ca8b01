"""Background work comes back by itself: a stray cancellation from inside aiokafka does not end a consumer, a task
that ends is restarted, a consumer resumes after the broker is gone and back, and repeats of a chatty library's
log lines are held back."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select

from deploy.kafka.launcher import KafkaNode, free_port
from services.outcomes import handlers
from services.outcomes.models import Registration
from shared.bus.consumer import ConsumerConfig, EventConsumer
from shared.bus.kafka import TopicSpec, stop_quietly
from shared.db.database import Database
from shared.events.intake import PatientRegistered
from shared.logs import OncePerInterval
from shared.supervision import Supervisor
from tests.harness import TEST_BROKER_JVM, eventually
from tests.shared.events_for_tests import registration
from tests.shared.test_consumer import as_record


class _ClientWhoseStopRaisesCancelled:
    """What aiokafka's stop() does after a broker outage: it cancels its own fetch task, asleep in its retry
    backoff, awaits it, and so raises CancelledError into a caller nobody cancelled (issue: hardening)."""

    async def stop(self) -> None:
        raise asyncio.CancelledError


async def test_a_stray_cancellation_from_stop_does_not_escape() -> None:
    await stop_quietly(_ClientWhoseStopRaisesCancelled(), 1.0)  # type: ignore[arg-type]


async def test_a_real_cancellation_still_stops_the_caller() -> None:
    started = asyncio.Event()

    async def stopping() -> None:
        started.set()
        await asyncio.sleep(10)
        await stop_quietly(_ClientWhoseStopRaisesCancelled(), 1.0)  # type: ignore[arg-type]

    task = asyncio.create_task(stopping())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_supervisor_restarts_a_job_that_fails_returns_or_is_cancelled_from_inside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shared.supervision.FIRST_BACKOFF_SECONDS", 0.01)
    ends = [RuntimeError("boom"), None, asyncio.CancelledError()]
    runs = 0
    steady = asyncio.Event()

    async def job() -> None:
        nonlocal runs
        runs += 1
        if ends:
            end = ends.pop(0)
            if end is not None:
                raise end
            return
        steady.set()
        await asyncio.sleep(60)

    supervisor = Supervisor()
    task = asyncio.create_task(supervisor.keep_running("job", job))
    await asyncio.wait_for(steady.wait(), 5)
    assert (runs, supervisor.restarts["job"]) == (4, 3)
    assert supervisor.ended["job"].startswith("CancelledError")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_repeats_of_a_chatty_logger_are_held_back_and_counted() -> None:
    sieve = OncePerInterval(interval=60)

    def record(name: str, host: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, 'Unable connect to "%s"', (host,), None)

    passed = [sieve.filter(record("aiokafka.client", f"h{n}")) for n in range(1000)]
    assert passed.count(True) == 1, "one line for a thousand reconnection attempts"
    assert sieve.filter(record("shared.bus.consumer", "x")), "kapnet's own lines are not held back"
    sieve._last = {key: 0.0 for key in sieve._last}  # the interval has passed
    summary = record("aiokafka.client", "h")
    assert sieve.filter(summary) and "999 more like this" in str(summary.msg)


# --- against a real broker that goes away and comes back -------------------------------------------------------


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[KafkaNode]:
    with KafkaNode(tmp_path / "kafka", port=free_port(), jvm_options=TEST_BROKER_JVM) as node:
        yield node


@pytest.fixture
async def outcomes_sqlite(tmp_path: Path) -> AsyncIterator[Database]:
    from shared.db.migrate import upgrade_to_head
    from tests.conftest import OUTCOMES_SITE_MIGRATIONS

    url = f"sqlite:///{tmp_path / 'outcomes.db'}"
    await asyncio.to_thread(upgrade_to_head, url, OUTCOMES_SITE_MIGRATIONS)
    database = Database(url)
    yield database
    await database.dispose()


@pytest.mark.broker
async def test_a_consumer_resumes_by_itself_after_the_broker_is_gone(
    own_broker: KafkaNode, outcomes_sqlite: Database
) -> None:
    topic, group = f"kapnet.rec{uuid.uuid4().hex[:6]}.intake.v1", f"outcomes@rec{uuid.uuid4().hex[:6]}"
    consumer = EventConsumer(
        outcomes_sqlite,
        ConsumerConfig(
            name=group,
            topics=[TopicSpec(topic, partitions=2)],
            dead_letter_topic=f"{topic}.deadletter",
            source="/test/outcomes",
            site="north",
            bootstrap_servers=own_broker.bootstrap_servers,
            timeout_seconds=2,
        ),
        {PatientRegistered: handlers.on_patient_registered},
    )

    async def registrations() -> int:
        async with outcomes_sqlite.sessions() as session:
            return int((await session.exec(select(func.count()).select_from(Registration))).one())

    async def produce(count: int) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=own_broker.bootstrap_servers, enable_idempotence=True)
        await producer.start()
        try:
            for _ in range(count):
                headers, value, key = as_record(registration("north"))
                await producer.send_and_wait(topic, value=value, key=key, headers=headers)
        finally:
            await producer.stop()

    async def registrations_are(n: int) -> bool:
        return await registrations() == n

    task = asyncio.create_task(consumer.run())
    try:
        await produce(5)
        await eventually(lambda: registrations_are(5), within=60, what="5 before the outage")
        # Records still arriving as the broker dies: the consumer's commit meets a dead broker.
        await produce(3)
        await asyncio.to_thread(own_broker.stop)
        await asyncio.sleep(12)  # several of the consumer's backoff steps with no broker at all (0.5, 1, 2, 4 s)
        assert not task.done(), "the consumer task is still alive"
        await asyncio.to_thread(own_broker.start)
        await produce(5)
        await eventually(lambda: registrations_are(13), within=120, what="all 13 after the outage")
        await eventually(lambda: consumer.health.running and consumer.health.lag == 0, within=30, what="caught up")
        assert consumer.health.problem() is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
