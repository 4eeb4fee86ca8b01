"""Rebuilding a service's projections from its topics (``kapnet replay``).

A projection is a table a consumer fills from events and nothing else writes (outcomes' trajectories at a site,
the network's view of the aggregates). Rebuilding it: forget it and the consumer's inbox in one transaction, then
read the topics from their start through the same handlers the running consumer calls (EventConsumer.replay).
Records of the service's own (a release ledger, a privacy budget spent, follow-ups already announced) are not
projections and are never touched. The service must be stopped: its consumer group may have no members.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from aiokafka.errors import GroupCoordinatorNotAvailableError

from shared.app import ServiceDefinition, ServiceRuntime
from shared.bus.kafka import admin_client
from shared.bus.tables import InboxEntry
from shared.db.migrate import upgrade_to_head
from shared.settings import ServiceSettings


class ServiceRunning(Exception):
    """The service's consumer group has members: a replay beside it would race its consumer."""


class NothingToRebuild(Exception):
    """The service keeps no projection."""


@dataclass(frozen=True)
class ReplayReport:
    consumer: str
    tables: tuple[str, ...]
    rows_forgotten: int
    records_read: int
    processed: int
    dead_lettered: int


async def group_members(settings: ServiceSettings, group: str) -> int:
    """How many members the consumer group has now (0: nobody is consuming)."""
    timeout = settings.kafka_timeout_seconds
    admin = admin_client(ServiceRuntime(settings).kafka, timeout)
    await asyncio.wait_for(admin.start(), timeout)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                replies = await asyncio.wait_for(admin.describe_consumer_groups([group]), timeout)
                break
            except GroupCoordinatorNotAvailableError:
                # A broker no group has used yet creates its offsets topic on this first request: ask again.
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await asyncio.wait_for(admin.close(), timeout)
    # DescribeGroups: (error_code, group_id, state, protocol_type, protocol, members, ...) per group.
    return sum(len(described[5]) for reply in replies for described in reply.groups)


async def rebuild_projections(
    settings: ServiceSettings,
    definition: ServiceDefinition,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> ReplayReport:
    if not definition.projections:
        raise NothingToRebuild(f"{definition.title} keeps no projection to rebuild")
    if members := await group_members(settings, settings.instance):
        raise ServiceRunning(f"{settings.instance} has {members} consumer(s) running: stop the service first")
    await asyncio.to_thread(upgrade_to_head, settings.resolved_database_url(), definition.migrations)
    runtime = ServiceRuntime(settings)
    try:
        (consumer,) = definition.consumers(runtime)  # a service's projections come from its one consumer
        forgotten = 0
        async with runtime.unit_of_work() as uow:
            for table in definition.projections:
                forgotten += (await uow.session.execute(sa.delete(table))).rowcount  # type: ignore[attr-defined]
            inbox = sa.delete(InboxEntry).where(InboxEntry.consumer == consumer.config.name)  # type: ignore[arg-type]
            await uow.session.execute(inbox)
            await uow.commit()
        read = await consumer.replay(progress)
        return ReplayReport(
            consumer=consumer.config.name,
            tables=tuple(table.__tablename__ for table in definition.projections),  # type: ignore[misc]
            rows_forgotten=forgotten,
            records_read=read,
            processed=consumer.processed_total,
            dead_lettered=consumer.dead_lettered_total,
        )
    finally:
        await runtime.database.dispose()
