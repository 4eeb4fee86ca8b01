"""One instance at a time runs a singular job (shared/db/leadership.py), on SQLite and on PostgreSQL: two
instances of a service are two ``Leadership`` objects on two ``Database`` objects of one database."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text

from shared.bus.kafka import TopicSpec, ensure_topics
from shared.bus.outbox import OutboxRelay
from shared.db import leadership as leadership_module
from shared.db.database import OUTBOX_CHANNEL, Database
from shared.db.leadership import LOCK_SESSION_IDLE_CHECKS, Leadership
from shared.events.registry import topic_for
from tests.conftest import INTAKE_MIGRATIONS, migrated_database
from tests.harness import PostgresDatabases, eventually, read_topic
from tests.shared.events_for_tests import registration
from tests.shared.test_outbox_relay import unsent, write_registrations

ROLE = "outbox relay"


@pytest.fixture
async def second_instance(intake_db: Database) -> AsyncIterator[Database]:
    """The same database as ``intake_db``, as another instance of the service opens it."""
    database = Database(intake_db.url)
    yield database
    await database.dispose()


@pytest.fixture
async def two_instances(database_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two instances' views of one database (the lock needs no tables)."""
    first, second = Database(database_url), Database(database_url)
    yield first, second
    await first.dispose()
    await second.dispose()


@pytest.fixture
async def two_postgres_instances(postgres: PostgresDatabases) -> AsyncIterator[tuple[Database, Database]]:
    url = postgres.fresh()
    first, second = Database(url), Database(url)
    yield first, second
    await first.dispose()
    await second.dispose()


def leadership(database: Database) -> Leadership:
    return Leadership(database, standby_poll_seconds=0.05, check_seconds=0.2)


class Jobs:
    """Which instances' jobs are running now, and whether two ever ran at once."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.most_at_once = 0

    def job(self, instance: str, fail: asyncio.Event | None = None) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            self.running.append(instance)
            self.most_at_once = max(self.most_at_once, len(self.running))
            try:
                await (fail or asyncio.Event()).wait()
                raise RuntimeError(f"{instance}'s job failed")
            finally:
                self.running.remove(instance)

        return run


async def test_one_instance_runs_the_job_and_another_takes_over_when_it_stops(
    two_instances: tuple[Database, Database],
) -> None:
    first, second = (leadership(database) for database in two_instances)
    jobs = Jobs()
    fail_b = asyncio.Event()
    a = asyncio.create_task(first.lead(ROLE, jobs.job("a")))
    await eventually(lambda: jobs.running == ["a"], 10, "the first instance to lead")
    b = asyncio.create_task(second.lead(ROLE, jobs.job("b", fail_b)))
    await asyncio.sleep(0.5)  # ten of the standby's polls
    assert jobs.running == ["a"] and first.leading == {ROLE: True} and second.leading == {ROLE: False}

    a.cancel()  # the leading instance stops
    await asyncio.gather(a, return_exceptions=True)
    await eventually(lambda: jobs.running == ["b"], 10, "the second instance to take over")
    assert second.leading == {ROLE: True} and jobs.most_at_once == 1

    # A job that fails ends its lead with its error (for the supervisor to restart) and frees the lock.
    fail_b.set()
    with pytest.raises(RuntimeError, match="b's job failed"):
        await b
    assert second.leading == {ROLE: False}
    again = asyncio.create_task(first.lead(ROLE, jobs.job("a")))
    await eventually(lambda: jobs.running == ["a"], 10, "the lock to be free again")
    again.cancel()
    await asyncio.gather(again, return_exceptions=True)
    await first.dispose()
    await second.dispose()


async def test_a_leader_whose_session_ends_stops_its_job_and_stands_by(
    two_postgres_instances: tuple[Database, Database],
) -> None:
    # An administrator ends the leading session (as a database restart or a cut connection would): PostgreSQL
    # frees the lock, the other instance leads, and the first one's job is stopped within a check.
    first, second = (leadership(database) for database in two_postgres_instances)
    jobs = Jobs()
    a = asyncio.create_task(first.lead(ROLE, jobs.job("a")))
    await eventually(lambda: jobs.running == ["a"], 10, "the first instance to lead")
    b = asyncio.create_task(second.lead(ROLE, jobs.job("b")))
    await asyncio.sleep(0.3)
    async with two_postgres_instances[0].engine.connect() as connection:
        ended = await connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks"
                " WHERE locktype = 'advisory' AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
        assert ended.scalars().all() == [True]
    await eventually(lambda: jobs.running == ["b"], 10, "the second instance to take over")
    assert first.leading == {ROLE: False} and not a.done()  # the first stands by, ready to lead again
    for task in (a, b):
        task.cancel()
    await asyncio.gather(a, b, return_exceptions=True)
    await first.dispose()
    await second.dispose()


async def test_a_job_that_ignores_its_cancellation_is_never_run_twice_at_once(
    two_postgres_instances: tuple[Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A job stuck where a cancellation does not reach (a driver that swallowed it) is left to end on its own once
    # its lock is lost; this instance leads again only after it has.
    monkeypatch.setattr(leadership_module, "JOB_STOP_SECONDS", 0.3)
    lead = leadership(two_postgres_instances[0])
    started, running, may_end = [], [], asyncio.Event()

    async def stubborn() -> None:
        started.append(1)
        running.append(1)
        try:
            while True:
                try:
                    await may_end.wait()
                    return
                except asyncio.CancelledError:
                    continue  # as a driver that swallowed it
        finally:
            running.pop()

    task = asyncio.create_task(lead.lead(ROLE, stubborn))
    try:
        await eventually(lambda: started == [1], 10, "the job to start")
        async with two_postgres_instances[1].engine.connect() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                    "database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
        await eventually(lambda: lead.leading == {ROLE: False}, 10, "the lost lock to be noticed")
        await asyncio.sleep(1.5)  # seven checks: the lock is free, yet the stuck job still runs
        assert started == [1] and running == [1]
        may_end.set()
        await eventually(lambda: len(started) == 2, 10, "the instance to lead again once the job ended")
        await asyncio.wait_for(task, 10)  # the second run's own end (may_end is set) ends the lead
    finally:
        task.cancel()
        may_end.set()
        await asyncio.gather(task, return_exceptions=True)
        await lead.dispose()


FROZEN_LEADER = """
import asyncio, sys
from shared.db.database import OUTBOX_CHANNEL, Database
from shared.db import leadership as leadership_module
from shared.db.leadership import LOCK_SESSION_IDLE_CHECKS, Leadership

async def main() -> None:
    async def job() -> None:
        print("leading", flush=True)
        await asyncio.Event().wait()

    await Leadership(Database(sys.argv[1]), check_seconds=float(sys.argv[3])).lead(sys.argv[2], job)

asyncio.run(main())
"""


async def test_a_leader_that_stops_answering_loses_its_lock_to_a_standby(postgres: PostgresDatabases) -> None:
    # A leader frozen (SIGSTOP), as a host that died without closing its connections: its session stays open,
    # so only the server's idle_session_timeout (four missed checks) frees the lock, not TCP keepalive's ~2 h.
    url = postgres.fresh()
    check_seconds = 0.5
    frozen = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FROZEN_LEADER, url, ROLE, str(check_seconds), stdout=asyncio.subprocess.PIPE
    )
    standby = Database(url)
    jobs = Jobs()
    taking_over: asyncio.Task[None] | None = None
    try:
        assert frozen.stdout is not None
        async with asyncio.timeout(30):
            assert (await frozen.stdout.readline()).strip() == b"leading"
        frozen.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        taking_over = asyncio.create_task(
            Leadership(standby, standby_poll_seconds=0.05, check_seconds=check_seconds).lead(ROLE, jobs.job("b"))
        )
        await eventually(lambda: jobs.running == ["b"], 20, "the standby to lead once the frozen leader's session ends")
        # Four missed checks of 0.5 s: about 2 s, never 2 h (counted from the leader's last check, which may
        # come up to a check before the signal).
        assert time.monotonic() - stopped_at >= (LOCK_SESSION_IDLE_CHECKS - 1) * check_seconds
    finally:
        frozen.kill()
        await frozen.wait()
        if taking_over is not None:
            taking_over.cancel()
            await asyncio.gather(taking_over, return_exceptions=True)
        await standby.dispose()


@pytest.mark.broker
async def test_two_instances_relays_publish_each_event_once(
    intake_db: Database, second_instance: Database, kafka: str
) -> None:
    # Without a leader both relays read the same unsent rows and both publish them.
    site = f"lead{uuid.uuid4().hex[:8]}"
    topic = topic_for(type(registration(site)), site)
    await ensure_topics(kafka, [TopicSpec(topic, partitions=3)], 10)
    instances = [
        (leadership(db), OutboxRelay(db, kafka, timeout_seconds=10, batch_size=20))
        for db in (intake_db, second_instance)
    ]
    # Written before the relays start, so that both find the same rows waiting.
    await write_registrations(intake_db, site, 200, [uuid.uuid4() for _ in range(20)])
    tasks = [asyncio.create_task(lead.lead(ROLE, relay.run)) for lead, relay in instances]
    try:
        await eventually(_none_unsent(intake_db), 60, "every event to be published")
        await asyncio.sleep(1.0)  # a second relay's repeats, if any, would have arrived by now
        records = await read_topic(kafka, topic, 200)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for lead, _ in instances:
            await lead.dispose()
    ids = [dict(record.headers)["ce_id"] for record in records]
    assert len(ids) == 200 and len(set(ids)) == 200
    assert sum(relay.published_total for _, relay in instances) == 200


def _none_unsent(database: Database) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await unsent(database) == 0

    return check


@pytest.mark.broker
async def test_a_relay_hears_writes_committed_by_another_instance(postgres: PostgresDatabases, kafka: str) -> None:
    # The leading instance's relay polls every 30 s here; a write through the other instance (behind the same
    # load balancer) wakes it at once through PostgreSQL's NOTIFY, not at its next poll.
    site = f"lead{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [TopicSpec(topic_for(type(registration(site)), site), partitions=3)], 10)
    async with (
        migrated_database(postgres.fresh(), INTAKE_MIGRATIONS) as leader,
        migrated_database(leader.url, INTAKE_MIGRATIONS) as other,
    ):
        relay = OutboxRelay(leader, kafka, timeout_seconds=10, poll_interval_seconds=30)
        running = asyncio.create_task(relay.run())
        try:
            # Once the listener listens (its catch-up wake-up spent), the relay waits up to 30 s: only a NOTIFY
            # can wake it sooner.
            await eventually(_listening(leader), 10, "the relay's listener to listen")
            await asyncio.sleep(0.5)
            await write_registrations(other, site, 3, [uuid.uuid4()])
            await eventually(lambda: relay.published_total == 3, 20, "the relay to hear the other instance's writes")
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


def _listening(database: Database) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        async with database.engine.connect() as connection:
            found = await connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE query = :listen AND datname = current_database()"),
                {"listen": f"LISTEN {OUTBOX_CHANNEL}"},
            )
            return bool(found.scalar_one())

    return check
