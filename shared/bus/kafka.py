"""Kafka clients with the settings we need, not aiokafka's defaults (see KAFKA-NOTES.md)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)


def reliable_producer(bootstrap_servers: str, timeout_seconds: float) -> AIOKafkaProducer:
    # Idempotence forces acks=all and keeps per-partition order through the producer's own retries.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        enable_idempotence=True,
        request_timeout_ms=int(timeout_seconds * 1000),
        linger_ms=5,
        max_batch_size=256 * 1024,
    )


def manual_commit_consumer(
    bootstrap_servers: str, group_id: str, client_id: str, timeout_seconds: float
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        request_timeout_ms=max(int(timeout_seconds * 1000), 40000),
        # New topics show up within seconds rather than the 5-minute default.
        metadata_max_age_ms=5000,
    )


def cancelled_from_outside() -> bool:
    """Whether someone asked this task to stop. A CancelledError can also escape from inside aiokafka when
    nobody did (see stop_quietly); only this tells the two apart."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def raise_if_cancelling() -> None:
    """aiokafka sometimes turns a cancellation into a connection error; a loop that catches errors and retries
    would then outlive its own cancellation. Call this in such an ``except`` block."""
    if cancelled_from_outside():
        raise asyncio.CancelledError


def reraise_unless_recoverable(exc: BaseException) -> None:
    """For a loop that retries what went wrong: re-raise a real cancellation of this task and anything that is not
    an error (KeyboardInterrupt, SystemExit); let the loop retry the rest, a stray CancelledError included."""
    if isinstance(exc, asyncio.CancelledError):
        if cancelled_from_outside():
            raise exc
        return
    if not isinstance(exc, Exception):
        raise exc
    raise_if_cancelling()


async def start_with_timeout(client: AIOKafkaProducer | AIOKafkaConsumer, timeout_seconds: float) -> None:
    """``start()`` raises at once when the broker is down and may hang when it dies mid-way: bound it and
    leave no half-started client behind."""
    try:
        await asyncio.wait_for(client.start(), timeout_seconds)
    except BaseException:
        await stop_quietly(client, timeout_seconds)
        raise


async def stop_quietly(client: AIOKafkaProducer | AIOKafkaConsumer, timeout_seconds: float) -> None:
    try:
        await asyncio.wait_for(client.stop(), timeout_seconds)
    except asyncio.CancelledError:
        # aiokafka's stop() cancels its fetch tasks and awaits them; one asleep in its retry backoff after a broker
        # outage re-raises that CancelledError here, though nobody cancelled this task. Left to escape, it ended
        # the consumer's task for good, without a log line.
        if cancelled_from_outside():
            raise
        log.warning("kafka client stopped with a stray cancellation from its own tasks")
    except Exception as exc:  # a client that cannot stop cleanly is abandoned, not waited for forever
        raise_if_cancelling()
        log.warning("kafka client did not stop cleanly: %s", type(exc).__name__)


async def ensure_topics(bootstrap_servers: str, topics: list[TopicSpec], timeout_seconds: float) -> None:
    """Create the topics that do not exist yet (the broker does not auto-create them)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000))
    await asyncio.wait_for(admin.start(), timeout_seconds)
    try:
        existing = set(await asyncio.wait_for(admin.list_topics(), timeout_seconds))
        missing = [t for t in topics if t.name not in existing]
        if not missing:
            return
        response = await asyncio.wait_for(
            admin.create_topics(
                [NewTopic(t.name, t.partitions, t.replication_factor, topic_configs=t.config) for t in missing]
            ),
            timeout_seconds,
        )
        for error in response.to_object().get("topic_errors", []):
            code = error.get("error_code", 0)
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"cannot create topic {error.get('name')}: error {code}")
    finally:
        await asyncio.wait_for(admin.close(), timeout_seconds)


async def broker_answers(bootstrap_servers: str, timeout_seconds: float) -> bool:
    """True when a broker answers a metadata request within the timeout."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_seconds)
        return True
    except Exception:
        return False
    finally:
        try:
            await asyncio.wait_for(client.close(), timeout_seconds)
        except Exception:
            pass
