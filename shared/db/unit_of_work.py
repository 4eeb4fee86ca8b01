"""A transaction that may also write events: the change and its events commit together or not at all."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.trace import SpanContext
from sqlalchemy import insert, text
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.bus.tables import OutboxMessage, utcnow
from shared.db.bulk import insert_rows
from shared.db.database import OUTBOX_CHANNEL, Database
from shared.events.envelope import JSON_CONTENT_TYPE, binary_mode_headers, new_event_id
from shared.events.registry import DomainEvent, topic_for
from shared.telemetry import trace_headers

# The table, not the ORM entity: a multi-row INSERT without the ORM's per-row bookkeeping.
OUTBOX_TABLE = cast(sa.Table, sa.inspect(OutboxMessage, raiseerr=True).local_table)


class UnitOfWork:
    def __init__(self, database: Database, *, source: str, site: str | None, read_only: bool = False) -> None:
        self.database = database
        # A read-only unit of work reads on the database's reading connections and can never commit.
        self.read_only = read_only
        self.source = source
        self.site = site
        self._outbox: list[dict[str, Any]] = []  # rows for one multi-row INSERT at commit, in publish order
        self._locked: set[int] = set()
        self._session: AsyncSession | None = None
        self._traced_span: SpanContext | None = None
        self._trace: dict[str, str] = {}

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        self._session = (self.database.reading_sessions if self.read_only else self.database.sessions)()
        await self._session.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Nothing half written: closing rolls back whatever was not committed. close() rather than rollback():
        # a rollback would expire what a read loaded, and the caller still reads it after the block.
        try:
            await self.session.close()
        finally:
            self._session = None
            self._outbox.clear()
            self._locked.clear()

    async def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit: open it with unit_of_work() to write")
        wrote_outbox = bool(self._outbox)
        if wrote_outbox:
            # The changes first: their row locks are taken before the outbox locks, never while holding one (a
            # writer holding outbox:K and waiting on a row held by another waiting on outbox:K is a deadlock).
            await self.session.flush()
            # Same-key writers queue here until the earlier one commits, so their outbox sequence numbers follow
            # commit order and the single relay keeps per-key order. Then one statement for every event of the
            # transaction; the rows are numbered in publish order.
            await self.lock(*(f"outbox:{row['partition_key']}" for row in self._outbox))
            if self.database.dialect == "postgresql":
                await self.session.execute(insert(OUTBOX_TABLE), self._outbox)  # psycopg batches it into one
            else:
                await insert_rows(self.session, self.database.dialect, OUTBOX_TABLE, self._outbox, skip_existing=False)
            self._outbox = []
            if self.database.dialect == "postgresql":
                # Sent on commit, to every process of the service: the relay may run in another instance.
                await self.session.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))
        await self.session.commit()
        self._locked.clear()
        if wrote_outbox:
            self.database.outbox_written.set()

    async def read_one_snapshot(self) -> None:
        """Every read of this transaction sees the database as it was at its first: for a reply assembled from
        several statements (a count, then a page, then the page's rows) that a writer could change between.
        PostgreSQL: REPEATABLE READ, set before the transaction's first statement. SQLite: already so."""
        if self.database.dialect == "postgresql":
            await self.session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))

    async def lock(self, *keys: str) -> None:
        """Hold these named locks until the transaction ends, so a check-then-write (a booking against the
        schedule) cannot interleave with another on the same keys. PostgreSQL: advisory locks, taken in sorted
        order in one statement, so two transactions never wait on each other in a cycle. SQLite needs none: every
        transaction there begins IMMEDIATE on the process's one connection (shared.db.database), so it already
        runs alone."""
        if self.database.dialect != "postgresql":
            return
        wanted = sorted({_lock_id(key) for key in keys} - self._locked)
        if wanted:
            await self.session.execute(
                text(
                    "SELECT pg_advisory_xact_lock(k)"
                    " FROM (SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS sorted"
                ),
                {"keys": wanted},
            )
            self._locked.update(wanted)  # held to the transaction's end: asking again costs no round trip

    async def lock_those_free(self, *keys: str) -> set[str]:
        """Take those of these named locks that no other transaction holds, without waiting for the others; the
        keys now held. For work that may leave a busy key to its holder (which cannot then deadlock with it).
        SQLite: every key, as ``lock``."""
        if self.database.dialect != "postgresql":
            return set(keys)
        by_id = {_lock_id(key): key for key in keys}
        wanted = sorted(set(by_id) - self._locked)
        if wanted:
            taken = await self.session.execute(
                text("SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k WHERE pg_try_advisory_xact_lock(k)"),
                {"keys": wanted},
            )
            self._locked.update(k for (k,) in taken.all())
        return {key for lock_id, key in by_id.items() if lock_id in self._locked}

    async def publish_all(self, events: Iterable[DomainEvent]) -> None:
        """Add every event an aggregate returned, in order."""
        for event in events:
            await self.publish(event)

    async def publish(self, event: DomainEvent) -> None:
        """Add ``event`` to the outbox in this transaction (written when it commits)."""
        model = type(event)
        key = event.partition_key()
        # The request's trace context, asked of the propagator once per span rather than once per event.
        span = trace.get_current_span().get_span_context()
        if span != self._traced_span:
            self._traced_span, self._trace = span, trace_headers()
        record = outbox_record(event, self.source, self._trace)
        self._outbox.append(
            {
                "event_id": record.event_id,
                "topic": topic_for(model, self.site),
                "partition_key": key,
                "ce_type": record.ce_type,
                "headers": record.headers,  # stored as JSON: each pair an array, as the relay reads them
                "payload": record.payload,
                "created_at": utcnow(),
            }
        )


class OutboxRecord(NamedTuple):
    """What the relay will send for an event: its CloudEvent in binary content mode, headers not yet encoded."""

    event_id: str
    ce_type: str
    headers: list[tuple[str, str]]
    payload: bytes


def outbox_record(event: DomainEvent, source: str, trace_context: dict[str, str]) -> OutboxRecord:
    """The Kafka record of ``event``'s CloudEvent: the value is the event's own JSON from pydantic, the headers
    the envelope's other attributes. Built from the attributes, without a CloudEvent (nobody read the one this
    returned, and building it, with its data read back from the value, was a third of a write's time)."""
    model = type(event)
    ce_type = model.ce_type()
    event_id = new_event_id()
    stamped = event.envelope_time()
    headers = binary_mode_headers(
        id=event_id,
        source=source,
        type=ce_type,
        time=stamped if stamped is not None else datetime.now(UTC),
        datacontenttype=JSON_CONTENT_TYPE,
        subject=event.subject(),
        dataschema=f"urn:{ce_type}",
        extensions=trace_context,
    )
    return OutboxRecord(event_id, ce_type, headers, event.model_dump_json().encode())


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
