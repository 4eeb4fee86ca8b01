"""One async engine per service database, SQLite by default or PostgreSQL by URL."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.bus.kafka import raise_if_cancelling
from shared.db.sqlite_statements import one_trip_statements

log = logging.getLogger(__name__)

# PostgreSQL's channel for "outbox rows were committed": a relay in another process of the service hears it.
OUTBOX_CHANNEL = "kapnet_outbox"

# How long a SQLite writer waits for another process's write lock (the API, the relay and the consumer of one
# service share one process, and so one connection; another process is a migration or an operator's tool).
SQLITE_BUSY_TIMEOUT_SECONDS = 30
# Connections a process keeps for reads alone (Database.reading_sessions): a few readers at once is plenty for one
# service's read routes, and each holds its own page cache.
SQLITE_READING_CONNECTIONS = 2


def connection_lost(error: BaseException) -> bool:
    """The database connection was lost or never made, so what the failed statements wrote had no part in the
    failure: the server shut down or dropped the session, it could not be reached, the pool gave no connection in
    time, or the socket failed. Not a statement or transaction timeout, a deadlock, a full disk or a lock wait, even
    when the server ends the session over it: those can depend on what was written."""
    if isinstance(error, sa_exc.DBAPIError):
        sqlstate = getattr(error.orig, "sqlstate", "")
        if sqlstate:
            # The server said why: class 08 is the connection's, 57P01-03 a server shutting down or starting. No
            # other reason is one (25P03 idle in transaction, a PANIC on a full disk), whatever became of the session.
            return str(sqlstate).startswith("08") or sqlstate in {"57P01", "57P02", "57P03"}
        if sqlstate is None:
            # psycopg without the server's word: the socket broke (SQLAlchemy invalidates the connection), or the
            # connect failed (no statement ran). A client-side refusal of a statement is neither.
            return error.connection_invalidated or (
                error.statement is None and isinstance(error, sa_exc.OperationalError)
            )
        return False  # SQLite's errors carry no SQLSTATE, and no connection to lose
    return isinstance(error, (sa_exc.DisconnectionError, sa_exc.TimeoutError, ConnectionError))


def only_the_connection_lost(error: BaseException) -> bool:
    """``connection_lost`` for the error and for every error it was raised while handling: the session's rollback
    after a defect fails when the connection has just gone, and that error then stands in front of the defect. The
    driver's own error that SQLAlchemy wraps is judged with its wrapper."""
    judged: set[int] = set()
    current: BaseException | None = error
    while current is not None:
        if id(current) not in judged:
            if not connection_lost(current):
                return False
            if isinstance(current, sa_exc.DBAPIError):
                judged.add(id(current.orig))
        current = current.__context__
    return True


def sync_url(url: str) -> str:
    """The driver Alembic uses (synchronous)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    driver = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}.get(backend)
    if driver is None:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def async_url(url: str) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}.get(backend)
    if driver is None:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        # A server connection can go stale behind the pool's back; a SQLite file cannot, so no ping per checkout.
        # hide_parameters: an error's message must never carry a patient's values into a log line.
        options: dict[str, Any] = {"pool_pre_ping": self.dialect != "sqlite", "hide_parameters": True}
        if self.dialect == "sqlite":
            # SQLite runs one writer at a time. One connection per process makes that queue an asyncio one (fair,
            # and nothing spins on the file lock), and every transaction begins IMMEDIATE (below), so a check
            # followed by a write (a booking against the schedule) is serialised: no two can both pass the check.
            options.update(
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                pool_size=1,
                max_overflow=0,
                pool_timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
            )
        self.engine: AsyncEngine = create_async_engine(async_url(url), **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin_immediate)
            one_trip_statements(self.engine, writing=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)
        # Reads that write nothing (not even an audit row). On SQLite they have connections of their own: in WAL
        # mode a reader never waits for the writer, so a network reader's GET does not queue behind a consumer's
        # batch transaction on the one writing connection (it did, for seconds, while a cohort was taken in).
        # PostgreSQL's pool already serves many at once.
        self.reading_sessions = self.sessions
        self._reading_engine: AsyncEngine | None = None
        if self.dialect == "sqlite":
            self._reading_engine = create_async_engine(
                async_url(url),
                hide_parameters=True,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                pool_size=SQLITE_READING_CONNECTIONS,
                max_overflow=0,
                pool_timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
            )
            event.listen(self._reading_engine.sync_engine, "connect", _sqlite_reading_pragmas)
            one_trip_statements(self._reading_engine, writing=False)
            event.listen(self._reading_engine.sync_engine, "begin", _sqlite_begin_deferred)
            self.reading_sessions = async_sessionmaker(
                self._reading_engine, expire_on_commit=False, class_=AsyncSession
            )
        # Set when a transaction that wrote to the outbox commits; the relay waits on it.
        self.outbox_written = asyncio.Event()

    async def listen_for_outbox_writes(self) -> None:
        """Until cancelled, wake this process's relay (``outbox_written``) whenever any process of the service
        commits outbox rows. PostgreSQL only: a NOTIFY on ``OUTBOX_CHANNEL`` (UnitOfWork.commit) heard on a
        connection of its own; a lost connection is opened again after a backoff, the relay's poll covering the
        gap. SQLite: nothing to do (its instances share a host; a relay wakes on its own process's writes and polls
        for the others')."""
        if self.dialect != "postgresql":
            return
        import psycopg  # the PostgreSQL driver, imported only where it is used

        conninfo = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        backoff = 0.5
        while True:
            raise_if_cancelling()
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=10
                ) as connection:
                    raise_if_cancelling()
                    await connection.execute(f"LISTEN {OUTBOX_CHANNEL}")
                    backoff = 0.5
                    self.outbox_written.set()  # whatever was committed while nobody listened
                    while True:
                        # In rounds, not one endless wait: a cancellation the driver swallowed is seen here.
                        raise_if_cancelling()
                        async for _ in connection.notifies(timeout=1.0):
                            self.outbox_written.set()
            except (psycopg.Error, OSError) as exc:
                log.warning("outbox notifications lost (%s); listening again in %.1f s", type(exc).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._reading_engine is not None:
            await self._reading_engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling would BEGIN (deferred) only before the first write, after the reads
    # a check makes; kapnet begins its transactions itself (_sqlite_begin_immediate). SQLAlchemy's aiosqlite
    # recipe: https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets another process read while this one writes; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.close()


def _sqlite_reading_pragmas(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    # A reading connection that tried to write would take the write lock behind the writer's back: refuse instead.
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _sqlite_begin_deferred(connection: Any) -> None:
    # A plain BEGIN takes no lock; the first read fixes the snapshot that every read of the transaction sees.
    connection.exec_driver_sql("BEGIN")


def _sqlite_begin_immediate(connection: Any) -> None:
    # IMMEDIATE takes the write lock at the start, so the transaction's reads see what it will write against.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
