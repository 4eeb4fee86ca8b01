"""An intake service on a real database (SQLite and PostgreSQL), no broker: its events wait in the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from services.intake.app import create_app
from shared.bus.tables import OutboxMessage
from shared.settings import ServiceSettings
from tests.harness import ServiceUnderTest, app_in_process

ADA: dict[str, Any] = {"given_name": "Ada", "family_name": "Lovelace", "birth_date": "1985-12-10", "sex": "female"}


class Intake(ServiceUnderTest):
    async def events(self, ce_type_suffix: str = "") -> list[OutboxMessage]:
        async with self.database.sessions() as session:
            rows = (await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all()  # type: ignore[arg-type]
        return [r for r in rows if r.ce_type.endswith(ce_type_suffix)]

    async def register(self, **changes: Any) -> dict[str, Any]:
        reply = await self.client.post("/patients", json={**ADA, **changes}, headers=self.as_("front_desk"))
        assert reply.status_code == 201, reply.text
        patient: dict[str, Any] = reply.json()
        return patient


@pytest.fixture
async def intake(database_url: str, tmp_path: Path) -> AsyncIterator[Intake]:
    settings = ServiceSettings(
        service="intake",
        site="north",
        database_url=database_url,
        var_dir=tmp_path,
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_timeout_seconds=1,
    )
    async with app_in_process(create_app(settings)) as client:
        yield Intake(client, settings)
