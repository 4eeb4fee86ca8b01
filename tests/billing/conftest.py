"""A billing service on a real database, and a way to feed it the events intake and sessions would send."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from services.billing.app import create_app
from services.billing.domain.settings import BillingSettings
from services.billing.handlers import handlers
from shared.bus.consumer import Batched, handle_one, handler_calls
from shared.events import CloudEvent, DomainEvent
from shared.events.intake import CoverageOnFile, PatientRegistered
from shared.settings import ServiceSettings
from tests.harness import ServiceUnderTest, app_in_process

PROVIDER: dict[str, Any] = {
    "name": "Kapnet North Clinic",
    "npi": "1234567893",  # CMS's example of a valid NPI
    "tin": "123456789",
    "location": {"line1": "1 Main St", "city": "Albany", "state": "NY", "postal_code": "12207"},
}


class Billing(ServiceUnderTest):
    async def deliver(self, event: DomainEvent, at: datetime | None = None) -> None:
        """Run the real handler in a transaction, as the consumer runner would."""
        rules = BillingSettings(**self.settings.billing_rules)
        table = handlers(rules, self.settings.time_zone)
        async with self.runtime.unit_of_work() as uow:
            envelope = CloudEvent(type=type(event).ce_type(), source="/test", data={}, time=at or datetime.now(UTC))
            await handle_one(table[type(event)], uow, event, envelope)
            await uow.commit()

    async def deliver_together(self, events: Sequence[DomainEvent], at: datetime | None = None) -> None:
        """Events in one transaction, each handler called with its events as the consumer groups a batch's
        (shared/bus/consumer.py, handler_calls): the batched handlers get a run of them."""
        rules = BillingSettings(**self.settings.billing_rules)
        table = handlers(rules, self.settings.time_zone)
        async with self.runtime.unit_of_work() as uow:
            taken = [
                (
                    None,
                    CloudEvent(type=type(event).ce_type(), source="/test", data={}, time=at or datetime.now(UTC)),
                    event,
                    table[type(event)],
                )
                for event in events
            ]
            for handler, items in handler_calls(taken):  # type: ignore[arg-type]  # no Kafka records here
                if isinstance(handler, Batched):
                    await handler.handle(uow, [(event, envelope) for _, envelope, event, _ in items])
                else:
                    for _, envelope, event, _ in items:
                        await handler(uow, event, envelope)
            await uow.commit()

    async def registered(self, coverage: CoverageOnFile | None = None) -> uuid.UUID:
        patient_id = uuid.uuid4()
        await self.deliver(
            PatientRegistered(
                patient_id=patient_id,
                site="north",
                mrn="M1",
                given_name="Ada",
                family_name="Lovelace",
                birth_date=date(1980, 1, 1),
                sex="female",
                registered_at=datetime.now(UTC),
                coverage=coverage or CoverageOnFile(self_pay=True),
            )
        )
        return patient_id


def billing_settings(database_url: str, var_dir: Path, **rules: Any) -> ServiceSettings:
    return ServiceSettings(
        service="billing",
        site="north",
        database_url=database_url,
        var_dir=var_dir,
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_timeout_seconds=1,
        time_zone="America/New_York",
        billing_rules={"provider": PROVIDER, **rules},
    )


@pytest.fixture
async def billing(database_url: str, tmp_path: Path) -> AsyncIterator[Billing]:
    settings = billing_settings(database_url, tmp_path)
    async with app_in_process(create_app(settings)) as client:
        yield Billing(client, settings)
