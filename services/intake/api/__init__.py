"""Intake's HTTP routes: thin; they validate, call the service layer, and shape the reply."""

from services.intake.api.assessments import router as assessments_router
from services.intake.api.consent import router as consent_router
from services.intake.api.fhir import router as fhir_router
from services.intake.api.patients import router as patients_router
from services.intake.api.prior_treatments import router as prior_treatments_router
from services.intake.api.screening import router as screening_router

ROUTERS = [
    patients_router,
    consent_router,
    screening_router,
    prior_treatments_router,
    assessments_router,
    fhir_router,
]
