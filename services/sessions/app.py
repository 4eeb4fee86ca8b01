"""Sessions: treatment courses, dosing sessions under monitoring, adverse events, integration therapy."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.sessions.api import ROUTERS
from services.sessions.domain.settings import SessionRuleSettings
from services.sessions.handlers import HANDLERS
from shared.app import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings

DEFINITION = ServiceDefinition(
    title="sessions",
    description="Treatment courses, dosing sessions under monitoring, adverse events, integration therapy.",
    migrations=Path(__file__).parent / "migrations" / "versions",
    routers=ROUTERS,
    produces=lambda runtime: [runtime.site_topic("sessions")],
    # Eligibility and consent come from intake's events, into sessions' own read model: it never calls intake.
    consumers=lambda runtime: [runtime.consumer([runtime.site_topic("intake")], HANDLERS)],
)


def create_app(settings: ServiceSettings) -> FastAPI:
    app = create_service_app(settings, DEFINITION)
    # A site's overrides are checked now: a bad dose limit stops the service at start, not at the bedside.
    app.state.session_rules = SessionRuleSettings(**settings.session_rules)
    return app
