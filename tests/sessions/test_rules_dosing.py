"""Dosing rules: the dose from the weight, each route's range and hard ceiling, esketamine's devices and first dose,
the infusion's duration, the weight itself, and the interval between dosing sessions. Pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.sessions.domain.dosing import (
    KG_PER_LB,
    BodyWeight,
    DoseBasis,
    DoseCheck,
    DoseNotAllowed,
    RecordedWeight,
    WeightUnit,
    calculate_dose,
    check_device_times,
    check_dose,
    dose_allowed,
    esketamine_doses,
    fixed_dose,
    infusion_duration_problems,
    too_soon_after,
    weight_change_needs_confirmation,
)
from services.sessions.domain.overrides import DoseOverride, OverrideNotNeeded
from services.sessions.domain.settings import (
    DEFAULT_SETTINGS,
    DoseRange,
    EsketamineLabel,
    MinutesRange,
    SessionRuleSettings,
)
from shared.instants import age_on
from shared.treatment import Indication, Route

S = DEFAULT_SETTINGS
EU = SessionRuleSettings(esketamine_label=EsketamineLabel.eu)
DOSE = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday
OVERRIDE = DoseOverride(reason="partial response at 0.75 mg/kg; titrating per protocol")


def dose_check(
    route: Route,
    dose_mg: float,
    *,
    weight_kg: float = 70,
    age: int = 40,
    first: bool = False,
    settings: SessionRuleSettings = S,
) -> DoseCheck:
    return check_dose(route, dose_mg=dose_mg, weight_kg=weight_kg, age_years=age, first_dose=first, settings=settings)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_routes_and_indications_are_the_stable_codes() -> None:
    # Stored and sent in events: the rules key on these codes, so they never change.
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


# --- the dose from the weight ---


def test_weight_based_dose_is_weight_times_mg_per_kg() -> None:
    # [Sanacora 2017]: 0.5 mg/kg; 35 mg for 70 kg.
    calc = calculate_dose(Route.iv_infusion, 70, 0.5)
    assert (calc.dose_mg, calc.mg_per_kg, calc.basis, calc.weight_kg) == (35.0, 0.5, DoseBasis.per_kg, 70)


@pytest.mark.parametrize(
    ("route", "weight", "mg_per_kg", "dose"),
    [
        (Route.iv_infusion, 73.3, 0.75, 55.0),  # 54.975
        (Route.intramuscular, 81.5, 0.25, 20.4),  # 20.375
        (Route.subcutaneous, 66.1, 0.5, 33.1),  # 33.05: exact decimals, so the half is a half and rounds up
        (Route.subcutaneous, 66.1, 0.9, 59.5),  # 59.49
    ],
)
def test_dose_is_rounded_to_a_tenth_of_a_mg_half_up(route: Route, weight: float, mg_per_kg: float, dose: float) -> None:
    calc = calculate_dose(route, weight, mg_per_kg)
    assert (calc.dose_mg, calc.mg_per_kg) == (dose, mg_per_kg)


@pytest.mark.parametrize("route", [Route.sublingual_oral, Route.intranasal_esketamine])
def test_fixed_routes_are_not_calculated_per_kg(route: Route) -> None:
    with pytest.raises(ValueError, match="give dose_mg"):
        calculate_dose(route, 70, 0.5)


def test_fixed_dose_reports_a_derived_mg_per_kg() -> None:
    calc = fixed_dose(Route.sublingual_oral, 80, 200)
    assert (calc.dose_mg, calc.mg_per_kg, calc.basis) == (200, 2.5, DoseBasis.fixed)
    assert fixed_dose(Route.intranasal_esketamine, 70, 56).mg_per_kg == 0.8
    assert fixed_dose(Route.sublingual_oral, 70, 100).mg_per_kg == 1.429  # to 0.001
    with pytest.raises(ValueError, match="give mg_per_kg"):
        fixed_dose(Route.iv_infusion, 70, 35)


@pytest.mark.parametrize(("weight", "valid"), [(24.9, False), (25, True), (350, True), (350.1, False)])
def test_weight_must_be_plausible(weight: float, valid: bool) -> None:
    if valid:
        calculate_dose(Route.iv_infusion, weight, 0.5)
        dose_check(Route.sublingual_oral, 100, weight_kg=weight)
        RecordedWeight(kg=weight, weighed_at=DOSE)
    else:
        with pytest.raises(ValidationError):
            calculate_dose(Route.iv_infusion, weight, 0.5)
        with pytest.raises(ValidationError):
            dose_check(Route.sublingual_oral, 100, weight_kg=weight)
        with pytest.raises(ValidationError):
            RecordedWeight(kg=weight, weighed_at=DOSE)


@pytest.mark.parametrize("bad", [0, -0.5, float("nan"), float("inf"), True, "0.5"])
def test_mg_per_kg_must_be_a_positive_number(bad: Any) -> None:
    with pytest.raises(ValidationError):
        calculate_dose(Route.iv_infusion, 70, bad)


def test_dose_age_and_route_are_validated() -> None:
    with pytest.raises(ValidationError):
        dose_check(Route.iv_infusion, 0)
    with pytest.raises(ValidationError):
        dose_check(Route.iv_infusion, 35, age=131)
    with pytest.raises(ValidationError):
        dose_check("oral", 35)  # type: ignore[arg-type]
    # A route's stored code is accepted, as it comes back from the database.
    assert dose_check("iv_infusion", 35).within_range  # type: ignore[arg-type]


# --- weight: units and changes ---


@pytest.mark.parametrize(
    ("pounds", "kg"),
    [
        (176, 79.8),  # 79.83225712
        (1, 0.5),  # 0.45359237
        (100, 45.4),  # 45.359237
        (220, 99.8),  # 99.7903214
        (154.32, 70.0),  # 69.9983745384
    ],
)
def test_pounds_are_converted_exactly_to_a_tenth_of_a_kg(pounds: float, kg: float) -> None:
    # The international pound is exactly 0.45359237 kg (International Yard and Pound Agreement, 1959).
    assert KG_PER_LB == Decimal("0.45359237")
    assert BodyWeight(value=pounds, unit=WeightUnit.lb).kg == kg


def test_kilograms_are_kept_as_given_and_pounds_dose_on_the_converted_weight() -> None:
    assert BodyWeight(value=79.83, unit=WeightUnit.kg).kg == 79.83
    # 176 lb is 79.8 kg, so 0.5 mg/kg is 39.9 mg; 176 read as kg would be 88 mg.
    assert calculate_dose(Route.iv_infusion, BodyWeight(value=176, unit=WeightUnit.lb).kg, 0.5).dose_mg == 39.9


@pytest.mark.parametrize(
    "bad", [{"value": 70, "unit": "stone"}, {"value": 0, "unit": "kg"}, {"value": 801, "unit": "lb"}]
)
def test_a_weight_says_its_unit_and_is_plausible(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BodyWeight.model_validate(bad)
    with pytest.raises(ValidationError):
        BodyWeight.model_validate({"value": 70})


@pytest.mark.parametrize(
    ("weight", "previous", "confirm"),
    [
        (80, None, False),  # nothing to compare with
        (77, 70, False),  # exactly 10 % more does not ask
        (77.1, 70, True),
        (63, 70, False),  # exactly 10 % less does not ask
        (62.9, 70, True),
        (79.53, 72.3, False),  # exactly 10 %, where binary floats would make it 10.0000000000001 %
        (159, 70, True),  # pounds typed as kilograms
    ],
)
def test_a_weight_more_than_10_percent_from_the_last_is_confirmed(
    weight: float, previous: float | None, confirm: bool
) -> None:
    assert weight_change_needs_confirmation(weight, previous, S) is confirm


def test_the_weight_change_share_is_a_site_setting() -> None:
    site = SessionRuleSettings(weight_change_confirm_percent=5)
    assert weight_change_needs_confirmation(73.5, 70, site) is False
    assert weight_change_needs_confirmation(73.6, 70, site) is True


# --- ranges and ceilings: every boundary ---


@pytest.mark.parametrize(
    ("route", "mg_per_kg", "says"),
    [
        # [Andrade 2017] IV 0.1-0.75 mg/kg
        (Route.iv_infusion, 0.75, None),
        (Route.iv_infusion, 0.76, "above the IV maximum of 0.75 mg/kg"),
        (Route.iv_infusion, 0.1, None),
        (Route.iv_infusion, 0.09, "below the IV minimum of 0.1 mg/kg"),
        # [Chilukuri 2014] IM 0.25 and 0.5 mg/kg
        (Route.intramuscular, 0.25, None),
        (Route.intramuscular, 0.24, "below the IM minimum of 0.25 mg/kg"),
        (Route.intramuscular, 0.5, None),
        (Route.intramuscular, 0.51, "above the IM maximum of 0.5 mg/kg"),
        # [Loo 2023] SC 0.5-0.9 mg/kg
        (Route.subcutaneous, 0.5, None),
        (Route.subcutaneous, 0.49, "below the subcutaneous minimum of 0.5 mg/kg"),
        (Route.subcutaneous, 0.9, None),
        (Route.subcutaneous, 0.91, "above the subcutaneous maximum of 0.9 mg/kg"),
    ],
)
def test_weight_based_ranges_at_each_end(route: Route, mg_per_kg: float, says: str | None) -> None:
    check = dose_check(route, calculate_dose(route, 70, mg_per_kg).dose_mg)
    assert check.refusals == []
    assert check.within_range is (says is None)
    assert check.overridable
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
    ceiling = S.dose_ceiling(route)
    assert dose_check(route, calculate_dose(route, weight, ceiling).dose_mg, weight_kg=weight).overridable


@pytest.mark.parametrize(
    ("dose", "says"),
    [
        # [Al Shirawi 2017] starts at 50 mg; [Andrade 2019] up to 300 mg.
        (50, None),
        (49.9, "49.9 mg is below the sublingual/oral minimum of 50 mg"),
        (300, None),
    ],
)
def test_sublingual_oral_fixed_range(dose: float, says: str | None) -> None:
    check = dose_check(Route.sublingual_oral, dose)
    assert check.problems == ([] if says is None else [says])
    assert check.refusals == []


@pytest.mark.parametrize(
    ("route", "at_ceiling_mg", "above_mg"),
    [
        # [Fava 2018]: 1.0 mg/kg IV, the highest dose studied: 70 mg for 70 kg.
        (Route.iv_infusion, 70, 70.1),
        # Clinic policy: IM ceiling 0.75 mg/kg (52.5 mg for 70 kg), below the 1.0 mg/kg limit.
        (Route.intramuscular, 52.5, 52.6),
        # [Loo 2023] SC up to 0.9 mg/kg; ceiling 1.0 mg/kg.
        (Route.subcutaneous, 70, 70.1),
        # [Andrade 2019]: nothing above 300 mg is published; the range's maximum is also the ceiling.
        (Route.sublingual_oral, 300, 300.1),
        # [Spravato PI]: 84 mg, the label's highest dose.
        (Route.intranasal_esketamine, 84, 112),
    ],
)
def test_above_the_hard_ceiling_is_a_refusal_no_override_passes(
    route: Route, at_ceiling_mg: float, above_mg: float
) -> None:
    at = dose_check(route, at_ceiling_mg)
    assert at.refusals == [] and at.overridable
    above = dose_check(route, above_mg)
    assert len(above.refusals) == 1 and "no override passes" in above.refusals[0]
    assert above.problems == [] and not above.within_range and not above.overridable
    with pytest.raises(DoseNotAllowed, match="no override can accept this"):
        dose_allowed(above.problems, above.refusals, OVERRIDE)


def test_ceiling_refusal_names_the_dose_and_the_source_limit() -> None:
    assert dose_check(Route.iv_infusion, 70.1).refusals == [
        "1.001 mg/kg (70.1 mg for 70 kg) is above the IV ceiling of 1 mg/kg, which no override passes"
    ]
    assert dose_check(Route.sublingual_oral, 300.1).refusals == [
        "300.1 mg is above the sublingual/oral ceiling of 300 mg, which no override passes"
    ]
    assert dose_check(Route.intranasal_esketamine, 112).refusals == [
        "112 mg is above the esketamine maximum of 84 mg, which no override passes"
    ]


def test_a_site_range_and_ceiling_replace_the_defaults() -> None:
    wide = SessionRuleSettings(iv_mg_per_kg=DoseRange(minimum=0.1, maximum=1.0))
    assert dose_check(Route.iv_infusion, 63, settings=wide).within_range
    low_ceiling = SessionRuleSettings(iv_ceiling_mg_per_kg=0.8)
    assert dose_check(Route.iv_infusion, 56, settings=low_ceiling).refusals == []  # 0.8 mg/kg: a problem only
    assert dose_check(Route.iv_infusion, 56.1, settings=low_ceiling).refusals != []


# --- overrides of doses ---


def test_dose_within_range_needs_no_override() -> None:
    check = dose_check(Route.iv_infusion, 35)
    dose_allowed(check.problems, check.refusals, None)
    with pytest.raises(OverrideNotNeeded):
        dose_allowed(check.problems, check.refusals, DoseOverride(reason="just in case, documented"))


def test_dose_outside_range_needs_an_override() -> None:
    check = dose_check(Route.iv_infusion, 63)
    with pytest.raises(DoseNotAllowed, match="a clinician may override with a reason"):
        dose_allowed(check.problems, check.refusals, None)
    dose_allowed(check.problems, check.refusals, OVERRIDE)


@pytest.mark.parametrize("reason", ["ok", "   too short   ", ""])
def test_override_reason_must_be_at_least_10_characters(reason: str) -> None:
    with pytest.raises(ValidationError):
        DoseOverride(reason=reason)


# --- esketamine: devices and the label's doses ---


@pytest.mark.parametrize(("dose", "devices"), [(56, 2), (84, 3)])
def test_esketamine_56_and_84_are_whole_devices(dose: int, devices: int) -> None:
    # [Spravato PI]: 28 mg a device; 56 or 84 mg a session.
    check = dose_check(Route.intranasal_esketamine, dose)
    assert check.within_range and check.devices == devices


@pytest.mark.parametrize("dose", [70, 42.5, 30])
def test_part_of_a_device_is_a_refusal(dose: float) -> None:
    check = dose_check(Route.intranasal_esketamine, dose)
    assert check.refusals == [f"{dose:g} mg is not a whole number of 28 mg devices"]
    assert check.devices is None and not check.overridable
    with pytest.raises(DoseNotAllowed):
        dose_allowed(check.problems, check.refusals, DoseOverride(reason="patient asked for a smaller dose"))


@pytest.mark.parametrize("age", [18, 64, 65, 80])
def test_us_label_first_dose_is_56_mg_at_every_age(age: int) -> None:
    # [Spravato PI]: 56 mg on day 1 for every adult; the US label has no age-based starting dose.
    assert dose_check(Route.intranasal_esketamine, 56, age=age, first=True).within_range
    check = dose_check(Route.intranasal_esketamine, 84, age=age, first=True)
    assert check.problems == ["this is the patient's first esketamine dose: the US label starts at 56 mg, not 84 mg"]
    assert check.overridable


def test_us_label_allows_28_mg_at_no_age() -> None:
    check = dose_check(Route.intranasal_esketamine, 28, age=70)
    assert check.problems == ["28 mg is not an allowed esketamine dose at age 70; allowed: 56 or 84 mg"]
    assert check.devices == 1
    first = dose_check(Route.intranasal_esketamine, 28, age=70, first=True)
    assert len(first.problems) == 2 and "US label starts at 56 mg, not 28 mg" in first.problems[1]


@pytest.mark.parametrize(
    ("age", "first", "dose", "says"),
    [
        # [Spravato SmPC] 4.2: 56 mg on day 1 under 65; 28 mg on day 1 from 65; then 28, 56 or 84 mg.
        (64, True, 56, None),
        (64, False, 28, "28 mg is not an allowed esketamine dose at age 64; allowed: 56 or 84 mg"),
        (64, False, 84, None),
        (65, True, 28, None),
        (65, True, 56, "this is the patient's first esketamine dose: the EU label starts at 28 mg, not 56 mg"),
        (65, True, 84, "this is the patient's first esketamine dose: the EU label starts at 28 mg, not 84 mg"),
        (65, False, 28, None),
        (65, False, 56, None),
        (70, False, 84, None),
    ],
)
def test_eu_label_first_dose_is_28_mg_from_65(age: int, first: bool, dose: int, says: str | None) -> None:
    check = dose_check(Route.intranasal_esketamine, dose, age=age, first=first, settings=EU)
    assert check.problems == ([] if says is None else [says])
    assert check.refusals == [] and check.first_dose is first


def test_esketamine_doses_by_label_and_age() -> None:
    assert esketamine_doses(70, S) == ((56, 84), 56)
    assert esketamine_doses(64, EU) == ((56, 84), 56)
    assert esketamine_doses(65, EU) == ((28, 56, 84), 28)


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(1961, 3, 4), date(2026, 3, 3), 64),
        (date(1961, 3, 4), date(2026, 3, 4), 65),  # 65 on the birthday: the EU label's 28 mg first dose applies
        (date(2000, 2, 29), date(2025, 2, 28), 24),
        (date(2000, 2, 29), date(2025, 3, 1), 25),  # a 29 February birthday turns on 1 March in a common year
        (date(2000, 2, 29), date(2024, 2, 29), 24),
    ],
)
def test_age_in_completed_years(born: date, on: date, age: int) -> None:
    assert age_on(born, on) == age


# --- esketamine device times ---


@pytest.mark.parametrize(
    ("dose", "offsets", "problems"),
    [
        # [Spravato PI]: wait 5 minutes after each device.
        (84, [minutes(0), minutes(5), minutes(10)], []),
        (28, [minutes(0)], []),
        (
            84,
            [minutes(0), timedelta(minutes=4, seconds=59), minutes(10)],
            ["device 2 was given 4 min 59 s after device 1; wait at least 5 minutes between devices"],
        ),
        (
            56,
            [minutes(5), minutes(0)],
            ["device 2 was given -5 min after device 1; wait at least 5 minutes between devices"],
        ),
        (84, [minutes(0), minutes(5)], ["84 mg is 3 devices: give 3 device times, not 2"]),
        (56, [minutes(0), minutes(5), minutes(10)], ["56 mg is 2 devices: give 2 device times, not 3"]),
    ],
)
def test_device_times(dose: int, offsets: list[timedelta], problems: list[str]) -> None:
    assert check_device_times(dose, [DOSE + offset for offset in offsets], S) == problems


def test_device_interval_is_a_site_setting() -> None:
    site = SessionRuleSettings(esketamine_device_interval_minutes=7)
    assert check_device_times(56, [DOSE, DOSE + minutes(7)], site) == []
    assert len(check_device_times(56, [DOSE, DOSE + minutes(6)], site)) == 1


# --- the infusion's duration ---


@pytest.mark.parametrize(
    ("ran", "says"),
    [
        # Clinic policy around [Sanacora 2017]'s 40 minutes: 30-60 minutes.
        (timedelta(minutes=29, seconds=59), "the infusion ran 29 min 59 s, under the site's minimum of 30 minutes"),
        (minutes(30), None),
        (minutes(40), None),
        (minutes(60), None),
        (timedelta(minutes=60, seconds=1), "the infusion ran 1 h 1 s, over the site's maximum of 60 minutes"),
        (minutes(61), "the infusion ran 1 h 1 min, over the site's maximum of 60 minutes"),
    ],
)
def test_infusion_duration_range(ran: timedelta, says: str | None) -> None:
    assert infusion_duration_problems(DOSE, DOSE + ran, S) == ([] if says is None else [says])


@pytest.mark.parametrize("ran", [minutes(0), minutes(-5)])
def test_an_infusion_ending_at_or_before_its_start_is_a_recording_error(ran: timedelta) -> None:
    with pytest.raises(ValueError, match="cannot end"):
        infusion_duration_problems(DOSE, DOSE + ran, S)


def test_infusion_duration_is_a_site_setting() -> None:
    site = SessionRuleSettings(iv_infusion_minutes=MinutesRange(minimum=20, maximum=90))
    assert infusion_duration_problems(DOSE, DOSE + minutes(20), site) == []
    assert infusion_duration_problems(DOSE, DOSE + minutes(90), site) == []
    assert infusion_duration_problems(DOSE, DOSE + minutes(91), site) != []


# --- the interval between dosing sessions ---


@pytest.mark.parametrize(
    ("other", "too_soon"),
    [
        # Clinic policy from [Singh 2016] (Monday, Wednesday, Friday): at least 44 hours apart.
        (DOSE - timedelta(hours=44), False),
        (DOSE - timedelta(hours=43, minutes=59), True),
        (DOSE + timedelta(hours=43, minutes=59), True),  # a session already booked after: either direction
        (DOSE + timedelta(hours=44), False),
        (DOSE - timedelta(days=7), False),
        (DOSE, True),
    ],
)
def test_minimum_interval_between_dosing_sessions(other: datetime, too_soon: bool) -> None:
    assert bool(too_soon_after([other], DOSE, S)) is too_soon


def test_interval_message_names_each_close_session() -> None:
    earlier = DOSE - timedelta(hours=24)
    later = DOSE + timedelta(hours=43, minutes=59)
    far = DOSE - timedelta(days=3)
    assert too_soon_after([later, far, earlier], DOSE, S) == [
        "another dosing session is 24 h away (2026-03-03 10:00 UTC); the site keeps at least 44 hours between "
        "dosing sessions",
        "another dosing session is 43 h 59 min away (2026-03-06 05:59 UTC); the site keeps at least 44 hours "
        "between dosing sessions",
    ]


def test_interval_is_a_site_setting() -> None:
    site = SessionRuleSettings(min_hours_between_dosing_sessions=20)
    assert too_soon_after([DOSE - timedelta(hours=20)], DOSE, site) == []
    assert too_soon_after([DOSE - timedelta(hours=19)], DOSE, site) != []


def test_interval_message_gives_the_other_session_in_utc() -> None:
    other = datetime(2026, 3, 3, 9, 0, tzinfo=ZoneInfo("America/New_York"))  # 14:00 UTC
    (message,) = too_soon_after([other], DOSE, S)
    assert "(2026-03-03 14:00 UTC)" in message
