"""Which database failures count as a lost connection (shared.db.database.connection_lost), judged on the errors
a real PostgreSQL server and a real SQLite file raise: a differential-privacy release keeps its spend for a retry
only after one of these (services/outcomes/service/beat.py), so a wrong "yes" would let a retry choose among
noise draws."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shared.db.database import Database, connection_lost, only_the_connection_lost
from shared.db.unit_of_work import UnitOfWork
from tests.harness import PostgresDatabases


async def failure_of(database: Database, *statements: str) -> BaseException:
    with pytest.raises(sa_exc.DBAPIError) as raised:
        async with database.engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    return raised.value


async def test_a_session_the_server_ended_or_could_not_open_is_a_lost_connection(postgres: PostgresDatabases) -> None:
    database = Database(postgres.fresh())
    try:
        ended = await failure_of(database, "SELECT pg_terminate_backend(pg_backend_pid())")
        assert connection_lost(ended) and only_the_connection_lost(ended), ended
        # No server on the port: the connect itself fails.
        nowhere = Database(make_url(database.url).set(port=1).render_as_string(hide_password=False))
        refused = await failure_of(nowhere, "SELECT 1")
        await nowhere.dispose()
        assert connection_lost(refused) and only_the_connection_lost(refused), refused
    finally:
        await database.dispose()


async def test_errors_of_the_statement_itself_are_not_a_lost_connection(postgres: PostgresDatabases) -> None:
    database = Database(postgres.fresh())
    try:
        timeout = await failure_of(database, "SET statement_timeout = 50", "SELECT pg_sleep(1)")
        assert not connection_lost(timeout), timeout
        constraint = await failure_of(database, "CREATE TEMP TABLE t (n int CHECK (n > 0))", "INSERT INTO t VALUES (0)")
        assert not connection_lost(constraint), constraint
    finally:
        await database.dispose()


async def test_a_session_the_server_ended_over_the_transactions_own_doing_is_not_a_lost_connection(
    postgres: PostgresDatabases,
) -> None:
    """The server ends the session (SQLAlchemy marks the connection invalidated), but said why: the transaction sat
    idle too long (25P03), which how long the release took decides."""
    database = Database(postgres.fresh())
    try:
        with pytest.raises(sa_exc.DBAPIError) as raised:
            async with database.engine.connect() as connection:
                await connection.execute(text("SET idle_in_transaction_session_timeout = 100"))
                await connection.execute(text("BEGIN"))
                await connection.execute(text("SELECT 1"))
                await asyncio.sleep(0.5)
                await connection.execute(text("SELECT 1"))
        assert raised.value.connection_invalidated, raised.value
        assert not connection_lost(raised.value), raised.value
    finally:
        await database.dispose()


async def test_failures_at_commit(postgres: PostgresDatabases) -> None:
    """A deferred constraint fails at COMMIT: the transaction's own doing. A session ended before COMMIT: lost."""
    database = Database(postgres.fresh())
    try:
        async with database.engine.begin() as connection:
            await connection.execute(text("CREATE TABLE once (n int UNIQUE DEFERRABLE INITIALLY DEFERRED)"))
        with pytest.raises(sa_exc.DBAPIError) as raised:
            async with database.engine.begin() as connection:
                await connection.execute(text("INSERT INTO once VALUES (1), (1)"))
        assert not connection_lost(raised.value), raised.value
        with pytest.raises(sa_exc.DBAPIError) as raised:
            async with database.engine.begin() as connection:
                await connection.execute(text("INSERT INTO once VALUES (2)"))
                async with database.engine.connect() as other:
                    pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                    await other.execute(text(f"SELECT pg_terminate_backend({pid})"))
        assert connection_lost(raised.value), raised.value
    finally:
        await database.dispose()


async def test_a_statement_the_driver_refuses_is_not_a_lost_connection(postgres: PostgresDatabases) -> None:
    """psycopg refuses a statement of more than 65,535 parameters before sending it: an OperationalError with no
    SQLSTATE, on a healthy connection."""
    database = Database(postgres.fresh())
    try:
        values = {f"p{n}": n for n in range(70_000)}
        statement = "SELECT " + ", ".join(f":p{n}" for n in range(70_000))
        with pytest.raises(sa_exc.DBAPIError) as raised:
            async with database.engine.connect() as connection:
                await connection.execute(text(statement), values)
        assert not connection_lost(raised.value), raised.value
    finally:
        await database.dispose()


async def test_a_sqlite_error_is_not_a_lost_connection(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'site.db'}")
    try:
        missing = await failure_of(database, "SELECT * FROM released_version")
        assert not connection_lost(missing), missing
    finally:
        await database.dispose()


async def test_a_defect_behind_a_lost_connection_is_not_only_a_lost_connection(postgres: PostgresDatabases) -> None:
    """A defect strikes; before the unit of work rolls back, the server ends its session. The rollback's error is
    what the caller catches, with the defect behind it: the failure was not only the connection."""
    database = Database(postgres.fresh())
    try:
        with pytest.raises(sa_exc.DBAPIError) as raised:
            async with UnitOfWork(database, source="/kapnet/north/outcomes", site="north") as uow:
                pid = (await uow.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                async with database.engine.connect() as other:
                    await other.execute(text(f"SELECT pg_terminate_backend({pid})"))
                raise RuntimeError("a defect in the release code")
        assert connection_lost(raised.value), raised.value
        behind, chain = raised.value.__context__, []
        while behind is not None:
            chain.append(type(behind).__name__)
            behind = behind.__context__
        assert "RuntimeError" in chain, chain
        assert not only_the_connection_lost(raised.value)
    finally:
        await database.dispose()
