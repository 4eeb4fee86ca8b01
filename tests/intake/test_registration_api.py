"""Registering a patient through the API, on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from services.intake.app import create_app
from services.intake.models import Patient
from shared.bus.tables import OutboxMessage
from shared.db.database import Database
from shared.settings import ServiceSettings
from tests.harness import app_in_process, auth_headers

ADA: dict[str, Any] = {"given_name": "Ada", "family_name": "Lovelace", "birth_date": "1985-12-10", "sex": "female"}


@pytest.fixture
async def intake(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # No broker on purpose: registration must not depend on Kafka being up.
    settings = ServiceSettings(
        service="intake",
        site="north",
        database_url=database_url,
        var_dir=tmp_path,
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_timeout_seconds=1,
    )
    async with app_in_process(create_app(settings)) as client:
        client.headers.update(auth_headers(settings.dev_key_dir, "north", "front_desk"))
        yield client


async def counts(client: httpx.AsyncClient) -> tuple[int, int]:
    database: Database = client._transport.app.state.runtime.database  # type: ignore[attr-defined]
    async with database.sessions() as session:
        patients = (await session.exec(select(func.count()).select_from(Patient))).one()
        events = (await session.exec(select(func.count()).select_from(OutboxMessage))).one()
    return int(patients), int(events)


async def test_register_then_read_a_patient(intake: httpx.AsyncClient) -> None:
    reply = await intake.post("/patients", json=ADA)
    assert reply.status_code == 201, reply.text
    patient = reply.json()
    assert reply.headers["location"] == f"/patients/{patient['id']}"
    assert patient["mrn"].startswith("NORTH-") and patient["active"] is True
    fetched = await intake.get(f"/patients/{patient['id']}")
    assert fetched.status_code == 200 and fetched.json() == patient
    # The patient and its patient.registered event were written together.
    assert await counts(intake) == (1, 1)


async def test_an_unknown_patient_is_404(intake: httpx.AsyncClient) -> None:
    reply = await intake.get("/patients/00000000-0000-0000-0000-000000000000")
    assert reply.status_code == 404
    assert (await intake.get("/patients/not-a-uuid")).status_code == 422


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"birth_date": (date.today() + timedelta(days=1)).isoformat()}, "birth_date"),
        ({"birth_date": "1850-01-01"}, "birth_date"),
        ({"birth_date": "31/12/1980"}, "birth_date"),
        ({"sex": "x"}, "sex"),
        ({"given_name": ""}, "given_name"),
        ({"mrn": "has spaces"}, "mrn"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
    ],
)
async def test_bad_input_is_422_naming_the_field_and_writes_nothing(
    intake: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    reply = await intake.post("/patients", json={**ADA, **change})
    assert reply.status_code == 422
    assert field in {error["pointer"].split("/")[-1] for error in reply.json()["errors"]}
    assert await counts(intake) == (0, 0)


async def test_a_malformed_body_is_422(intake: httpx.AsyncClient) -> None:
    reply = await intake.post("/patients", content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 422
    assert await counts(intake) == (0, 0)


async def test_an_mrn_is_unique_per_site(intake: httpx.AsyncClient) -> None:
    assert (await intake.post("/patients", json={**ADA, "mrn": "A-1"})).status_code == 201
    again = await intake.post("/patients", json={**ADA, "mrn": "A-1"})
    assert again.status_code == 409 and "A-1" in again.json()["detail"]
    assert await counts(intake) == (1, 1)
