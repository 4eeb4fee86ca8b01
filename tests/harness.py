"""How tests find real infrastructure: a named server, else testcontainers with a Docker engine, else our
own launchers (deploy/kafka, deploy/postgres). And how end-to-end tests run real service processes."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from fastapi import FastAPI
from sqlalchemy import func
from sqlmodel import SQLModel, select

from deploy.kafka.launcher import KafkaNode, free_port
from deploy.postgres.launcher import PostgresServer
from deploy.processes import ServiceProcess
from shared.app import ServiceRuntime
from shared.auth.tokens import mint_dev_token
from shared.db.database import Database
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent

# The tests' brokers run C1 only. Measured on 2026-12-06: a start and stop 5.5 -> 3.5 s of CPU, and a test's kind of
# work (40 topics, 80,000 records, 40 consumer groups) 12.6 -> 6.4-7.8 s of the broker's CPU: C2's compilations do
# not pay for themselves in a broker that lives for a test or a suite. Benchmarks keep KafkaNode's default (C2).
TEST_BROKER_JVM = ("-Xmx512m", "-XX:TieredStopAtLevel=1")


def docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextmanager
def kafka_broker(workdir: Path) -> Iterator[str]:
    named = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if named:
        yield named
        return
    if docker_answers():
        from testcontainers.kafka import KafkaContainer  # type: ignore[import-untyped]

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    with KafkaNode(workdir / "kafka", port=free_port(), jvm_options=TEST_BROKER_JVM) as node:
        yield node.bootstrap_servers


class PostgresDatabases:
    """Hands each test a fresh, empty database on one server."""

    def __init__(self, server: PostgresServer | None, named_url: str | None) -> None:
        self.server = server
        self.named_url = named_url

    def fresh(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        if self.server is not None:
            return self.server.create_database(name)
        assert self.named_url is not None
        import psycopg
        from sqlalchemy.engine import make_url

        admin = make_url(self.named_url).set(drivername="postgresql")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return admin.set(database=name).render_as_string(hide_password=False)


@contextmanager
def postgres_databases(workdir: Path) -> Iterator[PostgresDatabases]:
    named = os.environ.get("DATABASE_URL")
    if named:
        yield PostgresDatabases(None, named)
        return
    if docker_answers():
        from testcontainers.postgres import PostgresContainer  # type: ignore[import-untyped]

        with PostgresContainer("postgres:16") as container:
            yield PostgresDatabases(None, container.get_connection_url())
        return
    # Throwaway: no test can tell a synced commit from one the OS holds (a kill -9 leaves the OS's pages as they
    # are), and the suite made thousands of commits, each waiting for the disk.
    server = PostgresServer(workdir / "postgres", durable=False)
    try:
        server.start()
        yield PostgresDatabases(server, None)
    finally:
        # destroy, not stop: as root the cluster is relocated under /tmp, which pytest's own
        # clean-up of tmp_path never reaches (57 GB had piled up there over a few days of runs).
        server.destroy()


def service_process(service: str, workdir: Path, **env: str) -> ServiceProcess:
    env = {"KAPNET_VAR_DIR": str(workdir / "var"), "KAPNET_LOG_LEVEL": "info", **env}
    where = "network" if env.get("KAPNET_ROLE") == "network" else env.get("KAPNET_SITE", "north")
    return ServiceProcess(service, free_port(), env, workdir / "logs" / f"{service}@{where}.log")


@contextmanager
def running(*processes: ServiceProcess) -> Iterator[tuple[ServiceProcess, ...]]:
    with ExitStack() as stack:
        for process in processes:
            stack.callback(process.stop)
            process.start()
        for process in processes:
            process.wait_healthy()
        yield processes


def wait_until(condition: object, timeout: float = 60.0, interval: float = 0.25, what: str = "condition") -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], within: float = 30.0, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"timed out after {within}s waiting for {what}")


async def read_topic(
    bootstrap: str, topic: str, expected: int, within: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on ``topic`` from the beginning, once at least ``expected`` have arrived."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + within
        partitions: set[int] | None = None
        while not partitions:
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                await consumer._client.force_metadata_update()  # a topic made moments ago
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"topic {topic} does not exist")
                await asyncio.sleep(0.2)
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        records: list[ConsumerRecord[bytes, bytes]] = []
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        if len(records) < expected:
            raise TimeoutError(f"{topic}: {len(records)} of {expected} records after {within}s")
        # Anything beyond what was expected (a duplicate, say) has a moment to show up too.
        for batch in (await consumer.getmany(timeout_ms=1000)).values():
            records.extend(batch)
        return records
    finally:
        await consumer.stop()


@asynccontextmanager
async def app_in_process(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A service app with its lifespan (migrations, relay, consumers) running in this event loop."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


def auth_headers(key_dir: Path, site: str, *roles: str, sub: str | None = None) -> dict[str, str]:
    """A development bearer token from the key the services under test trust (their KAPNET_VAR_DIR/auth)."""
    token = mint_dev_token(key_dir, site=site, roles=list(roles), sub=sub)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class ServiceUnderTest:
    """An in-process service and what a test does with it: call it as a role of its site, look at its tables."""

    client: httpx.AsyncClient
    settings: ServiceSettings

    def as_(self, role: str, sub: str | None = None) -> dict[str, str]:
        return auth_headers(self.settings.dev_key_dir, self.settings.site or "network", role, sub=sub)

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.client._transport.app.state.runtime  # type: ignore[attr-defined]
        return runtime

    @property
    def database(self) -> Database:
        return self.runtime.database

    async def count(self, table: type[SQLModel]) -> int:
        async with self.database.sessions() as session:
            return int((await session.exec(select(func.count()).select_from(table))).one())
