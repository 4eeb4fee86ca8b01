"""Every per-site value the sessions rules use: its default, its source, and the bounds a site may move it in.

A site overrides defaults with ``KAPNET_SESSION_RULES`` (JSON). The service builds one `SessionRuleSettings` at
start, so a value outside its bounds stops the service before it reaches a patient. The bounds are there so
that no setting can switch a safety limit off: an observation time cannot be zero, an alert cannot be moved
where it never fires, a ceiling cannot be raised past its source, and a discharge criterion cannot be looser
than the alert it follows. Sources are cited by the short names listed in ``docs/clinical-rules.md``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.blood_pressure import DEFAULT_BP_THRESHOLD, BloodPressureThreshold
from shared.treatment import Route

# [Spravato PI] Dosage and Administration: each nasal spray device delivers 28 mg. A fact of the product.
ESKETAMINE_DEVICE_MG = 28
# [Spravato PI] the highest dose on the label (TRD and MDSI): 84 mg. No override passes it.
ESKETAMINE_LABEL_MAXIMUM_MG = 84
# [Fava 2018]: 1.0 mg/kg, the highest IV dose studied for depression (0.1, 0.2, 0.5 and 1.0 mg/kg). A site's IV
# ceiling may be lower, never higher.
IV_CEILING_LIMIT_MG_PER_KG = 1.0
# Clinic policy: no psychiatric IM or SC dose above 0.9 mg/kg is published here ([Chilukuri 2014] IM 0.5;
# [Loo 2023] SC 0.9), so their ceilings stop at the IV limit.
IM_SC_CEILING_LIMIT_MG_PER_KG = 1.0
# [Andrade 2019]: fixed oral doses of 25-300 mg reported; nothing above is published.
SUBLINGUAL_ORAL_CEILING_LIMIT_MG = 300


class EsketamineLabel(StrEnum):
    """Which label's starting doses a site follows for esketamine."""

    # [Spravato PI]: 56 mg on day 1 for every adult; 56 or 84 mg after.
    us = "us"
    # [Spravato SmPC] 4.2: 56 mg on day 1, but 28 mg from age 65, when 28, 56 or 84 mg may follow.
    eu = "eu"


class DoseRange(BaseModel):
    """An inclusive range: both ends are allowed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minimum: float = Field(gt=0, allow_inf_nan=False)
    maximum: float = Field(gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} is above maximum {self.maximum}")
        return self


class MinutesRange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    minimum: int = Field(ge=1, le=24 * 60)
    maximum: int = Field(ge=1, le=24 * 60)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} is above maximum {self.maximum}")
        return self


class SessionRuleSettings(BaseModel):
    """Frozen, so one caller cannot change the defaults for all the others."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- doses: the range a clinician may override with a reason, and the ceiling nothing passes ---
    # [Andrade 2017]: 0.5 mg/kg usual; 0.1 to 0.75 mg/kg used.
    iv_mg_per_kg: DoseRange = DoseRange(minimum=0.1, maximum=0.75)
    iv_ceiling_mg_per_kg: float = Field(default=1.0, ge=0.5, le=IV_CEILING_LIMIT_MG_PER_KG)
    # [Sanacora 2017], [Andrade 2017]: 0.5 mg/kg over 40 minutes. What a new IV order is pre-filled with.
    iv_default_mg_per_kg: float = Field(default=0.5, gt=0)
    # Clinic policy around [Sanacora 2017]'s 40 minutes: a faster infusion raises the peak level (and the blood
    # pressure and dissociation with it); a slower one is unusual. A site may not allow under 20 minutes.
    iv_infusion_minutes: MinutesRange = MinutesRange(minimum=30, maximum=60)
    # [Chilukuri 2014]: IM 0.25 and 0.5 mg/kg.
    im_mg_per_kg: DoseRange = DoseRange(minimum=0.25, maximum=0.5)
    im_ceiling_mg_per_kg: float = Field(default=0.75, ge=0.5, le=IM_SC_CEILING_LIMIT_MG_PER_KG)
    # [Loo 2023]: SC 0.5 mg/kg, then flexible 0.5-0.9 mg/kg.
    subcutaneous_mg_per_kg: DoseRange = DoseRange(minimum=0.5, maximum=0.9)
    subcutaneous_ceiling_mg_per_kg: float = Field(default=1.0, ge=0.9, le=IM_SC_CEILING_LIMIT_MG_PER_KG)
    # [Andrade 2019] 25-300 mg; the lower end of 50 mg is [Al Shirawi 2017]'s starting dose.
    sublingual_oral_mg: DoseRange = DoseRange(minimum=50, maximum=300)
    sublingual_oral_ceiling_mg: float = Field(default=300, ge=100, le=SUBLINGUAL_ORAL_CEILING_LIMIT_MG)
    # [Spravato PI]: 56 or 84 mg a session; the first dose by the site's label.
    esketamine_label: EsketamineLabel = EsketamineLabel.us
    esketamine_doses_mg: tuple[int, ...] = (56, 84)
    esketamine_first_dose_mg: int = 56
    # [Spravato SmPC] 4.2, elderly: from 65, 28 mg is allowed and is the day-1 dose (label "eu" only).
    esketamine_older_adult_age_years: int = Field(default=65, ge=60, le=80)
    esketamine_older_adult_doses_mg: tuple[int, ...] = (28, 56, 84)
    esketamine_older_adult_first_dose_mg: int = 28
    # [Spravato PI] Administration: wait 5 minutes after each device. A site may wait longer, never less.
    esketamine_device_interval_minutes: int = Field(default=5, ge=5, le=30)

    # --- weight ---
    # The value: a weight more than 10 % from the last recorded one is more often a typing error (or the
    # wrong patient) than a change; the nurse confirms it before a per-kg dose is worked out from it.
    weight_change_confirm_percent: float = Field(default=10, ge=5, le=20)

    # --- before the dose ---
    # [Spravato PI] Warnings, Increases in Blood Pressure: ">140 mmHg systolic, >90 mmHg diastolic" as a guide;
    # strictly above needs a clinician's decision. A site may be stricter, never looser than 160/100.
    predose_bp_threshold: BloodPressureThreshold = DEFAULT_BP_THRESHOLD
    # Clinic policy: the check-in reading counts for an hour; an older one is not the patient at the dose.
    predose_reading_window_minutes: int = Field(default=60, ge=5, le=120)

    # --- vital-sign alerts (during the session, and before the dose) ---
    # [ESC/ESH 2018] grade 3 hypertension: systolic >= 180 or diastolic >= 110. Before a dose no override passes.
    alert_systolic_at_or_above_mmhg: int = Field(default=180, ge=150, le=200)
    alert_diastolic_at_or_above_mmhg: int = Field(default=110, ge=90, le=120)
    # [NEWS2] systolic <= 90 scores 3, its highest band: hypotension.
    alert_systolic_at_or_below_mmhg: int = Field(default=90, ge=80, le=100)
    # [NEWS2] SpO2 scale 1: <= 91 % scores 3, so below 92 alerts.
    alert_spo2_below_percent: int = Field(default=92, ge=88, le=96)
    # [AHA ACLS] bradycardia below 50/min. Above 120/min: the sessions issue's value ([NEWS2] 111-130 scores 2).
    alert_heart_rate_below_bpm: int = Field(default=50, ge=40, le=60)
    alert_heart_rate_above_bpm: int = Field(default=120, ge=100, le=140)
    # [NEWS2] respiration rate <= 8 and >= 25 score 3: below 9 or above 24 alerts.
    alert_respiratory_rate_below_per_min: int = Field(default=9, ge=6, le=12)
    alert_respiratory_rate_above_per_min: int = Field(default=24, ge=20, le=30)

    # --- monitoring ---
    # The sessions issue's value; [Riva-Posse 2018] measured every 10 minutes during and 15 after infusions.
    monitoring_interval_minutes: int = Field(default=15, ge=5, le=30)
    # [Spravato PI] "reassess blood pressure at approximately 40 minutes"; read as 35-50 minutes after the dose.
    postdose_bp_earliest_minutes: int = Field(default=35, ge=30, le=40)
    postdose_bp_latest_minutes: int = Field(default=50, ge=40, le=60)

    # --- observation before discharge, from the end of the last administration ---
    # [Spravato PI], [Spravato REMS]: at least 2 hours.
    observation_minutes_esketamine: int = Field(default=120, ge=120, le=8 * 60)
    # The sessions issue's value: 60 minutes after the END of an infusion, or after an IM, SC or oral dose.
    # [Chilukuri 2014] saw side effects last under an hour. A site may not observe less than 30 minutes.
    observation_minutes_iv_after_infusion_end: int = Field(default=60, ge=30, le=8 * 60)
    observation_minutes_intramuscular: int = Field(default=60, ge=30, le=8 * 60)
    observation_minutes_subcutaneous: int = Field(default=60, ge=30, le=8 * 60)
    observation_minutes_sublingual_oral: int = Field(default=60, ge=30, le=8 * 60)

    # --- discharge criteria: the latest value of each vital sign (clinic policy on [NEWS2] bands) ---
    # Below [ESC/ESH 2018] grade 2 (160/100): a blood pressure that is coming down, not the alert threshold.
    discharge_systolic_max_mmhg: int = Field(default=159, ge=130, le=179)
    discharge_diastolic_max_mmhg: int = Field(default=99, ge=80, le=109)
    # [NEWS2] systolic <= 90 scores 3.
    discharge_systolic_min_mmhg: int = Field(default=91, ge=81, le=110)
    # [NEWS2] 94-95 % scores 1, <= 93 % scores 2 or more.
    discharge_spo2_min_percent: int = Field(default=94, ge=90, le=98)
    # [AHA ACLS] 50/min; [NEWS2] 91-110/min scores 1, 111 or more scores 2.
    discharge_heart_rate_min_bpm: int = Field(default=50, ge=40, le=60)
    discharge_heart_rate_max_bpm: int = Field(default=110, ge=90, le=120)
    # [NEWS2] 9-11/min scores 1, 12-20 scores 0, 21-24 scores 2.
    discharge_respiratory_rate_min_per_min: int = Field(default=9, ge=8, le=12)
    discharge_respiratory_rate_max_per_min: int = Field(default=20, ge=16, le=24)
    # How old the last value of each vital sign, and the last sedation and dissociation check, may be at discharge:
    # the monitoring interval, so they describe the patient now.
    discharge_reading_max_age_minutes: int = Field(default=15, ge=5, le=30)

    # --- scheduling ---
    # [Spravato PI] TRD induction: twice weekly, the most frequent schedule on the label; [Loo 2023] twice weekly.
    # More needs a clinician's override; [Singh 2016] studied thrice weekly, so 3 is the most a site may set.
    weekly_session_cap: int = Field(default=2, ge=1, le=3)
    # Clinic policy from [Singh 2016]: its most frequent schedule (Monday, Wednesday, Friday) puts doses two days
    # apart; 44 hours leaves room for an earlier slot on the day. No override: a site may not set under 20 hours.
    min_hours_between_dosing_sessions: float = Field(default=44, ge=20, le=168)

    # --- eligibility ---
    # Clinic policy: a screening older than this no longer describes the patient; screen again before a course
    # or a dose.
    eligibility_valid_days: int = Field(default=180, ge=30, le=365)

    @field_validator("esketamine_doses_mg", "esketamine_older_adult_doses_mg")
    @classmethod
    def _whole_devices(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("at least one esketamine dose must be allowed")
        for dose in value:
            if dose <= 0 or dose % ESKETAMINE_DEVICE_MG:
                raise ValueError(f"{dose} mg is not a whole number of {ESKETAMINE_DEVICE_MG} mg devices")
            if dose > ESKETAMINE_LABEL_MAXIMUM_MG:
                raise ValueError(f"{dose} mg is above the label's maximum of {ESKETAMINE_LABEL_MAXIMUM_MG} mg")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[str] = []
        for route in (Route.iv_infusion, Route.intramuscular, Route.subcutaneous, Route.sublingual_oral):
            allowed, ceiling = self.dose_range(route), self.dose_ceiling(route)
            if allowed.maximum > ceiling:
                problems.append(f"the {route.value} range ends at {allowed.maximum}, above its ceiling {ceiling}")
        if self.esketamine_first_dose_mg not in self.esketamine_doses_mg:
            problems.append(f"the esketamine first dose {self.esketamine_first_dose_mg} mg is not an allowed dose")
        if self.esketamine_older_adult_first_dose_mg not in self.esketamine_older_adult_doses_mg:
            problems.append("the older adults' esketamine first dose is not one of their allowed doses")
        if not self.iv_mg_per_kg.minimum <= self.iv_default_mg_per_kg <= self.iv_mg_per_kg.maximum:
            problems.append(f"the default IV dose {self.iv_default_mg_per_kg} mg/kg is outside the IV range")
        if self.iv_infusion_minutes.minimum < 20:
            problems.append("an IV infusion may not be set to run in under 20 minutes")
        threshold = self.predose_bp_threshold
        if threshold.systolic_mmhg > 160 or threshold.diastolic_mmhg > 100:
            problems.append(f"the pre-dose blood pressure threshold {threshold} is above 160/100")
        # A discharge criterion looser than the alert it follows would send home a patient who is alerting.
        if self.discharge_systolic_max_mmhg >= self.alert_systolic_at_or_above_mmhg:
            problems.append("the discharge systolic maximum must be below the systolic alert")
        if self.discharge_diastolic_max_mmhg >= self.alert_diastolic_at_or_above_mmhg:
            problems.append("the discharge diastolic maximum must be below the diastolic alert")
        if self.discharge_systolic_min_mmhg <= self.alert_systolic_at_or_below_mmhg:
            problems.append("the discharge systolic minimum must be above the hypotension alert")
        if self.discharge_spo2_min_percent < self.alert_spo2_below_percent:
            problems.append("the discharge SpO2 minimum must not be below the SpO2 alert")
        if not (
            self.alert_heart_rate_below_bpm
            <= self.discharge_heart_rate_min_bpm
            < self.discharge_heart_rate_max_bpm
            <= self.alert_heart_rate_above_bpm
        ):
            problems.append("the discharge heart-rate range must lie within the heart-rate alerts")
        if not (
            self.alert_respiratory_rate_below_per_min
            <= self.discharge_respiratory_rate_min_per_min
            < self.discharge_respiratory_rate_max_per_min
            <= self.alert_respiratory_rate_above_per_min
        ):
            problems.append("the discharge respiratory-rate range must lie within the respiratory-rate alerts")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def observation_minutes(self, route: Route) -> int:
        match route:
            case Route.intranasal_esketamine:
                return self.observation_minutes_esketamine
            case Route.iv_infusion:
                return self.observation_minutes_iv_after_infusion_end
            case Route.intramuscular:
                return self.observation_minutes_intramuscular
            case Route.subcutaneous:
                return self.observation_minutes_subcutaneous
            case Route.sublingual_oral:
                return self.observation_minutes_sublingual_oral

    def dose_range(self, route: Route) -> DoseRange:
        """mg/kg for the per-kg routes, mg for sublingual/oral; esketamine has a set of doses, not a range."""
        match route:
            case Route.iv_infusion:
                return self.iv_mg_per_kg
            case Route.intramuscular:
                return self.im_mg_per_kg
            case Route.subcutaneous:
                return self.subcutaneous_mg_per_kg
            case Route.sublingual_oral:
                return self.sublingual_oral_mg
            case Route.intranasal_esketamine:
                raise ValueError("esketamine is dosed in whole 28 mg devices from a set of doses, not a range")

    def dose_ceiling(self, route: Route) -> float:
        """The dose no override passes: mg/kg for the per-kg routes, mg for sublingual/oral and esketamine."""
        match route:
            case Route.iv_infusion:
                return self.iv_ceiling_mg_per_kg
            case Route.intramuscular:
                return self.im_ceiling_mg_per_kg
            case Route.subcutaneous:
                return self.subcutaneous_ceiling_mg_per_kg
            case Route.sublingual_oral:
                return self.sublingual_oral_ceiling_mg
            case Route.intranasal_esketamine:
                return ESKETAMINE_LABEL_MAXIMUM_MG


DEFAULT_SETTINGS = SessionRuleSettings()
