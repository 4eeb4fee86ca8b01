"""Intake's pure rules: what a valid registration is. No I/O here."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Oldest documented human age is 122; anything older is a typing error, not a patient.
MAX_AGE_YEARS = 125


class AdministrativeSex(StrEnum):
    """FHIR R4 AdministrativeGender, so a patient maps onto a FHIR Patient unchanged."""

    female = "female"
    male = "male"
    other = "other"
    unknown = "unknown"


class PatientRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    birth_date: date
    sex: AdministrativeSex
    mrn: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9-]+$",
        description="the site's medical record number; assigned when left out",
    )

    @field_validator("birth_date")
    @classmethod
    def _plausible_birth_date(cls, value: date) -> date:
        today = date.today()
        if value > today:
            raise ValueError("date of birth is in the future")
        if today.year - value.year > MAX_AGE_YEARS:
            raise ValueError(f"date of birth is more than {MAX_AGE_YEARS} years ago")
        return value


def assign_mrn(site: str, patient_hex: str) -> str:
    """A site-prefixed number that is unique per site without a round trip to a counter."""
    return f"{site.upper()}-{patient_hex[:10].upper()}"
