"""Discharge: whether the patient may go home, and if not, every reason why. A pure rule over the record.

Sources (docs/clinical-rules.md): [Spravato PI], [Spravato REMS], [NEWS2], [ESC/ESH 2018], [AHA ACLS].
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Self

from pydantic import BaseModel, ConfigDict, model_validator

from services.sessions.domain.recovery import RecoveryCheck, recovery_unmet
from services.sessions.domain.settings import SessionRuleSettings
from services.sessions.domain.vitals import VitalSign, VitalsReading, latest_values, postdose_bp_taken
from services.sessions.domain.wording import duration
from shared.treatment import Route


class DischargeCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: bool
    unmet: list[str]  # each unmet criterion, in words a nurse acts on; empty when allowed

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

_NAMES: dict[VitalSign, str] = {
    VitalSign.blood_pressure: "blood pressure",
    VitalSign.heart_rate: "heart rate",
    VitalSign.spo2: "SpO2",
    VitalSign.respiratory_rate: "respiratory rate",
}


def vital_sign_unmet(readings: Sequence[VitalsReading], now: datetime, settings: SessionRuleSettings) -> list[str]:
    """The latest value of each vital sign must be recent (the site's discharge age, 15 minutes) and within the
    discharge criteria (clinic policy on [NEWS2] bands; the blood pressure below [ESC/ESH 2018] grade 2)."""
    s = settings
    latest = latest_values([r for r in readings if r.taken_at <= now])
    unmet: list[str] = []
    for sign in VitalSign:
        value = latest.get(sign)
        if value is None:
            unmet.append(f"no {_NAMES[sign]} recorded: take a full set of vital signs")
            continue
        age = now - value.taken_at
        if age > timedelta(minutes=s.discharge_reading_max_age_minutes):
            unmet.append(
                f"the last {_NAMES[sign]} is {duration(age)} old: take it again (at most "
                f"{s.discharge_reading_max_age_minutes} minutes old at discharge)"
            )
        reading = value.reading
        match sign:
            case VitalSign.blood_pressure:
                assert reading.systolic_mmhg is not None and reading.diastolic_mmhg is not None
                bp = f"{reading.systolic_mmhg}/{reading.diastolic_mmhg} mmHg"
                if reading.systolic_mmhg > s.discharge_systolic_max_mmhg or (
                    reading.diastolic_mmhg > s.discharge_diastolic_max_mmhg
                ):
                    unmet.append(
                        f"blood pressure {bp} is above the discharge limit of "
                        f"{s.discharge_systolic_max_mmhg}/{s.discharge_diastolic_max_mmhg} mmHg"
                    )
                if reading.systolic_mmhg < s.discharge_systolic_min_mmhg:
                    unmet.append(
                        f"systolic {reading.systolic_mmhg} mmHg is below the discharge minimum of "
                        f"{s.discharge_systolic_min_mmhg} mmHg"
                    )
            case VitalSign.heart_rate:
                rate = reading.heart_rate_bpm
                assert rate is not None
                if not s.discharge_heart_rate_min_bpm <= rate <= s.discharge_heart_rate_max_bpm:
                    unmet.append(
                        f"heart rate {rate}/min is outside the discharge range of "
                        f"{s.discharge_heart_rate_min_bpm}-{s.discharge_heart_rate_max_bpm}/min"
                    )
            case VitalSign.spo2:
                spo2 = reading.spo2_percent
                assert spo2 is not None
                if spo2 < s.discharge_spo2_min_percent:
                    unmet.append(f"SpO2 {spo2} % is below the discharge minimum of {s.discharge_spo2_min_percent} %")
            case VitalSign.respiratory_rate:
                breaths = reading.respiratory_rate_per_min
                assert breaths is not None
                if not s.discharge_respiratory_rate_min_per_min <= breaths <= s.discharge_respiratory_rate_max_per_min:
                    unmet.append(
                        f"respiratory rate {breaths}/min is outside the discharge range of "
                        f"{s.discharge_respiratory_rate_min_per_min}-{s.discharge_respiratory_rate_max_per_min}/min"
                    )
    return unmet


def discharge_check(
    route: Route,
    *,
    administration_start: datetime,
    administration_end: datetime | None,
    now: datetime,
    readings: Sequence[VitalsReading],
    recovery_checks: Sequence[RecoveryCheck],
    escort_present: bool,
    settings: SessionRuleSettings,
) -> DischargeCheck:
    """Every criterion, listed together so a nurse sees the whole picture:

    1. The administration's end is known (an infusion's end is recorded, or its duration given), and the route's
       minimum observation has passed since it (from the end of an IV infusion; the last esketamine device).
    2. The latest value of each vital sign is recent and within the discharge criteria (`vital_sign_unmet`).
    3. Esketamine: a blood pressure was taken about 40 minutes after dosing ([Spravato PI]).
    4. Sedation, dissociation and respiratory depression have resolved, by a recent check (`recovery_unmet`).
    5. An escort is present ([Spravato PI]: no driving until the next day after restful sleep).
    """
    s = settings
    unmet: list[str] = []
    if administration_end is None:
        unmet.append("the infusion's end is not recorded: record when it ended (observation counts from the end)")
    else:
        minimum = timedelta(minutes=s.observation_minutes(route))
        observed = now - administration_end
        if observed < minimum:
            unmet.append(
                f"observation not complete: {duration(max(observed, timedelta(0)))} of the {duration(minimum)} "
                f"minimum after {_OBSERVED_FROM[route]} ({duration(minimum - observed)} to go)"
            )
    unmet.extend(vital_sign_unmet(readings, now, s))
    if route is Route.intranasal_esketamine and not postdose_bp_taken(administration_start, readings, s):
        unmet.append(
            f"no blood pressure taken {s.postdose_bp_earliest_minutes}-{s.postdose_bp_latest_minutes} minutes after "
            f"the first device (the label asks for one at about 40 minutes)"
        )
    if administration_end is not None:  # without an end, the missing end already blocks discharge
        unmet.extend(recovery_unmet(recovery_checks, administration_end=administration_end, now=now, settings=s))
    if not escort_present:
        unmet.append("no escort present: the patient must leave with a responsible adult and must not drive")
    return DischargeCheck(allowed=not unmet, unmet=unmet)
