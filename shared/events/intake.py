"""Events intake publishes on its site topic (PHI allowed there, never beyond the site)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from shared.events.registry import DomainEvent, registered


@registered
class PatientRegistered(DomainEvent):
    """A patient was registered at a site. Carries what downstream services need, not contact details."""

    name = "patient.registered"
    producer = "intake"
    summary = "A patient was registered at the site."

    patient_id: uuid.UUID
    site: str
    mrn: str
    birth_date: date
    sex: str
    registered_at: datetime

    def partition_key(self) -> str:
        return str(self.patient_id)

    def subject(self) -> str:
        return f"patients/{self.patient_id}"
