"""Many rows into one table in one statement, on SQLite and PostgreSQL alike.

SQLite takes an executemany in process, at C speed; the rows go to the driver as tuples, converted by the
columns' own processors (SQLAlchemy's executemany spent more building a dictionary of parameters per row).
psycopg runs one as a statement per row in its pipeline, about 80 µs a row here, which made PostgreSQL's consumer
the slowest stage of the event pipeline (bench/pipeline.py).
On PostgreSQL the rows go instead as one JSON document, an array of rows, each value read back with its column's
type (``CAST(r ->> n AS type)``): one statement, one parameter and one round trip for the batch, whose text does
not grow with it. One array parameter per column, unnested side by side, did the same with psycopg dumping each
value in Python (its ListDumper was 31 % of PostgreSQL's consumer, py-spy, bench/pipeline.py); the C JSON encoder
writes strings and numbers itself and calls back only for UUIDs, times and the like. A batch the document cannot
carry exactly (NaN, a type it does not know, a float for an integer or exact numeric column) takes the arrays
instead.
"""

from __future__ import annotations

import json
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
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


def _json_value(value: object) -> object:
    """A driver value the JSON encoder does not write itself, as the text its column's type reads back."""
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    # Imported here: psycopg costs a SQLite deployment's service 0.1 s at start, and only PostgreSQL gets here.
    from psycopg import Binary
    from psycopg.types.json import Json, Jsonb

    if isinstance(value, Binary):  # what a LargeBinary column's processor wraps its bytes in
        value = value.obj
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()  # bytea's hex input form
    if isinstance(value, Json | Jsonb):  # a JSON column's text (an engine with its own serializer keeps the arrays)
        return (value.dumps or json.dumps)(value.obj)
    raise TypeError(f"no JSON form for {type(value).__name__}")


@dataclass(frozen=True)
class _JsonInsert:
    """PostgreSQL's INSERT ... SELECT from one JSON array of rows, compiled once for a table and a set of columns,
    the values converted by each column's own bind processor before they are written into the document."""

    sql: str
    rows: _DriverInsert
    # Integer and exact numeric columns: a float given to one is written as "3.0" or "0.1", which the cast to INTEGER
    # refuses and NUMERIC reads with more digits than the float8 SQLAlchemy's own INSERT sends it as.
    exact_numbers: tuple[int, ...] = ()

    def document(self, rows: Sequence[Mapping[str, Any]]) -> str:
        """Raises ValueError (NaN or infinity, which JSON cannot hold) or TypeError (a value it has no form for, or a
        float for an exact column)."""
        values = self.rows.parameters(rows)
        for n in self.exact_numbers:
            if any(type(row[n]) is float for row in values):
                raise TypeError(f"a float for the exact column {self.rows.keys[n]}")
        return json.dumps(values, default=_json_value, allow_nan=False, ensure_ascii=False)


# The types whose driver values the document writes as text their own input function reads back exactly.
_DOCUMENT_TYPES = (
    sa.String, sa.Uuid, sa.DateTime, sa.Date, sa.Time, sa.Integer, sa.Numeric, sa.Boolean, sa.LargeBinary, sa.JSON,
)  # fmt: skip


def _document_cast(column_type: sa.types.TypeEngine[Any], dialect: Dialect) -> str | None:
    """The type a column's text in the document is cast to, or None when the document cannot carry the column."""
    impl = column_type.dialect_impl(dialect)  # what PostgreSQL is given, a TypeDecorator's own choice included
    base = impl.impl_instance if isinstance(impl, sa.TypeDecorator) else impl
    if not isinstance(base, _DOCUMENT_TYPES) or isinstance(base, sa.ARRAY):
        return None
    if isinstance(base, sa.DateTime) and not base.timezone:
        return None  # the cast would drop an aware value's offset, which SQLAlchemy's own INSERT converts
    if isinstance(base, sa.JSON) and getattr(dialect, "_json_serializer", None) is not None:
        return None  # psycopg's JSON wrapper leaves the engine's own serializer to the connection
    if isinstance(base, sa.String) and not (isinstance(base, sa.Enum) and base.native_enum):
        # TEXT, not VARCHAR(n): an explicit cast cuts a longer text short without a word, while the INSERT's own
        # assignment to the column refuses it, as SQLAlchemy's INSERT does.
        return "TEXT"
    return column_type.compile(dialect=dialect)


def _exact_number(column_type: sa.types.TypeEngine[Any]) -> bool:
    # The generic type: a dialect's own Float (psycopg's) derives from its Numeric, not from sa.Float.
    base = column_type.impl_instance if isinstance(column_type, sa.TypeDecorator) else column_type
    return isinstance(base, sa.Integer | sa.Numeric) and not isinstance(base, sa.Float)


_COMPILED_JSON: weakref.WeakKeyDictionary[Dialect, dict[tuple[sa.Table, tuple[str, ...], bool], _JsonInsert | None]]
_COMPILED_JSON = weakref.WeakKeyDictionary()


def _postgres_statement(
    dialect: Dialect, table: sa.Table, keys: tuple[str, ...], skip_existing: bool
) -> _JsonInsert | None:
    """None when the document cannot carry the rows: a column ``_document_cast`` refuses (an array's JSON is not
    PostgreSQL's array text), or a column left out whose default SQLAlchemy fills in itself. SQLAlchemy's own
    path then."""
    compiled = _COMPILED_JSON.setdefault(dialect, {})
    if (table, keys, skip_existing) not in compiled:
        columns = [table.columns[key] for key in keys]
        left_out = [c for c in table.columns if c.key not in keys]
        casts = [_document_cast(c.type, dialect) for c in columns]
        json_insert = None
        if None not in casts and not any(c.default is not None for c in left_out):
            prepare = dialect.identifier_preparer
            names = ", ".join(prepare.format_column(c) for c in columns)
            values = ", ".join(f"CAST(r ->> {n} AS {cast})" for n, cast in enumerate(casts))
            sql = (
                f"INSERT INTO {prepare.format_table(table)} ({names}) "
                f"SELECT {values} FROM json_array_elements(%s::json) AS r"
            )
            if skip_existing:
                sql += " ON CONFLICT DO NOTHING"
            processors = tuple(c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns)
            exact = tuple(n for n, c in enumerate(columns) if _exact_number(c.type))
            json_insert = _JsonInsert(sql, _DriverInsert(sql, keys, processors), exact)
        compiled[(table, keys, skip_existing)] = json_insert
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
    connection = await session.connection()
    json_insert = _postgres_statement(connection.dialect, table, tuple(rows[0]), skip_existing)
    if json_insert is not None:
        try:
            document = json_insert.document(rows)
        except (ValueError, TypeError):
            pass  # the arrays below carry it
        else:
            await connection.exec_driver_sql(json_insert.sql, (document,))
            return
    columns = [table.columns[name] for name in rows[0]]
    unnested = [
        sa.func.unnest(sa.bindparam(f"column_{n}", [row[c.key] for row in rows], type_=postgresql.ARRAY(c.type)))
        for n, c in enumerate(columns)
    ]
    await session.execute(insert.from_select([c.key for c in columns], sa.select(*unnested)))
