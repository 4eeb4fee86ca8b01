"""One stage of the event pipeline in a process of its own, so that a fault test can kill -9 it:

    python -m tests.faults.stage relay    --database URL --bootstrap HOST:PORT
    python -m tests.faults.stage consumer --database URL --bootstrap HOST:PORT --site SITE

The relay is intake's OutboxRelay over intake's database; the consumer is outcomes' EventConsumer with its real
registration handler over outcomes' database, configured as ServiceRuntime configures them (short timeouts so a
test does not wait long). SIGTERM stops it cleanly (a consumer leaves its group); SIGKILL is the fault."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from services.outcomes.handlers import on_patient_registered
from shared.bus.consumer import ConsumerConfig, EventConsumer
from shared.bus.kafka import TopicSpec
from shared.bus.outbox import OutboxRelay
from shared.db.database import Database
from shared.events.intake import PatientRegistered
from shared.events.registry import topic_for

PARTITIONS = 3  # a site topic's default (ServiceSettings.kafka_site_topic_partitions)
TIMEOUT_SECONDS = 3.0


def consumer_for(database: Database, bootstrap: str, site: str) -> EventConsumer:
    return EventConsumer(
        database,
        ConsumerConfig(
            name=f"outcomes@{site}",
            topics=[TopicSpec(topic_for(PatientRegistered, site), partitions=PARTITIONS)],
            dead_letter_topic=dead_letter_topic(site),
            source=f"/kapnet/{site}/outcomes",
            site=site,
            bootstrap_servers=bootstrap,
            timeout_seconds=TIMEOUT_SECONDS,
            max_attempts=3,
            retry_backoff_seconds=0.1,
        ),
        {PatientRegistered: on_patient_registered},
    )


def dead_letter_topic(site: str) -> str:
    return f"kapnet.{site}.outcomes.deadletter.v1"


async def run(stage: str, database_url: str, bootstrap: str, site: str) -> None:
    database = Database(database_url)
    if stage == "relay":
        work = OutboxRelay(database, bootstrap, timeout_seconds=TIMEOUT_SECONDS, poll_interval_seconds=0.2).run()
    else:
        work = consumer_for(database, bootstrap, site).run()
    task = asyncio.ensure_future(work)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.stage")
    parser.add_argument("stage", choices=["relay", "consumer"])
    parser.add_argument("--database", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--site", default="faults")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run(args.stage, args.database, args.bootstrap, args.site))


if __name__ == "__main__":
    main()
