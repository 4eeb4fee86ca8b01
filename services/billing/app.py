"""Billing: price lists, coverage and prior authorisation, Good Faith Estimates, charges from completed visits,
invoices and payments, and documented access barriers."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.billing.api.routes import ROUTERS
from services.billing.domain.settings import BillingSettings
from services.billing.handlers import handlers
from shared.app import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings


def definition(settings: ServiceSettings) -> ServiceDefinition:
    rules = BillingSettings(**settings.billing_rules)
    return ServiceDefinition(
        title="billing",
        description="Price lists, coverage, estimates, invoices, claims and documented access barriers of one site.",
        migrations=Path(__file__).parent / "migrations" / "versions",
        routers=ROUTERS,
        produces=lambda runtime: [runtime.site_topic("billing")],
        # What billing charges and estimates comes from intake's and sessions' events: it never calls them.
        consumers=lambda runtime: [
            runtime.consumer(
                [runtime.site_topic("intake"), runtime.site_topic("sessions")],
                handlers(rules, settings.time_zone),
            )
        ],
    )


def create_app(settings: ServiceSettings) -> FastAPI:
    # A site's billing settings are checked now: a bad one stops the service at start.
    rules = BillingSettings(**settings.billing_rules)
    app = create_service_app(settings, definition(settings))
    app.state.billing_settings = rules
    return app
