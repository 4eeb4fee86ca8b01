"""Sessions' HTTP routes: thin; they validate, call the service layer, and shape the reply."""

from services.sessions.api.courses import router as courses_router
from services.sessions.api.fhir import router as fhir_router
from services.sessions.api.followup import router as followup_router
from services.sessions.api.measures import router as measures_router
from services.sessions.api.record import router as record_router

ROUTERS = [courses_router, record_router, measures_router, followup_router, fhir_router]
