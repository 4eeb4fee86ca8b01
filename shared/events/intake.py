"""Events intake publishes on its site topic (PHI allowed there, never beyond the site).

Each carries what its consumers need (sessions: eligibility and consent; billing: coverage and the prior-treatment
history a payer asks for; outcomes: measures and demographics in bands) and nothing more: contact details and
addresses stay in intake.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.auth.permissions import Permission
from shared.demographics import AdministrativeSex
from shared.events.registry import PatientEvent, registered
from shared.instruments.scoring import Severity
from shared.prior_treatment import (
    Antidepressant,
    AugmentationAgent,
    PriorTreatmentKind,
    PsychotherapyType,
    TreatmentOutcome,
)


class _PatientEvent(PatientEvent):
    producer = "intake"


class CoverageOnFile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    self_pay: bool
    payer: str | None = None
    plan: str | None = None
    member_id: str | None = None


@registered
class PatientRegistered(_PatientEvent):
    """A patient was registered at a site."""

    name = "patient.registered"
    audience = Permission.patient_read
    summary = "A patient was registered at the site."

    site: str
    mrn: str
    # Added with billing: a Good Faith Estimate and a claim name the patient. Optional, so older events still read.
    given_name: str | None = None
    family_name: str | None = None
    birth_date: date
    sex: AdministrativeSex
    registered_at: datetime
    coverage: CoverageOnFile | None = None


@registered
class PatientUpdated(_PatientEvent):
    """A patient's record changed. Names what changed; carries the new values only of what consumers use."""

    name = "patient.updated"
    audience = Permission.patient_read
    summary = "A patient's record changed (the changed field names, and the new birth date, sex and coverage)."

    record_version: int
    changed: list[str]
    given_name: str | None = None
    family_name: str | None = None
    birth_date: date
    sex: AdministrativeSex
    coverage: CoverageOnFile
    updated_at: datetime


@registered
class PatientDeactivated(_PatientEvent):
    name = "patient.deactivated"
    audience = Permission.patient_read
    summary = "A patient's record was deactivated (records are never deleted)."

    deactivated_at: datetime
    reason: str


@registered
class ConsentSigned(_PatientEvent):
    name = "consent.signed"
    audience = Permission.consent_read
    summary = "The patient signed a version of the site's informed-consent document."

    consent_id: uuid.UUID
    document_version: str
    signed_at: datetime


@registered
class ConsentWithdrawn(_PatientEvent):
    name = "consent.withdrawn"
    audience = Permission.consent_read
    summary = "The patient withdrew a consent: the patient is no longer consented."

    consent_id: uuid.UUID
    withdrawn_at: datetime


@registered
class ScreeningCompleted(_PatientEvent):
    name = "screening.completed"
    audience = Permission.screening_read
    summary = "An eligibility screening was completed: eligible, needs medical review, or ineligible."

    screening_id: uuid.UUID
    outcome: Literal["eligible", "needs_medical_review", "ineligible"]
    reason_codes: list[str]
    screened_at: datetime
    # Added with billing: a clinician's evaluation includes medical services (CPT 90792), a therapist's does not
    # (90791). None in events written before.
    with_medical_services: bool | None = None


@registered
class MedicalReviewDecided(_PatientEvent):
    name = "medical_review.decided"
    audience = Permission.screening_read
    summary = "A clinician approved or declined a screening that needed medical review."

    screening_id: uuid.UUID
    decision: Literal["approve", "decline"]
    eligible: bool
    decided_at: datetime


@registered
class AssessmentRecordedV1(_PatientEvent):
    """Version 1, still read: its PHQ-9 severity was "moderately severe", with a space. Producers send v2."""

    name = "assessment.recorded"
    audience = Permission.assessment_read
    summary = "A PHQ-9, GAD-7 or PCL-5 was scored (totals, not item answers). Superseded by v2."
    superseded = True

    assessment_id: uuid.UUID
    instrument: Literal["phq9", "gad7", "pcl5"]
    instrument_version: str
    total: int
    severity: str | None = None
    clusters: dict[str, int] | None = None
    provisional_ptsd: bool | None = None
    context: str
    administered_at: datetime

    def upgraded(self) -> AssessmentRecorded:
        """The same assessment as v2, so a consumer handles one shape whichever version it read."""
        data = self.model_dump()
        if data["severity"] is not None:
            data["severity"] = Severity(str(data["severity"]).replace(" ", "_"))
        return AssessmentRecorded(**data)


@registered
class AssessmentRecorded(_PatientEvent):
    name = "assessment.recorded"
    audience = Permission.assessment_read
    event_version = 2
    summary = "A PHQ-9, GAD-7 or PCL-5 was scored (totals, not item answers); severity codes are snake_case."

    assessment_id: uuid.UUID
    instrument: Literal["phq9", "gad7", "pcl5"]
    instrument_version: str
    total: int
    severity: Severity | None = None
    clusters: dict[str, int] | None = None
    provisional_ptsd: bool | None = None
    context: str
    administered_at: datetime


@registered
class SafetyFlagRaised(_PatientEvent):
    name = "safety_flag.raised"
    audience = Permission.safety_flag_read
    summary = "A safety flag was raised (PHQ-9 item 9 above 0); open until a clinician acknowledges it."

    flag_id: uuid.UUID
    assessment_id: uuid.UUID
    reason: str
    raised_at: datetime


@registered
class SafetyFlagAcknowledged(_PatientEvent):
    name = "safety_flag.acknowledged"
    audience = Permission.safety_flag_read
    summary = "A clinician acknowledged a safety flag with a note."

    flag_id: uuid.UUID
    acknowledged_at: datetime
    acknowledged_by: str


@registered
class PriorTreatmentRecorded(_PatientEvent):
    """One treatment of the patient's depression tried before kapnet: an antidepressant trial (with its adequacy),
    psychotherapy, ECT, TMS or an augmentation. Billing sends ``description`` to a payer as the evidence of a prior
    authorisation. Fields of another kind of treatment are null."""

    name = "prior_treatment.recorded"
    audience = Permission.prior_treatment_read
    summary = (
        "A prior treatment of the patient's depression was recorded (antidepressant trial, psychotherapy, ECT, TMS "
        "or augmentation), in fields and in words: the evidence a payer asks for in a prior authorisation."
    )

    prior_treatment_id: uuid.UUID
    kind: PriorTreatmentKind
    current_episode: bool
    outcome: TreatmentOutcome
    start_date: date | None = None
    end_date: date | None = None
    # antidepressant_trial; other_augmentation has a dose and a duration too
    drug: Antidepressant | None = None
    drug_name: str | None = None
    daily_dose_mg: float | None = None
    duration_weeks: float | None = None
    # An antidepressant trial's adequacy (at least the minimum effective dose for at least 6 weeks); null for other
    # kinds, and for a drug whose minimum dose intake does not know.
    adequate: bool | None = None
    # psychotherapy
    therapy: PsychotherapyType | None = None
    therapy_name: str | None = None
    # psychotherapy, ect, tms
    sessions: int | None = None
    # other_augmentation
    agent: AugmentationAgent | None = None
    agent_name: str | None = None
    # The treatment in words, as a payer reads it ("summary" is taken: every event type's one-line summary).
    description: str
    # Whether the patient's history, this treatment included, now meets the label's definition of
    # treatment-resistant depression (2 different antidepressants, adequate, no adequate response, this episode).
    treatment_resistant: bool
    recorded_at: datetime
