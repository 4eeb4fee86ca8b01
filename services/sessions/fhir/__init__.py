"""Sessions' FHIR R4 mapping: pure functions from the typed session record to FHIR resources (resources.py)."""

from services.sessions.fhir.resources import (
    adverse_event_resource,
    encounter_resource,
    medication_administration_resource,
    session_resources,
    vitals_observations,
)

__all__ = [
    "adverse_event_resource",
    "encounter_resource",
    "medication_administration_resource",
    "session_resources",
    "vitals_observations",
]
