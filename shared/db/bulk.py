"""Many rows into one table in one statement, on SQLite and PostgreSQL alike.

SQLite takes an executemany in process, at C speed. psycopg runs one as a statement per row in its pipeline,
about 80 µs a row here, which made PostgreSQL's consumer the slowest stage of the event pipeline (bench/pipeline.py).
On PostgreSQL the rows go instead as one array parameter per column, unnested side by side (set-returning
functions in a select list run in lockstep): one statement and one round trip for the batch, whose text does not
grow with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
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


async def insert_rows(
    session: AsyncSession, dialect: str, table: sa.Table, rows: Sequence[Mapping[str, Any]], *, skip_existing: bool
) -> None:
    """INSERT every row (each with the same keys, the columns to fill). ``skip_existing``: ON CONFLICT DO NOTHING,
    for rows whose key says they were written before; otherwise a clash raises, as a single INSERT would."""
    if not rows:
        return
    insert = InsertSkippingExisting(table) if skip_existing else sa.insert(table)
    if dialect != "postgresql":
        await session.execute(insert, list(rows))
        return
    columns = [table.columns[name] for name in rows[0]]
    unnested = [
        sa.func.unnest(sa.bindparam(f"column_{n}", [row[c.key] for row in rows], type_=postgresql.ARRAY(c.type)))
        for n, c in enumerate(columns)
    ]
    await session.execute(insert.from_select([c.key for c in columns], sa.select(*unnested)))
