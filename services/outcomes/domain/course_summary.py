"""What one course was, for a chart and for the cohorts: its doses (route, dose band, frequency), its adverse
events, vitals alerts and safety flags, whether it ended early, how long the patient waited for the first dose,
and what cost stood in the way. Also the bands a cohort is cut by (age, dose, frequency, payer, prior trials).

Bands are coarse on purpose: they cross to the network (privacy boundary) and must each hold many patients.
- Age at the first dose (or at planning, before one), in 10-year bands from 18, with 90 and over grouped as one
  ([HIPAA Safe Harbor] 45 CFR 164.514(b)(2)(i)(C): ages over 89 are aggregated into one category).
- Dose band, by the course's median dose: racemic ketamine by body weight, below 0.5, 0.5-0.74 and 0.75 mg/kg
  and above (0.5 mg/kg over 40 minutes is the studied IV dose, [Zarate 2006]; clinic policy for the cuts);
  esketamine by its device count, 28, 56 or 84 mg ([Spravato PI] 2.2); sublingual/oral by mg, below 200 mg and
  200 mg and above (clinic policy).
- Frequency: doses per week over the span from the first dose to the last: a single dose, under 1, 1 to under 2,
  2 or more a week (the induction schedules are twice weekly, [Spravato PI] 2.2; clinic policy for the cuts).
- Payer: self-pay, or insured (any payer type) from billing's coverage determination.
- Prior treatment: failed adequate antidepressant trials in the current episode, 0, 1, 2, 3 or more
  (shared.prior_treatment.failed_adequate_trial; 2 or more is treatment-resistant).
- Dropout: a course discontinued before it completed, with its reason.
- Time to first dose: from registration (kapnet's referral date) to the first dose, in whole days.

[Zarate 2006]: Zarate CA Jr et al. Arch Gen Psychiatry 2006;63(8):856-64.
[Spravato PI]: SPRAVATO (esketamine) prescribing information, Janssen, 2025.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from shared.instants import age_on
from shared.treatment import AdverseEventType, CourseStatus, Route, VitalsAlertCode

WEIGHT_BASED_ROUTES = frozenset({Route.iv_infusion, Route.intramuscular, Route.subcutaneous})


class AgeBand(StrEnum):
    under_18 = "under_18"
    age_18_24 = "18-24"
    age_25_34 = "25-34"
    age_35_44 = "35-44"
    age_45_54 = "45-54"
    age_55_64 = "55-64"
    age_65_74 = "65-74"
    age_75_89 = "75-89"
    age_90_and_over = "90+"


class DoseBand(StrEnum):
    below_0_5_mg_per_kg = "<0.5 mg/kg"
    from_0_5_mg_per_kg = "0.5-0.74 mg/kg"
    from_0_75_mg_per_kg = ">=0.75 mg/kg"
    esketamine_28_mg = "28 mg"
    esketamine_56_mg = "56 mg"
    esketamine_84_mg = "84 mg"
    below_200_mg = "<200 mg"
    from_200_mg = ">=200 mg"


class Frequency(StrEnum):
    single_dose = "single_dose"
    under_weekly = "<1/week"
    weekly = "1-<2/week"
    twice_weekly_or_more = ">=2/week"


class PayerGroup(StrEnum):
    self_pay = "self_pay"
    insured = "insured"
    unknown = "unknown"


class PriorTrials(StrEnum):
    none = "0"
    one = "1"
    two = "2"
    three_or_more = "3+"


def age_band(birth_date: date, on: date) -> AgeBand:
    age = age_on(birth_date, on)
    if age < 18:
        return AgeBand.under_18
    if age >= 90:
        return AgeBand.age_90_and_over
    if age >= 75:
        return AgeBand.age_75_89
    if age < 25:
        return AgeBand.age_18_24
    lower = (age - 5) // 10 * 10 + 5  # 25-34, 35-44, ... 65-74
    return AgeBand(f"{lower}-{lower + 9}")


class DoseGiven(BaseModel):
    model_config = ConfigDict(frozen=True)

    route: Route
    dose_mg: float
    mg_per_kg: float | None
    at: datetime


def dose_band(route: Route, doses: Sequence[DoseGiven]) -> DoseBand | None:
    """The band of the course's median dose; None before a dose."""
    if not doses:
        return None
    if route in WEIGHT_BASED_ROUTES:
        per_kg = [d.mg_per_kg for d in doses if d.mg_per_kg is not None]
        if not per_kg:
            return None
        median = statistics.median(per_kg)
        if median < 0.5:
            return DoseBand.below_0_5_mg_per_kg
        return DoseBand.from_0_5_mg_per_kg if median < 0.75 else DoseBand.from_0_75_mg_per_kg
    median_mg = statistics.median(d.dose_mg for d in doses)
    if route is Route.intranasal_esketamine:
        if median_mg <= 28:
            return DoseBand.esketamine_28_mg
        return DoseBand.esketamine_56_mg if median_mg <= 56 else DoseBand.esketamine_84_mg
    return DoseBand.below_200_mg if median_mg < 200 else DoseBand.from_200_mg


def doses_per_week(doses: Sequence[DoseGiven]) -> float | None:
    """Intervals between doses per week over their span; None for fewer than 2 doses."""
    if len(doses) < 2:
        return None
    times = sorted(d.at for d in doses)
    span = (times[-1] - times[0]) / timedelta(weeks=1)
    return round((len(times) - 1) / span, 2) if span > 0 else None


def frequency(doses: Sequence[DoseGiven]) -> Frequency | None:
    if not doses:
        return None
    rate = doses_per_week(doses)
    if rate is None:
        return Frequency.single_dose
    if rate < 1:
        return Frequency.under_weekly
    return Frequency.weekly if rate < 2 else Frequency.twice_weekly_or_more


def prior_trials_band(failed_trials: int) -> PriorTrials:
    if failed_trials >= 3:
        return PriorTrials.three_or_more
    return (PriorTrials.none, PriorTrials.one, PriorTrials.two)[failed_trials]


class AdverseEventSeen(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: AdverseEventType
    serious: bool


class BarrierSeen(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: str
    outcome: str
    estimated_out_of_pocket_cents: int | None


class CourseFacts(BaseModel):
    """What outcomes learnt of one course from the site's events: the input of a summary."""

    model_config = ConfigDict(frozen=True)

    route: Route
    status: CourseStatus
    end_reason: str | None
    planned_at: datetime
    ended_at: datetime | None
    registered_at: datetime | None
    birth_date: date | None
    payer: PayerGroup
    failed_trials: int
    doses: tuple[DoseGiven, ...]
    adverse_events: tuple[AdverseEventSeen, ...]
    vitals_alerts: tuple[VitalsAlertCode, ...]
    safety_flags: int
    barriers: tuple[BarrierSeen, ...]


class CourseSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    dose_count: int
    first_dose_at: datetime | None
    dose_band: DoseBand | None
    doses_per_week: float | None
    frequency: Frequency | None
    age_band: AgeBand | None
    payer: PayerGroup
    prior_trials: PriorTrials
    adverse_events_by_type: dict[AdverseEventType, int]
    serious_adverse_events: int
    serious_adverse_events_by_type: dict[AdverseEventType, int]
    vitals_alerts_by_code: dict[VitalsAlertCode, int]
    safety_flags: int
    dropped_out: bool
    dropout_reason: str | None
    days_to_first_dose: int | None
    barriers_by_reason: dict[str, int]
    estimated_out_of_pocket_cents: int | None


def summarise(facts: CourseFacts) -> CourseSummary:
    doses = sorted(facts.doses, key=lambda d: d.at)
    first = doses[0].at if doses else None
    age_day = (first or facts.planned_at).date()
    out_of_pocket = [b.estimated_out_of_pocket_cents for b in facts.barriers if b.estimated_out_of_pocket_cents]
    dropped = facts.status is CourseStatus.discontinued
    return CourseSummary(
        dose_count=len(doses),
        first_dose_at=first,
        dose_band=dose_band(facts.route, doses),
        doses_per_week=doses_per_week(doses),
        frequency=frequency(doses),
        age_band=age_band(facts.birth_date, age_day) if facts.birth_date and facts.birth_date <= age_day else None,
        payer=facts.payer,
        prior_trials=prior_trials_band(facts.failed_trials),
        adverse_events_by_type=dict(Counter(e.type for e in facts.adverse_events)),
        serious_adverse_events=sum(e.serious for e in facts.adverse_events),
        serious_adverse_events_by_type=dict(Counter(e.type for e in facts.adverse_events if e.serious)),
        vitals_alerts_by_code=dict(Counter(facts.vitals_alerts)),
        safety_flags=facts.safety_flags,
        dropped_out=dropped,
        dropout_reason=facts.end_reason if dropped else None,
        days_to_first_dose=(first - facts.registered_at).days if first and facts.registered_at else None,
        barriers_by_reason=dict(Counter(b.reason for b in facts.barriers)),
        estimated_out_of_pocket_cents=max(out_of_pocket) if out_of_pocket else None,
    )
