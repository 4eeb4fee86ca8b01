"""An outcomes site service on a real database, and a way to feed it the events intake, sessions and billing
would send, through the real handlers in the consumer's kind of transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.outcomes.app import create_app
from services.outcomes.domain.definitions import site_definition
from services.outcomes.handlers import SITE_HANDLERS
from services.outcomes.service.beat import BeatReport, PrivacyBudgetSettings, review_site
from shared.bus.consumer import handle_one
from shared.events import CloudEvent, DomainEvent
from shared.privacy.release import ReleasePeriod
from shared.settings import ServiceSettings
from tests.harness import ServiceUnderTest, app_in_process

HANDLERS = {event: handle for by_type in SITE_HANDLERS.values() for event, handle in by_type.items()}


class Outcomes(ServiceUnderTest):
    async def deliver(self, *events: DomainEvent) -> None:
        for event in events:
            async with self.runtime.unit_of_work() as uow:
                envelope = CloudEvent(type=type(event).ce_type(), source="/test", data={}, time=datetime.now(UTC))
                await handle_one(HANDLERS[type(event)], uow, event, envelope)
                await uow.commit()

    async def beat(
        self,
        pcl5_cutoff: int = 33,
        period: ReleasePeriod = ReleasePeriod.beat,
        now: datetime | None = None,
        noise: PrivacyBudgetSettings | None = None,
    ) -> BeatReport:
        """One beat; by default every beat may release (the step rule still holds), as in development."""
        return await review_site(
            self.runtime.unit_of_work, "north", self.settings.zone, site_definition(pcl5_cutoff), period, now, noise
        )


def outcomes_settings(database_url: str, var_dir: Path) -> ServiceSettings:
    return ServiceSettings(
        service="outcomes",
        site="north",
        database_url=database_url,
        var_dir=var_dir,
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_timeout_seconds=1,
        time_zone="America/New_York",
        # The beat is called by the tests themselves.
        aggregate_publish_interval_seconds=3600,
    )


@pytest.fixture
async def outcomes(database_url: str, tmp_path: Path) -> AsyncIterator[Outcomes]:
    settings = outcomes_settings(database_url, tmp_path)
    async with app_in_process(create_app(settings)) as client:
        yield Outcomes(client, settings)
