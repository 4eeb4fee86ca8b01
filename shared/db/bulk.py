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
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_rows(
    session: AsyncSession, dialect: str, table: sa.Table, rows: Sequence[Mapping[str, Any]], *, skip_existing: bool
) -> None:
    """INSERT every row (each with the same keys, the columns to fill). ``skip_existing``: ON CONFLICT DO NOTHING,
    for rows whose key says they were written before; otherwise a clash raises, as a single INSERT would."""
    if not rows:
        return
    if dialect != "postgresql":
        statement = sqlite.insert(table)
        await session.execute(statement.on_conflict_do_nothing() if skip_existing else statement, list(rows))
        return
    columns = [table.columns[name] for name in rows[0]]
    unnested = [
        sa.func.unnest(sa.bindparam(f"column_{n}", [row[c.key] for row in rows], type_=postgresql.ARRAY(c.type)))
        for n, c in enumerate(columns)
    ]
    insert = postgresql.insert(table).from_select([c.key for c in columns], sa.select(*unnested))
    await session.execute(insert.on_conflict_do_nothing() if skip_existing else insert)
