"""Vital-sign rules: plausibility, the alerts a reading raises, what the pre-dose reading allows, the latest value
of each measure, and the gaps in a session's monitoring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.sessions.domain.overrides import PredoseDecision
from services.sessions.domain.settings import DEFAULT_SETTINGS, SessionRuleSettings
from services.sessions.domain.vitals import (
    VitalsAlertCode,
    VitalSign,
    VitalsReading,
    latest_values,
    measures_in,
    monitoring_gaps,
    postdose_bp_in_window,
    predose_findings,
    predose_reading_too_old,
    vitals_alerts,
)

S = DEFAULT_SETTINGS
DOSE = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def reading(at: datetime = DOSE, /, **measures: int) -> VitalsReading:
    return VitalsReading(taken_at=at, **measures)


# --- plausibility ---


@pytest.mark.parametrize(
    ("measures", "valid"),
    [
        ({"spo2_percent": 97}, True),
        ({"heart_rate_bpm": 70}, True),
        ({"respiratory_rate_per_min": 14}, True),
        ({}, False),
        ({"systolic_mmhg": 120}, False),
        ({"diastolic_mmhg": 80}, False),
        ({"systolic_mmhg": 80, "diastolic_mmhg": 80}, False),
        ({"systolic_mmhg": 80, "diastolic_mmhg": 79}, True),
        ({"systolic_mmhg": 50, "diastolic_mmhg": 20}, True),
        ({"systolic_mmhg": 49, "diastolic_mmhg": 20}, False),
        ({"systolic_mmhg": 300, "diastolic_mmhg": 200}, True),
        ({"systolic_mmhg": 301, "diastolic_mmhg": 100}, False),
        ({"systolic_mmhg": 120, "diastolic_mmhg": 19}, False),
        ({"systolic_mmhg": 250, "diastolic_mmhg": 201}, False),
        ({"heart_rate_bpm": 20}, True),
        ({"heart_rate_bpm": 19}, False),
        ({"heart_rate_bpm": 250}, True),
        ({"heart_rate_bpm": 251}, False),
        ({"spo2_percent": 50}, True),
        ({"spo2_percent": 49}, False),
        ({"spo2_percent": 100}, True),
        ({"spo2_percent": 101}, False),
        ({"respiratory_rate_per_min": 4}, True),
        ({"respiratory_rate_per_min": 3}, False),
        ({"respiratory_rate_per_min": 60}, True),
        ({"respiratory_rate_per_min": 61}, False),
        ({"spo2_percent": 97, "temperature": 37}, False),
    ],
)
def test_vitals_reading_plausibility(measures: dict[str, int], valid: bool) -> None:
    if valid:
        reading(**measures)
    else:
        with pytest.raises(ValidationError):
            reading(**measures)


def test_reading_time_must_carry_its_zone_and_is_kept_in_utc() -> None:
    with pytest.raises(ValidationError):
        VitalsReading(taken_at=datetime(2026, 3, 4, 10, 0), spo2_percent=97)
    local = VitalsReading(taken_at=datetime(2026, 3, 4, 5, 0, tzinfo=ZoneInfo("America/New_York")), spo2_percent=97)
    assert local.taken_at == DOSE and local.taken_at.tzinfo is UTC


def test_measures_in_a_reading() -> None:
    assert measures_in(reading(systolic_mmhg=120, diastolic_mmhg=80)) == {VitalSign.blood_pressure}
    full = reading(
        systolic_mmhg=120, diastolic_mmhg=80, heart_rate_bpm=70, spo2_percent=98, respiratory_rate_per_min=14
    )
    assert measures_in(full) == set(VitalSign)


# --- alerts: every threshold at, and on either side of, its source ---


@pytest.mark.parametrize(
    ("measures", "code"),
    [
        # [ESC/ESH 2018] grade 3: systolic >= 180 or diastolic >= 110.
        ({"systolic_mmhg": 179, "diastolic_mmhg": 90}, None),
        ({"systolic_mmhg": 180, "diastolic_mmhg": 90}, VitalsAlertCode.systolic_high),
        ({"systolic_mmhg": 150, "diastolic_mmhg": 109}, None),
        ({"systolic_mmhg": 150, "diastolic_mmhg": 110}, VitalsAlertCode.diastolic_high),
        # [NEWS2] systolic <= 90 scores 3: hypotension; 91-100 scores 2.
        ({"systolic_mmhg": 91, "diastolic_mmhg": 60}, None),
        ({"systolic_mmhg": 90, "diastolic_mmhg": 60}, VitalsAlertCode.systolic_low),
        # [NEWS2] SpO2 scale 1: <= 91 % scores 3; 92-93 % scores 2.
        ({"spo2_percent": 92}, None),
        ({"spo2_percent": 91}, VitalsAlertCode.spo2_low),
        # [AHA ACLS] bradycardia below 50/min.
        ({"heart_rate_bpm": 50}, None),
        ({"heart_rate_bpm": 49}, VitalsAlertCode.heart_rate_low),
        # The sessions issue's 120/min ([NEWS2] 111-130 scores 2).
        ({"heart_rate_bpm": 120}, None),
        ({"heart_rate_bpm": 121}, VitalsAlertCode.heart_rate_high),
        # [NEWS2] respiration <= 8/min scores 3 (9-11 scores 1); >= 25/min scores 3 (21-24 scores 2).
        ({"respiratory_rate_per_min": 9}, None),
        ({"respiratory_rate_per_min": 8}, VitalsAlertCode.respiratory_rate_low),
        ({"respiratory_rate_per_min": 24}, None),
        ({"respiratory_rate_per_min": 25}, VitalsAlertCode.respiratory_rate_high),
    ],
)
def test_vitals_alert_thresholds(measures: dict[str, int], code: VitalsAlertCode | None) -> None:
    assert [a.code for a in vitals_alerts(reading(**measures), S)] == ([] if code is None else [code])


@pytest.mark.parametrize(
    ("measures", "value", "threshold", "message"),
    [
        ({"spo2_percent": 89}, 89, 92, "SpO2 89 % is below the alert threshold of 92 %"),
        (
            {"systolic_mmhg": 184, "diastolic_mmhg": 100},
            184,
            180,
            "systolic 184 mmHg is at or above the alert threshold of 180 mmHg",
        ),
        (
            {"systolic_mmhg": 88, "diastolic_mmhg": 50},
            88,
            90,
            "systolic (hypotension) 88 mmHg is at or below the alert threshold of 90 mmHg",
        ),
        ({"respiratory_rate_per_min": 7}, 7, 9, "respiratory rate 7/min is below the alert threshold of 9/min"),
        ({"heart_rate_bpm": 130}, 130, 120, "heart rate 130/min is above the alert threshold of 120/min"),
    ],
)
def test_alert_message_has_the_value_and_the_threshold(
    measures: dict[str, int], value: int, threshold: int, message: str
) -> None:
    (alert,) = vitals_alerts(reading(**measures), S)
    assert (alert.value, alert.threshold, alert.message) == (value, threshold, message)


def test_every_alert_is_listed_in_a_fixed_order() -> None:
    high = reading(
        systolic_mmhg=190, diastolic_mmhg=115, heart_rate_bpm=130, spo2_percent=88, respiratory_rate_per_min=30
    )
    assert [a.code for a in vitals_alerts(high, S)] == [
        VitalsAlertCode.systolic_high,
        VitalsAlertCode.diastolic_high,
        VitalsAlertCode.spo2_low,
        VitalsAlertCode.heart_rate_high,
        VitalsAlertCode.respiratory_rate_high,
    ]
    low = reading(systolic_mmhg=85, diastolic_mmhg=50, heart_rate_bpm=45, respiratory_rate_per_min=6)
    assert [a.code for a in vitals_alerts(low, S)] == [
        VitalsAlertCode.systolic_low,
        VitalsAlertCode.heart_rate_low,
        VitalsAlertCode.respiratory_rate_low,
    ]


def test_alert_thresholds_are_site_settings() -> None:
    site = SessionRuleSettings(
        alert_spo2_below_percent=94,
        alert_heart_rate_above_bpm=110,
        alert_respiratory_rate_below_per_min=10,
        discharge_respiratory_rate_min_per_min=10,  # a discharge criterion may not be looser than its alert
    )
    measures = {"spo2_percent": 93, "heart_rate_bpm": 111, "respiratory_rate_per_min": 9}
    assert [a.code for a in vitals_alerts(reading(**measures), site)] == [
        VitalsAlertCode.spo2_low,
        VitalsAlertCode.heart_rate_high,
        VitalsAlertCode.respiratory_rate_low,
    ]


# --- before the dose ---


@pytest.mark.parametrize(
    ("measures", "refusals", "needs_decision"),
    [
        # [Spravato PI] "as a general guide: >140 mmHg systolic, >90 mmHg diastolic": exactly 140/90 passes.
        ({"systolic_mmhg": 140, "diastolic_mmhg": 90}, [], []),
        ({"systolic_mmhg": 139, "diastolic_mmhg": 89}, [], []),
        (
            {"systolic_mmhg": 141, "diastolic_mmhg": 90},
            [],
            ["blood pressure 141/90 mmHg is above the site threshold 140/90"],
        ),
        (
            {"systolic_mmhg": 140, "diastolic_mmhg": 91},
            [],
            ["blood pressure 140/91 mmHg is above the site threshold 140/90"],
        ),
        # Just below [ESC/ESH 2018] grade 3: still a clinician's decision.
        (
            {"systolic_mmhg": 179, "diastolic_mmhg": 109},
            [],
            ["blood pressure 179/109 mmHg is above the site threshold 140/90"],
        ),
        # Grade 3: refused, and no decision is offered on the blood pressure.
        (
            {"systolic_mmhg": 180, "diastolic_mmhg": 100},
            ["systolic 180 mmHg is at or above the alert threshold of 180 mmHg: no dose may be given on it"],
            [],
        ),
        (
            {"systolic_mmhg": 150, "diastolic_mmhg": 110},
            ["diastolic 110 mmHg is at or above the alert threshold of 110 mmHg: no dose may be given on it"],
            [],
        ),
        # Any other alert needs a decision.
        (
            {"systolic_mmhg": 120, "diastolic_mmhg": 80, "spo2_percent": 91},
            [],
            ["SpO2 91 % is below the alert threshold of 92 %"],
        ),
        (
            {"systolic_mmhg": 90, "diastolic_mmhg": 60},
            [],
            ["systolic (hypotension) 90 mmHg is at or below the alert threshold of 90 mmHg"],
        ),
        (
            {"systolic_mmhg": 120, "diastolic_mmhg": 80, "heart_rate_bpm": 49},
            [],
            ["heart rate 49/min is below the alert threshold of 50/min"],
        ),
        (
            {"systolic_mmhg": 120, "diastolic_mmhg": 80, "heart_rate_bpm": 121},
            [],
            ["heart rate 121/min is above the alert threshold of 120/min"],
        ),
        (
            {"systolic_mmhg": 120, "diastolic_mmhg": 80, "respiratory_rate_per_min": 8},
            [],
            ["respiratory rate 8/min is below the alert threshold of 9/min"],
        ),
        (
            {"systolic_mmhg": 120, "diastolic_mmhg": 80, "respiratory_rate_per_min": 25},
            [],
            ["respiratory rate 25/min is above the alert threshold of 24/min"],
        ),
        (
            {"systolic_mmhg": 120, "diastolic_mmhg": 80, "spo2_percent": 92, "heart_rate_bpm": 50},
            [],
            [],
        ),
        # The blood pressure comes first, then the other alerts.
        (
            {"systolic_mmhg": 150, "diastolic_mmhg": 95, "spo2_percent": 90},
            [],
            [
                "blood pressure 150/95 mmHg is above the site threshold 140/90",
                "SpO2 90 % is below the alert threshold of 92 %",
            ],
        ),
        (
            {"systolic_mmhg": 185, "diastolic_mmhg": 95, "spo2_percent": 90},
            ["systolic 185 mmHg is at or above the alert threshold of 180 mmHg: no dose may be given on it"],
            ["SpO2 90 % is below the alert threshold of 92 %"],
        ),
    ],
)
def test_predose_findings(measures: dict[str, int], refusals: list[str], needs_decision: list[str]) -> None:
    found = predose_findings(reading(**measures), S)
    assert (found.refusals, found.needs_decision) == (refusals, needs_decision)


def test_predose_threshold_is_a_site_setting() -> None:
    site = SessionRuleSettings.model_validate({"predose_bp_threshold": {"systolic_mmhg": 150, "diastolic_mmhg": 95}})
    assert predose_findings(reading(systolic_mmhg=150, diastolic_mmhg=95), site).needs_decision == []
    assert predose_findings(reading(systolic_mmhg=151, diastolic_mmhg=92), site).needs_decision == [
        "blood pressure 151/92 mmHg is above the site threshold 150/95"
    ]


def test_a_predose_decision_says_whether_to_proceed_and_why() -> None:
    decision = PredoseDecision(proceed=True, reason="white-coat pattern, 135/85 at home all week")
    assert decision.proceed is True
    with pytest.raises(ValidationError):
        PredoseDecision(proceed=True, reason="ok")
    with pytest.raises(ValidationError):
        PredoseDecision.model_validate({"reason": "recheck after 15 minutes of rest first"})


@pytest.mark.parametrize(
    ("taken", "says"),
    [
        # Clinic policy: the check-in reading counts for 60 minutes.
        (DOSE - minutes(60), None),
        (DOSE - minutes(30), None),
        (DOSE, None),
        (
            DOSE - minutes(61),
            "the pre-dose blood pressure is 1 h 1 min old at the dose; the site counts one taken in the 60 minutes "
            "before: take it again",
        ),
        (
            DOSE + timedelta(seconds=1),
            "the pre-dose blood pressure was taken after the dose began: record the dose's real start",
        ),
    ],
)
def test_predose_reading_too_old(taken: datetime, says: str | None) -> None:
    assert predose_reading_too_old(taken, DOSE, S) == says


def test_predose_window_is_a_site_setting() -> None:
    site = SessionRuleSettings(predose_reading_window_minutes=30)
    assert predose_reading_too_old(DOSE - minutes(30), DOSE, site) is None
    assert predose_reading_too_old(DOSE - minutes(31), DOSE, site) is not None


# --- the latest value of each measure ---


def test_a_blood_pressure_only_reading_does_not_replace_an_earlier_spo2() -> None:
    full = reading(
        DOSE, systolic_mmhg=150, diastolic_mmhg=90, heart_rate_bpm=80, spo2_percent=95, respiratory_rate_per_min=14
    )
    bp_only = reading(DOSE + minutes(20), systolic_mmhg=130, diastolic_mmhg=85)
    for order in ([full, bp_only], [bp_only, full]):
        latest = latest_values(order)
        assert set(latest) == set(VitalSign)
        assert (latest[VitalSign.blood_pressure].taken_at, latest[VitalSign.blood_pressure].reading) == (
            DOSE + minutes(20),
            bp_only,
        )
        for sign in (VitalSign.spo2, VitalSign.heart_rate, VitalSign.respiratory_rate):
            assert (latest[sign].taken_at, latest[sign].reading) == (DOSE, full)


def test_latest_values_of_nothing() -> None:
    assert latest_values([]) == {}


# --- the monitoring timeline ---


def bp(at: datetime) -> VitalsReading:
    return reading(at, systolic_mmhg=130, diastolic_mmhg=84)


def hr(at: datetime) -> VitalsReading:
    return reading(at, heart_rate_bpm=76, spo2_percent=97)


def complete_timeline() -> list[VitalsReading]:
    return [bp(DOSE - minutes(10)), hr(DOSE + minutes(15)), hr(DOSE + minutes(30)), bp(DOSE + minutes(40))]


def test_a_complete_timeline_has_no_gaps() -> None:
    assert monitoring_gaps(DOSE, complete_timeline(), DOSE + minutes(55), S) == []


def test_missing_predose_bp() -> None:
    readings = complete_timeline()[1:]
    missing = ["no pre-dose blood pressure recorded in the 60 minutes before the dose"]
    assert monitoring_gaps(DOSE, readings, DOSE + minutes(50), S) == missing
    # a pre-dose reading without a blood pressure does not do
    assert monitoring_gaps(DOSE, [hr(DOSE - minutes(5)), *readings], DOSE + minutes(50), S) == missing


@pytest.mark.parametrize(("before", "found"), [(60, True), (61, False), (0, True)])
def test_predose_window(before: int, found: bool) -> None:
    readings = [bp(DOSE - minutes(before)), *complete_timeline()[1:]]
    assert (monitoring_gaps(DOSE, readings, DOSE + minutes(50), S) == []) is found


def test_a_gap_of_exactly_15_minutes_is_on_time_and_16_is_not() -> None:
    # The sessions issue's 15 minutes ([Riva-Posse 2018] measured every 15 minutes after infusions).
    on_time = [bp(DOSE - minutes(5)), hr(DOSE + minutes(15)), hr(DOSE + minutes(30))]
    assert monitoring_gaps(DOSE, on_time, DOSE + minutes(34), S) == []
    late = [bp(DOSE - minutes(5)), hr(DOSE + minutes(15)), hr(DOSE + minutes(31))]
    assert monitoring_gaps(DOSE, late, DOSE + minutes(34), S) == [
        "no vital signs between 15 min and 31 min after the dose (16 min; record at least every 15 minutes)"
    ]


def test_first_reading_more_than_15_minutes_after_the_dose_is_a_gap() -> None:
    readings = [bp(DOSE - minutes(5)), hr(DOSE + minutes(20))]
    assert monitoring_gaps(DOSE, readings, DOSE + minutes(25), S) == [
        "no vital signs between the dose and 20 min after it (20 min; record at least every 15 minutes)"
    ]


def test_overdue_reading_since_the_last_one() -> None:
    readings = [bp(DOSE - minutes(5)), hr(DOSE + minutes(15))]
    assert monitoring_gaps(DOSE, readings, DOSE + minutes(30), S) == []
    assert monitoring_gaps(DOSE, readings, DOSE + minutes(31), S) == [
        "no vital signs for 16 min (since 15 min after the dose); record at least every 15 minutes"
    ]
    assert monitoring_gaps(DOSE, readings[:1], DOSE + minutes(16), S) == [
        "no vital signs for 16 min (since the dose); record at least every 15 minutes"
    ]


def test_bp_at_40_minutes_is_missing_only_once_the_window_closes() -> None:
    # [Spravato PI]: reassess blood pressure at about 40 minutes; read as 35-50 minutes.
    readings = [bp(DOSE - minutes(5)), *(hr(DOSE + minutes(m)) for m in (10, 20, 30, 40, 50))]
    assert monitoring_gaps(DOSE, readings, DOSE + minutes(50), S) == []
    assert monitoring_gaps(DOSE, readings, DOSE + minutes(51), S) == [
        "no blood pressure recorded 35-50 minutes after the dose (due at about 40 minutes)"
    ]


@pytest.mark.parametrize(("at", "counts"), [(34, False), (35, True), (40, True), (50, True), (51, False)])
def test_bp_window_is_35_to_50_minutes(at: int, counts: bool) -> None:
    others = (10, 20, 30, 45, 55, 60)
    readings = [bp(DOSE - minutes(5)), bp(DOSE + minutes(at)), *(hr(DOSE + minutes(m)) for m in others)]
    assert (monitoring_gaps(DOSE, readings, DOSE + minutes(60), S) == []) is counts


def test_readings_after_now_and_times_before_the_dose() -> None:
    assert monitoring_gaps(DOSE, [], DOSE - minutes(1), S) == []
    future = [*complete_timeline(), hr(DOSE + minutes(120))]
    assert monitoring_gaps(DOSE, future, DOSE + minutes(55), S) == []


def test_the_postdose_bp_is_the_one_closest_to_40_minutes() -> None:
    at_36, at_42 = bp(DOSE + minutes(36)), bp(DOSE + minutes(42))
    assert postdose_bp_in_window(DOSE, [at_36, at_42, hr(DOSE + minutes(40))], S) == at_42
    assert postdose_bp_in_window(DOSE, [hr(DOSE + minutes(40)), bp(DOSE + minutes(51))], S) is None
