"""Sessions' FHIR R4 mapping: pure functions from the typed session record to FHIR resources (resources.py), and
the CodeSystems of sessions' own codes (code_systems.py)."""

from services.sessions.fhir.code_systems import CODE_SYSTEMS
from services.sessions.fhir.resources import (
    adverse_event_resource,
    encounter_resource,
    medication_administration_resource,
    session_resources,
    vitals_observations,
)

__all__ = [
    "CODE_SYSTEMS",
    "adverse_event_resource",
    "encounter_resource",
    "medication_administration_resource",
    "session_resources",
    "vitals_observations",
]
