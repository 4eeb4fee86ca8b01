"""SQLite statements with fewer hand-offs to the connection's thread: one, or none for a write inside a writing
transaction.

aiosqlite runs every sqlite3 call on its connection's own thread, and SQLAlchemy's adapter makes four such calls a
statement: a cursor, execute, fetchall and close (three without rows). On the project's machine a hand-off (a
queue put, a thread wake-up, a self-pipe write, an event-loop turn) cost about 220 µs of CPU, against about 3 µs
for a primary-key SELECT in sqlite3: an ORM ``Session.get`` took 1,100 µs, 472 µs synchronously. Here:

- a cursor is made, executed, read to its end and closed in one call on that thread (about 800 µs a get);
- on a writing engine, an INSERT, UPDATE or DELETE inside a transaction runs on the event loop's own thread.
  Such a transaction began IMMEDIATE (``_sqlite_begin_immediate``): it holds the write lock, and in WAL mode
  (checked when the connection is made) a write in it waits for no other connection. A write's size is bounded
  by what the code hands it (a batch's rows); a SELECT's is not (a beat loads a site's whole history), so reads
  keep their hand-off and SQLite steps through them while the loop serves others. What can wait stays on the
  thread too: BEGIN IMMEDIATE (another process's write lock, up to the busy timeout), COMMIT and ROLLBACK (an
  fsync), connecting.

SQLAlchemy keeps its own adapter and reads what it always read from the cursor (description, rowcount,
lastrowid, rows); only the driver-level cursor it is given is ours. Depends on aiosqlite 0.22's ``Connection``
(its constructor, ``_execute`` and ``_conn``); pyproject.toml pins that minor version. (bench/RESULTS.md,
"SQLite statements without hand-offs".)
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

# How long a writing transaction's inline statements (and the work between them) may keep the event loop before
# they give it a turn: about as often as the hand-offs they replace, which came every few milliseconds.
LOOP_TURN_SECONDS = 0.005

# The statements that may run inline: writes, whose size the caller bounds. Compiled SQL starts with its verb.
INLINE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")
# Journal modes in which a transaction holding the write lock waits for no reader: WAL, and a private in-memory
# database. In rollback-journal mode a write that spills its cache waits for readers' locks (the busy timeout).
INLINE_JOURNAL_MODES = ("wal", "memory")

# What a statement left: the cursor's description, rowcount and lastrowid, and every row it returned.
Finished = tuple[Any, int, int | None, list[Any]]


def _run(connection: sqlite3.Connection, sql: str, parameters: Any) -> Finished:
    """On the connection's thread: the whole statement, so that nothing is left to fetch afterwards."""
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _run_many(connection: sqlite3.Connection, sql: str, parameters: Iterable[Any]) -> Finished:
    cursor = connection.cursor()
    try:
        cursor.executemany(sql, parameters)
        return cursor.description, cursor.rowcount, cursor.lastrowid, []
    finally:
        cursor.close()


class OneTripCursor:
    """The driver-level cursor SQLAlchemy's aiosqlite adapter asks for: ``execute`` does the statement's whole work
    in one hand-off, and the rows are then read from memory (the adapter buffers them all anyway; kapnet makes no
    server-side cursors)."""

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        finished = await self._connection.run(_run, sql, parameters)
        self.description, self.rowcount, self.lastrowid, self._rows = finished
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> OneTripCursor:
        finished = await self._connection.run(_run_many, sql, parameters)
        self.description, self.rowcount, self.lastrowid, self._rows = finished
        return self

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        size = size or 1
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def close(self) -> None:
        self._rows = []


class OneTripConnection(aiosqlite.Connection):
    """aiosqlite's connection (its thread, queue, commit, rollback and close), with cursors that need no hand-off
    of their own. ``inline_in_transaction``: a writing engine's, whose transactions hold the write lock."""

    inline_in_transaction = False
    # When the event loop last had a turn because of this connection (a hand-off, or a yield below).
    _loop_turn_at = 0.0

    async def run(
        self, statement: Callable[[sqlite3.Connection, str, Any], Finished], sql: str, parameters: Any
    ) -> Finished:
        """One statement: a write inside a writing transaction inline, anything else on the connection's thread."""
        if not self._running:  # as aiosqlite's own _execute: nothing after close() was asked for
            raise ValueError("Connection closed")
        if (
            self.inline_in_transaction
            and self._conn.in_transaction
            and sql.lstrip()[:7].upper().startswith(INLINE_VERBS)
        ):
            # Each hand-off used to give the loop a turn; inline, a long run of writes would hold it for the whole
            # batch (a network request waited over 5 s behind one). So the loop gets a turn every LOOP_TURN_SECONDS
            # of the transaction's work between two statements.
            if time.monotonic() - self._loop_turn_at > LOOP_TURN_SECONDS:
                await asyncio.sleep(0)
                self._loop_turn_at = time.monotonic()
            return statement(self._conn, sql, parameters)
        finished = await self._execute(statement, self._conn, sql, parameters)
        self._loop_turn_at = time.monotonic()
        return finished

    async def cursor(self) -> OneTripCursor:  # type: ignore[override]  # the same awaitable, one trip a statement
        return OneTripCursor(self)


def connect(database: str | Path, **arguments: Any) -> OneTripConnection:
    """As ``aiosqlite.connect``, with the arguments SQLAlchemy's SQLite dialect makes from the URL."""
    # The connection is made on its thread and used from the event loop's too (the inline statements); never
    # from both at once, since each call is awaited before the next.
    arguments["check_same_thread"] = False

    def connector() -> sqlite3.Connection:
        return sqlite3.connect(str(database), **arguments)

    connection = OneTripConnection(connector, iter_chunk_size=64)
    # As SQLAlchemy marks aiosqlite's own: a connection nobody closed does not keep the process alive at exit.
    connection._thread.daemon = True
    return connection


def one_trip_statements(engine: AsyncEngine, *, writing: bool) -> None:
    """Have ``engine`` (sqlite+aiosqlite) connect with :func:`connect`: SQLAlchemy's adapter and dialect as before,
    wrapped around a :class:`OneTripConnection`. ``writing``: every transaction of the engine begins IMMEDIATE, so
    its writes run inline once the connection is known to be in WAL mode. Called after the engine's own "connect"
    listeners (the journal mode is set there)."""

    def make_connection(dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        return dialect.dbapi.connect(*cargs, async_creator_fn=connect, **cparams)

    def allow_inline_writes(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode")
        (mode,) = cursor.fetchone()
        cursor.close()
        one_trip: OneTripConnection = dbapi_connection.driver_connection
        one_trip.inline_in_transaction = writing and str(mode).lower() in INLINE_JOURNAL_MODES

    event.listen(engine.sync_engine, "do_connect", make_connection)
    event.listen(engine.sync_engine, "connect", allow_inline_writes)
