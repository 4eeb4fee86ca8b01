"""One async engine per service database, SQLite by default or PostgreSQL by URL."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession


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
            # Writers queue on SQLite's lock instead of failing at once.
            options["connect_args"] = {"timeout": 30}
        self.engine: AsyncEngine = create_async_engine(async_url(url), **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)
        # Set when a transaction that wrote to the outbox commits; the relay waits on it.
        self.outbox_written = asyncio.Event()

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while the relay writes; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
