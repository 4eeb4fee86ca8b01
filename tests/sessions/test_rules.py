"""Session rules: pure functions, no database, no broker. Every rule both ways and at every boundary."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from services.sessions.rules import (
    CADSS_VERSION,
    CTCAE_GRADE,
    DEFAULT_SETTINGS,
    MOAAS_SCORE,
    AdverseEvent,
    AdverseEventSeverity,
    AdverseEventType,
    BloodPressureDecision,
    CadssAnswerError,
    CadssPart,
    DoseBasis,
    DoseCheck,
    DoseOverride,
    DoseRange,
    Indication,
    OverrideNotNeeded,
    OverrideNotPossible,
    RemsStatus,
    Route,
    ScheduleOverride,
    SedationLevel,
    SessionRuleSettings,
    VitalsAlertCode,
    VitalsReading,
    booking_allowed,
    calculate_dose,
    check_device_times,
    check_dose,
    discharge_check,
    dose_allowed,
    esketamine_device_schedule,
    exceeds_weekly_cap,
    fixed_dose,
    is_sedated,
    is_serious,
    monitoring_gaps,
    overlaps,
    predose_bp_allows_dosing,
    predose_bp_needs_decision,
    rems_form_deadline,
    rems_form_due,
    score_cadss,
    sedation_level,
    sedation_observed,
    vitals_alerts,
)

S = DEFAULT_SETTINGS
DOSE = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def dose_check(route: Route, dose_mg: float, *, weight_kg: float = 70, age: int = 40, first: bool = False) -> DoseCheck:
    return check_dose(
        route, dose_mg=dose_mg, weight_kg=weight_kg, age_years=age, first_esketamine_dose=first, settings=S
    )


def reading(at: datetime = DOSE, /, **measures: int) -> VitalsReading:
    return VitalsReading(taken_at=at, **measures)


def normal(at: datetime) -> VitalsReading:
    return reading(at, systolic_mmhg=125, diastolic_mmhg=80, heart_rate_bpm=72, spo2_percent=98)


# --- enums and settings ---


def test_routes_and_indications_are_the_stable_codes() -> None:
    assert [r.value for r in Route] == [
        "iv_infusion",
        "intramuscular",
        "subcutaneous",
        "sublingual_oral",
        "intranasal_esketamine",
    ]
    assert [i.value for i in Indication] == [
        "depression",
        "treatment_resistant_depression",
        "anxiety",
        "ptsd",
        "ocd",
        "substance_use_disorder",
        "other",
    ]


def test_defaults_are_the_issues_values() -> None:
    assert (S.iv_mg_per_kg.minimum, S.iv_mg_per_kg.maximum) == (0.1, 0.75)
    assert (S.iv_default_mg_per_kg, S.iv_default_infusion_minutes) == (0.5, 40)
    assert (S.im_mg_per_kg.minimum, S.im_mg_per_kg.maximum) == (0.25, 0.5)
    assert (S.subcutaneous_mg_per_kg.minimum, S.subcutaneous_mg_per_kg.maximum) == (0.5, 0.9)
    assert (S.sublingual_oral_mg.minimum, S.sublingual_oral_mg.maximum) == (50, 300)
    assert S.esketamine_doses_mg == (56, 84)
    assert S.esketamine_older_adult_age_years == 65
    assert S.esketamine_older_adult_doses_mg == (28, 56, 84)
    assert S.esketamine_older_adult_first_dose_mg == 28
    assert S.esketamine_device_interval_minutes == 5
    assert str(S.predose_bp_threshold) == "140/90"
    assert S.weekly_session_cap == 2
    assert (S.alert_systolic_at_or_above_mmhg, S.alert_diastolic_at_or_above_mmhg) == (180, 110)
    assert S.alert_spo2_below_percent == 92
    assert (S.alert_heart_rate_below_bpm, S.alert_heart_rate_above_bpm) == (50, 120)
    assert S.monitoring_interval_minutes == 15
    assert (S.postdose_bp_earliest_minutes, S.postdose_bp_latest_minutes) == (35, 50)
    assert S.observation_minutes(Route.intranasal_esketamine) == 120
    assert S.observation_minutes(Route.iv_infusion) == 60
    assert S.observation_minutes(Route.intramuscular) == 60
    assert S.observation_minutes(Route.subcutaneous) == 60
    assert S.observation_minutes(Route.sublingual_oral) == 60


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        S.weekly_session_cap = 5  # type: ignore[misc]


def test_settings_build_from_plain_values_as_the_service_does() -> None:
    site = SessionRuleSettings.model_validate(
        {
            "iv_mg_per_kg": {"minimum": 0.2, "maximum": 0.6},
            "predose_bp_threshold": {"systolic_mmhg": 150, "diastolic_mmhg": 95},
            "weekly_session_cap": 3,
        }
    )
    assert site.iv_mg_per_kg == DoseRange(minimum=0.2, maximum=0.6)
    assert str(site.predose_bp_threshold) == "150/95"
    assert site.weekly_session_cap == 3


@pytest.mark.parametrize(
    "changes",
    [
        # the REMS minimum of 2 hours cannot be shortened, nor the label's 5 minutes between devices
        {"observation_minutes_esketamine": 119},
        {"esketamine_device_interval_minutes": 4},
        # esketamine doses are whole devices, and the older adults' first dose is one of theirs
        {"esketamine_doses_mg": (56, 70)},
        {"esketamine_older_adult_doses_mg": (56, 84)},
        {"iv_mg_per_kg": {"minimum": 0.8, "maximum": 0.75}},
        {"iv_default_mg_per_kg": 0.8},
        {"alert_heart_rate_below_bpm": 120},
        {"postdose_bp_earliest_minutes": 55},
        {"predose_bp_threshold": {"systolic_mmhg": 90, "diastolic_mmhg": 90}},
        {"weekly_session_cap": 0},
        {"unknown_setting": 1},
    ],
)
def test_settings_refuse_unsafe_or_inconsistent_values(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SessionRuleSettings.model_validate(changes)


def test_longer_than_the_label_is_allowed() -> None:
    site = SessionRuleSettings(observation_minutes_esketamine=150, esketamine_device_interval_minutes=6)
    assert site.observation_minutes(Route.intranasal_esketamine) == 150


# --- dose calculation ---


def test_weight_based_dose_is_weight_times_mg_per_kg() -> None:
    calc = calculate_dose(Route.iv_infusion, 70, 0.5)
    assert (calc.dose_mg, calc.mg_per_kg, calc.basis) == (35.0, 0.5, DoseBasis.per_kg)


def test_dose_is_rounded_to_a_tenth_of_a_mg_half_up() -> None:
    assert calculate_dose(Route.iv_infusion, 73.3, 0.75).dose_mg == 55.0  # 54.975
    assert calculate_dose(Route.intramuscular, 81.5, 0.25).dose_mg == 20.4  # 20.375
    assert calculate_dose(Route.subcutaneous, 66.1, 0.5).dose_mg == 33.1  # 33.05
    assert calculate_dose(Route.subcutaneous, 66.1, 0.5).mg_per_kg == 0.5


@pytest.mark.parametrize("route", [Route.sublingual_oral, Route.intranasal_esketamine])
def test_fixed_routes_are_not_calculated_per_kg(route: Route) -> None:
    with pytest.raises(ValueError, match="fixed_dose"):
        calculate_dose(route, 70, 0.5)


def test_fixed_dose_reports_a_derived_mg_per_kg() -> None:
    calc = fixed_dose(Route.sublingual_oral, 80, 200)
    assert (calc.dose_mg, calc.mg_per_kg, calc.basis) == (200, 2.5, DoseBasis.fixed)
    assert fixed_dose(Route.intranasal_esketamine, 70, 56).mg_per_kg == 0.8
    with pytest.raises(ValueError, match="calculate_dose"):
        fixed_dose(Route.iv_infusion, 70, 35)


@pytest.mark.parametrize(("weight", "valid"), [(24.9, False), (25, True), (350, True), (350.1, False)])
def test_weight_must_be_plausible(weight: float, valid: bool) -> None:
    if valid:
        calculate_dose(Route.iv_infusion, weight, 0.5)
        dose_check(Route.sublingual_oral, 100, weight_kg=weight)
    else:
        with pytest.raises(ValidationError):
            calculate_dose(Route.iv_infusion, weight, 0.5)
        with pytest.raises(ValidationError):
            dose_check(Route.sublingual_oral, 100, weight_kg=weight)


@pytest.mark.parametrize("bad", [0, -0.5, float("nan"), True, "0.5"])
def test_mg_per_kg_must_be_a_positive_number(bad: Any) -> None:
    with pytest.raises(ValidationError):
        calculate_dose(Route.iv_infusion, 70, bad)


def test_dose_age_and_route_are_validated() -> None:
    with pytest.raises(ValidationError):
        dose_check(Route.iv_infusion, 0)
    with pytest.raises(ValidationError):
        dose_check(Route.iv_infusion, 35, age=131)
    with pytest.raises(ValidationError):
        check_dose(
            "oral",  # type: ignore[arg-type]
            dose_mg=35,
            weight_kg=70,
            age_years=40,
            first_esketamine_dose=False,
            settings=S,
        )
    # A route's stored code is accepted, as it comes back from the database.
    assert check_dose(
        "iv_infusion",  # type: ignore[arg-type]
        dose_mg=35,
        weight_kg=70,
        age_years=40,
        first_esketamine_dose=False,
        settings=S,
    ).within_range


# --- dose ranges: every boundary ---


@pytest.mark.parametrize(
    ("route", "mg_per_kg", "within", "says"),
    [
        (Route.iv_infusion, 0.75, True, None),
        (Route.iv_infusion, 0.76, False, "above the IV maximum of 0.75 mg/kg"),
        (Route.iv_infusion, 0.1, True, None),
        (Route.iv_infusion, 0.09, False, "below the IV minimum of 0.1 mg/kg"),
        (Route.intramuscular, 0.25, True, None),
        (Route.intramuscular, 0.24, False, "below the IM minimum of 0.25 mg/kg"),
        (Route.intramuscular, 0.5, True, None),
        (Route.intramuscular, 0.51, False, "above the IM maximum of 0.5 mg/kg"),
        (Route.subcutaneous, 0.5, True, None),
        (Route.subcutaneous, 0.49, False, "below the subcutaneous minimum of 0.5 mg/kg"),
        (Route.subcutaneous, 0.9, True, None),
        (Route.subcutaneous, 0.91, False, "above the subcutaneous maximum of 0.9 mg/kg"),
    ],
)
def test_weight_based_ranges_at_each_end(route: Route, mg_per_kg: float, within: bool, says: str | None) -> None:
    check = dose_check(route, calculate_dose(route, 70, mg_per_kg).dose_mg)
    assert check.within_range is within
    if says is None:
        assert check.problems == []
    else:
        assert len(check.problems) == 1 and says in check.problems[0]


def test_problem_names_the_dose_and_the_limit() -> None:
    check = dose_check(Route.iv_infusion, 63)  # 0.9 mg/kg at 70 kg
    assert check.problems == ["0.9 mg/kg (63 mg for 70 kg) is above the IV maximum of 0.75 mg/kg (52.5 mg)"]
    assert check.mg_per_kg == 0.9


@pytest.mark.parametrize("weight", [25, 33.3, 47.7, 58.85, 73.3, 99.9, 123.45, 350])
@pytest.mark.parametrize("route", [Route.iv_infusion, Route.intramuscular, Route.subcutaneous])
def test_the_calculated_dose_at_either_limit_always_passes(route: Route, weight: float) -> None:
    # Rounding to 0.1 mg can put the mg/kg a hair above the maximum (55.0 mg / 73.3 kg = 0.7503): the check
    # compares in mg at the same rounding, so what calculate_dose gives is never refused by check_dose.
    limits = S.dose_range(route)
    for mg_per_kg in (limits.minimum, limits.maximum):
        assert dose_check(route, calculate_dose(route, weight, mg_per_kg).dose_mg, weight_kg=weight).within_range


@pytest.mark.parametrize(
    ("dose", "within", "says"),
    [
        (50, True, None),
        (49.9, False, "49.9 mg is below the sublingual/oral minimum of 50 mg"),
        (300, True, None),
        (300.1, False, "300.1 mg is above the sublingual/oral maximum of 300 mg"),
    ],
)
def test_sublingual_oral_fixed_range(dose: float, within: bool, says: str | None) -> None:
    check = dose_check(Route.sublingual_oral, dose)
    assert check.within_range is within
    assert check.problems == ([] if says is None else [says])


def test_a_site_range_replaces_the_default() -> None:
    site = SessionRuleSettings(iv_mg_per_kg=DoseRange(minimum=0.1, maximum=1.0))
    check = check_dose(
        Route.iv_infusion, dose_mg=63, weight_kg=70, age_years=40, first_esketamine_dose=False, settings=site
    )
    assert check.within_range


# --- esketamine ---


@pytest.mark.parametrize(("dose", "devices"), [(56, 2), (84, 3)])
def test_esketamine_56_and_84_allowed(dose: int, devices: int) -> None:
    check = dose_check(Route.intranasal_esketamine, dose)
    assert check.within_range and check.devices == devices


def test_esketamine_must_be_whole_devices_and_no_override_changes_that() -> None:
    check = dose_check(Route.intranasal_esketamine, 70)
    assert not check.within_range
    assert check.problems == ["70 mg is not a whole number of 28 mg devices"]
    assert check.devices is None and not check.overridable
    assert dose_allowed(check, None) is False
    with pytest.raises(OverrideNotPossible):
        dose_allowed(check, DoseOverride(reason="patient asked for a smaller dose"))


@pytest.mark.parametrize(("age", "within"), [(64, False), (65, True)])
def test_esketamine_28_mg_only_from_65(age: int, within: bool) -> None:
    check = dose_check(Route.intranasal_esketamine, 28, age=age)
    assert check.within_range is within
    if not within:
        assert check.problems == ["28 mg is allowed only from age 65 (patient is 64); allowed doses are 56 or 84 mg"]


@pytest.mark.parametrize(("dose", "within"), [(28, True), (56, False), (84, False)])
def test_first_esketamine_dose_at_65_and_over_must_be_28(dose: int, within: bool) -> None:
    check = dose_check(Route.intranasal_esketamine, dose, age=65, first=True)
    assert check.within_range is within
    if not within:
        assert check.problems == [f"the first esketamine dose at age 65 and over must be 28 mg, not {dose} mg"]


def test_first_esketamine_dose_under_65_is_not_forced_to_28() -> None:
    assert dose_check(Route.intranasal_esketamine, 56, age=64, first=True).within_range
    assert not dose_check(Route.intranasal_esketamine, 28, age=64, first=True).within_range


def test_later_esketamine_doses_at_65_may_be_28_56_or_84() -> None:
    for dose in (28, 56, 84):
        assert dose_check(Route.intranasal_esketamine, dose, age=70).within_range


def test_esketamine_above_84_is_flagged_but_overridable() -> None:
    check = dose_check(Route.intranasal_esketamine, 112)
    assert check.problems == ["112 mg is above the esketamine maximum of 84 mg"]
    assert check.overridable and check.devices == 4


# --- overrides of doses ---


def test_dose_within_range_needs_no_override() -> None:
    check = dose_check(Route.iv_infusion, 35)
    assert dose_allowed(check, None) is True
    with pytest.raises(OverrideNotNeeded):
        dose_allowed(check, DoseOverride(reason="just in case, documented"))


def test_dose_outside_range_needs_an_override() -> None:
    check = dose_check(Route.iv_infusion, 63)
    assert dose_allowed(check, None) is False
    assert dose_allowed(check, DoseOverride(reason="partial response at 0.75 mg/kg; titrating per protocol")) is True


@pytest.mark.parametrize("reason", ["ok", "   too short   ", ""])
def test_override_reason_must_be_at_least_10_characters(reason: str) -> None:
    with pytest.raises(ValidationError):
        DoseOverride(reason=reason)


def test_dose_check_cannot_claim_within_range_with_problems() -> None:
    with pytest.raises(ValidationError):
        DoseCheck(
            route=Route.iv_infusion,
            dose_mg=63,
            weight_kg=70,
            mg_per_kg=0.9,
            within_range=True,
            problems=["too high"],
            overridable=True,
        )


# --- esketamine devices ---


@pytest.mark.parametrize(("dose", "count"), [(28, 1), (56, 2), (84, 3)])
def test_device_schedule_is_one_device_every_5_minutes(dose: int, count: int) -> None:
    times = esketamine_device_schedule(dose, DOSE, settings=S)
    assert times == [DOSE + minutes(5 * i) for i in range(count)]


def test_device_schedule_follows_the_site_interval() -> None:
    site = SessionRuleSettings(esketamine_device_interval_minutes=7)
    assert esketamine_device_schedule(84, DOSE, settings=site)[-1] == DOSE + minutes(14)


@pytest.mark.parametrize("dose", [70, 0, -28])
def test_device_schedule_refuses_part_devices(dose: int) -> None:
    with pytest.raises(ValueError, match="whole number"):
        esketamine_device_schedule(dose, DOSE, settings=S)


def test_device_times_exactly_5_minutes_apart_pass() -> None:
    assert check_device_times([DOSE, DOSE + minutes(5), DOSE + minutes(10)], settings=S) == []
    assert check_device_times([DOSE], settings=S) == []


def test_device_times_under_5_minutes_are_flagged() -> None:
    times = [DOSE, DOSE + timedelta(minutes=4, seconds=59), DOSE + minutes(10)]
    assert check_device_times(times, settings=S) == [
        "device 2 was given 4 min 59 s after device 1; wait at least 5 minutes between devices"
    ]


def test_device_times_out_of_order_are_flagged() -> None:
    assert len(check_device_times([DOSE + minutes(5), DOSE], settings=S)) == 1


# --- pre-dose blood pressure ---


@pytest.mark.parametrize(
    ("systolic", "diastolic", "needs"),
    [(140, 90, False), (141, 90, True), (140, 91, True), (139, 89, False), (120, 80, False)],
)
def test_predose_bp_above_threshold_needs_a_decision(systolic: int, diastolic: int, needs: bool) -> None:
    assert predose_bp_needs_decision(systolic, diastolic, S) is needs


def test_predose_bp_uses_the_site_threshold() -> None:
    site = SessionRuleSettings.model_validate({"predose_bp_threshold": {"systolic_mmhg": 150, "diastolic_mmhg": 95}})
    assert predose_bp_needs_decision(145, 92, site) is False
    assert predose_bp_needs_decision(151, 92, site) is True


@pytest.mark.parametrize(("systolic", "diastolic"), [(90, 90), (80, 90), (49, 30), (120, 201), (True, 80)])
def test_predose_bp_must_be_plausible(systolic: int, diastolic: int) -> None:
    with pytest.raises(ValueError):
        predose_bp_needs_decision(systolic, diastolic, S)


def test_predose_bp_decision_rules() -> None:
    proceed = BloodPressureDecision(proceed=True, reason="white-coat pattern, 135/85 at home all week")
    hold = BloodPressureDecision(proceed=False, reason="recheck after 15 minutes of rest first")
    assert predose_bp_allows_dosing(130, 85, None, S) is True
    assert predose_bp_allows_dosing(150, 95, None, S) is False
    assert predose_bp_allows_dosing(150, 95, proceed, S) is True
    assert predose_bp_allows_dosing(150, 95, hold, S) is False
    with pytest.raises(OverrideNotNeeded):
        predose_bp_allows_dosing(130, 85, proceed, S)


# --- weekly cap and double booking ---

MON = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_third_session_in_one_iso_week_exceeds_the_cap() -> None:
    assert exceeds_weekly_cap([MON], MON + timedelta(days=2), S) is False  # the 2nd
    assert exceeds_weekly_cap([MON, MON + timedelta(days=2)], MON + timedelta(days=4), S) is True  # the 3rd


def test_sessions_in_the_week_before_do_not_count() -> None:
    last_week = [MON - timedelta(days=3), MON - timedelta(days=2)]  # Friday and Saturday
    assert exceeds_weekly_cap(last_week, MON, S) is False


def test_sunday_ends_the_iso_week() -> None:
    week = [MON, MON + timedelta(days=1)]
    assert exceeds_weekly_cap(week, MON + timedelta(days=6, hours=10), S) is True  # Sunday evening
    assert exceeds_weekly_cap(week, MON + timedelta(days=7), S) is False  # next Monday


def test_iso_week_spans_new_year() -> None:
    # 1 January 2026 is a Thursday: ISO week 1 of 2026 starts on Monday 29 December 2025.
    existing = [datetime(2025, 12, 29, 9, tzinfo=UTC), datetime(2025, 12, 30, 9, tzinfo=UTC)]
    assert exceeds_weekly_cap(existing, datetime(2026, 1, 2, 9, tzinfo=UTC), S) is True
    assert exceeds_weekly_cap(existing, datetime(2026, 1, 5, 9, tzinfo=UTC), S) is False


def test_weekly_cap_is_a_site_setting() -> None:
    site = SessionRuleSettings(weekly_session_cap=3)
    assert exceeds_weekly_cap([MON, MON + timedelta(days=2)], MON + timedelta(days=4), site) is False


def test_booking_above_the_cap_needs_an_override() -> None:
    week = [MON, MON + timedelta(days=2)]
    friday = MON + timedelta(days=4)
    override = ScheduleOverride(reason="missed Tuesday for a family emergency")
    assert booking_allowed(week, friday, None, S) is False
    assert booking_allowed(week, friday, override, S) is True
    assert booking_allowed([MON], friday, None, S) is True
    with pytest.raises(OverrideNotNeeded):
        booking_allowed([MON], friday, override, S)


@pytest.mark.parametrize(
    ("b_start", "b_end", "clash"),
    [
        (11, 12, False),  # back-to-back after
        (8, 9, False),  # back-to-back before
        (10, 11.5, True),  # starts inside
        (8.5, 9.5, True),  # ends inside
        (9.25, 9.75, True),  # contained
        (8, 12, True),  # contains
        (9, 11, True),  # identical
        (13, 14, False),  # apart
    ],
)
def test_overlaps_end_exclusive(b_start: float, b_end: float, clash: bool) -> None:
    def at(hour: float) -> datetime:
        return datetime(2026, 3, 2, tzinfo=UTC) + timedelta(hours=hour)

    assert overlaps(at(9), at(11), at(b_start), at(b_end)) is clash
    assert overlaps(at(b_start), at(b_end), at(9), at(11)) is clash


def test_overlaps_refuses_a_booking_that_does_not_end_after_it_starts() -> None:
    with pytest.raises(ValueError, match="end after it starts"):
        overlaps(MON, MON, MON, MON + minutes(60))


# --- vitals readings: plausibility ---


@pytest.mark.parametrize(
    ("measures", "valid"),
    [
        ({"spo2_percent": 97}, True),
        ({"heart_rate_bpm": 70}, True),
        ({}, False),
        ({"systolic_mmhg": 120}, False),
        ({"diastolic_mmhg": 80}, False),
        ({"systolic_mmhg": 80, "diastolic_mmhg": 80}, False),
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


def test_vitals_reading_time_must_carry_its_time_zone() -> None:
    with pytest.raises(ValidationError):
        VitalsReading(taken_at=datetime(2026, 3, 4, 10, 0), spo2_percent=97)


# --- vitals alerts: every threshold at, above and below ---


@pytest.mark.parametrize(
    ("measures", "code"),
    [
        ({"systolic_mmhg": 179, "diastolic_mmhg": 90}, None),
        ({"systolic_mmhg": 180, "diastolic_mmhg": 90}, VitalsAlertCode.systolic_high),
        ({"systolic_mmhg": 181, "diastolic_mmhg": 90}, VitalsAlertCode.systolic_high),
        ({"systolic_mmhg": 150, "diastolic_mmhg": 109}, None),
        ({"systolic_mmhg": 150, "diastolic_mmhg": 110}, VitalsAlertCode.diastolic_high),
        ({"systolic_mmhg": 150, "diastolic_mmhg": 111}, VitalsAlertCode.diastolic_high),
        ({"spo2_percent": 93}, None),
        ({"spo2_percent": 92}, None),
        ({"spo2_percent": 91}, VitalsAlertCode.spo2_low),
        ({"heart_rate_bpm": 51}, None),
        ({"heart_rate_bpm": 50}, None),
        ({"heart_rate_bpm": 49}, VitalsAlertCode.heart_rate_low),
        ({"heart_rate_bpm": 119}, None),
        ({"heart_rate_bpm": 120}, None),
        ({"heart_rate_bpm": 121}, VitalsAlertCode.heart_rate_high),
    ],
)
def test_vitals_alert_thresholds(measures: dict[str, int], code: VitalsAlertCode | None) -> None:
    alerts = vitals_alerts(reading(**measures), S)
    assert [a.code for a in alerts] == ([] if code is None else [code])


def test_alert_message_has_the_value_and_the_threshold() -> None:
    (alert,) = vitals_alerts(reading(spo2_percent=89), S)
    assert (alert.value, alert.threshold) == (89, 92)
    assert alert.message == "SpO2 89 % is below the alert threshold of 92 %"
    (alert,) = vitals_alerts(reading(systolic_mmhg=184, diastolic_mmhg=100), S)
    assert alert.message == "systolic 184 mmHg is at or above the alert threshold of 180 mmHg"


def test_every_alert_is_listed_in_a_fixed_order() -> None:
    bad = reading(systolic_mmhg=190, diastolic_mmhg=115, heart_rate_bpm=130, spo2_percent=88)
    assert [a.code for a in vitals_alerts(bad, S)] == [
        VitalsAlertCode.systolic_high,
        VitalsAlertCode.diastolic_high,
        VitalsAlertCode.spo2_low,
        VitalsAlertCode.heart_rate_high,
    ]


def test_alert_thresholds_are_site_settings() -> None:
    site = SessionRuleSettings(alert_spo2_below_percent=94, alert_heart_rate_above_bpm=110)
    assert [a.code for a in vitals_alerts(reading(spo2_percent=93, heart_rate_bpm=111), site)] == [
        VitalsAlertCode.spo2_low,
        VitalsAlertCode.heart_rate_high,
    ]


# --- monitoring schedule ---


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
    assert monitoring_gaps(DOSE, readings, DOSE + minutes(50), S) == [
        "no pre-dose blood pressure recorded in the 60 minutes before the dose"
    ]
    # a pre-dose reading without a blood pressure does not do
    assert monitoring_gaps(DOSE, [hr(DOSE - minutes(5)), *readings], DOSE + minutes(50), S) == [
        "no pre-dose blood pressure recorded in the 60 minutes before the dose"
    ]


@pytest.mark.parametrize(("before", "found"), [(60, True), (61, False), (0, True)])
def test_predose_window(before: int, found: bool) -> None:
    readings = [bp(DOSE - minutes(before)), *complete_timeline()[1:]]
    gaps = monitoring_gaps(DOSE, readings, DOSE + minutes(50), S)
    assert (gaps == []) is found


def test_a_gap_of_exactly_15_minutes_is_on_time_and_16_is_not() -> None:
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
    readings = [bp(DOSE - minutes(5)), *(hr(DOSE + minutes(m)) for m in (10, 20, 30, 40, 50))]
    assert monitoring_gaps(DOSE, readings, DOSE + minutes(50), S) == []
    assert monitoring_gaps(DOSE, readings, DOSE + minutes(51), S) == [
        "no blood pressure recorded 35-50 minutes after the dose (due at about 40 minutes)"
    ]


@pytest.mark.parametrize(("at", "counts"), [(34, False), (35, True), (40, True), (50, True), (51, False)])
def test_bp_window_is_35_to_50_minutes(at: int, counts: bool) -> None:
    others = (10, 20, 30, 45, 55, 60)
    readings = [bp(DOSE - minutes(5)), bp(DOSE + minutes(at)), *(hr(DOSE + minutes(m)) for m in others)]
    gaps = monitoring_gaps(DOSE, readings, DOSE + minutes(60), S)
    assert (gaps == []) is counts


def test_readings_after_now_and_times_before_the_dose() -> None:
    assert monitoring_gaps(DOSE, [], DOSE - minutes(1), S) == []
    future = [*complete_timeline(), hr(DOSE + minutes(120))]
    assert monitoring_gaps(DOSE, future, DOSE + minutes(55), S) == []


# --- discharge ---

OBSERVATION = [
    (Route.intranasal_esketamine, 120),
    (Route.iv_infusion, 60),
    (Route.intramuscular, 60),
    (Route.subcutaneous, 60),
    (Route.sublingual_oral, 60),
]


def discharge(route: Route, after: timedelta, **changes: Any) -> list[str]:
    now = DOSE + after
    arguments: dict[str, Any] = {
        "last_administration_end": DOSE,
        "now": now,
        "last_reading": normal(now - minutes(5)),
        "escort_present": True,
        "settings": S,
        **changes,
    }
    result = discharge_check(route, **arguments)
    assert result.allowed is (result.unmet == [])
    return result.unmet


@pytest.mark.parametrize(("route", "minimum"), OBSERVATION)
def test_observation_minimum_reached_exactly(route: Route, minimum: int) -> None:
    assert discharge(route, minutes(minimum)) == []


@pytest.mark.parametrize(("route", "minimum"), OBSERVATION)
def test_observation_one_minute_short(route: Route, minimum: int) -> None:
    (unmet,) = discharge(route, minutes(minimum - 1))
    assert unmet.startswith("observation not complete") and "(1 min to go)" in unmet


def test_observation_message_reads_for_a_nurse() -> None:
    assert discharge(Route.intranasal_esketamine, minutes(119)) == [
        "observation not complete: 1 h 59 min of the 2 h minimum after the last esketamine device (1 min to go)"
    ]
    assert discharge(Route.iv_infusion, minutes(45)) == [
        "observation not complete: 45 min of the 1 h minimum after the end of the infusion (15 min to go)"
    ]


def test_iv_observation_counts_from_the_end_of_the_infusion() -> None:
    # Started at DOSE, ran 40 minutes: 60 minutes after the start is not 60 minutes after the end.
    end = DOSE + minutes(40)
    now = DOSE + minutes(99)
    result = discharge_check(
        Route.iv_infusion,
        last_administration_end=end,
        now=now,
        last_reading=normal(now),
        escort_present=True,
        settings=S,
    )
    assert not result.allowed
    assert discharge_check(
        Route.iv_infusion,
        last_administration_end=end,
        now=now + minutes(1),
        last_reading=normal(now),
        escort_present=True,
        settings=S,
    ).allowed


def test_escort_absent() -> None:
    assert discharge(Route.intramuscular, minutes(90), escort_present=False) == [
        "no escort present: the patient must leave with a responsible adult and must not drive"
    ]


def test_vitals_not_back() -> None:
    now = DOSE + minutes(130)
    high = reading(now, systolic_mmhg=182, diastolic_mmhg=100, heart_rate_bpm=88)
    assert discharge(Route.intranasal_esketamine, minutes(130), last_reading=high) == [
        "vital signs not back within limits: systolic 182 mmHg is at or above the alert threshold of 180 mmHg"
    ]


def test_last_reading_must_include_a_bp() -> None:
    now = DOSE + minutes(90)
    assert discharge(Route.subcutaneous, minutes(90), last_reading=hr(now)) == [
        "the last vital signs have no blood pressure: take a blood pressure"
    ]


def test_no_reading_at_all() -> None:
    assert discharge(Route.sublingual_oral, minutes(90), last_reading=None) == [
        "no vital signs recorded: take a full set including blood pressure"
    ]


def test_last_reading_must_be_recent() -> None:
    now = DOSE + minutes(90)
    assert discharge(Route.subcutaneous, minutes(90), last_reading=normal(now - minutes(15))) == []
    assert discharge(Route.subcutaneous, minutes(90), last_reading=normal(now - minutes(16))) == [
        "the last vital signs are 16 min old: take a new set including blood pressure "
        "(at most 15 minutes old at discharge)"
    ]


def test_every_unmet_criterion_is_listed() -> None:
    now = DOSE + minutes(30)
    unmet = discharge(
        Route.intranasal_esketamine,
        minutes(30),
        last_reading=reading(now, spo2_percent=90),
        escort_present=False,
    )
    assert [u.split(":")[0] for u in unmet] == [
        "observation not complete",
        "the last vital signs have no blood pressure",
        "vital signs not back within limits",
        "no escort present",
    ]


def test_sedation_when_given_must_have_resolved() -> None:
    after = minutes(125)
    assert discharge(Route.intranasal_esketamine, after, sedation=SedationLevel.responds_readily) == []
    assert discharge(Route.intranasal_esketamine, after, sedation=SedationLevel.lethargic) == [
        "still sedated (MOAA/S 4 of 5): wait until the patient responds readily to their name"
    ]


# --- sedation (MOAA/S) ---


def test_moaas_levels_and_scores() -> None:
    assert [MOAAS_SCORE[level] for level in SedationLevel] == [5, 4, 3, 2, 1, 0]
    assert all(sedation_level(MOAAS_SCORE[level]) is level for level in SedationLevel)


@pytest.mark.parametrize("bad", [6, -1, True])
def test_moaas_score_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError, match="MOAA/S"):
        sedation_level(bad)


def test_sedation_is_anything_below_fully_alert() -> None:
    assert not is_sedated(SedationLevel.responds_readily)
    assert is_sedated(SedationLevel.lethargic)
    assert sedation_observed([SedationLevel.responds_readily, SedationLevel.lethargic]) is True
    assert sedation_observed([SedationLevel.responds_readily] * 3) is False
    assert sedation_observed([]) is False


# --- CADSS ---


def test_cadss_total_is_the_subjective_items() -> None:
    assert score_cadss([0] * 23).total == 0
    full = score_cadss([4] * 23, [4] * 5)
    assert (full.total, full.observer_total, full.version) == (92, 20, CADSS_VERSION)
    assert CADSS_VERSION == "CADSS (Bremner et al. 1998)"


def test_cadss_observer_items_are_optional_and_kept_apart() -> None:
    answers = [1] * 10 + [2] * 13
    without = score_cadss(answers)
    assert (without.total, without.observer_total, without.observer_answers) == (36, None, None)
    with_observer = score_cadss(answers, [3, 0, 1, 0, 2])
    assert (with_observer.total, with_observer.observer_total) == (36, 6)


@pytest.mark.parametrize(("value", "says"), [(5, "item 5: 5 is out of range 0-4"), (-1, "item 5: -1 is out of")])
def test_cadss_item_out_of_range_names_the_item(value: int, says: str) -> None:
    answers = [0] * 23
    answers[4] = value
    with pytest.raises(CadssAnswerError, match=says) as caught:
        score_cadss(answers)
    assert (caught.value.item, caught.value.part) == (5, CadssPart.subjective)


def test_cadss_observer_item_out_of_range_names_the_observer_item() -> None:
    with pytest.raises(CadssAnswerError, match="observer item 3: 7 is out of range 0-4") as caught:
        score_cadss([0] * 23, [0, 0, 7, 0, 0])
    assert (caught.value.item, caught.value.part) == (3, CadssPart.observer)


@pytest.mark.parametrize(
    ("subjective", "observer"),
    [
        ([0] * 22, None),
        ([0] * 24, None),
        ([0] * 23, [0] * 4),
        ("0" * 23, None),
        ([0] * 22 + [True], None),
        ([0] * 22 + [2.5], None),
    ],
)
def test_cadss_malformed_answers(subjective: Any, observer: Any) -> None:
    with pytest.raises(CadssAnswerError):
        score_cadss(subjective, observer)


# --- adverse events ---

NO_CRITERIA = {
    "resulted_in_death": False,
    "life_threatening": False,
    "hospitalisation": False,
    "persistent_disability": False,
    "congenital_anomaly": False,
    "important_medical_event": False,
}


def event(**changes: Any) -> AdverseEvent:
    return AdverseEvent.model_validate(
        {"type": "nausea", "severity": "mild", **NO_CRITERIA, **changes},
    )


def test_severe_is_not_serious_by_itself() -> None:
    assert is_serious(event(severity="severe")) is False
    assert is_serious(event()) is False


@pytest.mark.parametrize(
    "criterion", ["life_threatening", "hospitalisation", "persistent_disability", "congenital_anomaly"]
)
def test_each_criterion_alone_makes_it_serious(criterion: str) -> None:
    severity = "life_threatening" if criterion == "life_threatening" else "moderate"
    assert is_serious(event(severity=severity, **{criterion: True})) is True


def test_important_medical_event_is_serious_at_any_severity() -> None:
    assert is_serious(event(type="hypertension", severity="mild", important_medical_event=True)) is True


def test_death_is_serious_and_grade_5() -> None:
    death = event(type="respiratory_depression", severity="death", resulted_in_death=True, life_threatening=True)
    assert is_serious(death) is True
    assert CTCAE_GRADE[death.severity] == 5


def test_ctcae_grades() -> None:
    assert [CTCAE_GRADE[s] for s in AdverseEventSeverity] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "changes",
    [
        {"type": "other"},
        {"type": "other", "description": "   "},
        {"severity": "death"},
        {"severity": "severe", "resulted_in_death": True},
        {"severity": "life_threatening"},
        {"type": "seizure"},
    ],
)
def test_inconsistent_adverse_events_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        event(**changes)


def test_other_with_a_description_is_accepted() -> None:
    assert event(type="other", description="headache").type is AdverseEventType.other


def test_no_criterion_has_a_default() -> None:
    with pytest.raises(ValidationError):
        AdverseEvent.model_validate({"type": "nausea", "severity": "mild"})


# --- REMS patient monitoring form ---

SESSION_END = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


def test_rems_deadline_is_7_days_after_the_session() -> None:
    assert rems_form_deadline(SESSION_END) == date(2026, 3, 9)


@pytest.mark.parametrize(
    ("now", "status"),
    [
        (SESSION_END, RemsStatus.due),
        (datetime(2026, 3, 9, 23, 59, tzinfo=UTC), RemsStatus.due),  # day 7
        (datetime(2026, 3, 10, 0, 0, tzinfo=UTC), RemsStatus.overdue),  # day 8
    ],
)
def test_rems_day_7_is_due_and_day_8_overdue(now: datetime, status: RemsStatus) -> None:
    assert rems_form_due(SESSION_END, False, now) is status


def test_submitted_is_submitted_even_late() -> None:
    assert rems_form_due(SESSION_END, True, datetime(2026, 4, 1, tzinfo=UTC)) is RemsStatus.submitted


def test_rems_with_dates() -> None:
    assert rems_form_due(date(2026, 3, 2), False, date(2026, 3, 9)) is RemsStatus.due
    assert rems_form_due(date(2026, 3, 2), False, date(2026, 3, 10)) is RemsStatus.overdue


def test_rems_days_are_counted_on_the_sessions_clock() -> None:
    eastern = timezone(timedelta(hours=-5))
    session_end = datetime(2026, 3, 2, 23, 30, tzinfo=eastern)
    # 03:00 UTC on 10 March is still 9 March (day 7) at the clinic.
    assert rems_form_due(session_end, False, datetime(2026, 3, 10, 3, 0, tzinfo=UTC)) is RemsStatus.due
    assert rems_form_due(session_end, False, datetime(2026, 3, 10, 5, 0, tzinfo=UTC)) is RemsStatus.overdue
