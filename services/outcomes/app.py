"""Outcomes: measurement over time at a site (site role), and the cross-site aggregates (network role)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI

from services.outcomes import handlers
from services.outcomes.api.network import network_router
from services.outcomes.service import publication
from shared.app import ServiceDefinition, ServiceRuntime, create_service_app
from shared.bus.kafka import raise_if_cancelling
from shared.events.outcomes import CohortAggregatePublished
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


async def publish_aggregates(runtime: ServiceRuntime) -> None:
    """Site role: recompute the site's aggregates on a fixed beat rather than per event, so the network never
    learns when an individual registration happened."""
    while True:
        try:
            async with runtime.unit_of_work() as uow:
                await publication.publish_site_aggregates(uow, runtime.own_site)
        except Exception as exc:
            raise_if_cancelling()
            log.warning("aggregate publication failed: %s", type(exc).__name__)
        await asyncio.sleep(runtime.settings.aggregate_publish_interval_seconds)


SITE_ROLE = ServiceDefinition(
    title="outcomes (site)",
    description="Measurement over time at one site; publishes de-identified aggregates to the network.",
    migrations=MIGRATIONS / "site",
    produces=lambda runtime: [runtime.network_topic()],
    consumers=lambda runtime: [
        runtime.consumer(
            [runtime.site_topic(service) for service in handlers.SITE_HANDLERS],
            {event: handle for by_type in handlers.SITE_HANDLERS.values() for event, handle in by_type.items()},
        )
    ],
    background=[publish_aggregates],
)

NETWORK_ROLE = ServiceDefinition(
    title="outcomes (network)",
    description="The latest de-identified aggregate of every (site, cohort). No patient-level data.",
    migrations=MIGRATIONS / "network",
    routers=[network_router],
    consumers=lambda runtime: [
        runtime.consumer([runtime.network_topic()], {CohortAggregatePublished: handlers.on_cohort_aggregate})
    ],
)


def create_app(settings: ServiceSettings) -> FastAPI:
    return create_service_app(settings, NETWORK_ROLE if settings.role == "network" else SITE_ROLE)
