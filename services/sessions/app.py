"""Sessions: the skeleton every service shares; its domain arrives with its own issue."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from shared.app import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings

DEFINITION = ServiceDefinition(
    title="sessions",
    description="Treatment courses, dosing sessions under monitoring, adverse events, integration therapy.",
    migrations=Path(__file__).parent / "migrations" / "versions",
    produces=lambda runtime: [runtime.site_topic("sessions")],
)


def create_app(settings: ServiceSettings) -> FastAPI:
    return create_service_app(settings, DEFINITION)
