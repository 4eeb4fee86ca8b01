"""The chart's own ordering rules, on the aggregate itself: the pre-dose decision sees the last reading before
the dose, and a birth date after the dose's day is a refusal, not a crash."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.sessions.domain.eligibility import PatientStanding, ScreeningOutcome
from services.sessions.domain.session_record import (
    DoseEntry,
    DosingContext,
    DosingSessionChart,
    PreDoseEntry,
    SessionStatus,
)
from services.sessions.domain.settings import SessionRuleSettings
from services.sessions.domain.staff import Staff
from services.sessions.domain.vitals import VitalsReading
from shared.errors import Conflict, RuleRefused
from shared.treatment import CourseStatus, Indication, Route

RULES = SessionRuleSettings()
ZONE = ZoneInfo("America/Los_Angeles")
NURSE = Staff(sub="nurse-1", name="Nurse", clinician=False)
DOCTOR = Staff(sub="dr-1", name="Doctor", clinician=True)
NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)  # 11:00 in Los Angeles
START = NOW - timedelta(hours=2)


def a_chart() -> DosingSessionChart:
    return DosingSessionChart(
        id=uuid.uuid4(),
        course_id=uuid.uuid4(),
        patient_id=uuid.uuid4(),
        route=Route.intramuscular,
        indication=Indication.treatment_resistant_depression,
        starts_at=START,
        ends_at=START + timedelta(hours=3),
        room="Room 2",
        clinician="dr-1",
        therapist="t-1",
        status=SessionStatus.scheduled,
    )


def context(birth_date: date = date(1980, 1, 1)) -> DosingContext:
    standing = PatientStanding(
        known=True,
        active=True,
        eligible=True,
        screening_outcome=ScreeningOutcome.eligible,
        screened_at=START - timedelta(days=10),
        consented=True,
        ever_consented=True,
    )
    return DosingContext(
        standing=standing, course_status=CourseStatus.active, birth_date=birth_date, last_weight=None, earlier_doses=[]
    )


def reading(minutes_after_start: int, systolic: int = 124, diastolic: int = 80) -> VitalsReading:
    return VitalsReading(
        taken_at=START + timedelta(minutes=minutes_after_start),
        systolic_mmhg=systolic,
        diastolic_mmhg=diastolic,
        heart_rate_bpm=72,
        spo2_percent=98,
        respiratory_rate_per_min=14,
    )


def pre_dose(vitals: VitalsReading) -> PreDoseEntry:
    return PreDoseEntry(
        weight={"value": 80, "unit": "kg"},
        vitals=vitals,
        fasting=True,
        takes_benzodiazepines=False,
        takes_stimulants=False,
        takes_maois=False,
        takes_opioids=False,
        escort_arranged=True,
    )


def im_dose(minutes_after_start: int) -> DoseEntry:
    return DoseEntry(
        mg_per_kg=0.5, lot_number="KET-1", administration_start=START + timedelta(minutes=minutes_after_start)
    )


def test_a_monitoring_reading_at_the_alert_threshold_before_the_dose_refuses_it() -> None:
    chart = a_chart()
    chart.record_pre_dose(pre_dose(reading(5)), NURSE, context(), RULES, NOW)
    chart.record_vitals(reading(30, 195, 118), NURSE, RULES, NOW)
    with pytest.raises(Conflict, match=r"systolic 195 mmHg .* record a new pre-dose check"):
        chart.record_dose(im_dose(35), DOCTOR, context(), RULES, ZONE, NOW)
    assert chart.record.dose is None


def test_a_reading_after_the_dose_began_does_not_hold_it() -> None:
    chart = a_chart()
    chart.record_pre_dose(pre_dose(reading(5)), NURSE, context(), RULES, NOW)
    chart.record_vitals(reading(40, 150, 95), NURSE, RULES, NOW)  # a rise during monitoring, after the dose
    chart.record_dose(im_dose(35), DOCTOR, context(), RULES, ZONE, NOW)
    assert chart.record.dose is not None


def test_a_reading_above_the_site_threshold_the_decision_did_not_see_holds_the_dose() -> None:
    chart = a_chart()
    chart.record_pre_dose(pre_dose(reading(5)), NURSE, context(), RULES, NOW)
    chart.record_vitals(reading(20, 150, 92), NURSE, RULES, NOW)  # above 140/90: a clinician decides
    with pytest.raises(Conflict, match="above the site threshold"):
        chart.record_dose(im_dose(35), DOCTOR, context(), RULES, ZONE, NOW)


def test_an_older_pre_dose_reading_cannot_replace_a_newer_one() -> None:
    chart = a_chart()
    chart.record_pre_dose(pre_dose(reading(30, 190, 115)), NURSE, context(), RULES, NOW)
    with pytest.raises(RuleRefused, match="taken after it"):
        chart.record_pre_dose(pre_dose(reading(5)), NURSE, context(), RULES, NOW)
    assert chart.record.pre_dose is not None and chart.record.pre_dose.vitals.systolic_mmhg == 190


def test_a_birth_date_after_the_doses_day_is_refused_not_a_crash() -> None:
    # The dose at 16:35 UTC is 09:35 on 10 March in Los Angeles; a birth date of 11 March is impossible.
    chart = a_chart()
    born_tomorrow = context(birth_date=date(2026, 3, 11))
    chart.record_pre_dose(pre_dose(reading(5)), NURSE, born_tomorrow, RULES, NOW)
    with pytest.raises(RuleRefused, match=r"date of birth .* is after the dose.s date"):
        chart.record_dose(im_dose(35), DOCTOR, born_tomorrow, RULES, ZONE, NOW)
