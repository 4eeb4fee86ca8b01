"""Webhooks: other systems receive a site's events (or the network's aggregates) over HTTP, signed by the Standard
Webhooks specification, as the role they were registered for may see them.

Delivery comes from a consumer of the topics, never from the services that write them: a receiver that is down
loses nothing (the queue waits in this service's database), and no clinical service waits on another system.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.webhooks.api.routes import NETWORK_ROUTERS, SITE_ROUTERS
from services.webhooks.domain.deliveries import RetrySchedule
from services.webhooks.service.dispatch import Dispatcher, DispatchSettings
from services.webhooks.service.queue import handlers_for
from shared.app import ServiceDefinition, ServiceRuntime, create_service_app
from shared.events.registry import foreign_aggregate
from shared.settings import ServiceSettings

# The site services whose topics a site's webhooks read (deploy/kafka/access.py grants exactly these).
SITE_SOURCES = ("intake", "sessions", "billing", "outcomes")


def dispatch_settings(settings: ServiceSettings) -> DispatchSettings:
    return DispatchSettings(
        schedule=RetrySchedule(
            base_seconds=settings.webhook_retry_base_seconds,
            cap_seconds=settings.webhook_retry_cap_seconds,
            window_seconds=settings.webhook_retry_window_seconds,
        ),
        disable_after_failures=settings.webhook_disable_after_failures,
        timeout_seconds=settings.webhook_timeout_seconds,
        concurrency=settings.webhook_concurrency,
        per_endpoint=settings.webhook_concurrency_per_endpoint,
        poll_interval_seconds=settings.webhook_poll_interval_seconds,
    )


async def deliver(runtime: ServiceRuntime) -> None:
    """Send what is due, for as long as the service runs (the shell restarts it if it ever ends)."""
    await Dispatcher(runtime.unit_of_work, dispatch_settings(runtime.settings)).run()


def definition(settings: ServiceSettings) -> ServiceDefinition:
    migrations = Path(__file__).parent / "migrations" / "versions"
    if settings.role == "network":
        return ServiceDefinition(
            title="webhooks (network)",
            description="The network's aggregates, delivered to registered endpoints. No patient-level data.",
            migrations=migrations,
            routers=NETWORK_ROUTERS,
            consumers=lambda runtime: [
                runtime.consumer(runtime.network_topics(), handlers_for("network"), refuse_origin=foreign_aggregate)
            ],
            background=[deliver],
        )
    return ServiceDefinition(
        title="webhooks",
        description="A site's events, delivered to the endpoints its admin registered, as their role may see them.",
        migrations=migrations,
        routers=SITE_ROUTERS,
        consumers=lambda runtime: [
            runtime.consumer([runtime.site_topic(s) for s in SITE_SOURCES], handlers_for("site"))
        ],
        background=[deliver],
    )


def create_app(settings: ServiceSettings) -> FastAPI:
    dispatch_settings(settings)  # a bad retry schedule stops the service at start
    return create_service_app(settings, definition(settings))
