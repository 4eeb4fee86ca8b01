"""Intake's pure rules: what a valid registration, update and consent are. No I/O here."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from shared.demographics import AdministrativeSex as AdministrativeSex
from shared.instants import MAX_ROW_ID, PlausibleDate, UtcInstant

# Oldest documented human age is 122; anything older is a typing error, not a patient.
MAX_AGE_YEARS = 125


class ReferralSource(StrEnum):
    self_referral = "self"
    primary_care = "primary_care"
    psychiatrist = "psychiatrist"
    therapist = "therapist"
    other_clinic = "other_clinic"
    other = "other"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Address(_Strict):
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")


class Contact(_Strict):
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 ()-]{6,20}$")
    email: EmailStr | None = None


class EmergencyContact(_Strict):
    name: str = Field(min_length=1, max_length=200)
    relationship: str = Field(min_length=1, max_length=60)
    phone: str = Field(pattern=r"^\+?[0-9 ()-]{6,20}$")


class Coverage(_Strict):
    """Insurance on file, or self-pay. Billing learns it from intake's events."""

    self_pay: bool = False
    payer: str | None = Field(default=None, min_length=1, max_length=120)
    plan: str | None = Field(default=None, min_length=1, max_length=120)
    member_id: str | None = Field(default=None, min_length=1, max_length=60)

    @model_validator(mode="after")
    def _either_insured_or_self_pay(self) -> Coverage:
        insured = [self.payer, self.plan, self.member_id]
        if self.self_pay and any(insured):
            raise ValueError("self-pay coverage names no payer, plan or member id")
        if not self.self_pay and not all(insured):
            raise ValueError("insurance coverage needs payer, plan and member_id (or self_pay: true)")
        return self


def _plausible_birth_date(value: date) -> date:
    today = date.today()
    if value > today:
        raise ValueError("date of birth is in the future")
    if today.year - value.year > MAX_AGE_YEARS:
        raise ValueError(f"date of birth is more than {MAX_AGE_YEARS} years ago")
    return value


class PatientRegistration(_Strict):
    given_name: str = Field(min_length=1, max_length=100, description="legal given name")
    family_name: str = Field(min_length=1, max_length=100, description="legal family name")
    preferred_name: str | None = Field(default=None, min_length=1, max_length=100)
    birth_date: date
    sex: AdministrativeSex
    contact: Contact = Field(default_factory=Contact)
    address: Address | None = None
    emergency_contact: EmergencyContact | None = None
    preferred_language: str = Field(
        default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", description="BCP 47 tag, e.g. en, es, pt-BR"
    )
    referral_source: ReferralSource = ReferralSource.self_referral
    referral_detail: str | None = Field(default=None, max_length=500)
    coverage: Coverage = Field(default_factory=lambda: Coverage(self_pay=True))
    mrn: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9-]+$",
        description="the site's medical record number; assigned when left out",
    )

    _birth_date = field_validator("birth_date")(_plausible_birth_date)


class PatientUpdate(_Strict):
    """A partial update: only the fields sent change. The MRN and registration date never change."""

    given_name: str | None = Field(default=None, min_length=1, max_length=100)
    family_name: str | None = Field(default=None, min_length=1, max_length=100)
    preferred_name: str | None = Field(default=None, min_length=1, max_length=100)
    birth_date: date | None = None
    sex: AdministrativeSex | None = None
    contact: Contact | None = None
    address: Address | None = None
    emergency_contact: EmergencyContact | None = None
    preferred_language: str | None = Field(default=None, max_length=20, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    referral_source: ReferralSource | None = None
    referral_detail: str | None = Field(default=None, max_length=500)
    coverage: Coverage | None = None

    @field_validator("birth_date")
    @classmethod
    def _birth_date(cls, value: date | None) -> date | None:
        return None if value is None else _plausible_birth_date(value)

    @model_validator(mode="after")
    def _something_to_change(self) -> PatientUpdate:
        if not self.model_fields_set:
            raise ValueError("the update changes nothing: send at least one field")
        for name in (
            "given_name",
            "family_name",
            "birth_date",
            "sex",
            "preferred_language",
            "coverage",
            "contact",
            "referral_source",
        ):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be removed, only changed")
        return self


class Deactivation(_Strict):
    reason: str = Field(min_length=3, max_length=500)


def assign_mrn(site: str, patient_hex: str) -> str:
    """A site-prefixed number that is unique per site without a round trip to a counter."""
    return f"{site.upper()}-{patient_hex[:10].upper()}"


# --- Consent -----------------------------------------------------------------------------------------------


class ConsentDocumentDraft(_Strict):
    version: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=50, description="the full text the patient reads and signs")
    effective_date: PlausibleDate


class ConsentSignature(_Strict):
    """What the clinic must have told the patient before they sign (informed consent for off-label ketamine):
    every disclosure must be confirmed true, or there is no valid consent to record."""

    document_id: int = Field(ge=1, le=MAX_ROW_ID)
    signed_at: UtcInstant | None = Field(default=None, description="defaults to now")
    witnessed_by: str = Field(min_length=1, max_length=200, description="name of the staff member who witnessed")
    # Ketamine is FDA-approved as an anaesthetic and esketamine for TRD with an oral antidepressant only; use for
    # these indications is off-label (Spravato and Ketalar US prescribing information).
    informed_off_label_use: Literal[True]
    # Adverse reactions named in the labels: nausea, vomiting, hallucinations/perceptual change, raised blood
    # pressure, dissociation; and that long-term data are lacking.
    informed_adverse_reactions: Literal[True]
    informed_no_long_term_data: Literal[True]
    informed_expected_cost: Literal[True]
    expected_cost_note: str | None = Field(
        default=None, max_length=500, description="what the patient was told, e.g. per-session price"
    )


class ConsentWithdrawal(_Strict):
    reason: str = Field(min_length=3, max_length=500)
    withdrawn_at: UtcInstant | None = None


class ConsentNotValid(ValueError):
    pass


def check_signature_date(signed_at: datetime, effective_date: date, now: datetime) -> None:
    if signed_at > now:
        raise ConsentNotValid("signed_at is in the future")
    if signed_at.date() < effective_date:
        raise ConsentNotValid(f"this consent document takes effect on {effective_date.isoformat()}")
