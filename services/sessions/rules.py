"""Clinical rules of dosing sessions (ketamine and esketamine): pure functions, no I/O.

Every dose limit, vital-sign threshold, observation time and scheduling cap is a per-site value held in
`SessionRuleSettings`, whose defaults are the values named in the sessions issue. The service builds one
`SessionRuleSettings` from its own settings and passes it to every rule; nothing here reads the environment.

A rule that finds something a clinician may accept returns what it found (`DoseCheck.problems`,
`predose_bp_needs_decision`, `exceeds_weekly_cap`) and a second function decides with the clinician's override
(`dose_allowed`, `predose_bp_allows_dosing`, `booking_allowed`). As in intake's medical review, an override
filed where none is needed is refused (`OverrideNotNeeded`), never silently ignored.

All datetimes handed to one call must follow one convention (all timezone-aware, which the service uses, or all
naive site-local). Calendar rules (ISO week, REMS deadline day) use the calendar of the datetimes given.

Sources cited below:
- [Spravato PI]: SPRAVATO (esketamine) nasal spray, US prescribing information, Janssen. Dosage and
  Administration: the 28 mg device, 56 mg on day 1 and 56 or 84 mg thereafter in TRD (84 mg only after a 56 mg
  start), 5 minutes between devices, blood pressure before dosing and at about 40 minutes after, observation for
  at least 2 hours; Warnings (sedation, dissociation); Adverse Reactions (sedation measured with the MOAA/S).
  Section numbers moved between label revisions, so sections are cited by title.
- [Spravato SmPC]: SPRAVATO EU summary of product characteristics, 4.2 Posology, elderly (>= 65 years): day-1
  starting dose 28 mg; subsequent doses 28, 56 or 84 mg; all changes in 28 mg steps. (Checked against the Hong
  Kong label text on MIMS, which reproduces it. The US PI has no age-based starting dose.)
- [Spravato REMS]: FDA, Approved REMS for SPRAVATO (NDA 211243): patients are monitored for at least two hours
  and until sedation, dissociation and respiratory depression resolve. SPRAVATO REMS Patient Monitoring Form
  (outpatient): completed after every session and submitted within 7 days; blood pressure prior to
  administration, at 40 minutes post-administration and prior to session completion; dose 56 mg, 84 mg or
  "Other"; whether the patient experienced sedation, dissociation or respiratory depression (yes/no).
- [Ketalar PI]: KETALAR (ketamine hydrochloride) injection, US prescribing information, Par. Anaesthetic doses
  only (induction 1-4.5 mg/kg IV, 6.5-13 mg/kg IM); it gives no psychiatric dose, and every range below is far
  beneath it.
- [Sanacora 2017]: Sanacora G, et al. A consensus statement on the use of ketamine in the treatment of mood
  disorders. JAMA Psychiatry 2017;74(4):399-405 (the common regimen: 0.5 mg/kg IV over 40 minutes).
- [Andrade 2017]: Andrade C. Ketamine for depression, 4: in what dose, at what rate, by what route, for how
  long, and at what frequency? J Clin Psychiatry 2017;78(7):e852-e857 (0.5 mg/kg usual; 0.1 to 0.75 mg/kg
  used; 40 minutes conventional; IM and SC given as a bolus).
- [Andrade 2019]: Andrade C. Oral ketamine for depression, 2: practical considerations. J Clin Psychiatry,
  published 9 April 2019 (fixed oral doses of 25 to 300 mg reported).
- [Al Shirawi 2017]: Al Shirawi MI, et al. Oral ketamine in treatment-resistant depression: a clinical
  effectiveness case series. J Clin Psychopharmacol 2017;37(4):464-467 (started at 50 mg, up in 25 mg steps).
- [Chilukuri 2014]: Chilukuri H, et al. Acute antidepressant effects of intramuscular versus intravenous
  ketamine. Indian J Psychol Med 2014;36(1):71-76 (IM 0.25 and 0.5 mg/kg; side effects lasting under an hour).
- [Loo 2023]: Loo C, et al. Efficacy and safety of a 4-week course of repeated subcutaneous ketamine injections
  for treatment-resistant depression (KADS study). Br J Psychiatry 2023;223(6):533-541 (SC 0.5-0.9 mg/kg,
  twice weekly).
- [Riva-Posse 2018]: Riva-Posse P, et al. Blood pressure safety of subanesthetic ketamine for depression: a
  report on 684 infusions. J Affect Disord 2018;236:291-297 (0.5 mg/kg over 40 minutes; blood pressure every
  10 minutes during the infusion and every 15 minutes after).
- [ESC/ESH 2018]: Williams B, et al. 2018 ESC/ESH guidelines for the management of arterial hypertension. Eur
  Heart J 2018;39:3021-3104 (grade 3 hypertension: systolic >= 180 and/or diastolic >= 110 mmHg).
- [NEWS2]: Royal College of Physicians. National Early Warning Score (NEWS) 2, 2017 (SpO2 scale 1: <= 91 %
  scores 3, the highest band).
- [AHA ACLS]: American Heart Association adult bradycardia algorithm (bradycardia: heart rate < 50/min).
- [Bremner 1998]: Bremner JD, et al. Measurement of dissociative states with the Clinician-Administered
  Dissociative States Scale (CADSS). J Trauma Stress 1998;11(1):125-136; and Bremner's CADSS administration
  manual (28 items: 23 subjective and 5 observer-rated, each 0-4), the form used in the ketamine and esketamine
  trials.
- [MOAA/S]: the Modified Observer's Assessment of Alertness/Sedation scale, 0-5, after Chernik DA, et al.
  J Clin Psychopharmacol 1990;10(4):244-251; used for sedation in the SPRAVATO trials [Spravato PI], where a
  score of 4 was mild sedation and <= 3 moderate or worse (Janssen Medical Information, "Sedation and
  somnolence").
- [21 CFR 312.32]: US Code of Federal Regulations, title 21, 312.32(a), definition of a serious adverse event.
- [CTCAE v5]: NCI Common Terminology Criteria for Adverse Events v5.0, grades 1-5.
Where a value is the issue's and no source gives it, the comment on it says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator, validate_call

from shared.blood_pressure import (
    DEFAULT_BP_THRESHOLD,
    DIASTOLIC_MAX,
    DIASTOLIC_MIN,
    SYSTOLIC_MAX,
    SYSTOLIC_MIN,
    BloodPressureThreshold,
    bp_above,
)
from shared.treatment import Indication as Indication
from shared.treatment import Route

# --- routes ---

# Route and Indication are shared.treatment's, the words every service records; re-exported here for callers.


class DoseBasis(StrEnum):
    per_kg = "per_kg"  # prescribed in mg/kg, the mg follow from the weight
    fixed = "fixed"  # prescribed in mg; mg/kg is only reported


ROUTE_BASIS: dict[Route, DoseBasis] = {
    Route.iv_infusion: DoseBasis.per_kg,
    Route.intramuscular: DoseBasis.per_kg,
    Route.subcutaneous: DoseBasis.per_kg,
    Route.sublingual_oral: DoseBasis.fixed,
    Route.intranasal_esketamine: DoseBasis.fixed,
}

# How a nurse reads each route in a message.
ROUTE_LABEL: dict[Route, str] = {
    Route.iv_infusion: "IV",
    Route.intramuscular: "IM",
    Route.subcutaneous: "subcutaneous",
    Route.sublingual_oral: "sublingual/oral",
    Route.intranasal_esketamine: "esketamine",
}

# --- plausibility (typing errors, not patients; module constants, not site settings) ---

# A body weight outside this range is a typing error (grams for kilograms, a lost digit), not an adult patient.
WEIGHT_MIN_KG, WEIGHT_MAX_KG = 25, 350
AGE_MAX_YEARS = 130
# Vital signs: blood pressure limits are intake's, so both services reject the same typing errors.
HEART_RATE_MIN, HEART_RATE_MAX = 20, 250
SPO2_MIN, SPO2_MAX = 50, 100
RESPIRATORY_RATE_MIN, RESPIRATORY_RATE_MAX = 4, 60

WeightKg = Annotated[float, Field(ge=WEIGHT_MIN_KG, le=WEIGHT_MAX_KG, allow_inf_nan=False, strict=True)]
PositiveAmount = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]
AgeYears = Annotated[int, Field(ge=0, le=AGE_MAX_YEARS, strict=True)]
Systolic = Annotated[int, Field(ge=SYSTOLIC_MIN, le=SYSTOLIC_MAX, strict=True)]
Diastolic = Annotated[int, Field(ge=DIASTOLIC_MIN, le=DIASTOLIC_MAX, strict=True)]

# [Spravato PI] Dosage and Administration: each nasal spray device delivers 28 mg (two sprays, one per nostril).
# A fact of the product, not a site's choice.
ESKETAMINE_DEVICE_MG = 28

# [Spravato REMS] Patient Monitoring Form: "Submit completed patient monitoring forms within 7 days". A
# regulatory deadline, not a site's choice.
REMS_FORM_DAYS = 7


# --- per-site settings ---


class DoseRange(BaseModel):
    """An inclusive range: both ends are allowed doses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minimum: float = Field(gt=0, allow_inf_nan=False)
    maximum: float = Field(gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} is above maximum {self.maximum}")
        return self


def _esketamine_doses(value: tuple[int, ...]) -> tuple[int, ...]:
    if not value:
        raise ValueError("at least one esketamine dose must be allowed")
    for dose in value:
        if dose <= 0 or dose % ESKETAMINE_DEVICE_MG:
            raise ValueError(f"{dose} mg is not a whole number of {ESKETAMINE_DEVICE_MG} mg devices")
    return tuple(sorted(set(value)))


class SessionRuleSettings(BaseModel):
    """Every per-site value the session rules use, with the issue's defaults. Frozen, so one caller cannot
    change the defaults for all the others."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- doses ---
    # [Andrade 2017]: 0.5 mg/kg is usual; some respond to 0.1 mg/kg, some need up to 0.75 mg/kg.
    iv_mg_per_kg: DoseRange = DoseRange(minimum=0.1, maximum=0.75)
    # [Sanacora 2017], [Andrade 2017], [Riva-Posse 2018]: 0.5 mg/kg over 40 minutes. What a new IV order is
    # pre-filled with; not a limit.
    iv_default_mg_per_kg: float = Field(default=0.5, gt=0)
    iv_default_infusion_minutes: int = Field(default=40, ge=1, le=240)
    # [Chilukuri 2014]: IM 0.25 and 0.5 mg/kg, equally effective and tolerated.
    im_mg_per_kg: DoseRange = DoseRange(minimum=0.25, maximum=0.5)
    # [Loo 2023]: SC racemic ketamine 0.5 mg/kg, then flexible 0.5-0.9 mg/kg.
    subcutaneous_mg_per_kg: DoseRange = DoseRange(minimum=0.5, maximum=0.9)
    # [Andrade 2019]: fixed oral doses of 25-300 mg reported; the upper end is the source's. The lower end of
    # 50 mg is the issue's, and the starting dose of [Al Shirawi 2017]'s case series.
    sublingual_oral_mg: DoseRange = DoseRange(minimum=50, maximum=300)
    # [Spravato PI] TRD: 56 or 84 mg per session (the REMS form offers "56 mg", "84 mg" or "Other").
    esketamine_doses_mg: tuple[int, ...] = (56, 84)
    # [Spravato SmPC] 4.2, elderly: from 65 years, 28 mg is also allowed and is the day-1 starting dose.
    esketamine_older_adult_age_years: int = Field(default=65, ge=18, le=AGE_MAX_YEARS)
    esketamine_older_adult_doses_mg: tuple[int, ...] = (28, 56, 84)
    esketamine_older_adult_first_dose_mg: int = 28
    # [Spravato PI] Administration: wait 5 minutes after each device. A site may wait longer, never less.
    esketamine_device_interval_minutes: int = Field(default=5, ge=5, le=30)

    # --- before the dose ---
    # Same threshold type and rule as intake's screening ([Spravato PI] Warnings, Increases in Blood Pressure:
    # ">140 mmHg systolic, >90 mmHg diastolic" as a general guide). Strictly above either number.
    predose_bp_threshold: BloodPressureThreshold = DEFAULT_BP_THRESHOLD

    # --- scheduling ---
    # [Spravato PI] TRD induction: twice weekly in weeks 1-4, the most frequent schedule on the label;
    # [Loo 2023]: SC ketamine twice weekly. More than this per ISO week needs a clinician's override.
    weekly_session_cap: int = Field(default=2, ge=1, le=7)

    # --- vital-sign alerts ---
    # [ESC/ESH 2018]: grade 3 hypertension starts at systolic 180 or diastolic 110, so "at or above" alerts.
    alert_systolic_at_or_above_mmhg: int = Field(default=180, ge=SYSTOLIC_MIN, le=SYSTOLIC_MAX)
    alert_diastolic_at_or_above_mmhg: int = Field(default=110, ge=DIASTOLIC_MIN, le=DIASTOLIC_MAX)
    # The value; [NEWS2] puts SpO2 <= 91 % (below 92) in its highest-scoring band. [Spravato REMS] asks for
    # a pulse oximeter on site because of respiratory depression.
    alert_spo2_below_percent: int = Field(default=92, ge=SPO2_MIN, le=SPO2_MAX)
    # Below 50/min: [AHA ACLS] bradycardia. Above 120/min: the value (no source fixes a tachycardia
    # alert for ketamine sessions).
    alert_heart_rate_below_bpm: int = Field(default=50, ge=HEART_RATE_MIN, le=HEART_RATE_MAX)
    alert_heart_rate_above_bpm: int = Field(default=120, ge=HEART_RATE_MIN, le=HEART_RATE_MAX)

    # --- monitoring schedule ---
    # The value; [Riva-Posse 2018] measured every 10 minutes during and every 15 minutes after infusions.
    monitoring_interval_minutes: int = Field(default=15, ge=1, le=120)
    # How long before the dose a reading still counts as "pre-dose". The issue names no window; 60 minutes is this
    # module's choice: the arrival check-in, not yesterday's visit.
    predose_reading_window_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # [Spravato PI] "reassess blood pressure at approximately 40 minutes"; the REMS form asks for the BP at
    # "40 mins post-administration". "Approximately" is read as 35-50 minutes after the dose (the issue's
    # example): 5 minutes early, and 10 late because a busy room more often runs late than early.
    postdose_bp_earliest_minutes: int = Field(default=35, ge=0, le=240)
    postdose_bp_latest_minutes: int = Field(default=50, ge=0, le=240)

    # --- observation before discharge, from the end of the last administration ---
    # [Spravato PI] and [Spravato REMS]: at least 2 hours. A site may observe longer, never shorter.
    observation_minutes_esketamine: int = Field(default=120, ge=120, le=24 * 60)
    # The values: 60 minutes after the END of an IV infusion, 60 minutes after an IM, SC or
    # sublingual/oral dose. No label sets them; [Chilukuri 2014] saw side effects lasting under an hour.
    observation_minutes_iv_after_infusion_end: int = Field(default=60, ge=0, le=24 * 60)
    observation_minutes_intramuscular: int = Field(default=60, ge=0, le=24 * 60)
    observation_minutes_subcutaneous: int = Field(default=60, ge=0, le=24 * 60)
    observation_minutes_sublingual_oral: int = Field(default=60, ge=0, le=24 * 60)

    @field_validator("esketamine_doses_mg", "esketamine_older_adult_doses_mg")
    @classmethod
    def _whole_devices(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return _esketamine_doses(value)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # Here rather than on the field, so it also runs when only the allowed doses are changed.
        if self.esketamine_older_adult_first_dose_mg not in self.esketamine_older_adult_doses_mg:
            raise ValueError(
                f"the older adults' first dose {self.esketamine_older_adult_first_dose_mg} mg is not one of their "
                f"allowed doses {self.esketamine_older_adult_doses_mg}"
            )
        if not self.iv_mg_per_kg.minimum <= self.iv_default_mg_per_kg <= self.iv_mg_per_kg.maximum:
            raise ValueError(f"the default IV dose {self.iv_default_mg_per_kg} mg/kg is outside the IV range")
        if self.alert_heart_rate_below_bpm >= self.alert_heart_rate_above_bpm:
            raise ValueError("the low heart-rate alert must be below the high one")
        if self.postdose_bp_earliest_minutes > self.postdose_bp_latest_minutes:
            raise ValueError("the post-dose blood pressure window ends before it starts")
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


DEFAULT_SETTINGS = SessionRuleSettings()


# --- overrides: shared shape and rule ---


class ClinicianOverride(BaseModel):
    """A clinician's reason to go ahead although a rule flagged something."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    # Long enough that "ok" cannot stand in for the clinical reasoning a later reader needs (as intake's review).
    reason: str = Field(min_length=10, max_length=4000)


class DoseOverride(ClinicianOverride):
    """Go ahead with a dose outside the site's range."""


class ScheduleOverride(ClinicianOverride):
    """Book a session above the site's weekly cap."""


class BloodPressureDecision(ClinicianOverride):
    """A clinician's decision on a pre-dose blood pressure above the site threshold: proceed or not, and why."""

    proceed: bool


class OverrideNotNeeded(Exception):
    """An override or decision was given where no rule asked for one: filed against the wrong thing."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"no clinician override is needed: {what}")


class OverrideNotPossible(Exception):
    """An override was given for a finding no override can accept (a dose that cannot be given)."""


# --- doses ---


def _dec(value: float) -> Decimal:
    # str() gives the shortest repr, so 0.1 is Decimal("0.1") and not its binary approximation.
    return Decimal(str(value))


def _round_mg(value: Decimal) -> float:
    """Doses are drawn up to 0.1 mg; halves round up, as on a pharmacy label."""
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _num(value: float) -> str:
    """0.75 -> "0.75", 0.9 -> "0.9", 55.0 -> "55"; at most 3 decimals."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _mg_per_kg(dose_mg: float, weight_kg: float) -> float:
    return float((_dec(dose_mg) / _dec(weight_kg)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


class DoseCalculation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    route: Route
    basis: DoseBasis
    weight_kg: float
    # What is drawn up or given, to 0.1 mg.
    dose_mg: float
    # As prescribed for the per-kg routes; derived from the weight (to 0.001) for the fixed ones, for reports.
    mg_per_kg: float


@validate_call
def calculate_dose(route: Route, weight_kg: WeightKg, mg_per_kg: PositiveAmount) -> DoseCalculation:
    """The mg to give for a per-kg route (IV, IM, SC): weight x mg/kg, to 0.1 mg. The mg/kg is kept as prescribed.

    Fixed-dose routes (sublingual/oral, esketamine) are prescribed in mg: use `fixed_dose`.
    A weight outside 25-350 kg raises a pydantic ValidationError.
    """
    if ROUTE_BASIS[route] is not DoseBasis.per_kg:
        raise ValueError(f"{ROUTE_LABEL[route]} is dosed in mg, not mg/kg: use fixed_dose")
    dose_mg = _round_mg(_dec(weight_kg) * _dec(mg_per_kg))
    return DoseCalculation(
        route=route, basis=DoseBasis.per_kg, weight_kg=weight_kg, dose_mg=dose_mg, mg_per_kg=mg_per_kg
    )


@validate_call
def fixed_dose(route: Route, weight_kg: WeightKg, dose_mg: PositiveAmount) -> DoseCalculation:
    """A fixed-dose route's dose as given, with mg/kg derived from the weight for reporting."""
    if ROUTE_BASIS[route] is not DoseBasis.fixed:
        raise ValueError(f"{ROUTE_LABEL[route]} is dosed in mg/kg: use calculate_dose")
    return DoseCalculation(
        route=route,
        basis=DoseBasis.fixed,
        weight_kg=weight_kg,
        dose_mg=dose_mg,
        mg_per_kg=_mg_per_kg(dose_mg, weight_kg),
    )


class DoseCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    route: Route
    dose_mg: float
    weight_kg: float
    mg_per_kg: float
    within_range: bool
    # Each names the limit it breaks, in the words a prescriber reads.
    problems: list[str]
    # False when a problem is one no override can accept (esketamine that is not whole devices).
    overridable: bool
    # Esketamine only: how many 28 mg devices, when the dose is a whole number of them.
    devices: int | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.within_range == bool(self.problems):
            raise ValueError("within_range must be true exactly when there are no problems")
        if self.within_range and not self.overridable:
            raise ValueError("a dose within range has nothing to override")
        return self


def _check_per_kg(route: Route, dose_mg: float, weight_kg: float, limits: DoseRange) -> list[str]:
    # Compared in mg, with the limits rounded to 0.1 mg exactly as calculate_dose rounds a dose: so the dose
    # calculate_dose gives for the maximum mg/kg always passes, and 0.01 mg/kg more never does.
    low_mg = _round_mg(_dec(limits.minimum) * _dec(weight_kg))
    high_mg = _round_mg(_dec(limits.maximum) * _dec(weight_kg))
    given = f"{_num(_mg_per_kg(dose_mg, weight_kg))} mg/kg ({_num(dose_mg)} mg for {_num(weight_kg)} kg)"
    label = ROUTE_LABEL[route]
    if _dec(dose_mg) < _dec(low_mg):
        return [f"{given} is below the {label} minimum of {_num(limits.minimum)} mg/kg ({_num(low_mg)} mg)"]
    if _dec(dose_mg) > _dec(high_mg):
        return [f"{given} is above the {label} maximum of {_num(limits.maximum)} mg/kg ({_num(high_mg)} mg)"]
    return []


def _check_fixed(route: Route, dose_mg: float, limits: DoseRange) -> list[str]:
    label = ROUTE_LABEL[route]
    if dose_mg < limits.minimum:
        return [f"{_num(dose_mg)} mg is below the {label} minimum of {_num(limits.minimum)} mg"]
    if dose_mg > limits.maximum:
        return [f"{_num(dose_mg)} mg is above the {label} maximum of {_num(limits.maximum)} mg"]
    return []


def _mg_list(doses: Sequence[int]) -> str:
    names = [f"{dose}" for dose in doses]
    return (", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]) + " mg"


def _check_esketamine(
    dose_mg: float, age_years: int, first_dose: bool, settings: SessionRuleSettings
) -> tuple[list[str], bool, int | None]:
    """(problems, overridable, devices)."""
    devices, remainder = divmod(_dec(dose_mg), ESKETAMINE_DEVICE_MG)
    if remainder:
        # A part of a device cannot be given: the device delivers its whole 28 mg. No override makes it possible.
        return [f"{_num(dose_mg)} mg is not a whole number of {ESKETAMINE_DEVICE_MG} mg devices"], False, None
    dose = int(dose_mg)
    older = age_years >= settings.esketamine_older_adult_age_years
    allowed = settings.esketamine_older_adult_doses_mg if older else settings.esketamine_doses_mg
    problems: list[str] = []
    if dose not in allowed:
        if dose > max(allowed):
            problems.append(f"{dose} mg is above the esketamine maximum of {max(allowed)} mg")
        elif dose in settings.esketamine_older_adult_doses_mg and not older:
            problems.append(
                f"{dose} mg is allowed only from age {settings.esketamine_older_adult_age_years} "
                f"(patient is {age_years}); allowed doses are {_mg_list(allowed)}"
            )
        else:
            problems.append(f"{dose} mg is not an allowed esketamine dose; allowed doses are {_mg_list(allowed)}")
    # [Spravato SmPC] 4.2: from 65 the day-1 dose is 28 mg. Under 65 the first dose is not checked: the US PI's
    # TRD start is 56 mg but its start for depressive symptoms with acute suicidal ideation is 84 mg, and this
    # rule does not know the indication.
    first = settings.esketamine_older_adult_first_dose_mg
    if first_dose and older and dose != first:
        problems.append(
            f"the first esketamine dose at age {settings.esketamine_older_adult_age_years} and over must be "
            f"{first} mg, not {dose} mg"
        )
    return problems, True, int(devices)


@validate_call
def check_dose(
    route: Route,
    *,
    dose_mg: PositiveAmount,
    weight_kg: WeightKg,
    age_years: AgeYears,
    first_esketamine_dose: bool,
    settings: SessionRuleSettings,
) -> DoseCheck:
    """Checks a dose against the site's limits for its route and lists every limit it breaks.

    A weight outside 25-350 kg, an age outside 0-130 or a dose that is not positive raises a pydantic
    ValidationError: that is a typing error, not a dose to judge.
    """
    overridable = True
    devices: int | None = None
    if route is Route.intranasal_esketamine:
        problems, overridable, devices = _check_esketamine(dose_mg, age_years, first_esketamine_dose, settings)
    elif ROUTE_BASIS[route] is DoseBasis.per_kg:
        problems = _check_per_kg(route, dose_mg, weight_kg, settings.dose_range(route))
    else:
        problems = _check_fixed(route, dose_mg, settings.dose_range(route))
    return DoseCheck(
        route=route,
        dose_mg=dose_mg,
        weight_kg=weight_kg,
        mg_per_kg=_mg_per_kg(dose_mg, weight_kg),
        within_range=not problems,
        problems=problems,
        overridable=overridable or not problems,
        devices=devices,
    )


def dose_allowed(check: DoseCheck, override: DoseOverride | None) -> bool:
    """Whether the dose may be given: within range, or outside it with a clinician's override.

    An override on a dose within range raises OverrideNotNeeded; one on a dose that cannot be given at all
    (esketamine that is not whole devices) raises OverrideNotPossible.
    """
    if check.within_range:
        if override is not None:
            raise OverrideNotNeeded(f"{_num(check.dose_mg)} mg is within the site's range")
        return True
    if override is not None and not check.overridable:
        raise OverrideNotPossible("; ".join(check.problems))
    return override is not None


# --- esketamine devices ---


def esketamine_device_schedule(dose_mg: int, start: datetime, *, settings: SessionRuleSettings) -> list[datetime]:
    """When each 28 mg device is due: the first at `start`, each next one the site's interval later (5 minutes)."""
    if isinstance(dose_mg, bool) or not isinstance(dose_mg, int) or dose_mg <= 0 or dose_mg % ESKETAMINE_DEVICE_MG:
        raise ValueError(f"{dose_mg!r} mg is not a whole number of {ESKETAMINE_DEVICE_MG} mg devices")
    step = timedelta(minutes=settings.esketamine_device_interval_minutes)
    return [start + i * step for i in range(dose_mg // ESKETAMINE_DEVICE_MG)]


def _duration(span: timedelta) -> str:
    """A nurse's reading of a span: "4 min 59 s", "45 min", "1 h 59 min", "2 h"."""
    seconds = int(span.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    if secs or not parts:
        parts.append(f"{secs} s")
    return sign + " ".join(parts)


def check_device_times(times: Sequence[datetime], *, settings: SessionRuleSettings) -> list[str]:
    """Every interval between consecutive devices (in the order given) that is shorter than the site's minimum.

    [Spravato PI] Administration: wait 5 minutes after each device. Times out of order are a recording error and
    are flagged as such rather than sorted, so the record is corrected.
    """
    minimum = timedelta(minutes=settings.esketamine_device_interval_minutes)
    problems = []
    for number in range(1, len(times)):
        gap = times[number] - times[number - 1]
        if gap < minimum:
            problems.append(
                f"device {number + 1} was given {_duration(gap)} after device {number}; wait at least "
                f"{settings.esketamine_device_interval_minutes} minutes between devices"
            )
    return problems


# --- blood pressure before the dose ---


def _check_bp(systolic: int, diastolic: int) -> None:
    if diastolic >= systolic:
        raise ValueError(f"diastolic {diastolic} mmHg must be below systolic {systolic} mmHg")


@validate_call
def predose_bp_needs_decision(systolic: Systolic, diastolic: Diastolic, settings: SessionRuleSettings) -> bool:
    """A pre-dose blood pressure strictly above the site threshold on either number (default 140/90) needs a
    clinician's decision to proceed. Exactly at the threshold passes: intake's `bp_above`, the same rule and
    wording as at screening ([Spravato PI] Warnings, Increases in Blood Pressure: ">140 ... >90" as a guide).
    """
    _check_bp(systolic, diastolic)
    return bp_above(systolic, diastolic, settings.predose_bp_threshold)


def predose_bp_allows_dosing(
    systolic: int, diastolic: int, decision: BloodPressureDecision | None, settings: SessionRuleSettings
) -> bool:
    """Whether dosing may go ahead on this blood pressure: at or below the threshold, or above it and a clinician
    decided to proceed. No decision yet means not yet. A decision on a reading that needs none raises
    OverrideNotNeeded."""
    if not predose_bp_needs_decision(systolic, diastolic, settings):
        if decision is not None:
            raise OverrideNotNeeded(
                f"{systolic}/{diastolic} mmHg is not above the site threshold {settings.predose_bp_threshold}"
            )
        return True
    return decision is not None and decision.proceed


# --- scheduling ---


def _iso_week(moment: datetime) -> tuple[int, int]:
    calendar = moment.isocalendar()
    return calendar.year, calendar.week


def exceeds_weekly_cap(
    existing_session_datetimes: Sequence[datetime], new_datetime: datetime, settings: SessionRuleSettings
) -> bool:
    """Whether booking `new_datetime` makes more dosing sessions in its ISO week (Monday-Sunday, ISO 8601; the
    week of 1 January may belong to the year before) than the site's cap (default 2).

    The caller passes only the patient's active sessions: cancelled and no-show ones are its business.
    """
    week = _iso_week(new_datetime)
    in_week = sum(1 for moment in existing_session_datetimes if _iso_week(moment) == week)
    return in_week + 1 > settings.weekly_session_cap


def booking_allowed(
    existing_session_datetimes: Sequence[datetime],
    new_datetime: datetime,
    override: ScheduleOverride | None,
    settings: SessionRuleSettings,
) -> bool:
    """Within the cap, or above it with a clinician's override; an override within the cap raises."""
    if not exceeds_weekly_cap(existing_session_datetimes, new_datetime, settings):
        if override is not None:
            raise OverrideNotNeeded(f"the ISO week is within the cap of {settings.weekly_session_cap} sessions")
        return True
    return override is not None


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Whether two bookings clash. Ends are exclusive: one ending at 10:00 and the next starting at 10:00 do not.

    A booking that ends at or before its start is a data error and raises ValueError.
    """
    for start, end in ((a_start, a_end), (b_start, b_end)):
        if end <= start:
            raise ValueError(f"a booking must end after it starts: {start.isoformat()} to {end.isoformat()}")
    return a_start < b_end and b_start < a_end


# --- vital signs ---


class VitalsReading(BaseModel):
    """One entry on the vitals timeline. Not every entry has every measure, but each has at least one, and a
    blood pressure is always both numbers. Plausibility limits reject typing errors, not patients."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    taken_at: AwareDatetime
    systolic_mmhg: int | None = Field(default=None, ge=SYSTOLIC_MIN, le=SYSTOLIC_MAX)
    diastolic_mmhg: int | None = Field(default=None, ge=DIASTOLIC_MIN, le=DIASTOLIC_MAX)
    heart_rate_bpm: int | None = Field(default=None, ge=HEART_RATE_MIN, le=HEART_RATE_MAX)
    spo2_percent: int | None = Field(default=None, ge=SPO2_MIN, le=SPO2_MAX)
    respiratory_rate_per_min: int | None = Field(default=None, ge=RESPIRATORY_RATE_MIN, le=RESPIRATORY_RATE_MAX)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        measures = (
            self.systolic_mmhg,
            self.diastolic_mmhg,
            self.heart_rate_bpm,
            self.spo2_percent,
            self.respiratory_rate_per_min,
        )
        if all(value is None for value in measures):
            raise ValueError("a vitals entry needs at least one measure")
        if (self.systolic_mmhg is None) != (self.diastolic_mmhg is None):
            raise ValueError("a blood pressure needs both systolic and diastolic")
        if self.systolic_mmhg is not None and self.diastolic_mmhg is not None:
            _check_bp(self.systolic_mmhg, self.diastolic_mmhg)
        return self

    @property
    def has_bp(self) -> bool:
        return self.systolic_mmhg is not None


class VitalsAlertCode(StrEnum):
    """Stable codes: stored and sent in events, so never rename one."""

    systolic_high = "systolic_high"
    diastolic_high = "diastolic_high"
    spo2_low = "spo2_low"
    heart_rate_low = "heart_rate_low"
    heart_rate_high = "heart_rate_high"


class VitalsAlert(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: VitalsAlertCode
    message: str
    value: int
    threshold: int


def vitals_alerts(reading: VitalsReading, settings: SessionRuleSettings) -> list[VitalsAlert]:
    """Every alert a reading raises, in a fixed order; a measure the reading lacks raises none."""
    s = settings
    alerts: list[VitalsAlert] = []

    def add(code: VitalsAlertCode, value: int, threshold: int, message: str) -> None:
        alerts.append(VitalsAlert(code=code, value=value, threshold=threshold, message=message))

    # [ESC/ESH 2018] grade 3: at or above 180 systolic or 110 diastolic.
    if reading.systolic_mmhg is not None and reading.systolic_mmhg >= s.alert_systolic_at_or_above_mmhg:
        threshold = s.alert_systolic_at_or_above_mmhg
        add(
            VitalsAlertCode.systolic_high,
            reading.systolic_mmhg,
            threshold,
            f"systolic {reading.systolic_mmhg} mmHg is at or above the alert threshold of {threshold} mmHg",
        )
    if reading.diastolic_mmhg is not None and reading.diastolic_mmhg >= s.alert_diastolic_at_or_above_mmhg:
        threshold = s.alert_diastolic_at_or_above_mmhg
        add(
            VitalsAlertCode.diastolic_high,
            reading.diastolic_mmhg,
            threshold,
            f"diastolic {reading.diastolic_mmhg} mmHg is at or above the alert threshold of {threshold} mmHg",
        )
    # The issue's value, [NEWS2]'s top band: strictly below 92 %.
    if reading.spo2_percent is not None and reading.spo2_percent < s.alert_spo2_below_percent:
        threshold = s.alert_spo2_below_percent
        add(
            VitalsAlertCode.spo2_low,
            reading.spo2_percent,
            threshold,
            f"SpO2 {reading.spo2_percent} % is below the alert threshold of {threshold} %",
        )
    # [AHA ACLS] below 50/min; the above 120/min. Both strict.
    if reading.heart_rate_bpm is not None and reading.heart_rate_bpm < s.alert_heart_rate_below_bpm:
        threshold = s.alert_heart_rate_below_bpm
        add(
            VitalsAlertCode.heart_rate_low,
            reading.heart_rate_bpm,
            threshold,
            f"heart rate {reading.heart_rate_bpm}/min is below the alert threshold of {threshold}/min",
        )
    if reading.heart_rate_bpm is not None and reading.heart_rate_bpm > s.alert_heart_rate_above_bpm:
        threshold = s.alert_heart_rate_above_bpm
        add(
            VitalsAlertCode.heart_rate_high,
            reading.heart_rate_bpm,
            threshold,
            f"heart rate {reading.heart_rate_bpm}/min is above the alert threshold of {threshold}/min",
        )
    return alerts


def _minutes_after(dose_time: datetime, moment: datetime) -> str:
    return _duration(moment - dose_time)


def monitoring_gaps(
    dose_time: datetime, readings: Sequence[VitalsReading], now: datetime, settings: SessionRuleSettings
) -> list[str]:
    """What the vitals timeline of one session is missing so far, in words a nurse acts on.

    - A pre-dose blood pressure: a reading with a BP taken in the window before the dose (default 60 minutes up
      to and including the dose time). [Spravato PI]: assess blood pressure before dosing.
    - No gap over the site interval (default 15 minutes) from the dose to `now`: between two readings, or since
      the last one. Exactly 15 minutes is on time. (The issue's value; see [Riva-Posse 2018].)
    - A blood pressure in the site's window (default 35-50 minutes) after the dose, around [Spravato PI]'s
      "approximately 40 minutes" and the REMS form's "40 mins post-administration". It is reported missing only once
      the window has closed; while it is open it is still due, not missed. Applied to every route: for the usual
      40-minute IV infusion it is the end of the infusion, when blood pressure peaks.

    `dose_time` is when administration started: the first esketamine device (the REMS form times the session
    "from 1st device administration"), the start of an infusion, the injection or the oral dose. Readings after
    `now` are ignored. Before the dose nothing is missing yet.
    """
    if now < dose_time:
        return []
    s = settings
    problems: list[str] = []
    taken = sorted((r for r in readings if r.taken_at <= now), key=lambda r: r.taken_at)

    window_start = dose_time - timedelta(minutes=s.predose_reading_window_minutes)
    if not any(r.has_bp and window_start <= r.taken_at <= dose_time for r in taken):
        problems.append(
            f"no pre-dose blood pressure recorded in the {s.predose_reading_window_minutes} minutes before the dose"
        )

    interval = timedelta(minutes=s.monitoring_interval_minutes)
    points = [dose_time, *(r.taken_at for r in taken if r.taken_at > dose_time)]
    for earlier, later in pairwise(points):
        if later - earlier > interval:
            between = (
                f"the dose and {_minutes_after(dose_time, later)} after it"
                if earlier == dose_time
                else f"{_minutes_after(dose_time, earlier)} and {_minutes_after(dose_time, later)} after the dose"
            )
            problems.append(
                f"no vital signs between {between} ({_duration(later - earlier)}; record at least every "
                f"{s.monitoring_interval_minutes} minutes)"
            )
    if now - points[-1] > interval:
        since = "the dose" if points[-1] == dose_time else f"{_minutes_after(dose_time, points[-1])} after the dose"
        problems.append(
            f"no vital signs for {_duration(now - points[-1])} (since {since}); record at least every "
            f"{s.monitoring_interval_minutes} minutes"
        )

    earliest = dose_time + timedelta(minutes=s.postdose_bp_earliest_minutes)
    latest = dose_time + timedelta(minutes=s.postdose_bp_latest_minutes)
    if now > latest and not any(r.has_bp and earliest <= r.taken_at <= latest for r in taken):
        problems.append(
            f"no blood pressure recorded {s.postdose_bp_earliest_minutes}-{s.postdose_bp_latest_minutes} minutes "
            f"after the dose (due at about 40 minutes)"
        )
    return problems


# --- sedation ---


class SedationLevel(StrEnum):
    """The MOAA/S, from fully alert (5) to no response to a painful stimulus (0) [MOAA/S].

    What the REMS form asks is only whether the patient experienced sedation (yes/no) [Spravato REMS]; the
    MOAA/S is what the SPRAVATO trials measured it with [Spravato PI], so the timeline records the level and the
    form's answer is derived from it (`sedation_observed`).
    """

    responds_readily = "responds_readily"  # 5: responds readily to name spoken in normal tone
    lethargic = "lethargic"  # 4: lethargic response to name spoken in normal tone
    responds_to_loud_voice = "responds_to_loud_voice"  # 3: only after name is called loudly and/or repeatedly
    responds_to_prodding = "responds_to_prodding"  # 2: only after mild prodding or shaking
    responds_to_trapezius_squeeze = "responds_to_trapezius_squeeze"  # 1: only after painful trapezius squeeze
    no_response = "no_response"  # 0: no response after painful trapezius squeeze


MOAAS_SCORE: dict[SedationLevel, int] = {
    SedationLevel.responds_readily: 5,
    SedationLevel.lethargic: 4,
    SedationLevel.responds_to_loud_voice: 3,
    SedationLevel.responds_to_prodding: 2,
    SedationLevel.responds_to_trapezius_squeeze: 1,
    SedationLevel.no_response: 0,
}


def sedation_level(score: int) -> SedationLevel:
    """The level for a MOAA/S score 0-5, or ValueError."""
    for level, value in MOAAS_SCORE.items():
        if value == score and not isinstance(score, bool):
            return level
    raise ValueError(f"MOAA/S score {score!r} is out of range 0-5")


def is_sedated(level: SedationLevel) -> bool:
    """Any level below fully alert (5): the trials counted 4 as mild sedation [MOAA/S]."""
    return MOAAS_SCORE[level] < 5


def sedation_observed(levels: Sequence[SedationLevel]) -> bool:
    """The answer to the REMS form's "did the patient experience sedation?" from the session's MOAA/S ratings."""
    return any(is_sedated(level) for level in levels)


# --- discharge ---


class DischargeCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: bool
    # Each unmet criterion, in words a nurse understands; empty when allowed.
    unmet: list[str]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.allowed == bool(self.unmet):
            raise ValueError("allowed must be true exactly when nothing is unmet")
        return self


_OBSERVED_FROM: dict[Route, str] = {
    Route.iv_infusion: "the end of the infusion",
    Route.intramuscular: "the injection",
    Route.subcutaneous: "the injection",
    Route.sublingual_oral: "the dose",
    Route.intranasal_esketamine: "the last esketamine device",
}


def discharge_check(
    route: Route,
    *,
    last_administration_end: datetime,
    now: datetime,
    last_reading: VitalsReading | None,
    escort_present: bool,
    settings: SessionRuleSettings,
    sedation: SedationLevel | None = None,
) -> DischargeCheck:
    """Whether the patient may go home, and if not, every reason why.

    1. The route's minimum observation has passed since the end of the last administration (the end of an IV
       infusion; the last esketamine device; the IM, SC or sublingual/oral dose). Exactly the minimum passes.
    2. Vital signs are back: the last reading includes a blood pressure, raises no alert, and is no older than
       the monitoring interval (default 15 minutes), so it describes the patient now.
    3. An escort is present ([Spravato PI]: no driving until the next day after restful sleep; the escort itself
       is the issue's rule).
    Optionally, 4. when the current sedation level is given, the patient is fully alert ([Spravato REMS]:
    monitoring lasts until sedation has resolved).
    """
    s = settings
    unmet: list[str] = []

    minimum = timedelta(minutes=s.observation_minutes(route))
    observed = now - last_administration_end
    if observed < minimum:
        unmet.append(
            f"observation not complete: {_duration(max(observed, timedelta(0)))} of the {_duration(minimum)} "
            f"minimum after {_OBSERVED_FROM[route]} ({_duration(minimum - observed)} to go)"
        )

    if last_reading is None:
        unmet.append("no vital signs recorded: take a full set including blood pressure")
    else:
        age = now - last_reading.taken_at
        if age > timedelta(minutes=s.monitoring_interval_minutes):
            unmet.append(
                f"the last vital signs are {_duration(age)} old: take a new set including blood pressure "
                f"(at most {s.monitoring_interval_minutes} minutes old at discharge)"
            )
        if not last_reading.has_bp:
            unmet.append("the last vital signs have no blood pressure: take a blood pressure")
        alerts = vitals_alerts(last_reading, s)
        if alerts:
            unmet.append("vital signs not back within limits: " + "; ".join(alert.message for alert in alerts))

    if not escort_present:
        unmet.append("no escort present: the patient must leave with a responsible adult and must not drive")

    if sedation is not None and is_sedated(sedation):
        unmet.append(
            f"still sedated (MOAA/S {MOAAS_SCORE[sedation]} of 5): wait until the patient responds readily to "
            f"their name"
        )

    return DischargeCheck(allowed=not unmet, unmet=unmet)


# --- dissociation: CADSS ---

CADSS_VERSION = "CADSS (Bremner et al. 1998)"
# [Bremner 1998] manual: 23 subjective items and 5 observer-rated items, each 0 "not at all" to 4 "extremely".
CADSS_SUBJECTIVE_ITEMS = 23
CADSS_OBSERVER_ITEMS = 5
CADSS_ITEM_MIN, CADSS_ITEM_MAX = 0, 4


class CadssPart(StrEnum):
    subjective = "subjective"
    observer = "observer"


class CadssAnswerError(ValueError):
    """Answers that cannot be scored. ``item`` is the 1-based item within its ``part`` at fault, or None when
    the part as a whole is wrong (count, type)."""

    def __init__(self, message: str, *, part: CadssPart, item: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.part = part
        self.item = item


class CadssScore(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    # The sum of the 23 subjective items, 0-92: the score the ketamine and esketamine literature reports.
    total: int = Field(ge=0, le=CADSS_SUBJECTIVE_ITEMS * CADSS_ITEM_MAX)
    # The sum of the 5 observer items, 0-20, when they were rated; never added into `total`.
    observer_total: int | None = Field(default=None, ge=0, le=CADSS_OBSERVER_ITEMS * CADSS_ITEM_MAX)
    subjective_answers: tuple[int, ...]
    observer_answers: tuple[int, ...] | None


def _check_cadss(answers: Sequence[int], part: CadssPart, count: int) -> tuple[int, ...]:
    # Strict on purpose, like shared.instruments: a str is a Sequence, a bool is an int, 2.5 may be a UI slip.
    label = "observer item" if part is CadssPart.observer else "item"
    if isinstance(answers, str | bytes | bytearray) or not isinstance(answers, Sequence):
        raise CadssAnswerError(f"{part} answers must be a sequence of ints, got {type(answers).__name__}", part=part)
    if len(answers) != count:
        raise CadssAnswerError(f"expected {count} {part} answers, got {len(answers)}", part=part)
    checked: list[int] = []
    for number, value in enumerate(answers, start=1):
        if isinstance(value, bool) or not isinstance(value, int):
            raise CadssAnswerError(
                f"{label} {number}: expected an int, got {type(value).__name__} {value!r}", part=part, item=number
            )
        if not CADSS_ITEM_MIN <= value <= CADSS_ITEM_MAX:
            raise CadssAnswerError(
                f"{label} {number}: {value} is out of range {CADSS_ITEM_MIN}-{CADSS_ITEM_MAX}", part=part, item=number
            )
        checked.append(int(value))
    return tuple(checked)


def score_cadss(subjective_answers: Sequence[int], observer_answers: Sequence[int] | None = None) -> CadssScore:
    """Scores one CADSS: the total of the 23 subjective items (0-92); the 5 observer items are optional and
    summed apart. Raises CadssAnswerError naming the part and the item at fault."""
    subjective = _check_cadss(subjective_answers, CadssPart.subjective, CADSS_SUBJECTIVE_ITEMS)
    observer = (
        None if observer_answers is None else _check_cadss(observer_answers, CadssPart.observer, CADSS_OBSERVER_ITEMS)
    )
    return CadssScore(
        version=CADSS_VERSION,
        total=sum(subjective),
        observer_total=None if observer is None else sum(observer),
        subjective_answers=subjective,
        observer_answers=observer,
    )


# --- adverse events ---


class AdverseEventType(StrEnum):
    nausea = "nausea"
    vomiting = "vomiting"
    hallucinations = "hallucinations"
    hypertension = "hypertension"
    sedation = "sedation"
    agitation = "agitation"
    respiratory_depression = "respiratory_depression"
    other = "other"


class AdverseEventSeverity(StrEnum):
    """[CTCAE v5] grades 1-5. Severity is how intense; seriousness (`is_serious`) is what it led to."""

    mild = "mild"
    moderate = "moderate"
    severe = "severe"
    life_threatening = "life_threatening"
    death = "death"


CTCAE_GRADE: dict[AdverseEventSeverity, int] = {
    AdverseEventSeverity.mild: 1,
    AdverseEventSeverity.moderate: 2,
    AdverseEventSeverity.severe: 3,
    AdverseEventSeverity.life_threatening: 4,
    AdverseEventSeverity.death: 5,
}


class AdverseEvent(BaseModel):
    """One adverse event, with the seriousness criteria of [21 CFR 312.32](a) as explicit answers.

    No criterion has a default: one left out is a validation error, never a silent "no", because an unasked
    seriousness criterion must not read as an absent one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    type: AdverseEventType
    # Required for "other", so the event says what it was.
    description: str | None = Field(default=None, max_length=4000)
    severity: AdverseEventSeverity
    resulted_in_death: bool
    # Placed the patient at immediate risk of death as it occurred.
    life_threatening: bool
    # Inpatient hospitalisation, or a longer existing one.
    hospitalisation: bool
    # A persistent or significant incapacity, or substantial disruption of the ability to conduct normal life.
    persistent_disability: bool
    congenital_anomaly: bool
    # May jeopardise the patient and need intervention to prevent one of the outcomes above (medical judgement).
    important_medical_event: bool

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.type is AdverseEventType.other and not self.description:
            raise ValueError("describe an adverse event of type other")
        # A grade 5 event is a death and a death is grade 5 [CTCAE v5]; a grade 4 event is life-threatening.
        if (self.severity is AdverseEventSeverity.death) != self.resulted_in_death:
            raise ValueError("severity death and resulted_in_death must agree")
        if self.severity is AdverseEventSeverity.life_threatening and not self.life_threatening:
            raise ValueError("a life-threatening severity (grade 4) must be marked life_threatening")
        return self


def is_serious(event: AdverseEvent) -> bool:
    """[21 CFR 312.32](a): serious if it results in death, is life-threatening, requires or prolongs inpatient
    hospitalisation, causes persistent or significant incapacity, is a congenital anomaly, or is an important
    medical event. A severe (grade 3) event that meets none of these is not serious."""
    return (
        event.resulted_in_death
        or event.life_threatening
        or event.hospitalisation
        or event.persistent_disability
        or event.congenital_anomaly
        or event.important_medical_event
        or CTCAE_GRADE[event.severity] >= 4
    )


# --- esketamine REMS ---


class RemsStatus(StrEnum):
    submitted = "submitted"
    due = "due"
    overdue = "overdue"


def _as_date(moment: date | datetime, like: date | datetime | None = None) -> date:
    if isinstance(moment, datetime):
        # Read `now` on the session's clock, so "day 7" is the same calendar day for both.
        if isinstance(like, datetime) and like.tzinfo is not None and moment.tzinfo is not None:
            moment = moment.astimezone(like.tzinfo)
        return moment.date()
    return moment


def rems_form_deadline(session_end: date | datetime) -> date:
    """The last day to submit the session's REMS Patient Monitoring Form: 7 days after the session's date."""
    return _as_date(session_end) + timedelta(days=REMS_FORM_DAYS)


def rems_form_due(session_end: date | datetime, submitted: bool, now: date | datetime) -> RemsStatus:
    """[Spravato REMS] the Patient Monitoring Form is submitted within 7 days of the session.

    Counted in calendar days of the session's date: a session on day 0 is due through day 7 and overdue from
    day 8, whatever the hour.
    """
    if submitted:
        return RemsStatus.submitted
    if _as_date(now, like=session_end) > rems_form_deadline(session_end):
        return RemsStatus.overdue
    return RemsStatus.due
