"""Many rows into one table in one statement, on SQLite and PostgreSQL alike.

SQLite takes an executemany in process, at C speed; the rows go to the driver as tuples, converted by the
columns' own processors (SQLAlchemy's executemany spent more building a dictionary of parameters per row).
psycopg runs one as a statement per row in its pipeline, about 80 µs a row here, which made PostgreSQL's consumer
the slowest stage of the event pipeline (bench/pipeline.py).
On PostgreSQL the rows go instead as one array parameter per column, unnested side by side (set-returning
functions in a select list run in lockstep): one statement and one round trip for the batch, whose text does not
grow with it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler


class InsertSkippingExisting(sa.Insert):
    """INSERT ... ON CONFLICT DO NOTHING that SQLAlchemy compiles once. The dialects' own
    ``insert(...).on_conflict_do_nothing()`` has no cache key ("[no key]" in the engine's log), so every batch's
    statement was compiled again: a fifth of the consumer's CPU in ``bench/rebuild.py``. This class is part of the
    cache key; its text is the plain INSERT's with the clause after it, which SQLite (3.24+) and PostgreSQL both
    read as "skip a row whose key is held", and nothing else (a NOT NULL or CHECK violation still raises, unlike
    SQLite's INSERT OR IGNORE)."""

    inherit_cache = True


@compiles(InsertSkippingExisting)
def _insert_skipping_existing(insert: InsertSkippingExisting, compiler: SQLCompiler, **kw: Any) -> str:
    if insert._returning:  # the clause would land after RETURNING, where neither database reads it
        raise CompileError("InsertSkippingExisting takes no RETURNING")
    return f"{compiler.visit_insert(insert, **kw)} ON CONFLICT DO NOTHING"


@dataclass(frozen=True)
class _DriverInsert:
    """An INSERT compiled once for a dialect and a set of columns, with each column's own bind processor (its
    type's conversion to what the driver stores, a TypeDecorator's included)."""

    sql: str
    keys: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        # Column by column, each processor mapped over its column at C speed.
        columns: list[Iterable[Any]] = []
        for key, process in zip(self.keys, self.processors, strict=True):
            values = [row[key] for row in rows]
            columns.append(values if process is None else map(process, values))
        return list(zip(*columns, strict=True))


_COMPILED: weakref.WeakKeyDictionary[Dialect, dict[tuple[sa.Table, tuple[str, ...], bool], _DriverInsert | None]]
_COMPILED = weakref.WeakKeyDictionary()


def _sqlite_statement(
    dialect: Dialect, table: sa.Table, keys: tuple[str, ...], skip_existing: bool
) -> _DriverInsert | None:
    """SQLite's executemany through the driver, the values converted by the columns' own processors. Through
    ``session.execute`` SQLAlchemy also built a parameter dictionary per row and looked up its processors again:
    8.6 of the 15.7 µs of event-loop time a row took (cProfile, 20,000 inbox rows); the values stored are the
    same (tests/shared/test_bulk_insert.py compares them byte for byte). None when the statement needs more
    than the rows' values (a column left out that has a default to fill in): SQLAlchemy's own path then."""
    compiled = _COMPILED.setdefault(dialect, {})
    if (table, keys, skip_existing) not in compiled:
        insert = InsertSkippingExisting(table) if skip_existing else sa.insert(table)
        statement = insert.compile(dialect=dialect, column_keys=list(keys))
        driver_insert = None
        if statement.positiontup is not None and list(statement.positiontup) == list(keys):
            # The dialect's form of each type: a TypeDecorator's bind_processor alone leaves out its impl's
            # (SQLite's DATETIME text), and the driver would store its own format instead.
            processors = tuple(table.columns[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys)
            driver_insert = _DriverInsert(statement.string, keys, processors)
        compiled[(table, keys, skip_existing)] = driver_insert
    return compiled[(table, keys, skip_existing)]


async def insert_rows(
    session: AsyncSession, dialect: str, table: sa.Table, rows: Sequence[Mapping[str, Any]], *, skip_existing: bool
) -> None:
    """INSERT every row (each with the same keys, the columns to fill). ``skip_existing``: ON CONFLICT DO NOTHING,
    for rows whose key says they were written before; otherwise a clash raises, as a single INSERT would."""
    if not rows:
        return
    insert = InsertSkippingExisting(table) if skip_existing else sa.insert(table)
    if dialect != "postgresql":
        connection = await session.connection()
        statement = _sqlite_statement(connection.dialect, table, tuple(rows[0]), skip_existing)
        if statement is None:
            await session.execute(insert, list(rows))
        else:
            await connection.exec_driver_sql(statement.sql, statement.parameters(rows))
        return
    columns = [table.columns[name] for name in rows[0]]
    unnested = [
        sa.func.unnest(sa.bindparam(f"column_{n}", [row[c.key] for row in rows], type_=postgresql.ARRAY(c.type)))
        for n, c in enumerate(columns)
    ]
    await session.execute(insert.from_select([c.key for c in columns], sa.select(*unnested)))
