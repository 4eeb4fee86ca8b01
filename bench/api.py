"""P3 API: registration through intake's real API against a bare FastAPI endpoint doing one insert.

    python -m bench.api [--requests 2000] [--concurrency 16] [--rounds 3] [--json PATH]

Registration: intake as `make run` starts it (its own process, uvicorn, SQLite file, a broker of its own so its
relay publishes), POST /patients with a front-desk token: the token is checked, the record validated and
written with its audit entry and its PatientRegistered in the outbox, in one transaction.

Baseline, in the same run and on the same terms: a FastAPI app with one POST route that inserts one row through
kapnet's own Database (same engine settings and SQLite pragmas) into a SQLite file, served by uvicorn the way
services are (one process, no access log).

Load generator: an asyncio httpx client with ``--concurrency`` connections, each sending its requests one after
another until ``--requests`` are done; 100 uncounted requests first warm each server. Printed per round and as
medians: throughput, p50 and p99 latency, and the ratios registration/baseline. Figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from pydantic import BaseModel

from bench.report import print_figures
from bench.sqlite_writers import Load
from deploy import local_http
from deploy.kafka.launcher import KafkaNode, free_port
from shared.auth.tokens import mint_dev_token
from shared.freed_memory import allocator_environment
from tests.harness import running, service_process

ROOT = Path(__file__).resolve().parent.parent
WARM_UP = 100


class Registration(BaseModel):
    """The baseline's body: the same JSON the registration gets, validated as plainly as FastAPI allows."""

    given_name: str
    family_name: str
    birth_date: str
    sex: str


def bare_app(database_url: str) -> object:
    """The baseline: one route, one INSERT, one COMMIT, through the same Database class the services use."""
    import sqlalchemy as sa
    from fastapi import FastAPI

    from shared.db.database import Database

    metadata = sa.MetaData()
    item = sa.Table(
        "item",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("given_name", sa.String(100), nullable=False),
        sa.Column("family_name", sa.String(100), nullable=False),
    )
    sync = sa.create_engine(database_url)
    metadata.create_all(sync)
    sync.dispose()
    database = Database(database_url)
    app = FastAPI()

    @app.post("/items", status_code=201)
    async def insert(body: Registration) -> dict[str, str]:
        async with database.sessions() as session, session.begin():
            await session.execute(item.insert().values(given_name=body.given_name, family_name=body.family_name))
        return {"ok": "yes"}

    return app


async def drive(url: str, path: str, headers: dict[str, str], requests: int, concurrency: int) -> Load:
    latencies: list[float] = []
    failures = 0
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as client:

        async def connection() -> None:
            nonlocal failures
            for n in counter:
                body = {"given_name": "Api", "family_name": f"Bench{n}", "birth_date": "1980-01-01", "sex": "other"}
                began = time.perf_counter()
                reply = await client.post(path, json=body)
                latencies.append(time.perf_counter() - began)
                failures += reply.status_code != 201

        began = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(concurrency)))
        return Load(time.perf_counter() - began, latencies, failures)


@contextmanager
def bare_server(workdir: Path) -> Iterator[str]:
    port = free_port()
    database = f"sqlite:///{workdir / 'bare.db'}"
    code = (
        "import sys, uvicorn\n"
        "from bench.api import bare_app\n"
        "uvicorn.run(bare_app(sys.argv[1]), host='127.0.0.1', port=int(sys.argv[2]), log_level='warning',"
        " access_log=False)\n"
    )
    # On the allocator the services run on (shared/freed_memory.py), so the ratio is the services' own work.
    environment = {**os.environ, **allocator_environment()}
    process = subprocess.Popen([sys.executable, "-c", code, database, str(port)], cwd=ROOT, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                local_http.get(f"{url}/docs", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the bare app did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def intake_server(workdir: Path) -> Iterator[tuple[str, str]]:
    with ExitStack() as stack:
        node = stack.enter_context(KafkaNode(workdir / "kafka", port=free_port()))
        site = "apibench"
        intake = service_process(
            "intake", workdir, KAPNET_SITE=site, KAPNET_KAFKA_BOOTSTRAP_SERVERS=node.bootstrap_servers,
            KAPNET_LOG_LEVEL="warning",
        )  # fmt: skip
        stack.enter_context(running(intake))
        yield intake.url, mint_dev_token(workdir / "var" / "auth", site=site, roles=["front_desk"])


def timed(url: str, path: str, headers: dict[str, str], requests: int, concurrency: int) -> Load:
    asyncio.run(drive(url, path, headers, WARM_UP, concurrency))
    return asyncio.run(drive(url, path, headers, requests, concurrency))


def one_round(requests: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with bare_server(workdir) as url:
            baseline = timed(url, "/items", {}, requests, concurrency)
        with intake_server(workdir) as (url, token):
            registration = timed(url, "/patients", {"Authorization": f"Bearer {token}"}, requests, concurrency)
    figures: dict[str, float] = {}
    for name, load in (("baseline", baseline), ("registration", registration)):
        figures[f"{name}_req_s"] = round(load.throughput, 1)
        figures[f"{name}_p50_ms"] = round(load.percentile(0.5) * 1000, 1)
        figures[f"{name}_p99_ms"] = round(load.percentile(0.99) * 1000, 1)
        figures[f"{name}_failed"] = load.failures
    figures["throughput_ratio"] = round(registration.throughput / baseline.throughput, 3)
    figures["p99_ratio"] = round(registration.percentile(0.99) / baseline.percentile(0.99), 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rounds = []
    for number in range(1, args.rounds + 1):
        figures = one_round(args.requests, args.concurrency)
        rounds.append(figures)
        print(json.dumps({"round": number, **figures}), flush=True)
    medians = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    result = {"requests": args.requests, "concurrency": args.concurrency, "rounds": rounds, "median": medians}
    print_figures(result, args.json)


if __name__ == "__main__":
    main()
