"""Every service's Alembic migrations, up and down, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from shared.db.database import sync_url
from shared.db.migrate import downgrade_to_base, upgrade_to_head
from shared.db.migration_process import upgrade_in_child_process

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


NETWORK_TABLES = {
    "outbox_message",
    "inbox_entry",
    "network_aggregate",
    "network_cohort_outcome",
    "network_measure_report",
}


def test_the_network_role_has_no_patient_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'network.db'}"
    upgrade_to_head(url, ROOT / "services" / "outcomes" / "migrations" / "network")
    assert tables(url) == NETWORK_TABLES


async def test_a_server_migrates_in_a_child_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'outcomes.db'}"
    await upgrade_in_child_process(url, ROOT / "services" / "outcomes" / "migrations" / "network")
    assert tables(url) == NETWORK_TABLES


async def test_a_failed_migration_stops_the_start_with_its_reason(tmp_path: Path) -> None:
    # A database the migrations cannot reach: the start fails instead of serving on a missing schema.
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'outcomes.db'}"
    with pytest.raises(RuntimeError, match=r"migrations in .*network failed \(exit code 1\)"):
        await upgrade_in_child_process(url, ROOT / "services" / "outcomes" / "migrations" / "network")


def test_a_server_starts_without_alembic_opendp_reportlab_or_the_solver() -> None:
    # Memory every server would carry for nothing (issue 15's footprint): Alembic runs in a child process, OpenDP
    # only in the differential privacy mode, ReportLab only for a superbill PDF; each loads when it is needed.
    # numpy and HiGHS (18 MB) only in the suppression solver's own process (shared/privacy/suppression_process.py).
    # This test's process has Alembic already (conftest migrates in it): ask a fresh interpreter.
    apps = ", ".join(f"services.{name}.app" for name in ("intake", "sessions", "billing", "outcomes", "webhooks"))
    unwanted = ("alembic", "mako", "opendp", "reportlab", "numpy", "highspy")
    listing = f"sorted(m for m in sys.modules if m.split('.')[0] in {unwanted!r})"
    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, {apps}; print({listing})"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "[]"


def test_no_production_code_creates_tables_behind_alembics_back() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("shared", "services")
        for path in (ROOT / folder).rglob("*.py")
        if "create_all(" in path.read_text()
    ]
    assert offenders == []
