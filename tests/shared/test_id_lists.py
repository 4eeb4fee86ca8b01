"""shared/db/id_lists.py on both databases: a statement built once finds exactly the rows of each list it is given,
with the column's own type applied to the values (UUIDs stored as the dialect stores them), and an empty list
finds nothing."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from shared.db.database import Database
from shared.db.id_lists import IDS, one_of

METADATA = sa.MetaData()
VISITS = sa.Table(
    "id_list_visit",
    METADATA,
    sa.Column("visit_id", sa.Uuid, primary_key=True),
    sa.Column("room", sa.String(20), nullable=False),
)
BUILT_ONCE = sa.select(VISITS.c.room).where(one_of(VISITS.c.visit_id)).order_by(VISITS.c.room)


async def test_one_statement_finds_the_rows_of_each_list_it_is_given(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)
            await connection.execute(
                VISITS.insert(), [{"visit_id": uuid.UUID(int=n + 1), "room": f"room {n:02d}"} for n in range(40)]
            )
        async with database.engine.connect() as connection:

            async def rooms(ids: list[uuid.UUID]) -> list[str]:
                return list((await connection.execute(BUILT_ONCE, {IDS: ids})).scalars())

            assert await rooms([uuid.UUID(int=3), uuid.UUID(int=7), uuid.uuid4()]) == ["room 02", "room 06"]
            assert await rooms([uuid.UUID(int=n + 1) for n in range(40)]) == [f"room {n:02d}" for n in range(40)]
            assert await rooms([]) == []
    finally:
        async with database.engine.begin() as connection:
            await connection.run_sync(METADATA.drop_all)
        await database.dispose()
