"""Vital-sign rules: the alerts a reading raises, what the pre-dose reading allows, and the gaps in the monitoring.

Sources (docs/clinical-rules.md): [AHA ACLS], [ESC/ESH 2018], [NEWS2], [Riva-Posse 2018], [Spravato PI],
[Spravato REMS].
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.sessions.domain.settings import SessionRuleSettings
from services.sessions.domain.wording import duration
from shared.blood_pressure import DIASTOLIC_MAX, DIASTOLIC_MIN, SYSTOLIC_MAX, SYSTOLIC_MIN, bp_above
from shared.instants import UtcInstant
from shared.treatment import VitalsAlertCode as VitalsAlertCode

# Plausibility (typing errors, not patients): blood pressure limits are intake's, so both services agree.
HEART_RATE_MIN, HEART_RATE_MAX = 20, 250
SPO2_MIN, SPO2_MAX = 50, 100
RESPIRATORY_RATE_MIN, RESPIRATORY_RATE_MAX = 4, 60


class VitalsReading(BaseModel):
    """One entry on the vitals timeline: at least one measure, and a blood pressure is always both numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    taken_at: UtcInstant
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
            if self.diastolic_mmhg >= self.systolic_mmhg:
                raise ValueError(f"diastolic {self.diastolic_mmhg} mmHg must be below systolic {self.systolic_mmhg}")
        return self

    @property
    def has_bp(self) -> bool:
        return self.systolic_mmhg is not None


class VitalSign(StrEnum):
    blood_pressure = "blood_pressure"
    heart_rate = "heart_rate"
    spo2 = "spo2"
    respiratory_rate = "respiratory_rate"


def measures_in(reading: VitalsReading) -> set[VitalSign]:
    found = set()
    if reading.has_bp:
        found.add(VitalSign.blood_pressure)
    if reading.heart_rate_bpm is not None:
        found.add(VitalSign.heart_rate)
    if reading.spo2_percent is not None:
        found.add(VitalSign.spo2)
    if reading.respiratory_rate_per_min is not None:
        found.add(VitalSign.respiratory_rate)
    return found


# The alerts of the blood pressure: before a dose, a high one is refused outright (no override passes it).
HYPERTENSION_ALERTS = frozenset({VitalsAlertCode.systolic_high, VitalsAlertCode.diastolic_high})


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

    def add(code: VitalsAlertCode, what: str, value: int, relation: str, threshold: int, unit: str) -> None:
        message = f"{what} {value}{unit} is {relation} the alert threshold of {threshold}{unit}"
        alerts.append(VitalsAlert(code=code, value=value, threshold=threshold, message=message))

    systolic, diastolic = reading.systolic_mmhg, reading.diastolic_mmhg
    if systolic is not None and diastolic is not None:
        # [ESC/ESH 2018] grade 3: at or above 180 systolic or 110 diastolic.
        if systolic >= s.alert_systolic_at_or_above_mmhg:
            high = s.alert_systolic_at_or_above_mmhg
            add(VitalsAlertCode.systolic_high, "systolic", systolic, "at or above", high, " mmHg")
        if diastolic >= s.alert_diastolic_at_or_above_mmhg:
            high = s.alert_diastolic_at_or_above_mmhg
            add(VitalsAlertCode.diastolic_high, "diastolic", diastolic, "at or above", high, " mmHg")
        # [NEWS2] systolic <= 90 scores 3: hypotension.
        if systolic <= s.alert_systolic_at_or_below_mmhg:
            low = s.alert_systolic_at_or_below_mmhg
            add(VitalsAlertCode.systolic_low, "systolic (hypotension)", systolic, "at or below", low, " mmHg")
    # [NEWS2]: <= 91 % scores 3, so strictly below 92 alerts.
    spo2 = reading.spo2_percent
    if spo2 is not None and spo2 < s.alert_spo2_below_percent:
        add(VitalsAlertCode.spo2_low, "SpO2", spo2, "below", s.alert_spo2_below_percent, " %")
    # [AHA ACLS] below 50/min; the sessions issue's above 120/min. Both strict.
    rate = reading.heart_rate_bpm
    if rate is not None and rate < s.alert_heart_rate_below_bpm:
        add(VitalsAlertCode.heart_rate_low, "heart rate", rate, "below", s.alert_heart_rate_below_bpm, "/min")
    if rate is not None and rate > s.alert_heart_rate_above_bpm:
        add(VitalsAlertCode.heart_rate_high, "heart rate", rate, "above", s.alert_heart_rate_above_bpm, "/min")
    # [NEWS2] <= 8/min and >= 25/min score 3: respiratory depression, or distress.
    breaths = reading.respiratory_rate_per_min
    if breaths is not None and breaths < s.alert_respiratory_rate_below_per_min:
        low = s.alert_respiratory_rate_below_per_min
        add(VitalsAlertCode.respiratory_rate_low, "respiratory rate", breaths, "below", low, "/min")
    if breaths is not None and breaths > s.alert_respiratory_rate_above_per_min:
        high = s.alert_respiratory_rate_above_per_min
        add(VitalsAlertCode.respiratory_rate_high, "respiratory rate", breaths, "above", high, "/min")
    return alerts


# --- before the dose ----------------------------------------------------------------------------------------


class PredoseFindings(BaseModel):
    """What the pre-dose reading found: what no decision can accept, and what needs a clinician's decision."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    refusals: list[str]
    needs_decision: list[str]


def predose_findings(reading: VitalsReading, settings: SessionRuleSettings) -> PredoseFindings:
    """- A blood pressure at or above the alert threshold (180/110, [ESC/ESH 2018] grade 3): no dose today, no
      override ([Spravato PI]: do not give it where a rise in blood pressure is a serious risk).
    - Strictly above the site threshold (140/90, [Spravato PI] "as a general guide"): a clinician decides.
    - Any other alert (SpO2, heart rate, respiratory rate, hypotension): a clinician decides.
    The pre-dose reading must carry a blood pressure (PreDoseEntry says so)."""
    refusals: list[str] = []
    needs_decision: list[str] = []
    for alert in vitals_alerts(reading, settings):
        if alert.code in HYPERTENSION_ALERTS:
            refusals.append(f"{alert.message}: no dose may be given on it")
        else:
            needs_decision.append(alert.message)
    if not refusals and reading.systolic_mmhg is not None and reading.diastolic_mmhg is not None:
        if bp_above(reading.systolic_mmhg, reading.diastolic_mmhg, settings.predose_bp_threshold):
            needs_decision.insert(
                0,
                f"blood pressure {reading.systolic_mmhg}/{reading.diastolic_mmhg} mmHg is above the site threshold "
                f"{settings.predose_bp_threshold}",
            )
    return PredoseFindings(refusals=refusals, needs_decision=needs_decision)


def predose_reading_too_old(taken_at: datetime, dose_at: datetime, settings: SessionRuleSettings) -> str | None:
    """The pre-dose blood pressure must be taken in the window before the dose (default 60 minutes, clinic policy)
    and not after the dose began."""
    window = timedelta(minutes=settings.predose_reading_window_minutes)
    if taken_at > dose_at:
        return "the pre-dose blood pressure was taken after the dose began: record the dose's real start"
    if dose_at - taken_at > window:
        return (
            f"the pre-dose blood pressure is {duration(dose_at - taken_at)} old at the dose; the site counts one taken "
            f"in the {settings.predose_reading_window_minutes} minutes before: take it again"
        )
    return None


# --- the latest value of each measure -----------------------------------------------------------------------


class LatestValue(BaseModel):
    model_config = ConfigDict(frozen=True)

    sign: VitalSign
    taken_at: datetime
    reading: VitalsReading


def latest_values(readings: Sequence[VitalsReading]) -> dict[VitalSign, LatestValue]:
    """The latest value of each vital sign, each from the last reading that has it: a reading with only a blood
    pressure does not replace an earlier SpO2."""
    latest: dict[VitalSign, LatestValue] = {}
    for reading in sorted(readings, key=lambda r: r.taken_at):
        for sign in measures_in(reading):
            latest[sign] = LatestValue(sign=sign, taken_at=reading.taken_at, reading=reading)
    return latest


# --- the monitoring timeline --------------------------------------------------------------------------------


def monitoring_gaps(
    dose_time: datetime, readings: Sequence[VitalsReading], now: datetime, settings: SessionRuleSettings
) -> list[str]:
    """What the vitals timeline of one session is missing so far, in words a nurse acts on.

    - A pre-dose blood pressure in the window before the dose ([Spravato PI]: assess before dosing).
    - No gap over the site interval (15 minutes) from the dose to ``now`` ([Riva-Posse 2018]).
    - A blood pressure 35-50 minutes after the dose ([Spravato PI] "approximately 40 minutes"), reported missing
      only once the window has closed.
    ``dose_time`` is when administration started. Readings after ``now`` are ignored.
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
                f"the dose and {duration(later - dose_time)} after it"
                if earlier == dose_time
                else f"{duration(earlier - dose_time)} and {duration(later - dose_time)} after the dose"
            )
            problems.append(
                f"no vital signs between {between} ({duration(later - earlier)}; record at least every "
                f"{s.monitoring_interval_minutes} minutes)"
            )
    if now - points[-1] > interval:
        since = "the dose" if points[-1] == dose_time else f"{duration(points[-1] - dose_time)} after the dose"
        problems.append(
            f"no vital signs for {duration(now - points[-1])} (since {since}); record at least every "
            f"{s.monitoring_interval_minutes} minutes"
        )

    if now > dose_time + timedelta(minutes=s.postdose_bp_latest_minutes) and not postdose_bp_taken(dose_time, taken, s):
        problems.append(
            f"no blood pressure recorded {s.postdose_bp_earliest_minutes}-{s.postdose_bp_latest_minutes} minutes "
            f"after the dose (due at about 40 minutes)"
        )
    return problems


def postdose_bp_in_window(
    dose_time: datetime, readings: Sequence[VitalsReading], settings: SessionRuleSettings
) -> VitalsReading | None:
    """The blood pressure closest to 40 minutes after the dose, within the site's window (35-50 minutes)."""
    earliest = dose_time + timedelta(minutes=settings.postdose_bp_earliest_minutes)
    latest = dose_time + timedelta(minutes=settings.postdose_bp_latest_minutes)
    candidates = [r for r in readings if r.has_bp and earliest <= r.taken_at <= latest]
    target = dose_time + timedelta(minutes=40)
    return min(candidates, key=lambda r: abs(r.taken_at - target), default=None)


def postdose_bp_taken(dose_time: datetime, readings: Sequence[VitalsReading], settings: SessionRuleSettings) -> bool:
    return postdose_bp_in_window(dose_time, readings, settings) is not None
