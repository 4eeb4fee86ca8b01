"""The audit log: a change and a read are recorded with who, role, action, patient, time and trace; a site
admin pages through it; the table refuses UPDATE and DELETE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from services.intake.app import create_app
from shared.db.database import sync_url
from shared.db.migrate import upgrade_to_head
from shared.settings import ServiceSettings
from tests.conftest import INTAKE_MIGRATIONS
from tests.harness import app_in_process, auth_headers

BODY = {"given_name": "Audit", "family_name": "Trail", "birth_date": "1970-07-07", "sex": "female", "mrn": "AUD-1"}


@pytest.fixture
async def intake(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    settings = ServiceSettings(
        service="intake",
        site="north",
        database_url=database_url,
        var_dir=tmp_path,
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_timeout_seconds=1,
    )
    async with app_in_process(create_app(settings)) as client:
        yield client, settings.dev_key_dir


async def audit(client: httpx.AsyncClient, key_dir: Path, **params: Any) -> dict[str, Any]:
    reply = await client.get("/audit", params=params, headers=auth_headers(key_dir, "north", "site_admin"))
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


async def test_a_change_then_a_read_are_audited(intake: tuple[httpx.AsyncClient, Path]) -> None:
    client, key_dir = intake
    before = datetime.now(UTC) - timedelta(seconds=1)
    front_desk = auth_headers(key_dir, "north", "front_desk", sub="fd-7")
    created = await client.post("/patients", json=BODY, headers=front_desk)
    assert created.status_code == 201
    patient_id = created.json()["id"]
    clinician = auth_headers(key_dir, "north", "clinician", sub="dr-3")
    trace = "0af7651916cd43dd8448eb211c80319c"
    read = await client.get(
        f"/patients/{patient_id}", headers={**clinician, "traceparent": f"00-{trace}-b7ad6b7169203331-01"}
    )
    assert read.status_code == 200

    # A change that fails writes no audit entry: it shares the change's transaction.
    assert (await client.post("/patients", json=BODY, headers=front_desk)).status_code == 409

    entries = (await audit(client, key_dir, patient_id=patient_id))["entries"]
    assert [(e["action"], e["actor"], e["role"]) for e in entries] == [
        ("patient.read", "dr-3", "clinician"),
        ("patient.register", "fd-7", "front_desk"),
    ]
    for entry in entries:
        assert entry["site"] == "north" and entry["resource"] == f"patients/{patient_id}"
        assert before <= datetime.fromisoformat(entry["recorded_at"]) <= datetime.now(UTC)
        assert entry["trace_id"] and len(entry["trace_id"]) == 32
    assert entries[0]["trace_id"] == trace, "the caller's trace is the one recorded"

    by_user = (await audit(client, key_dir, user="fd-7"))["entries"]
    assert [e["action"] for e in by_user] == ["patient.register"]
    later = (await audit(client, key_dir, since=datetime.now(UTC).isoformat()))["entries"]
    assert later == []
    first_page = await audit(client, key_dir, limit=1)
    assert len(first_page["entries"]) == 1 and first_page["next_before_id"] is not None
    second_page = await audit(client, key_dir, limit=1, before_id=first_page["next_before_id"])
    assert second_page["entries"][0]["id"] < first_page["entries"][0]["id"]


async def test_only_a_site_admin_reads_the_log(intake: tuple[httpx.AsyncClient, Path]) -> None:
    client, key_dir = intake
    for role in ("front_desk", "clinician", "therapist", "billing"):
        reply = await client.get("/audit", headers=auth_headers(key_dir, "north", role))
        assert reply.status_code == 403
    naive = await client.get(
        "/audit", params={"since": "2026-01-01T00:00:00"}, headers=auth_headers(key_dir, "north", "site_admin")
    )
    assert naive.status_code == 422, "a time without a zone is ambiguous"


async def test_no_route_changes_the_log(intake: tuple[httpx.AsyncClient, Path]) -> None:
    client, _ = intake
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths["/audit"]) == {"get"}
    assert not [p for p in paths if p.startswith("/audit/")]


@pytest.mark.postgres
async def test_the_database_refuses_to_change_or_delete_entries(database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, database_url, INTAKE_MIGRATIONS)
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO audit_entry (recorded_at, actor, actor_name, role, site, action, resource) "
                    "VALUES (CURRENT_TIMESTAMP, 'u', 'U', 'clinician', 'north', 'patient.read', 'patients/x')"
                )
            )
        for statement in ("UPDATE audit_entry SET actor = 'someone else'", "DELETE FROM audit_entry"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
                connection.execute(text(statement))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT actor FROM audit_entry")).scalars().all() == ["u"]
    finally:
        engine.dispose()
