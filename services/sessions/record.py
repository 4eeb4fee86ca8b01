"""The shapes of a dosing session's record, as entered at the chair. Validation only; the rules are in rules.py."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, model_validator

from services.sessions.rules import BloodPressureDecision, DoseOverride, VitalsReading


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PreDoseChecks(_Strict):
    weight_kg: float = Field(ge=25, le=350)
    vitals: VitalsReading
    fasting: bool = Field(description="no food for the interval the site asks (nausea and vomiting are common)")
    takes_benzodiazepines: bool
    takes_stimulants: bool
    takes_maois: bool
    takes_opioids: bool
    escort_arranged: bool = Field(description="an escort or transport home is arranged")
    transport_note: str | None = Field(default=None, max_length=500)
    bp_decision: BloodPressureDecision | None = Field(
        default=None, description="a clinician's decision to proceed when the blood pressure is above the threshold"
    )

    @model_validator(mode="after")
    def _blood_pressure_measured(self) -> PreDoseChecks:
        if not self.vitals.has_bp:
            raise ValueError("vitals: the pre-dose check needs a blood pressure")
        return self


class DoseEntry(_Strict):
    """mg/kg routes give mg_per_kg (the dose is calculated from the pre-dose weight); fixed-dose routes (oral,
    sublingual, esketamine) give dose_mg."""

    mg_per_kg: float | None = Field(default=None, gt=0, le=5)
    dose_mg: float | None = Field(default=None, gt=0, le=1000)
    lot_number: str = Field(min_length=1, max_length=60)
    administration_start: AwareDatetime
    administration_end: AwareDatetime | None = Field(
        default=None, description="end of an IV infusion (observation runs from here); else the last device"
    )
    device_times: list[AwareDatetime] | None = Field(default=None, description="esketamine: each device's time")
    first_esketamine_dose: bool = False
    override: DoseOverride | None = None

    @model_validator(mode="after")
    def _one_amount(self) -> DoseEntry:
        if (self.mg_per_kg is None) == (self.dose_mg is None):
            raise ValueError("give exactly one of mg_per_kg or dose_mg")
        if self.administration_end is not None and self.administration_end < self.administration_start:
            raise ValueError("administration_end is before administration_start")
        return self


class DissociationEntry(_Strict):
    cadss_subjective: list[StrictInt] = Field(description="the 23 subjective CADSS items, 0-4 each")
    cadss_observer: list[StrictInt] | None = None
    moaa_s: int = Field(ge=0, le=5, description="sedation: Modified Observer's Assessment of Alertness/Sedation")
    assessed_at: AwareDatetime


class Modality(StrEnum):
    mindfulness_meditation = "mindfulness_meditation"
    visualization = "visualization"
    emotional_processing = "emotional_processing"
    memory_processing = "memory_processing"
    other = "other"


class TherapyRecord(_Strict):
    modalities: list[Modality] = Field(min_length=1)
    other_modality: str | None = Field(default=None, max_length=200)
    notes: str = Field(min_length=1, max_length=20000)
    insights: str | None = Field(default=None, max_length=20000, description="insights or breakthroughs reported")

    @model_validator(mode="after")
    def _other_named(self) -> TherapyRecord:
        if Modality.other in self.modalities and not self.other_modality:
            raise ValueError("other_modality: name the modality when 'other' is used")
        return self


class Discharge(_Strict):
    escort_present: bool
    discharged_at: AwareDatetime | None = None


class Addendum(_Strict):
    text: str = Field(min_length=3, max_length=20000)
