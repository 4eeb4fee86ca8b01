"""Every service's Alembic migrations, up and down, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from shared.db.database import sync_url
from shared.db.migrate import downgrade_to_base, upgrade_to_head

ROOT = Path(__file__).resolve().parents[2]
MIGRATION_FOLDERS = sorted(
    p for p in (ROOT / "services").glob("*/migrations/*") if p.is_dir() and p.name != "__pycache__"
)


def tables(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_every_service_has_migrations() -> None:
    # Every service that keeps records (its tables in models.py); the site console keeps none.
    services = {p.parent.name for p in (ROOT / "services").glob("*/models.py")}
    assert services == {"intake", "sessions", "billing", "outcomes", "webhooks"}
    assert not (ROOT / "services" / "console" / "models.py").exists()
    assert {p.parents[1].name for p in MIGRATION_FOLDERS} == services


@pytest.mark.postgres
@pytest.mark.parametrize("folder", MIGRATION_FOLDERS, ids=lambda p: f"{p.parents[1].name}-{p.name}")
async def test_migrations_go_up_and_down(folder: Path, database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, database_url, folder)
    created = tables(database_url)
    assert {"outbox_message", "inbox_entry"} <= created
    await asyncio.to_thread(downgrade_to_base, database_url, folder)
    assert tables(database_url) == set()
    await asyncio.to_thread(upgrade_to_head, database_url, folder)
    assert tables(database_url) == created


def test_the_network_role_has_no_patient_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'network.db'}"
    upgrade_to_head(url, ROOT / "services" / "outcomes" / "migrations" / "network")
    assert tables(url) == {"outbox_message", "inbox_entry", "network_aggregate", "network_cohort_outcome"}


def test_no_production_code_creates_tables_behind_alembics_back() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("shared", "services")
        for path in (ROOT / folder).rglob("*.py")
        if "create_all(" in path.read_text()
    ]
    assert offenders == []
