"""Dosing rules: the dose from the weight, the route's range and hard ceiling, esketamine's devices and starting
dose, the infusion's duration, the patient's weight, and the interval since the last dose. Pure functions.

Sources (full references in docs/clinical-rules.md): [Andrade 2017], [Andrade 2019], [Al Shirawi 2017],
[Chilukuri 2014], [Fava 2018], [Loo 2023], [Sanacora 2017], [Singh 2016], [Spravato PI], [Spravato SmPC].
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator, validate_call

from services.sessions.domain.overrides import DoseOverride, OverrideNotNeeded
from services.sessions.domain.settings import ESKETAMINE_DEVICE_MG, EsketamineLabel, SessionRuleSettings
from services.sessions.domain.wording import duration, number
from shared.treatment import Route


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

ROUTE_LABEL: dict[Route, str] = {
    Route.iv_infusion: "IV",
    Route.intramuscular: "IM",
    Route.subcutaneous: "subcutaneous",
    Route.sublingual_oral: "sublingual/oral",
    Route.intranasal_esketamine: "esketamine",
}

# Plausibility (typing errors, not patients): a weight outside this is grams for kilograms or a lost digit.
WEIGHT_MIN_KG, WEIGHT_MAX_KG = 25, 350
AGE_MAX_YEARS = 130
WeightKg = Annotated[float, Field(ge=WEIGHT_MIN_KG, le=WEIGHT_MAX_KG, allow_inf_nan=False, strict=True)]
PositiveAmount = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]
AgeYears = Annotated[int, Field(ge=0, le=AGE_MAX_YEARS, strict=True)]

# --- weight -------------------------------------------------------------------------------------------------

# The international avoirdupois pound, exactly 0.45359237 kg (International Yard and Pound Agreement, 1959).
KG_PER_LB = Decimal("0.45359237")


class WeightUnit(StrEnum):
    kg = "kg"
    lb = "lb"


class BodyWeight(BaseModel):
    """A weight with its unit said: pounds only when labelled as pounds, and then converted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(gt=0, le=800, allow_inf_nan=False)
    unit: WeightUnit

    @property
    def kg(self) -> float:
        if self.unit is WeightUnit.kg:
            return self.value
        return float((_dec(self.value) * KG_PER_LB).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def weight_change_needs_confirmation(
    weight_kg: float, previous_kg: float | None, settings: SessionRuleSettings
) -> bool:
    """More than the site's share (default 10 %) away from the last recorded weight: confirm before dosing on it.
    Exactly 10 % does not ask."""
    if previous_kg is None:
        return False
    return abs(_dec(weight_kg) - _dec(previous_kg)) * 100 > _dec(settings.weight_change_confirm_percent) * _dec(
        previous_kg
    )


# --- arithmetic ---------------------------------------------------------------------------------------------


def _dec(value: float) -> Decimal:
    # str() gives the shortest repr, so 0.1 is Decimal("0.1") and not its binary approximation.
    return Decimal(str(value))


def _round_mg(value: Decimal) -> float:
    """Doses are drawn up to 0.1 mg; halves round up, as on a pharmacy label."""
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _mg_per_kg(dose_mg: float, weight_kg: float) -> float:
    return float((_dec(dose_mg) / _dec(weight_kg)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


# --- the dose -----------------------------------------------------------------------------------------------


class DoseCalculation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    route: Route
    basis: DoseBasis
    weight_kg: float
    dose_mg: float  # what is drawn up or given, to 0.1 mg
    mg_per_kg: float  # as prescribed for per-kg routes; derived from the weight (to 0.001) for fixed ones


@validate_call
def calculate_dose(route: Route, weight_kg: WeightKg, mg_per_kg: PositiveAmount) -> DoseCalculation:
    """The mg to give for a per-kg route (IV, IM, SC): weight x mg/kg, to 0.1 mg."""
    if ROUTE_BASIS[route] is not DoseBasis.per_kg:
        raise ValueError(f"{ROUTE_LABEL[route]} is dosed in mg, not mg/kg: give dose_mg")
    dose_mg = _round_mg(_dec(weight_kg) * _dec(mg_per_kg))
    return DoseCalculation(
        route=route, basis=DoseBasis.per_kg, weight_kg=weight_kg, dose_mg=dose_mg, mg_per_kg=mg_per_kg
    )


@validate_call
def fixed_dose(route: Route, weight_kg: WeightKg, dose_mg: PositiveAmount) -> DoseCalculation:
    """A fixed-dose route's dose as given, with mg/kg derived from the weight for reporting."""
    if ROUTE_BASIS[route] is not DoseBasis.fixed:
        raise ValueError(f"{ROUTE_LABEL[route]} is dosed in mg/kg: give mg_per_kg")
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
    # Outside the site's range (or not the label's starting dose): a clinician may override with a reason.
    problems: list[str]
    # Above the hard ceiling, or not a whole number of devices: no override can accept these.
    refusals: list[str]
    # Esketamine only: how many 28 mg devices.
    devices: int | None = None
    first_dose: bool = False

    # Sent with the check, so the bedside shows the verdict recording the dose will give, not its own reading.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def within_range(self) -> bool:
        return not self.problems and not self.refusals

    @computed_field  # type: ignore[prop-decorator]
    @property
    def overridable(self) -> bool:
        return not self.refusals


def _per_kg_mg(limit: float, weight_kg: float) -> float:
    # Limits in mg are rounded as calculate_dose rounds a dose, so the dose given for the maximum mg/kg passes
    # and 0.01 mg/kg more does not.
    return _round_mg(_dec(limit) * _dec(weight_kg))


def _check_per_kg(
    route: Route, dose_mg: float, weight_kg: float, s: SessionRuleSettings
) -> tuple[list[str], list[str]]:
    limits, ceiling = s.dose_range(route), s.dose_ceiling(route)
    given = f"{number(_mg_per_kg(dose_mg, weight_kg))} mg/kg ({number(dose_mg)} mg for {number(weight_kg)} kg)"
    label = ROUTE_LABEL[route]
    if _dec(dose_mg) > _dec(_per_kg_mg(ceiling, weight_kg)):
        return [], [f"{given} is above the {label} ceiling of {number(ceiling)} mg/kg, which no override passes"]
    low_mg, high_mg = _per_kg_mg(limits.minimum, weight_kg), _per_kg_mg(limits.maximum, weight_kg)
    if _dec(dose_mg) < _dec(low_mg):
        return [f"{given} is below the {label} minimum of {number(limits.minimum)} mg/kg ({number(low_mg)} mg)"], []
    if _dec(dose_mg) > _dec(high_mg):
        return [f"{given} is above the {label} maximum of {number(limits.maximum)} mg/kg ({number(high_mg)} mg)"], []
    return [], []


def _check_fixed(route: Route, dose_mg: float, s: SessionRuleSettings) -> tuple[list[str], list[str]]:
    limits, ceiling, label = s.dose_range(route), s.dose_ceiling(route), ROUTE_LABEL[route]
    if dose_mg > ceiling:
        return [], [
            f"{number(dose_mg)} mg is above the {label} ceiling of {number(ceiling)} mg, which no override passes"
        ]
    if dose_mg < limits.minimum:
        return [f"{number(dose_mg)} mg is below the {label} minimum of {number(limits.minimum)} mg"], []
    if dose_mg > limits.maximum:
        return [f"{number(dose_mg)} mg is above the {label} maximum of {number(limits.maximum)} mg"], []
    return [], []


def _mg_list(doses: Sequence[int]) -> str:
    names = [f"{dose}" for dose in doses]
    return (", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]) + " mg"


def esketamine_doses(age_years: int, s: SessionRuleSettings) -> tuple[tuple[int, ...], int]:
    """(allowed doses, first dose) for a patient of this age under the site's label."""
    if s.esketamine_label is EsketamineLabel.eu and age_years >= s.esketamine_older_adult_age_years:
        return s.esketamine_older_adult_doses_mg, s.esketamine_older_adult_first_dose_mg
    return s.esketamine_doses_mg, s.esketamine_first_dose_mg


def _check_esketamine(
    dose_mg: float, age_years: int, first_dose: bool, s: SessionRuleSettings
) -> tuple[list[str], list[str], int | None]:
    devices, remainder = divmod(_dec(dose_mg), ESKETAMINE_DEVICE_MG)
    if remainder:
        # A device delivers its whole 28 mg: part of one cannot be given.
        return [], [f"{number(dose_mg)} mg is not a whole number of {ESKETAMINE_DEVICE_MG} mg devices"], None
    dose = int(dose_mg)
    ceiling = s.dose_ceiling(Route.intranasal_esketamine)
    if dose > ceiling:
        return (
            [],
            [f"{dose} mg is above the esketamine maximum of {number(ceiling)} mg, which no override passes"],
            None,
        )
    allowed, first = esketamine_doses(age_years, s)
    problems: list[str] = []
    if dose not in allowed:
        problems.append(f"{dose} mg is not an allowed esketamine dose at age {age_years}; allowed: {_mg_list(allowed)}")
    if first_dose and dose != first:
        problems.append(
            f"this is the patient's first esketamine dose: the {s.esketamine_label.value.upper()} label starts at "
            f"{first} mg, not {dose} mg"
        )
    return problems, [], int(devices)


@validate_call
def check_dose(
    route: Route,
    *,
    dose_mg: PositiveAmount,
    weight_kg: WeightKg,
    age_years: AgeYears,
    first_dose: bool,
    settings: SessionRuleSettings,
) -> DoseCheck:
    """Checks a dose against the site's range and hard ceiling for its route, and for esketamine the devices and
    the label's starting dose. ``first_dose`` and ``age_years`` come from the patient's dose history and birth
    date, never from the client."""
    devices: int | None = None
    if route is Route.intranasal_esketamine:
        problems, refusals, devices = _check_esketamine(dose_mg, age_years, first_dose, settings)
    elif ROUTE_BASIS[route] is DoseBasis.per_kg:
        problems, refusals = _check_per_kg(route, dose_mg, weight_kg, settings)
    else:
        problems, refusals = _check_fixed(route, dose_mg, settings)
    return DoseCheck(
        route=route,
        dose_mg=dose_mg,
        weight_kg=weight_kg,
        mg_per_kg=_mg_per_kg(dose_mg, weight_kg),
        problems=problems,
        refusals=refusals,
        devices=devices,
        first_dose=first_dose,
    )


class DoseNotAllowed(Exception):
    """The dose may not be given as entered; the message lists why."""


def dose_allowed(problems: Sequence[str], refusals: Sequence[str], override: DoseOverride | None) -> None:
    """Raises DoseNotAllowed unless the dose may be given: nothing found, or only what a clinician's override may
    accept and an override is given. A refusal (a ceiling, part of a device) is final. An override where nothing
    needs one is refused too (OverrideNotNeeded), so it is never filed against the wrong thing."""
    if refusals:
        raise DoseNotAllowed("; ".join([*refusals, *problems]) + " (no override can accept this)")
    if not problems:
        if override is not None:
            raise OverrideNotNeeded("the dose is within the site's range")
        return
    if override is None:
        raise DoseNotAllowed("; ".join(problems) + "; a clinician may override with a reason")


# --- esketamine devices -------------------------------------------------------------------------------------


def check_device_times(dose_mg: float, times: Sequence[datetime], settings: SessionRuleSettings) -> list[str]:
    """One time per 28 mg device, each at least the site's interval (5 minutes, [Spravato PI]) after the one
    before. Times out of order are a recording error, flagged rather than sorted, so the record is corrected."""
    expected = int(dose_mg) // ESKETAMINE_DEVICE_MG
    if len(times) != expected:
        return [f"{number(dose_mg)} mg is {expected} devices: give {expected} device times, not {len(times)}"]
    minimum = timedelta(minutes=settings.esketamine_device_interval_minutes)
    problems = []
    for index in range(1, len(times)):
        gap = times[index] - times[index - 1]
        if gap < minimum:
            problems.append(
                f"device {index + 1} was given {duration(gap)} after device {index}; wait at least "
                f"{settings.esketamine_device_interval_minutes} minutes between devices"
            )
    return problems


# --- the infusion -------------------------------------------------------------------------------------------


def infusion_duration_problems(start: datetime, end: datetime, settings: SessionRuleSettings) -> list[str]:
    """An IV infusion's running time against the site's range (default 30-60 minutes, around [Sanacora 2017]'s
    40). Outside it a clinician may accept it with a reason; an end before the start is a recording error."""
    if end <= start:
        raise ValueError(f"the infusion cannot end ({end.isoformat()}) at or before it starts ({start.isoformat()})")
    limits = settings.iv_infusion_minutes
    ran = end - start
    if ran < timedelta(minutes=limits.minimum):
        return [f"the infusion ran {duration(ran)}, under the site's minimum of {limits.minimum} minutes"]
    if ran > timedelta(minutes=limits.maximum):
        return [f"the infusion ran {duration(ran)}, over the site's maximum of {limits.maximum} minutes"]
    return []


# --- the interval between doses -----------------------------------------------------------------------------


def too_soon_after(earlier: Sequence[datetime], moment: datetime, settings: SessionRuleSettings) -> list[str]:
    """Every other dosing time (booked or given) closer to ``moment`` than the site's minimum interval (default
    44 hours, clinic policy from [Singh 2016]), in either direction. No override passes it."""
    minimum = timedelta(hours=settings.min_hours_between_dosing_sessions)
    return [
        f"another dosing session is {duration(abs(moment - other))} away ({other.astimezone(UTC):%Y-%m-%d %H:%M} UTC); "
        f"the site "
        f"keeps at least {number(settings.min_hours_between_dosing_sessions)} hours between dosing sessions"
        for other in sorted(earlier)
        if abs(moment - other) < minimum
    ]


class RecordedWeight(BaseModel):
    """The patient's last weight on record, from an earlier session's pre-dose check."""

    model_config = ConfigDict(frozen=True)

    kg: float
    weighed_at: datetime

    @model_validator(mode="after")
    def _plausible(self) -> Self:
        if not WEIGHT_MIN_KG <= self.kg <= WEIGHT_MAX_KG:
            raise ValueError(f"{self.kg} kg is not a plausible weight")
        return self
