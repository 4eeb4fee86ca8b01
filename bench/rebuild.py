"""P4 rebuild: outcomes' site projections rebuilt from about a million events, against raw consumption of the
same topics.

    python -m bench.rebuild [--patients 27600] [--quick] [--json PATH]

A broker of its own; the synthetic cohort of one site (deploy.synthetic: about 36 events per patient, so the
default makes about a million) published to the site's intake, sessions and billing topics with the idempotent
producer `kapnet seed` uses. Then, on the same topics:

- Baseline: a plain AIOKafkaConsumer without a group reads every partition from its start to its end.
- Rebuild: exactly what `kapnet replay outcomes --site north` does (shared.replay.rebuild_projections: forget the
  projections and the inbox, read every record through the consumer's handlers and inbox), into a fresh SQLite
  file, with the command's progress bar.

- Floor: what any rebuild with kapnet's guarantees must at least do, in bare Python: the same plain consumer; each
  record's type read from its headers; each of outcomes' events validated by its registered pydantic model straight
  from the JSON value; its inbox row (the exactly-once record) written by one ``executemany`` and one COMMIT a fetch,
  into a fresh SQLite file migrated as outcomes' is. No projection rows, no SQLAlchemy: a rebuild cannot beat it.

Printed: the three rates and the ratios rebuild/baseline and floor/baseline, and the rows the rebuild made.
Figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from bench.report import print_figures
from deploy.cli import progress_bar
from deploy.kafka.launcher import KafkaNode, free_port
from deploy.synthetic import cohort, publish
from services.outcomes.app import MIGRATIONS, definition_for
from services.outcomes.handlers import SITE_HANDLERS
from shared.bus.kafka import read_from_start
from shared.db.migrate import upgrade_to_head
from shared.events.registry import DomainEvent
from shared.replay import rebuild_projections
from shared.settings import ServiceSettings

SITE = "north"
DEFAULT_PATIENTS = 27_600
QUICK_PATIENTS = 1_000


async def read_everything(bootstrap: str, topics: list[str]) -> tuple[int, float]:
    """Every record of ``topics`` from the start, as a consumer with nothing to do would; (records, seconds)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        spans = await read_from_start(consumer, topics, 30.0)  # as EventConsumer.replay begins
        total, read = sum(end - first for first, end in spans.values()), 0
        started = time.perf_counter()
        while read < total:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=500)).values():
                read += len(records)
        return read, time.perf_counter() - started
    finally:
        await consumer.stop()


async def validate_and_record(bootstrap: str, topics: list[str], database: Path) -> tuple[int, int, float, float]:
    """The floor: every record read as the baseline reads it, outcomes' events validated and given their inbox
    rows, a transaction a fetch; (records, events taken in, seconds, CPU seconds of this process)."""
    models: dict[bytes, type[DomainEvent]] = {
        model.ce_type().encode(): model for by_type in SITE_HANDLERS.values() for model in by_type
    }
    await asyncio.to_thread(upgrade_to_head, f"sqlite:///{database}", MIGRATIONS / "site")
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    insert = (
        'INSERT INTO inbox_entry (consumer, event_id, ce_type, topic, partition, "offset", outcome, received_at) '
        "VALUES ('outcomes@floor', ?, ?, ?, ?, ?, 'processed', ?)"
    )
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        spans = await read_from_start(consumer, topics, 30.0)
        total, read, taken = sum(end - first for first, end in spans.values()), 0, 0
        started, cpu_started = time.perf_counter(), time.process_time()
        while read < total:
            rows = []
            received = datetime.now(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
            for records in (await consumer.getmany(timeout_ms=1000, max_records=500)).values():
                read += len(records)
                for record in records:
                    headers = dict(record.headers)
                    model = models.get(headers.get("ce_type", b""))
                    if model is None:
                        continue
                    model.model_validate_json(record.value or b"")
                    ce_type = headers["ce_type"].decode()
                    rows.append((headers["ce_id"].decode(), ce_type, record.topic, record.partition, record.offset))
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(insert, [(*row, received) for row in rows])
            connection.execute("COMMIT")
            taken += len(rows)
        return read, taken, time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        await consumer.stop()
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rebuild", description=__doc__)
    parser.add_argument("--patients", type=int, default=None, help=f"default {DEFAULT_PATIENTS} (~1 M events)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PATIENTS} patients")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    patients = args.patients or (QUICK_PATIENTS if args.quick else DEFAULT_PATIENTS)
    with tempfile.TemporaryDirectory() as tmp, KafkaNode(Path(tmp) / "kafka", port=free_port()) as node:
        began = time.perf_counter()
        events = cohort(patients, [SITE], seed=1)
        print(f"generated {len(events):,} events of {patients:,} patients in {time.perf_counter() - began:.0f} s")
        with progress_bar("publishing") as progress:
            asyncio.run(publish(events, node.bootstrap_servers, progress=progress))
        topics = sorted({e.topic for e in events})
        del events
        raw_records, raw_seconds = asyncio.run(read_everything(node.bootstrap_servers, topics))
        print(f"baseline: {raw_records:,} records read in {raw_seconds:.1f} s = {raw_records / raw_seconds:,.0f}/s")
        floor_records, floor_taken, floor_seconds, floor_cpu = asyncio.run(
            validate_and_record(node.bootstrap_servers, topics, Path(tmp) / "floor.db")
        )
        print(
            f"floor:    {floor_records:,} records read, {floor_taken:,} validated and recorded, in {floor_seconds:.1f} "
            f"s ({floor_cpu:.1f} s of CPU) = {floor_records / floor_seconds:,.0f}/s"
        )
        settings = ServiceSettings(
            service="outcomes", site=SITE, kafka_bootstrap_servers=node.bootstrap_servers, var_dir=Path(tmp) / "var"
        )
        began, cpu_began = time.perf_counter(), time.process_time()
        with progress_bar(f"replaying into {settings.instance}") as progress:
            report = asyncio.run(rebuild_projections(settings, definition_for(settings), progress))
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu_began
        print(
            f"rebuild: {report.records_read:,} records in {seconds:.1f} s = {report.records_read / seconds:,.0f}/s; "
            f"{report.processed:,} taken in, {report.dead_lettered} dead-lettered"
        )
        database = Path(tmp) / "var" / SITE / "outcomes.db"
        figures = {
            "patients": patients,
            "outcomes_database_bytes": database.stat().st_size if database.exists() else None,
            "records": raw_records,
            "baseline_records_s": round(raw_records / raw_seconds),
            "rebuild_records_s": round(report.records_read / seconds),
            "ratio": round((report.records_read / seconds) / (raw_records / raw_seconds), 4),
            "floor_records_s": round(floor_records / floor_seconds),
            "floor_ratio": round((floor_records / floor_seconds) / (raw_records / raw_seconds), 4),
            "floor_taken_in": floor_taken,
            "floor_seconds": round(floor_seconds, 1),
            "floor_cpu_seconds": round(floor_cpu, 1),
            "rebuild_seconds": round(seconds, 1),
            "rebuild_cpu_seconds": round(cpu, 1),
            "taken_in": report.processed,
            "dead_lettered": report.dead_lettered,
        }
        print_figures(figures, args.json)


if __name__ == "__main__":
    main()
