"""Real events to push through the bus in tests."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from shared.events.intake import PatientRegistered


def registration(site: str, patient_id: uuid.UUID | None = None, mrn: str = "T-1") -> PatientRegistered:
    return PatientRegistered(
        patient_id=patient_id or uuid.uuid4(),
        site=site,
        mrn=mrn,
        birth_date=date(1985, 6, 1),
        sex="female",
        registered_at=datetime(2026, 11, 3, 9, 30, tzinfo=UTC),
    )
