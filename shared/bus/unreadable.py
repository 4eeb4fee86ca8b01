"""Records the Kafka client itself cannot parse, found by offset so that the consumer can step over them.

aiokafka decodes a header's name as strict UTF-8 while it parses a fetched batch, before kapnet sees any record
(Kafka's Java client replaces such bytes instead). A name that is not UTF-8 raised UnicodeDecodeError out of
``getmany`` on every try: the consumer restarted into the same record for good, so any principal allowed to write
a topic could stop its readers. The error says neither the partition nor the offset, and the records parsed
before it in that fetch are dropped with their positions already advanced.

So, once ``getmany`` raised such an error, each partition is read again from where that fetch began (a group
member's committed offset; a reader without commits notes its positions before each fetch), one at a time and one
record per call: the position where the error comes back is the first unreadable record. aiokafka
parses a stored batch from its start whatever the offset asked for, so the records after it in the same batch
cannot be read either: the stretch ends at the first offset from which a fetch parses again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

# What aiokafka raises while it parses a batch whose bytes are well framed but not what it expects: header names.
UNPARSEABLE_FETCH_ERRORS: tuple[type[Exception], ...] = (UnicodeDecodeError,)

# How long a read of one record waits for it when the broker says it is there (the fetch of a batch).
_FETCH_WAIT_MS = 2000
# Fetches of one offset that bring nothing before it is taken as readable (the end of the stretch).
_EMPTY_TRIES = 5


@dataclass(frozen=True)
class UnreadableStretch:
    """``readable`` are the partition's records from where the failed fetch began up to ``first``, read on the way
    and not yet processed; offsets ``first`` to ``end - 1`` cannot be parsed by this client."""

    partition: TopicPartition
    readable: list[ConsumerRecord[bytes, bytes]]
    first: int
    end: int
    error: str

    @property
    def described(self) -> str:
        return f"offsets {self.first} to {self.end - 1} cannot be parsed: {self.error}"


async def committed_offsets(consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
    """Where a group member's fetch began: everything before the committed offsets was processed and committed
    after the fetch that returned it (a partition with none yet from its start, as the consumer resets)."""
    starts: dict[TopicPartition, int] = {}
    for tp in sorted(consumer.assignment()):
        committed = await consumer.committed(tp)
        starts[tp] = committed if committed is not None else (await consumer.beginning_offsets([tp]))[tp]
    return starts


async def locate_unreadable(
    consumer: AIOKafkaConsumer, starts: Mapping[TopicPartition, int], within_records: int
) -> UnreadableStretch | None:
    """After ``getmany`` raised one of UNPARSEABLE_FETCH_ERRORS: every partition of ``starts`` back at the offset
    its failed fetch began at (that fetch advanced some without returning their records), and the first one whose
    next ``within_records`` records hold an unreadable one, with its stretch; that partition is left at the
    stretch's end. None if none fails within that many records (the failed fetch returned at most that many), and
    the caller raises the error."""
    partitions = sorted(starts)
    for tp in partitions:
        consumer.seek(tp, starts[tp])
    ends = await consumer.end_offsets(partitions)
    consumer.pause(*partitions)
    try:
        for tp in partitions:
            consumer.resume(tp)
            try:
                stretch = await _read_until_unreadable(consumer, tp, ends[tp], within_records)
                if stretch is not None:
                    consumer.seek(tp, stretch.end)
                    return stretch
                consumer.seek(tp, starts[tp])  # read again, and processed, by the caller's own loop
            finally:
                consumer.pause(tp)
        return None
    finally:
        consumer.resume(*partitions)


async def fetch_past_unreadable(
    consumer: AIOKafkaConsumer, partitions: Collection[TopicPartition], *, timeout_ms: int, max_records: int
) -> tuple[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]], UnreadableStretch | None]:
    """``getmany`` over ``partitions`` for a reader that keeps no commits (a replay, the audit). If the client cannot
    parse a record: the readable records before it on its partition instead, and its stretch, the reader past it."""
    starts = {tp: await consumer.position(tp) for tp in partitions}  # a failed fetch moves some without a word
    try:
        return await consumer.getmany(*partitions, timeout_ms=timeout_ms, max_records=max_records), None
    except UNPARSEABLE_FETCH_ERRORS:
        stretch = await locate_unreadable(consumer, starts, max_records)
        if stretch is None:
            raise
        return {stretch.partition: stretch.readable}, stretch


async def _read_until_unreadable(
    consumer: AIOKafkaConsumer, tp: TopicPartition, end: int, within_records: int
) -> UnreadableStretch | None:
    readable: list[ConsumerRecord[bytes, bytes]] = []
    position = await consumer.position(tp)
    while len(readable) <= within_records and position < end:
        try:
            fetched = await consumer.getmany(tp, timeout_ms=_FETCH_WAIT_MS, max_records=1)
        except UNPARSEABLE_FETCH_ERRORS as error:
            # One record per call: the position moved past each record returned, so it is the unreadable one.
            first = await consumer.position(tp)
            stretch_end = await _first_readable_after(consumer, tp, first, end)
            return UnreadableStretch(tp, readable, first, stretch_end, f"{type(error).__name__}: {error}")
        readable.extend(fetched.get(tp, []))
        moved = await consumer.position(tp)
        if not fetched and moved == position:
            return None  # nothing came, and the position stayed (the log was truncated meanwhile): nothing found
        position = moved  # a transaction's marker moves it with no record
    return None


async def _first_readable_after(consumer: AIOKafkaConsumer, tp: TopicPartition, first: int, end: int) -> int:
    """The first offset after ``first`` from which a fetch parses, or ``end``. One offset at a time: a fetch from
    an offset inside the unreadable record's batch fails, from the next batch on it succeeds, and a jump past the
    batch could also pass readable records of a later batch."""
    offset = first + 1
    tries = 0
    while offset < end:
        consumer.seek(tp, offset)
        try:
            fetched = await consumer.getmany(tp, timeout_ms=_FETCH_WAIT_MS, max_records=1)
        except UNPARSEABLE_FETCH_ERRORS:
            offset, tries = offset + 1, 0
            continue
        # Nothing within the wait is no answer (a slow broker), unless the position moved past a transaction's
        # marker: taken as readable, it ended the stretch inside the batch, and a second notice followed.
        tries += 1
        if fetched or await consumer.position(tp) > offset or tries >= _EMPTY_TRIES:
            return offset
    return end
