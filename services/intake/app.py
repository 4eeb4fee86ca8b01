"""Intake: patients, consent, eligibility screening, prior treatment, baseline measures."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.intake.api import ROUTERS
from shared.app import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings

DEFINITION = ServiceDefinition(
    title="intake",
    description="Patients, consent, eligibility screening, prior treatment and baseline measures of one site.",
    migrations=Path(__file__).parent / "migrations" / "versions",
    routers=ROUTERS,
    produces=lambda runtime: [runtime.site_topic("intake")],
)


def create_app(settings: ServiceSettings) -> FastAPI:
    return create_service_app(settings, DEFINITION)
