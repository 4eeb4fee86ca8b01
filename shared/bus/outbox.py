"""The outbox relay: publishes committed outbox rows to Kafka in sequence order, then marks them sent.

One relay per service database. It is woken when a transaction that wrote events commits, and polls as a
fallback (another process may have written, or a wake-up was missed). A broker that is down delays events
and loses none: rows stay unsent until a publish is acknowledged. A relay killed between the broker's
acknowledgement and the marking publishes those rows again on restart; consumers' inboxes absorb that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind
from sqlalchemy import func, update
from sqlmodel import col, select

from shared.bus.kafka import (
    MAX_RECONNECT_BACKOFF_SECONDS,
    KafkaAccess,
    raise_if_cancelling,
    reliable_producer,
    reraise_unless_recoverable,
    start_with_timeout,
    stop_quietly,
)
from shared.bus.tables import OutboxMessage, utcnow
from shared.db.database import Database
from shared.db.id_lists import IDS, one_of
from shared.db.types import UtcDateTime
from shared.events.envelope import kafka_timestamp_ms
from shared.telemetry import links_to_senders, span_in_context

log = logging.getLogger(__name__)

# A sent batch's mark, built once (shared/db/id_lists.py). No ORM synchronisation: the relay's session holds no
# outbox objects to keep in step.
_MARK_SENT = (
    update(OutboxMessage)
    .where(one_of(OutboxMessage.id))
    .values(sent_at=sa.bindparam("sent_at", type_=UtcDateTime()), attempts=OutboxMessage.attempts + 1)  # type: ignore[operator]
    .execution_options(synchronize_session=False)
)


class PendingEvent(NamedTuple):
    """An outbox row not yet acknowledged by the broker: what the relay sends."""

    id: int
    event_id: str
    topic: str
    partition_key: str
    # The stored JSON text, read as the record is sent: a batch's rows live until the broker acknowledges them,
    # and ten lists per row held that long made most of the relay's garbage collection.
    headers: str
    payload: bytes

    def header_pairs(self) -> list[list[str]]:
        pairs: list[list[str]] = json.loads(self.headers)
        return pairs


def _carriers(rows: list[PendingEvent]) -> Iterator[Iterator[tuple[str, str]]]:
    """Each row's headers for its span link, parsed only when links_to_senders reads them: it stops reading at
    its cap of links, and counts the rest as unlinked."""
    return (_header_pairs(row) for row in rows)


def _header_pairs(row: PendingEvent) -> Iterator[tuple[str, str]]:
    # A generator function: nothing is parsed until links_to_senders asks for the first pair.
    pairs = row.header_pairs()
    yield from ((name, value) for name, value in pairs)


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        bootstrap_servers: KafkaAccess | str,
        *,
        timeout_seconds: float = 10.0,
        poll_interval_seconds: float = 1.0,
        batch_size: int = 500,
    ) -> None:
        self.database = database
        # The broker and the service's own principal (a plain address: an unauthenticated PLAINTEXT broker).
        self.kafka = KafkaAccess.of(bootstrap_servers)
        self.timeout_seconds = timeout_seconds
        self.poll_interval_seconds = poll_interval_seconds
        self.batch_size = batch_size
        self._producer: AIOKafkaProducer | None = None
        self.published_total = 0
        self.last_error: str | None = None

    async def run(self) -> None:
        """Publish until cancelled. Broker errors back off and retry; they never end the loop."""
        backoff = 0.2
        # Woken by writes in other instances of the service too, not only by this process's own.
        listener = asyncio.create_task(self.database.listen_for_outbox_writes())
        try:
            while True:
                raise_if_cancelling()  # a cancellation lost by 3.11's wait_for is still counted (EventConsumer)
                try:
                    published = await self.publish_pending()
                    backoff = 0.2
                    self.last_error = None
                    if published >= self.batch_size:
                        continue  # more may be waiting: do not sleep
                    await self._wait_for_work()
                except BaseException as exc:
                    reraise_unless_recoverable(exc)
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("outbox relay: publish failed (%s); retrying in %.1fs", self.last_error, backoff)
                    await self._drop_producer()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_RECONNECT_BACKOFF_SECONDS)
        finally:
            listener.cancel()
            # Bounded: stopping must not wait on a database driver that does not let go.
            await asyncio.wait({listener}, timeout=self.timeout_seconds)
            await self._drop_producer()

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows in sequence order; returns how many were acknowledged."""
        self.database.outbox_written.clear()
        async with self.database.sessions() as session:
            # The columns, not ORM objects: building 500 mapped objects per batch cost more than the query.
            rows = [
                PendingEvent(*row)
                for row in await session.execute(
                    sa.select(
                        col(OutboxMessage.id),
                        col(OutboxMessage.event_id),
                        col(OutboxMessage.topic),
                        col(OutboxMessage.partition_key),
                        sa.cast(col(OutboxMessage.headers), sa.Text),
                        col(OutboxMessage.payload),
                    )
                    .where(col(OutboxMessage.sent_at).is_(None))
                    .order_by(col(OutboxMessage.id))
                    .limit(self.batch_size)
                )
            ]
        if not rows:
            return 0
        producer = await self._ensure_producer()
        acknowledged = await self._send(producer, list(rows))
        if acknowledged:
            await self._mark_sent([row.id for row in acknowledged], utcnow())
            self.published_total += len(acknowledged)
        if len(acknowledged) < len(rows):
            raise RuntimeError(f"{len(rows) - len(acknowledged)} of {len(rows)} events not acknowledged")
        return len(acknowledged)

    async def _send(self, producer: AIOKafkaProducer, rows: list[PendingEvent]) -> list[PendingEvent]:
        """Send the batch and wait for acknowledgements; return the acknowledged prefix (order matters:
        a row after a failed one must not be marked, or a retry would reorder a key)."""

        async def enqueue() -> list[asyncio.Future[object]]:
            futures = []
            for row in rows:
                # The headers as the request's transaction stored them: their traceparent is the event's creation
                # context, which the consumer continues (a span per event here cost a third of the relay's time).
                pairs = row.header_pairs()
                futures.append(
                    await producer.send(
                        row.topic,
                        value=row.payload,
                        key=row.partition_key.encode(),
                        headers=[(name, value.encode()) for name, value in pairs],
                        timestamp_ms=kafka_timestamp_ms((name, value) for name, value in pairs),
                    )
                )
            return futures

        with self._publish_span(rows):
            async with asyncio.timeout(self.timeout_seconds):  # not wait_for, which can lose a cancellation
                futures = await enqueue()
            async with asyncio.timeout(self.timeout_seconds):
                results = await asyncio.gather(*futures, return_exceptions=True)
        acknowledged: list[PendingEvent] = []
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("outbox relay: event %s not acknowledged: %s", row.event_id, type(result).__name__)
                break
            acknowledged.append(row)
        return acknowledged

    def _publish_span(self, rows: list[PendingEvent]) -> AbstractContextManager[Span]:
        """One producer span for a batch, until the broker acknowledges it, linked to each event's creation
        context (OpenTelemetry's messaging conventions for a batch sent apart from where its messages were made)."""
        links, unlinked = links_to_senders(_carriers(rows))
        topics = {row.topic for row in rows}
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.batch.message_count": len(rows),
            "kapnet.batch.unlinked_count": unlinked,
        }
        if len(topics) == 1:
            attributes["messaging.destination.name"] = rows[0].topic
        name = f"{rows[0].topic} publish" if len(topics) == 1 else f"{len(topics)} topics publish"
        return span_in_context(name, otel_context.Context(), SpanKind.PRODUCER, attributes, links)

    async def _mark_sent(self, ids: list[int], when: datetime) -> None:
        async with self.database.sessions() as session, session.begin():
            await session.execute(_MARK_SENT, {IDS: ids, "sent_at": when})

    async def _wait_for_work(self) -> None:
        # asyncio.timeout, not wait_for: in Python 3.11 wait_for can swallow a cancellation that meets the wake-up.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_interval_seconds):
                await self.database.outbox_written.wait()

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = reliable_producer(self.kafka, self.timeout_seconds)
            await start_with_timeout(producer, self.timeout_seconds)
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await stop_quietly(producer, self.timeout_seconds)

    async def pending_count(self) -> int:
        async with self.database.sessions() as session:
            result = await session.exec(
                select(func.count()).select_from(OutboxMessage).where(col(OutboxMessage.sent_at).is_(None))
            )
            return int(result.one())
