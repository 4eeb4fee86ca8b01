"""The network role rebuilds from the compacted network topic, with the real broker: a network whose database is
wiped and restarted comes back with the same rows, although its consumer group's committed offsets are past every
record (the consumer rewinds what its database never processed: services/outcomes/service/network.py). On the way,
the consumer keeps the latest publication of each cohort: an older copy published later, and a redelivery of the
same event, change nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlmodel import col, select

from services.outcomes.app import create_app
from services.outcomes.models import NetworkAggregate, NetworkCohortOutcome
from shared.events import network_topic
from shared.events.outcomes import AggregateCell, CohortAggregatePublished
from shared.settings import ServiceSettings
from tests.harness import ServiceUnderTest, app_in_process, eventually
from tests.outcomes.test_network_view_rules import cohort
from tests.shared.test_consumer import as_record

pytestmark = pytest.mark.broker

Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def network_settings(kafka: str, database_url: str, var_dir: Path, sites: list[str]) -> ServiceSettings:
    return ServiceSettings(
        service="outcomes",
        role="network",
        network_sites=sites,
        database_url=database_url,
        var_dir=var_dir,
        kafka_bootstrap_servers=kafka,
        kafka_timeout_seconds=10,
        consumer_retry_backoff_seconds=0.05,
    )


async def rows(service: ServiceUnderTest, sites: list[str]) -> Rows:
    """This test's rows of both network tables (other tests' sites share the topic)."""
    async with service.database.sessions() as session:
        outcomes = await session.exec(
            select(NetworkCohortOutcome)
            .where(col(NetworkCohortOutcome.site).in_(sites))
            .order_by(col(NetworkCohortOutcome.site), col(NetworkCohortOutcome.period))
        )
        aggregates = await session.exec(select(NetworkAggregate).where(col(NetworkAggregate.site).in_(sites)))
        return (
            [(r.site, r.period, r.cut, r.cohort_id, r.generated_at, r.outcomes) for r in outcomes.all()],
            [(r.site, r.cohort, r.aggregate) for r in aggregates.all()],
        )


async def publish(kafka: str, *records: tuple[list[tuple[str, bytes]], bytes, bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=True)
    await producer.start()
    try:
        for headers, value, key in records:
            site = key.decode().split("|")[0]
            await producer.send_and_wait(network_topic(site), value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def test_a_wiped_network_database_comes_back_with_the_same_rows(
    kafka: str, new_database_url: Callable[[], str], tmp_path: Path
) -> None:
    north, south = f"rbn{uuid.uuid4().hex[:6]}", f"rbs{uuid.uuid4().hex[:6]}"
    older, newer = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    latest = as_record(cohort(north, "2026-01", responded=22, generated_at=newer))  # a step of 11
    records = [
        as_record(cohort(north, "2026-01", responded=11, generated_at=older)),
        latest,
        latest,  # the same event again: the inbox absorbs it
        as_record(cohort(north, "2026-01", responded=12, generated_at=older)),  # an older copy, published later
        as_record(cohort(north, "2026-02", courses=None, started=None, with_result=None, responded=None)),
        as_record(cohort(south, "2026-01", cut="age_band", cut_value="25-34")),
        as_record(
            CohortAggregatePublished(
                site=south,
                cohort="registrations",
                measure="patients_registered",
                cells=[AggregateCell(period="2026-01", count=12)],
                total=AggregateCell(period="all", count=12),
                generated_at=older,
            )
        ),
    ]

    first = network_settings(kafka, new_database_url(), tmp_path / "first", [north, south])
    async with app_in_process(create_app(first)) as client:
        network = ServiceUnderTest(client, first)
        await publish(kafka, *records)

        async def all_in() -> bool:
            outcomes, aggregates = await rows(network, [north, south])
            return len(outcomes) == 3 and len(aggregates) == 1

        await eventually(all_in, within=60, what="the network to take in the cohorts")
        before = await rows(network, [north, south])
        admin = network.as_("network_admin")
        [january] = (
            await client.get("/cohort-outcomes", params={"site": north, "period": "2026-01"}, headers=admin)
        ).json()
        assert january["instruments"][0]["responded"]["count"] == 22, "the newest publication, not the later older one"
        reports = (await client.get("/fhir/MeasureReport", params={"site": north}, headers=admin)).json()

    # The database is gone; the group's committed offsets are not.
    second = network_settings(kafka, new_database_url(), tmp_path / "second", [north, south])
    async with app_in_process(create_app(second)) as client:
        network = ServiceUnderTest(client, second)
        await eventually(lambda: _same(network, [north, south], before), within=60, what="the rebuild")
        assert await rows(network, [north, south]) == before
        admin = network.as_("network_admin")
        again = (await client.get("/fhir/MeasureReport", params={"site": north}, headers=admin)).json()
        assert [e["resource"] for e in again["entry"]] == [e["resource"] for e in reports["entry"]]


async def _same(network: ServiceUnderTest, sites: list[str], expected: Rows) -> bool:
    return await rows(network, sites) == expected
