"""shared/db/bulk.py on both databases: every value of every row arrives as given (types with a bind processor of
their own included), a row already there is skipped or refused as asked, and nothing is half written."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import CompileError, DataError, IntegrityError

from shared.db.bulk import InsertSkippingExisting, _postgres_statement, insert_rows
from shared.db.database import Database
from shared.db.types import UtcDateTime

METADATA = sa.MetaData()
READINGS = sa.Table(
    "bulk_reading",
    METADATA,
    sa.Column("reading_id", sa.Uuid, primary_key=True),
    sa.Column("label", sa.String(20), nullable=False),
    sa.Column("taken_on", sa.Date, nullable=False),
    sa.Column("taken_at", UtcDateTime(), nullable=False),
    sa.Column("dose_mg", sa.Float),
    sa.Column("serious", sa.Boolean, nullable=False),
)


def reading(n: int) -> dict[str, object]:
    return {
        "reading_id": uuid.UUID(int=n + 1),
        "label": f"reading {n}",
        "taken_on": date(2026, 1, 1 + n % 28),
        "taken_at": datetime(2026, 1, 1, 9, n % 60, tzinfo=UTC),
        "dose_mg": None if n % 3 == 0 else n / 4,
        "serious": n % 2 == 0,
    }


async def held(database: Database) -> list[dict[str, object]]:
    async with database.engine.connect() as connection:
        found = await connection.execute(sa.select(READINGS).order_by(READINGS.c.reading_id))
        return [dict(row._mapping) for row in found]


async def test_many_rows_go_in_whole_and_a_clash_is_skipped_or_refused_as_asked(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)
        rows = [reading(n) for n in range(700)]
        async with database.sessions() as session, session.begin():
            await insert_rows(session, database.dialect, READINGS, rows, skip_existing=True)
        assert await held(database) == rows

        # Written again with one new row: the new one goes in, the rest are left as they were.
        again = [{**row, "label": "changed"} for row in rows[:5]] + [reading(700)]
        async with database.sessions() as session, session.begin():
            await insert_rows(session, database.dialect, READINGS, again, skip_existing=True)
        assert await held(database) == [*rows, reading(700)]

        # Not skipped: the clash raises and the new row of the same statement is not written either.
        with pytest.raises(IntegrityError):
            async with database.sessions() as session, session.begin():
                await insert_rows(session, database.dialect, READINGS, [reading(701), rows[0]], skip_existing=False)
        assert len(await held(database)) == 701
    finally:
        await database.dispose()


async def test_skipping_existing_rows_skips_only_clashing_keys_and_is_compiled_once(database_url: str) -> None:
    # A missing required value is refused even when held keys are skipped (SQLite's INSERT OR IGNORE would drop
    # the row without a word).
    database = Database(database_url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)
        with pytest.raises(IntegrityError):
            async with database.sessions() as session, session.begin():
                await insert_rows(
                    session, database.dialect, READINGS, [reading(1), {**reading(2), "label": None}], skip_existing=True
                )
        assert await held(database) == []
    finally:
        await database.dispose()
    # SQLAlchemy caches a statement's compiled form by its cache key; the dialects' on_conflict_do_nothing() has
    # none, so every batch was compiled again.
    assert InsertSkippingExisting(READINGS)._generate_cache_key() is not None
    assert InsertSkippingExisting(READINGS)._generate_cache_key() != sa.insert(READINGS)._generate_cache_key()
    with pytest.raises(CompileError):
        str(InsertSkippingExisting(READINGS).returning(READINGS.c.reading_id))


TWIN = sa.Table(
    "bulk_reading_twin", METADATA, *(sa.Column(c.name, c.type, primary_key=c.primary_key) for c in READINGS.c)
)


async def stored_both_ways(
    database: Database, table: sa.Table, twin: sa.Table, rows: list[dict[str, object]], order_by: str
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows put in ``table`` by insert_rows and in ``twin`` by SQLAlchemy's own INSERT, in one transaction,
    then both read back as the driver returns them."""
    async with database.sessions() as session, session.begin():
        await insert_rows(session, database.dialect, table, rows, skip_existing=False)
        await session.execute(sa.insert(twin), rows)
    async with database.engine.connect() as connection:
        ours = (await connection.exec_driver_sql(f"SELECT * FROM {table.name} ORDER BY {order_by}")).all()
        theirs = (await connection.exec_driver_sql(f"SELECT * FROM {twin.name} ORDER BY {order_by}")).all()
    return [tuple(row) for row in ours], [tuple(row) for row in theirs]


async def test_what_is_stored_is_what_sqlalchemys_own_insert_stores(database_url: str) -> None:
    """Byte for byte, as the driver returns it without any type processing: on SQLite insert_rows hands the
    driver values converted by the columns' processors itself (a TypeDecorator's bind_processor alone would
    have left SQLite's DATETIME text to the driver's own format)."""
    database = Database(database_url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)
        ours, theirs = await stored_both_ways(database, READINGS, TWIN, [reading(n) for n in range(50)], "label")
        assert ours == theirs
        assert len(ours) == 50
        if database.dialect == "sqlite":
            assert ours[0][3] == "2026-01-01 09:00:00.000000"  # SQLAlchemy's DATETIME text, not the driver's
    finally:
        await database.dispose()


NOTES = sa.Table("bulk_note", METADATA, sa.Column("n", sa.Integer, primary_key=True), sa.Column("body", sa.JSON))
NOTES_TWIN = sa.Table(
    "bulk_note_twin", METADATA, sa.Column("n", sa.Integer, primary_key=True), sa.Column("body", sa.JSON)
)


async def test_json_is_stored_as_sqlalchemys_own_insert_stores_it_on_sqlite(tmp_path: Path) -> None:
    """The outbox's headers go in this way on SQLite (shared/db/unit_of_work.py): the same JSON text."""
    database = Database(f"sqlite:///{tmp_path / 'notes.db'}")
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)
        rows = [
            {"n": n, "body": [["traceparent", f"00-{n:032x}-{n:016x}-01"], ["é", "\u2028"], None]} for n in range(20)
        ]
        async with database.sessions() as session, session.begin():
            await insert_rows(session, database.dialect, NOTES, rows, skip_existing=False)
            await session.execute(sa.insert(NOTES_TWIN), rows)
        async with database.engine.connect() as connection:
            ours = (await connection.exec_driver_sql("SELECT n, body FROM bulk_note ORDER BY n")).all()
            theirs = (await connection.exec_driver_sql("SELECT n, body FROM bulk_note_twin ORDER BY n")).all()
        assert [tuple(row) for row in ours] == [tuple(row) for row in theirs] and len(ours) == 20
    finally:
        await database.dispose()


def awkward_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("said", sa.Text),
        sa.Column("amount", sa.Numeric(12, 4)),
        sa.Column("at", sa.Time),
        sa.Column("blob", sa.LargeBinary),
        sa.Column("score", sa.Float),
        sa.Column("details", sa.JSON),
    ]


AWKWARD = sa.Table("bulk_awkward", METADATA, *awkward_columns())
AWKWARD_TWIN = sa.Table("bulk_awkward_twin", METADATA, *awkward_columns())


def awkward(n: int, score: float) -> dict[str, object]:
    return {
        "n": n,
        "said": ['quote " and \\ backslash', "line\nbreak\ttab", "é ü 漢字 \u2028 😀", "", None][n % 5],
        "amount": Decimal("12345678.1234") if n % 2 else Decimal("-0.0001"),
        "at": time(9, n % 60, 30, 250),
        "blob": bytes(range(n % 7)) if n % 3 else None,
        "score": score,
        "details": {"why": 'clinic "policy"', "at": [n, 1.5, None, True], "é": {}} if n % 4 else None,
    }


async def test_values_json_or_arrays_carry_are_stored_as_sqlalchemys_own_insert_stores_them(database_url: str) -> None:
    """PostgreSQL's batch goes as one JSON document read back with each column's type; text with quotes and
    line breaks, exact decimals, times, bytes, JSON and floats come back as SQLAlchemy's own INSERT stores them.
    A batch with a NaN, which JSON cannot hold, goes as arrays and is stored the same way."""
    database = Database(database_url)
    try:
        batches = [[awkward(n, n / 3 - 7) for n in range(40)], [awkward(n, math.nan) for n in range(40, 45)]]
        async with database.engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)
            if database.dialect == "postgresql":
                statement = _postgres_statement(connection.dialect, AWKWARD, tuple(batches[0][0]), False)
                assert statement is not None
                assert json.loads(statement.document(batches[0]))[0][0] == 0  # the first batch goes as the document
                with pytest.raises(ValueError):
                    statement.document(batches[1])  # the second, with its NaN, as arrays
        await stored_both_ways(database, AWKWARD, AWKWARD_TWIN, batches[0], "n")
        ours, theirs = await stored_both_ways(database, AWKWARD, AWKWARD_TWIN, batches[1], "n")
        assert len(ours) == 45
        # NaN != NaN: compared as text.
        assert [tuple(map(repr, row)) for row in ours] == [tuple(map(repr, row)) for row in theirs]
    finally:
        await database.dispose()


async def test_a_text_longer_than_its_column_is_refused_not_cut_short(database_url: str) -> None:
    """A cast to VARCHAR(20) cuts a longer text to 20 characters without a word, and two keys alike in their first
    20 would then clash and one be skipped. PostgreSQL refuses the row, as SQLAlchemy's own INSERT does, and
    nothing of the batch is written; SQLite keeps text of any length."""
    database = Database(database_url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)
        rows = [reading(0), {**reading(1), "label": "x" * 21}]
        if database.dialect == "postgresql":
            with pytest.raises(DataError):
                async with database.sessions() as session, session.begin():
                    await insert_rows(session, database.dialect, READINGS, rows, skip_existing=True)
            assert await held(database) == []
        else:
            async with database.sessions() as session, session.begin():
                await insert_rows(session, database.dialect, READINGS, rows, skip_existing=True)
            assert await held(database) == rows
    finally:
        await database.dispose()


def counted_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("doses", sa.Integer),
        sa.Column("amount", sa.Numeric(12, 4)),
        sa.Column("ratio", sa.Numeric),
    ]


COUNTED = sa.Table("bulk_counted", METADATA, *counted_columns())
COUNTED_TWIN = sa.Table("bulk_counted_twin", METADATA, *counted_columns())


async def test_a_float_for_an_integer_or_exact_column_is_stored_as_sqlalchemys_own_insert_stores_it(
    database_url: str,
) -> None:
    """In the JSON document 3.0 is the text "3.0", which a cast to INTEGER refuses, and 0.1 would reach an unscaled
    NUMERIC with the digits of its shortest repr rather than as the float8 SQLAlchemy sends. Such a batch goes as
    arrays, and both columns hold what SQLAlchemy's own INSERT puts there."""
    database = Database(database_url)
    try:
        rows: list[dict[str, object]] = [
            {"n": n, "doses": float(n % 4), "amount": n / 10 + 0.005, "ratio": 1 / (n + 3)} for n in range(12)
        ]
        async with database.engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)
            if database.dialect == "postgresql":
                statement = _postgres_statement(connection.dialect, COUNTED, tuple(rows[0]), False)
                assert statement is not None
                with pytest.raises(TypeError, match="doses"):
                    statement.document(rows)
                whole = [{**row, "doses": n % 4, "amount": None, "ratio": None} for n, row in enumerate(rows)]
                assert json.loads(statement.document(whole))[1] == [1, 1, None, None]
        ours, theirs = await stored_both_ways(database, COUNTED, COUNTED_TWIN, rows, "n")
        assert ours == theirs
        assert len(ours) == 12 and ours[3][1] == 3
    finally:
        await database.dispose()
