"""Projections of facts that are written once: a row per fact, keyed by the id its event carries, so a
redelivered event finds its row and adds nothing. Taken a run at a time, a run of such events costs one lookup
per table for the whole run instead of one per event, and one batched insert."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.bus.consumer import Batched, Delivered
from shared.db.unit_of_work import UnitOfWork
from shared.events.envelope import CloudEvent
from shared.events.registry import DomainEvent

# Keys per lookup: well under SQLite's 32,766 bound parameters and PostgreSQL's 65,535.
LOOKUP_CHUNK = 1000


async def add_missing(session: AsyncSession, rows: Sequence[SQLModel]) -> int:
    """Add the rows of one table whose primary key it does not hold yet, nor an earlier row of ``rows``; one
    query per thousand keys. Returns how many were added. Single-column primary keys only."""
    if not rows:
        return 0
    model = type(rows[0])
    mapper = sa.inspect(model, raiseerr=True)
    [key_column] = mapper.primary_key
    columns = mapper.columns
    name = key_column.key
    keys: list[Any] = [getattr(row, name) for row in rows]
    held: set[Any] = set()
    column = col(getattr(model, name))
    for start in range(0, len(keys), LOOKUP_CHUNK):
        found = await session.exec(select(column).where(column.in_(keys[start : start + LOOKUP_CHUNK])))
        held.update(found.all())
    missing: list[dict[str, Any]] = []
    for key, row in zip(keys, rows, strict=True):
        if key not in held:
            held.add(key)
            missing.append({column.key: getattr(row, column.key) for column in columns})
    if missing:
        # A multi-row INSERT, not the ORM's unit of work: tracking each row as a session object cost more than
        # the statement. A handler later in the batch reads the rows back from the table.
        await session.execute(sa.insert(cast(sa.Table, mapper.local_table)), missing)
    return len(missing)


def written_once(facts: Callable[[DomainEvent, CloudEvent], Sequence[SQLModel]]) -> Batched:
    """A consumer handler from ``facts(event, envelope)``: the rows an event establishes, each written once.
    The rows of a run go in table by table, in the order ``facts`` names them."""

    async def handle(uow: UnitOfWork, delivered: Sequence[Delivered]) -> None:
        by_table: dict[type[SQLModel], list[SQLModel]] = {}
        for event, envelope in delivered:
            for row in facts(event, envelope):
                by_table.setdefault(type(row), []).append(row)
        for rows in by_table.values():
            await add_missing(uow.session, rows)

    handle.__qualname__ = handle.__name__ = facts.__name__
    return Batched(handle)
