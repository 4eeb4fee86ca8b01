"""Words about a patient that several services and events share."""

from __future__ import annotations

from enum import StrEnum


class AdministrativeSex(StrEnum):
    """FHIR R4 AdministrativeGender, so a patient maps onto a FHIR Patient unchanged."""

    female = "female"
    male = "male"
    other = "other"
    unknown = "unknown"
