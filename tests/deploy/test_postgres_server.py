"""deploy/postgres/launcher.py's servers: a durable one (the default: make run's, the benchmarks') syncs as
PostgreSQL's defaults do; the tests' throwaway ones never wait for the disk, and still commit synchronously, so a
kill -9 of a server process loses nothing committed."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from deploy.postgres.launcher import PostgresServer
from tests.harness import PostgresDatabases

pytestmark = pytest.mark.postgres

SYNCING = ("fsync", "full_page_writes", "synchronous_commit")


def settings(url: str) -> dict[str, str]:
    with psycopg.connect(url) as connection:
        return {name: str(connection.execute(f"SHOW {name}").fetchone()[0]) for name in SYNCING}  # type: ignore[index]


def test_the_tests_throwaway_servers_do_not_sync_but_commit_synchronously(postgres: PostgresDatabases) -> None:
    if postgres.server is None:
        pytest.skip("a server named by DATABASE_URL is configured by whoever runs it")
    assert settings(postgres.fresh()) == {"fsync": "off", "full_page_writes": "off", "synchronous_commit": "on"}


def test_a_server_is_durable_unless_made_throwaway(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path / "postgres")
    try:
        server.start()
        assert settings(server.create_database("durable")) == {
            "fsync": "on",
            "full_page_writes": "on",
            "synchronous_commit": "on",
        }
    finally:
        server.destroy()
