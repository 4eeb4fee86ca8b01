"""One instance at a time runs each of a service's singular jobs: the outbox relay and its background jobs.

A service may run as more than one instance against one database (consumers scale out through their group).
Two relays would publish the same rows, and two beats would announce the same follow-ups; so each such job runs
only in the instance that holds its lock, and the others stand by and take over when it goes.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection of its own, outside the
  pool, held for as long as the job runs. PostgreSQL frees it when that session ends, a crashed instance's
  included, and ends a session whose holder stopped checking in (a dead host, a frozen process). The holder
  checks its connection every ``check_seconds``; if it is gone, the job is cancelled and the instance stands by
  again. Between the connection's loss and that check, another instance may already lead: the jobs tolerate a
  short overlap (consumers' inboxes absorb a relay's repeats; a release is checked under a lock). Needs
  PostgreSQL 14 or later (``idle_session_timeout``).
- SQLite: an exclusive ``flock`` on a file beside the database (its instances share a host). The kernel frees
  it when the process ends. An in-memory database has one process by definition: no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from shared.bus.kafka import cancelled_from_outside, raise_if_cancelling
from shared.db.database import Database, async_url

log = logging.getLogger(__name__)

# How many missed checks (SELECT 1 every ``check_seconds``) before PostgreSQL ends a lock's session as abandoned.
LOCK_SESSION_IDLE_CHECKS = 4
# How long a cancelled job may take to stop.
JOB_STOP_SECONDS = 10.0


def advisory_key(database: str, role: str) -> int:
    """A stable signed 64-bit key for ``role``'s advisory lock (PostgreSQL's advisory locks take a bigint)."""
    digest = hashlib.sha256(f"kapnet leadership {database} {role}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_file(database_file: str, role: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", role.lower()).strip("-")
    return Path(f"{database_file}.{slug}.leader")


class Leadership:
    def __init__(self, database: Database, *, standby_poll_seconds: float = 2.0, check_seconds: float = 5.0) -> None:
        self.database = database
        self.standby_poll_seconds = standby_poll_seconds
        self.check_seconds = check_seconds
        # Which roles this instance leads now: for the metrics and for whoever wonders why a relay is idle.
        self.leading: dict[str, bool] = {}
        self._engine: AsyncEngine | None = None
        url = make_url(database.url)
        self._database_name = url.database or ""
        self._sqlite_file = (
            url.database if database.dialect == "sqlite" and url.database not in (None, "", ":memory:") else None
        )

    async def lead(self, role: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` while this instance holds ``role``'s lock, standing by while another does; a lost lock
        cancels the job and this instance stands by again. The job's own end (a return, an error) releases the
        lock and ends this call, for the supervisor to restart as any job."""
        self.leading[role] = False
        while True:
            async with self._held(role) as lost:
                self.leading[role] = True
                log.info("%s: this instance leads", role)
                running = asyncio.ensure_future(job())
                try:
                    if not await _run_until_lost(running, lost):
                        return
                finally:
                    self.leading[role] = False
            raise_if_cancelling()
            log.warning("%s: the lock's connection was lost; the job stopped and this instance stands by", role)
            if not running.done():
                # It did not stop when cancelled: this instance leads again only once it has, never beside it.
                await asyncio.wait({running})
            # A standby whose connection works takes over first: this one's has just failed.
            await asyncio.sleep(self.check_seconds)

    @contextlib.asynccontextmanager
    async def _held(self, role: str) -> AsyncIterator[asyncio.Event]:
        """Waits until this instance holds the lock; the event it yields is set if the lock is lost."""
        if self.database.dialect == "postgresql":
            async with self._advisory_lock(role) as lost:
                yield lost
        elif self._sqlite_file is not None:
            async with self._file_lock(role):
                yield asyncio.Event()  # never lost while the process lives
        else:
            yield asyncio.Event()

    @contextlib.asynccontextmanager
    async def _file_lock(self, role: str) -> AsyncIterator[None]:
        assert self._sqlite_file is not None
        descriptor = os.open(lock_file(self._sqlite_file, role), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            announced = False
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not announced:
                        log.info("%s: another instance leads; standing by", role)
                        announced = True
                    await asyncio.sleep(self.standby_poll_seconds)
            yield
        finally:
            os.close(descriptor)  # closing the last descriptor releases the lock

    @contextlib.asynccontextmanager
    async def _advisory_lock(self, role: str) -> AsyncIterator[asyncio.Event]:
        key = advisory_key(self._database_name, role)
        announced = False
        while True:
            connection = await self._try_advisory_lock(role, key)
            if cancelled_from_outside():  # the driver's connect can swallow a cancellation (wait_for, Python 3.11)
                if connection is not None:
                    await self._close(connection)
                raise asyncio.CancelledError
            if connection is not None:
                break
            if not announced:
                log.info("%s: another instance leads; standing by", role)
                announced = True
            await asyncio.sleep(self.standby_poll_seconds)
        lost = asyncio.Event()
        watch = asyncio.create_task(self._watch(connection, lost))
        try:
            yield lost
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            await self._close(connection)  # ending the session frees the lock

    async def _try_advisory_lock(self, role: str, key: int) -> AsyncConnection | None:
        """A connection that holds the lock, or None while another session does (or the database is out)."""
        if self._engine is None:
            # Outside the pool: the lock lives as long as its session, which a pool would hand to other work.
            self._engine = create_async_engine(async_url(self.database.url), poolclass=NullPool, hide_parameters=True)
        connection: AsyncConnection | None = None
        try:
            async with asyncio.timeout(self.check_seconds):
                connection = await self._engine.connect()
                # Autocommit: a transaction held open for as long as the lock would only be idle in transaction.
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
                # A holder that stops checking in (its host died, its process froze) is ended by the server, which
                # frees the lock; else a dead host's session would hold it until TCP keepalive notices (~2 h).
                await connection.execute(
                    text(f"SET idle_session_timeout = {int(self.check_seconds * LOCK_SESSION_IDLE_CHECKS * 1000)}")
                )
                taken = await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
            if taken.scalar_one():
                held, connection = connection, None
                return held
        except Exception as exc:
            raise_if_cancelling()
            log.warning("%s: could not ask for the lock (%s); trying again", role, type(exc).__name__)
        finally:
            if connection is not None:  # not held: asked in vain, failed, or cancelled while asking
                await self._close(connection)
        return None

    async def _close(self, connection: AsyncConnection) -> None:
        """Close a lock connection, bounded: a service stopping must not wait on a database that does not answer."""
        try:
            async with asyncio.timeout(self.check_seconds):
                await connection.close()
        except (Exception, asyncio.CancelledError):
            with contextlib.suppress(Exception):
                await connection.invalidate()
            raise_if_cancelling()

    async def _watch(self, connection: AsyncConnection, lost: asyncio.Event) -> None:
        """Sets ``lost`` once the lock's session no longer answers (the database restarted, the connection was
        cut, an administrator ended the session)."""
        while True:
            await asyncio.sleep(self.check_seconds)
            try:
                async with asyncio.timeout(self.check_seconds):
                    await connection.execute(text("SELECT 1"))
            except Exception:
                raise_if_cancelling()
                lost.set()
                return

    async def dispose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()


async def _run_until_lost(running: asyncio.Future[Any], lost: asyncio.Event) -> bool:
    """Let the job run until ``lost`` is set (the job is cancelled: True) or it ends (False; its error is raised)."""
    watching: asyncio.Future[Any] = asyncio.ensure_future(lost.wait())
    try:
        await asyncio.wait({running, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (running, watching):
            if not task.done():
                task.cancel()
        # Bounded: a job stuck in a driver that swallowed its cancellation must not keep this instance from
        # standing by (or from stopping); it is left to end on its own, and said.
        await asyncio.wait({running, watching}, timeout=JOB_STOP_SECONDS)
        if not running.done():
            log.error("a job did not stop within %.0f s of its cancellation; left to end on its own", JOB_STOP_SECONDS)
    if not running.done() or running.cancelled():
        if lost.is_set():
            return True
        raise asyncio.CancelledError  # a stray cancellation from inside the job: the supervisor's to judge
    running.result()
    return False
