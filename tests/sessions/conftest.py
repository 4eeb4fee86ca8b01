"""A sessions service on a real database, and a way to feed its read model the events intake would send."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.sessions.app import create_app
from services.sessions.handlers import HANDLERS
from shared.bus.consumer import handle_one
from shared.events import CloudEvent, DomainEvent
from shared.events.intake import ConsentSigned, PatientRegistered, ScreeningCompleted
from shared.settings import ServiceSettings
from tests.harness import ServiceUnderTest, app_in_process


class Sessions(ServiceUnderTest):
    async def deliver(self, event: DomainEvent) -> None:
        """Run the real handler in a transaction, as the consumer runner would."""
        async with self.runtime.unit_of_work() as uow:
            envelope = CloudEvent(type=type(event).ce_type(), source="/test/intake", data={})
            await handle_one(HANDLERS[type(event)], uow, event, envelope)
            await uow.commit()

    async def ready_patient(
        self,
        *,
        eligible: bool = True,
        consented: bool = True,
        birth_date: date = date(1980, 1, 1),
        screened_at: datetime | None = None,
    ) -> uuid.UUID:
        patient_id = uuid.uuid4()
        now = datetime.now(UTC)
        await self.deliver(
            PatientRegistered(
                patient_id=patient_id,
                site="north",
                mrn="M",
                birth_date=birth_date,
                sex="female",
                registered_at=now,
            )
        )
        await self.deliver(
            ScreeningCompleted(
                patient_id=patient_id,
                screening_id=uuid.uuid4(),
                outcome="eligible" if eligible else "ineligible",
                reason_codes=[] if eligible else ["pregnancy"],
                screened_at=screened_at or now,
            )
        )
        if consented:
            await self.deliver(
                ConsentSigned(patient_id=patient_id, consent_id=uuid.uuid4(), document_version="1", signed_at=now)
            )
        return patient_id

    async def plan(self, patient_id: uuid.UUID, **changes: Any) -> httpx.Response:
        body = {
            "patient_id": str(patient_id),
            "indication": "treatment_resistant_depression",
            "route": "iv_infusion",
            "planned_dosing_sessions": 6,
            "dosing_sessions_per_week": 2,
            "planned_integration_sessions": 3,
            **changes,
        }
        return await self.client.post("/courses", json=body, headers=self.as_("clinician", sub="dr-k"))


def sessions_settings(database_url: str, var_dir: Path, **changes: Any) -> ServiceSettings:
    return ServiceSettings(
        service="sessions",
        site="north",
        database_url=database_url,
        var_dir=var_dir,
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_timeout_seconds=1,
        **changes,
    )


@pytest.fixture(autouse=True)
def _fresh_clock() -> None:
    """Each test's times count back from its own start, so a long run does not age them past a rule's window."""
    import tests.sessions.test_session_record_api as record_api

    record_api.NOW = datetime.now(UTC)


@pytest.fixture
async def sessions(database_url: str, tmp_path: Path) -> AsyncIterator[Sessions]:
    settings = sessions_settings(database_url, tmp_path)
    async with app_in_process(create_app(settings)) as client:
        yield Sessions(client, settings)
