"""Projections of facts that are written once: a row per fact, keyed by the id its event carries, so a
redelivered event finds its row and adds nothing. Taken a stretch of a batch at a time, such events cost one
INSERT ... ON CONFLICT DO NOTHING per table for the whole stretch instead of a lookup and an insert per event."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, ParamSpec, TypeVar, cast

import sqlalchemy as sa
from sqlmodel import SQLModel, select

from shared.bus.consumer import Batched, Delivered
from shared.db.bulk import insert_rows
from shared.db.id_lists import IDS, one_of
from shared.db.unit_of_work import UnitOfWork
from shared.events.envelope import CloudEvent
from shared.events.registry import DomainEvent

Row = TypeVar("Row", bound=SQLModel)
Fields = ParamSpec("Fields")

# Keys per lookup: well under SQLite's 32,766 bound parameters and PostgreSQL's 65,535.
LOOKUP_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Fact(Generic[Row]):
    """A row an event establishes, as :func:`add_missing` inserts it: its table and every column's value (the
    model's defaults included), without a model instance. Built by :func:`fact`."""

    model: type[Row]
    values: dict[str, Any]


@dataclass(frozen=True)
class _FactBuilder:
    model: type[SQLModel]
    columns: frozenset[str]
    defaults: dict[str, Any]
    factories: dict[str, Callable[[], Any]]

    def __call__(self, **given: Any) -> Fact[Any]:
        unknown = given.keys() - self.columns
        if unknown:
            raise TypeError(f"{self.model.__name__} has no column {', '.join(sorted(unknown))}")
        made = {name: make() for name, make in self.factories.items() if name not in given}
        values = {**self.defaults, **made, **given}
        if len(values) != len(self.columns):
            missing = ", ".join(sorted(self.columns - values.keys()))
            raise TypeError(f"{self.model.__name__} needs {missing}")
        return Fact(self.model, values)


@cache
def _builder(model: type[SQLModel]) -> _FactBuilder:
    columns = frozenset(column.key for column in sa.inspect(model, raiseerr=True).columns)
    fields = {name: field for name, field in model.model_fields.items() if name in columns}
    if fields.keys() != columns:
        raise TypeError(f"{model.__name__}: columns without a field of the model: {sorted(columns - fields.keys())}")
    defaults, factories = {}, {}
    for name, field in fields.items():
        if field.default_factory is not None:
            factories[name] = cast("Callable[[], Any]", field.default_factory)
        elif not field.is_required():
            defaults[name] = field.default
    return _FactBuilder(model, columns, defaults, factories)


def fact(model: Callable[Fields, Row]) -> Callable[Fields, Fact[Row]]:
    """A :class:`Fact` of ``model``, built from the model's own keyword arguments (mypy checks their names and
    types against the model's constructor). No model instance is made: a table model's constructor validates
    nothing either, and its pydantic and SQLAlchemy bookkeeping, which add_missing's INSERT never reads, was the
    consumer's largest cost: a registration's two rows take 36 µs through ``__init__``, 6 through
    ``model_construct`` and 3.4 this way (timeit, one at a time)."""
    if not (isinstance(model, type) and issubclass(model, SQLModel)):
        raise TypeError(f"{model!r} is not a table model")
    return cast("Callable[Fields, Fact[Row]]", _builder(model))


async def add_missing(uow: UnitOfWork, rows: Sequence[Fact[Any]]) -> None:
    """Add the rows of one table whose primary key it does not hold yet, nor an earlier row of ``rows``: one
    INSERT ... ON CONFLICT DO NOTHING for them all (SQLite and PostgreSQL), through the table rather than the
    ORM's unit of work, whose per-row bookkeeping cost more than the statement. A table written this way is not
    also written through the ORM in the same transaction (a pending object of the same key would clash)."""
    if not rows:
        return
    mapper = sa.inspect(rows[0].model, raiseerr=True)
    keys = [column.key for column in mapper.primary_key]
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(tuple(row.values[name] for name in keys), row.values)
    table = cast(sa.Table, mapper.local_table)
    await insert_rows(uow.session, uow.database.dialect, table, list(unique.values()), skip_existing=True)


async def load_held(uow: UnitOfWork, model: type[Row], keys: Sequence[Any]) -> dict[Any, Row]:
    """The rows of ``model`` (single-column primary key) with these keys, by key: one query per thousand keys
    instead of a ``session.get`` per event."""
    [key_column] = sa.inspect(model, raiseerr=True).primary_key
    lookup = select(model).where(one_of(getattr(model, key_column.key)))
    unique = list(dict.fromkeys(keys))
    held: dict[Any, Row] = {}
    for start in range(0, len(unique), LOOKUP_CHUNK):
        found = await uow.session.exec(lookup, params={IDS: unique[start : start + LOOKUP_CHUNK]})
        held.update((getattr(row, key_column.key), row) for row in found.all())
    return held


def written_once(facts: Callable[[DomainEvent, CloudEvent], Sequence[Fact[Any]]]) -> Batched:
    """A consumer handler from ``facts(event, envelope)``: the rows an event establishes, each written once.
    The rows of a run go in table by table, in the order ``facts`` names them. Such handlers commute: each
    writes rows keyed by its own events' ids and reads nothing another writes."""

    async def handle(uow: UnitOfWork, delivered: Sequence[Delivered]) -> None:
        by_table: dict[type[SQLModel], list[Fact[Any]]] = {}
        for event, envelope in delivered:
            for row in facts(event, envelope):
                by_table.setdefault(row.model, []).append(row)
        for rows in by_table.values():
            await add_missing(uow, rows)

    handle.__qualname__ = handle.__name__ = facts.__name__
    return Batched(handle, commutes=True)
