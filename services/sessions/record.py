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


class BloodPressure(_Strict):
    systolic_mmhg: int = Field(ge=50, le=300)
    diastolic_mmhg: int = Field(ge=20, le=200)

    @model_validator(mode="after")
    def _ordered(self) -> BloodPressure:
        if self.systolic_mmhg <= self.diastolic_mmhg:
            raise ValueError("diastolic_mmhg must be below systolic_mmhg")
        return self


class RemsMonitoringForm(_Strict):
    """Every field of the Spravato REMS patient monitoring form, as structured data."""

    concomitant_medications: list[str] = Field(default_factory=list, max_length=50)
    dose_mg: int = Field(description="28, 56 or 84 mg (or the dose given)", ge=28, le=112)
    lot_number: str = Field(min_length=1, max_length=60)
    total_monitoring_minutes: int = Field(ge=0, le=24 * 60)
    minutes_until_ready_to_leave: int = Field(ge=0, le=24 * 60, description="when the patient would have been ready")
    bp_before_dosing: BloodPressure
    bp_at_40_minutes: BloodPressure
    bp_before_discharge: BloodPressure
    sedation: bool
    dissociation: bool
    respiratory_depression: bool
    serious_adverse_events: bool
    serious_adverse_event_description: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _serious_described(self) -> RemsMonitoringForm:
        if self.serious_adverse_events and not self.serious_adverse_event_description:
            raise ValueError("serious_adverse_event_description: describe the serious adverse event")
        return self


class IntegrationSessionEntry(_Strict):
    held_at: AwareDatetime
    modality: Modality
    other_modality: str | None = Field(default=None, max_length=60)
    notes: str = Field(min_length=1, max_length=20000)
    duration_minutes: int = Field(ge=10, le=240)
