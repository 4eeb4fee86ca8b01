"""Taking a batch as a batch must change nothing: outcomes' projections built from the broker in batches (a
stretch of commuting handlers gathered, those that read facts after them) equal the same events taken one at a
time, each in its own transaction; and the order of handler calls keeps what depends on order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from aiokafka import ConsumerRecord

from deploy.synthetic import cohort, publish
from services.outcomes import handlers
from services.outcomes.app import SITE_ROLE
from services.outcomes.models import OutcomeCourse
from shared.bus.consumer import Batched, ConsumerConfig, EventConsumer, Handler, Taken, handle_one, handler_calls
from shared.bus.facts import fact
from shared.bus.kafka import TopicSpec
from shared.db.database import Database
from shared.db.migrate import upgrade_to_head
from shared.db.unit_of_work import UnitOfWork
from shared.events.envelope import CloudEvent
from shared.events.registry import DomainEvent
from tests.conftest import OUTCOMES_SITE_MIGRATIONS
from tests.shared.events_for_tests import registration

SITE_HANDLERS: dict[type[DomainEvent], Handler] = {
    event: handle for by_type in handlers.SITE_HANDLERS.values() for event, handle in by_type.items()
}
PROJECTIONS = SITE_ROLE.projections  # what `kapnet replay` forgets and rebuilds


async def contents(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    held: dict[str, list[tuple[Any, ...]]] = {}
    async with database.engine.connect() as connection:
        for model in PROJECTIONS:
            table = cast(sa.Table, sa.inspect(model, raiseerr=True).local_table)
            rows = (await connection.execute(sa.select(table))).all()
            held[table.name] = sorted((tuple(str(value) for value in row) for row in rows), key=str)
    return held


@pytest.mark.broker
async def test_projections_built_in_batches_equal_the_events_taken_one_by_one(
    kafka: str, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    site = unique("b").replace(".", "")
    events = cohort(120, [site], seed=7)
    await publish(events, kafka)
    one_by_one = Database(f"sqlite:///{tmp_path / 'one.db'}")
    batched = Database(f"sqlite:///{tmp_path / 'batched.db'}")
    for database in (one_by_one, batched):
        await asyncio.to_thread(upgrade_to_head, database.url, OUTCOMES_SITE_MIGRATIONS)
    try:
        taken = 0
        for item in events:
            handler = SITE_HANDLERS.get(type(item.event))
            if handler is not None:
                async with UnitOfWork(one_by_one, source="/test", site=site) as uow:
                    await handle_one(handler, uow, item.event, item.envelope)
                    await uow.commit()
                taken += 1
        consumer = EventConsumer(
            batched,
            ConsumerConfig(
                name=f"outcomes@{site}",
                topics=[TopicSpec(t, partitions=3) for t in sorted({e.topic for e in events})],
                dead_letter_topic=f"kapnet.{site}.outcomes.deadletter.v1",
                source=f"/kapnet/{site}/outcomes",
                site=site,
                bootstrap_servers=kafka,
            ),
            SITE_HANDLERS,
        )
        assert await consumer.replay() == len(events)
        assert consumer.processed_total == taken and consumer.dead_lettered_total == 0
        expected, built = await contents(one_by_one), await contents(batched)
        assert {t: len(rows) for t, rows in built.items()} == {t: len(rows) for t, rows in expected.items()}
        assert built == expected
        assert all(expected[t] for t in ("outcome_course", "outcome_coverage", "outcome_measurement"))
    finally:
        await one_by_one.dispose()
        await batched.dispose()


def taken_by(*handlers_in_order: Handler) -> list[Taken]:
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        "t", 0, 0, 0, 0, None, b"", None, 0, 0, []
    )  # fmt: skip
    event = registration("north")
    return [
        (record, CloudEvent(type="t", source="/t", data={}, id=str(uuid.uuid4())), event, handler)
        for handler in handlers_in_order
    ]


async def _nothing(uow: UnitOfWork, delivered: object) -> None:
    return None


async def _per_event(uow: UnitOfWork, event: DomainEvent, envelope: CloudEvent) -> None:
    return None


FACT_A = Batched(_nothing, commutes=True)
FACT_B = Batched(lambda uow, delivered: _nothing(uow, delivered), commutes=True)
READS_FACTS = Batched(lambda uow, delivered: _nothing(uow, delivered), commutes=True, after_facts=True)
IN_ORDER = Batched(lambda uow, delivered: _nothing(uow, delivered))


def shape(calls: list[tuple[Handler, list[Taken]]], names: dict[object, str]) -> list[tuple[str, int]]:
    return [(names[handler], len(items)) for handler, items in calls]


def test_a_stretch_of_commuting_handlers_is_gathered_with_readers_of_facts_last() -> None:
    names = {FACT_A: "A", FACT_B: "B", READS_FACTS: "R", IN_ORDER: "I", _per_event: "P"}
    taken = taken_by(READS_FACTS, FACT_A, FACT_B, FACT_A, READS_FACTS, _per_event, _per_event, FACT_B, IN_ORDER)
    calls = handler_calls(taken)
    assert shape(calls, names) == [("A", 2), ("B", 1), ("R", 2), ("P", 2), ("B", 1), ("I", 1)]
    # Within a call, events stay in record order.
    assert [item[1].id for item in calls[2][1]] == [taken[0][1].id, taken[4][1].id]


def test_handlers_that_do_not_commute_keep_record_order() -> None:
    names = {IN_ORDER: "I", _per_event: "P", FACT_A: "A"}
    taken = taken_by(IN_ORDER, IN_ORDER, _per_event, IN_ORDER, FACT_A)
    assert shape(handler_calls(taken), names) == [("I", 2), ("P", 1), ("I", 1), ("A", 1)]


def test_a_fact_holds_what_the_model_constructor_would_have_set_defaults_included() -> None:
    """fact() makes no model instance: every column add_missing inserts is there, as ``__init__`` sets it."""
    values: dict[str, Any] = {
        "course_id": uuid.uuid4(),
        "patient_id": uuid.uuid4(),
        "indication": "depression",
        "route": "iv",
        "status": "planned",
        "planned_at": datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    }
    built, constructed = fact(OutcomeCourse)(**values), OutcomeCourse(**values)
    columns = [column.key for column in sa.inspect(OutcomeCourse).columns]
    assert built.model is OutcomeCourse
    assert built.values == {name: getattr(constructed, name) for name in columns}
    assert built.values["ended_at"] is None and built.values["end_reason"] is None  # the defaults, not left out
    # What mypy refuses at the call (the model's own signature) is refused when it runs, too.
    with pytest.raises(TypeError, match="needs planned_at"):
        fact(OutcomeCourse)(**{k: v for k, v in values.items() if k != "planned_at"})
    with pytest.raises(TypeError, match="has no column planed_at"):
        fact(OutcomeCourse)(**values, planed_at=values["planned_at"])  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="not a table model"):
        fact(CloudEvent)  # type: ignore[type-var]
