"""deploy/postgres/launcher.py's servers: a durable one (the default: make run's, the benchmarks') syncs as
PostgreSQL's defaults do; the tests' throwaway ones never wait for the disk, and still commit synchronously, so a
kill -9 of a server process loses nothing committed."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from deploy.postgres.launcher import PostgresServer

pytestmark = pytest.mark.postgres

SYNCING = ("fsync", "full_page_writes", "synchronous_commit")


def settings(url: str) -> dict[str, str]:
    with psycopg.connect(url) as connection:
        return {name: str(connection.execute(f"SHOW {name}").fetchone()[0]) for name in SYNCING}  # type: ignore[index]


def server_settings(data_dir: Path, *, durable: bool) -> dict[str, str]:
    server = PostgresServer(data_dir, durable=durable)
    try:
        server.start()
        return settings(server.create_database("checked"))
    finally:
        server.destroy()


def test_a_throwaway_server_does_not_sync_but_commits_synchronously(tmp_path: Path) -> None:
    assert server_settings(tmp_path / "throwaway", durable=False) == {
        "fsync": "off",
        "full_page_writes": "off",
        "synchronous_commit": "on",
    }


def test_a_server_is_durable_unless_made_throwaway(tmp_path: Path) -> None:
    assert server_settings(tmp_path / "durable", durable=True) == {
        "fsync": "on",
        "full_page_writes": "on",
        "synchronous_commit": "on",
    }
