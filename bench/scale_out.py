"""Scale-out: one and two instances of outcomes' consumer sharing a topic of 6 partitions.

    python -m bench.scale_out [--events 20000] [--database postgresql|sqlite] [--rounds 3] [--json PATH]

For each round and each instance count: a fresh topic of 6 partitions, a fresh shared database, and 1 or 2
consumer processes of one group (tests/faults/stage.py: outcomes' EventConsumer with its real handler, as a service
runs it). The instances start first, on the empty topic, and join their group; once they hold every partition
between them, the clock starts, N registrations (what intake's relay sends) are produced, and it stops when the
N-th is taken in. Baseline: one instance. Printed: both rates and the ratio two/one. PostgreSQL by default:
two processes writing one SQLite file take turns on its single write lock. Figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer
from sqlalchemy import create_engine, text

from bench.pipeline import Infrastructure, Options, create_topic, infrastructure, make_events, wire_records
from bench.report import print_figures
from shared.bus.kafka import TopicSpec
from shared.db.database import sync_url
from shared.db.migrate import upgrade_to_head
from shared.events.intake import PatientRegistered
from shared.events.registry import topic_for

ROOT = Path(__file__).resolve().parent.parent
OUTCOMES_SITE_MIGRATIONS = ROOT / "services" / "outcomes" / "migrations" / "site"
PARTITIONS = 6


async def fill(bootstrap: str, site: str, events: int) -> None:
    topic = topic_for(PatientRegistered, site)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        records = wire_records(make_events(site, events), f"/kapnet/{site}/intake")
        for start in range(0, len(records), 2000):
            futures = [
                await producer.send(topic, value=r.value, key=r.key, headers=list(r.headers))
                for r in records[start : start + 2000]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


def processed(url: str) -> int:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM inbox_entry")).scalar_one())
    finally:
        engine.dispose()


def assigned(logs: list[Path]) -> set[str]:
    """The partitions the instances hold now: each one's latest assignment, from its log."""
    held: set[str] = set()
    for log in logs:
        lines = [line for line in log.read_text().splitlines() if " assigned [" in line]
        if lines:
            held |= set(re.findall(r"'([^']+:\d+)'", lines[-1]))
    return held


def consume_with(infra: Infrastructure, instances: int, events: int, label: str) -> float:
    """Events per second from the first record produced to the last taken in, with the instances already in
    their group and holding every partition between them (start-up and the join are not counted)."""
    site = f"scale{label}"
    asyncio.run(create_topic(infra.bootstrap, TopicSpec(topic_for(PatientRegistered, site), partitions=PARTITIONS), 10))
    url = infra.fresh_database(f"scale_{label}")
    upgrade_to_head(url, OUTCOMES_SITE_MIGRATIONS)
    paths = [infra.workdir / f"{site}-{n}.log" for n in range(instances)]
    logs = [path.open("wb") for path in paths]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.faults.stage",
                "consumer",
                "--database",
                url,
                "--bootstrap",
                infra.bootstrap,
                "--site",
                site,
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for log in logs
    ]
    try:
        deadline = time.monotonic() + 120
        while len(assigned(paths)) < PARTITIONS or sum(" assigned [" in p.read_text() for p in paths) < instances:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"{instances} instance(s) never held every partition")
            time.sleep(0.2)
        time.sleep(2.0)  # a rebalance the last join started settles
        began = time.perf_counter()
        asyncio.run(fill(infra.bootstrap, site, events))
        deadline = time.monotonic() + 60 + events * 0.02
        while processed(url) < events:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"{instances} instance(s): {processed(url)} of {events} after the deadline")
            time.sleep(0.05)
        return events / (time.perf_counter() - began)
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
        for log in logs:
            log.close()
        infra.drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    options = Options(args.events, args.database, os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), args.rounds, 100)
    rounds = []
    with infrastructure(options) as infra:
        for number in range(1, args.rounds + 1):
            one = consume_with(infra, 1, args.events, f"r{number}one")
            two = consume_with(infra, 2, args.events, f"r{number}two")
            figures = {"one_instance_ev_s": round(one), "two_instances_ev_s": round(two), "ratio": round(two / one, 3)}
            rounds.append(figures)
            print(json.dumps({"round": number, **figures}), flush=True)
    medians = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    result = {
        "events": args.events,
        "partitions": PARTITIONS,
        "database": args.database,
        "rounds": rounds,
        "median": medians,
    }
    print_figures(result, args.json)


if __name__ == "__main__":
    main()
