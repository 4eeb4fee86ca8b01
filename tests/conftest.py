"""Real infrastructure for the whole suite: one Kafka broker and one PostgreSQL server per run."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from shared.db.database import Database
from shared.db.migrate import upgrade_to_head
from tests.harness import PostgresDatabases, kafka_broker, postgres_databases

ROOT = Path(__file__).resolve().parent.parent
INTAKE_MIGRATIONS = ROOT / "services" / "intake" / "migrations" / "versions"
OUTCOMES_SITE_MIGRATIONS = ROOT / "services" / "outcomes" / "migrations" / "site"


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with kafka_broker(tmp_path_factory.mktemp("broker")) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresDatabases]:
    with postgres_databases(tmp_path_factory.mktemp("pg")) as databases:
        yield databases


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Makes fresh, empty databases of each kind the database layer must work on."""
    kind = request.param

    def fresh() -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / uuid.uuid4().hex[:8]}.db"
        databases: PostgresDatabases = request.getfixturevalue("postgres")
        return databases.fresh()

    return fresh


@pytest.fixture
def database_url(new_database_url: Callable[[], str]) -> str:
    return new_database_url()


@contextlib.asynccontextmanager
async def migrated_database(url: str, migrations: Path) -> AsyncIterator[Database]:
    """A service's database at its newest schema, as the service migrates it, closed afterwards."""
    await asyncio.to_thread(upgrade_to_head, url, migrations)
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def outcomes_db(new_database_url: Callable[[], str]) -> AsyncIterator[Database]:
    """A migrated outcomes (site role) database: real handlers write to it."""
    async with migrated_database(new_database_url(), OUTCOMES_SITE_MIGRATIONS) as database:
        yield database


@pytest.fixture
async def intake_db(new_database_url: Callable[[], str]) -> AsyncIterator[Database]:
    async with migrated_database(new_database_url(), INTAKE_MIGRATIONS) as database:
        yield database


@pytest.fixture
def unique() -> Callable[[str], str]:
    suffix = uuid.uuid4().hex[:8]
    return lambda name: f"{name}.{suffix}"
