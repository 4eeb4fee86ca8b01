"""Billing codes (services/billing/domain/codes.py): the date-versioned code table and the choice of charge lines.
Pure functions, no database, no broker. The source of each boundary is named beside it."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pydantic import ValidationError

from services.billing.domain.codes import (
    CODE_TABLE,
    INDICATION_DIAGNOSES,
    ChargeLine,
    CodeNotValidOn,
    CodeSystem,
    CodeTable,
    NotBillable,
    ServiceCode,
    UnknownCode,
    diagnosis_for,
    dosing_session_lines,
    infusion_additional_hours,
    intake_evaluation_lines,
    integration_session_lines,
    psychotherapy_code,
)
from shared.treatment import Indication, Route

# The esketamine drug code changes on 2026-01-01: S0013 until the day before, J0013 from it (HCPCS 2026 update).
LAST_S0013_DAY = date(2025, 12, 31)
FIRST_J0013_DAY = date(2026, 1, 1)
BOTH_SIDES = pytest.mark.parametrize("day", [LAST_S0013_DAY, FIRST_J0013_DAY], ids=["2025-12-31", "2026-01-01"])

Line = tuple[str, int, tuple[str, ...]]


def summary(lines: list[ChargeLine]) -> list[Line]:
    return [(line.code.code, line.units, line.modifiers) for line in lines]


# --- the table ------------------------------------------------------------------------------------------------


def test_every_code_has_a_source_a_unit_where_it_needs_one_and_is_listed_once() -> None:
    codes = [row.code for row in CODE_TABLE.codes]
    assert len(codes) == len(set(codes))
    for row in CODE_TABLE.codes:
        assert row.source
        assert (row.unit is None) == (row.system is CodeSystem.ICD10CM)


@pytest.mark.parametrize(
    ("code", "system", "valid_from", "valid_to", "add_on"),
    [
        # CMS HCPCS: G2082/G2083 from the CY2020 PFS final rule.
        ("G2082", CodeSystem.HCPCS, date(2020, 1, 1), None, False),
        ("G2083", CodeSystem.HCPCS, date(2020, 1, 1), None, False),
        # S0013 replaced by J0013 on 2026-01-01 (the issue; HCPCS 2026 update): each on its own dates.
        ("S0013", CodeSystem.HCPCS, date(2020, 1, 1), date(2025, 12, 31), False),
        ("J0013", CodeSystem.HCPCS, date(2026, 1, 1), None, False),
        ("J3490", CodeSystem.HCPCS, date(2020, 1, 1), None, False),
        # AMA CPT 2009 drug administration codes.
        ("96365", CodeSystem.CPT, date(2009, 1, 1), None, False),
        ("96366", CodeSystem.CPT, date(2009, 1, 1), None, True),
        ("96372", CodeSystem.CPT, date(2009, 1, 1), None, False),
        # AMA CPT 2021 E/M descriptor (medical decision making).
        ("99214", CodeSystem.CPT, date(2021, 1, 1), None, False),
        # AMA CPT 2013 psychiatry codes; the 9083x codes with an E/M are add-ons.
        ("90832", CodeSystem.CPT, date(2013, 1, 1), None, False),
        ("90834", CodeSystem.CPT, date(2013, 1, 1), None, False),
        ("90837", CodeSystem.CPT, date(2013, 1, 1), None, False),
        ("90833", CodeSystem.CPT, date(2013, 1, 1), None, True),
        ("90836", CodeSystem.CPT, date(2013, 1, 1), None, True),
        ("90838", CodeSystem.CPT, date(2013, 1, 1), None, True),
        ("90791", CodeSystem.CPT, date(2013, 1, 1), None, False),
        ("90792", CodeSystem.CPT, date(2013, 1, 1), None, False),
        # ICD-10-CM: US use from 2015-10-01 (FY2016); F42.2 added in FY2017.
        ("F32.9", CodeSystem.ICD10CM, date(2015, 10, 1), None, False),
        ("F33.9", CodeSystem.ICD10CM, date(2015, 10, 1), None, False),
        ("F41.1", CodeSystem.ICD10CM, date(2015, 10, 1), None, False),
        ("F43.10", CodeSystem.ICD10CM, date(2015, 10, 1), None, False),
        ("F42.2", CodeSystem.ICD10CM, date(2016, 10, 1), None, False),
        ("F19.20", CodeSystem.ICD10CM, date(2015, 10, 1), None, False),
    ],
)
def test_code_table_rows(code: str, system: CodeSystem, valid_from: date, valid_to: date | None, add_on: bool) -> None:
    row = CODE_TABLE.find(code)
    assert row is not None
    assert (row.system, row.valid_from, row.valid_to, row.add_on) == (system, valid_from, valid_to, add_on)


def test_esketamine_drug_codes_are_1_mg_units() -> None:
    for code in ("S0013", "J0013"):
        row = CODE_TABLE.find(code)
        assert row is not None
        assert (row.description, row.unit) == ("Esketamine, nasal spray, 1 mg", "1 mg")


@pytest.mark.parametrize(
    ("code", "day", "words"),
    [
        # S0013 ends 2025-12-31; the error names its dates and its successor.
        ("S0013", FIRST_J0013_DAY, ["S0013", "2026-01-01", "from 2020-01-01 to 2025-12-31", "replaced by J0013"]),
        # J0013 starts 2026-01-01.
        ("J0013", LAST_S0013_DAY, ["J0013", "2025-12-31", "from 2026-01-01 onward"]),
        # G2082 starts with the CY2020 PFS.
        ("G2082", date(2019, 12, 31), ["G2082", "2019-12-31", "from 2020-01-01 onward"]),
        # F42.2 was added in ICD-10-CM FY2017.
        ("F42.2", date(2016, 9, 30), ["F42.2", "2016-09-30", "from 2016-10-01 onward"]),
    ],
)
def test_a_code_outside_its_dates_is_refused_naming_its_dates(code: str, day: date, words: list[str]) -> None:
    with pytest.raises(CodeNotValidOn) as refused:
        CODE_TABLE.valid_on(code, day)
    for word in words:
        assert word in str(refused.value)
    assert (refused.value.code, refused.value.day) == (code, day)


@pytest.mark.parametrize(
    ("code", "day"),
    [
        ("S0013", LAST_S0013_DAY),  # last day (valid_to is inclusive)
        ("J0013", FIRST_J0013_DAY),  # first day
        ("G2082", date(2020, 1, 1)),
        ("+90833", FIRST_J0013_DAY),  # CPT prints add-ons with a "+"
        (" j0013 ", FIRST_J0013_DAY),
    ],
)
def test_a_code_on_its_own_dates_is_found(code: str, day: date) -> None:
    assert CODE_TABLE.valid_on(code, day).code == code.strip().upper().removeprefix("+")


def test_an_unknown_code_is_refused_by_name() -> None:
    assert CODE_TABLE.find("99999") is None
    with pytest.raises(UnknownCode, match="99999"):
        CODE_TABLE.valid_on("99999", FIRST_J0013_DAY)


def test_exactly_one_esketamine_drug_code_is_valid_on_each_day() -> None:
    for day, drug, other in ((LAST_S0013_DAY, "S0013", "J0013"), (FIRST_J0013_DAY, "J0013", "S0013")):
        assert CODE_TABLE.valid_on(drug, day).code == drug
        with pytest.raises(CodeNotValidOn):
            CODE_TABLE.valid_on(other, day)


def test_a_datetime_is_not_a_date_of_service() -> None:
    with pytest.raises(NotBillable, match="calendar date"):
        CODE_TABLE.valid_on("J0013", datetime(2026, 1, 1, 9, 0))


def test_the_table_refuses_a_duplicate_and_a_replacement_that_leaves_a_gap() -> None:
    row = CODE_TABLE.find("J0013")
    old = CODE_TABLE.find("S0013")
    assert row is not None and old is not None
    with pytest.raises(ValidationError, match="listed twice"):
        CodeTable(codes=(row, row))
    with pytest.raises(ValidationError, match="day after"):
        CodeTable(codes=(old.model_copy(update={"valid_to": date(2025, 12, 30)}), row))
    with pytest.raises(ValidationError, match="not shaped like"):
        ServiceCode(
            code="9036", system=CodeSystem.CPT, description="bad", valid_from=date(2020, 1, 1), unit="x", source="test"
        )


# --- psychotherapy time bands (AMA CPT: 16-37 -> 30-min code, 38-52 -> 45, 53+ -> 60; under 16 not reported) ---

PSYCHOTHERAPY_BANDS = [
    (15, None, None),  # under 16 minutes: not reported
    (16, "90832", "90833"),  # first minute of the 30-minute band
    (37, "90832", "90833"),  # last minute of the 30-minute band
    (38, "90834", "90836"),  # first minute of the 45-minute band
    (52, "90834", "90836"),  # last minute of the 45-minute band
    (53, "90837", "90838"),  # 60-minute band: 53 minutes or more
    (120, "90837", "90838"),  # no upper band
]


@pytest.mark.parametrize(("minutes", "standalone", "add_on"), PSYCHOTHERAPY_BANDS)
def test_psychotherapy_code_by_time(minutes: int, standalone: str | None, add_on: str | None) -> None:
    if standalone is None:
        with pytest.raises(NotBillable, match="16 minutes"):
            psychotherapy_code(minutes, with_em=False)
        return
    assert psychotherapy_code(minutes, with_em=False) == standalone
    assert psychotherapy_code(minutes, with_em=True) == add_on


@pytest.mark.parametrize(("minutes", "standalone", "add_on"), PSYCHOTHERAPY_BANDS)
@BOTH_SIDES
def test_integration_session_is_standalone_psychotherapy_by_time(
    minutes: int, standalone: str | None, add_on: str | None, day: date
) -> None:
    if standalone is None:
        with pytest.raises(NotBillable, match="not billable"):
            integration_session_lines(day, minutes)
        return
    assert summary(integration_session_lines(day, minutes)) == [(standalone, 1, ())]


@pytest.mark.parametrize("minutes", [0, 1, 15, -5])
def test_integration_session_under_16_minutes_is_refused(minutes: int) -> None:
    with pytest.raises(NotBillable):
        integration_session_lines(FIRST_J0013_DAY, minutes)


@pytest.mark.parametrize(("minutes", "standalone", "add_on"), PSYCHOTHERAPY_BANDS)
def test_psychotherapy_in_a_dosing_session_is_standalone_with_esketamine_and_an_add_on_with_the_em(
    minutes: int, standalone: str | None, add_on: str | None
) -> None:
    esketamine = summary(dosing_session_lines(Route.intranasal_esketamine, FIRST_J0013_DAY, 56, None, minutes))
    oral = summary(dosing_session_lines(Route.sublingual_oral, FIRST_J0013_DAY, 200, None, minutes))
    # Under 16 minutes the session is still billed, without a psychotherapy line.
    assert esketamine[2:] == ([(standalone, 1, ())] if standalone else [])
    assert oral[1:] == ([(add_on, 1, ())] if add_on else [])


# --- IV infusion hours (AMA CPT: 96365 first hour; 96366 per further hour once > 30 minutes into it) ----------


@pytest.mark.parametrize(
    ("minutes", "additional_hours"),
    [
        (16, 0),  # shortest infusion 96365 counts (more than 15 minutes)
        (60, 0),  # one full hour: 96365 alone
        (90, 0),  # 30 minutes into the second hour: not more than 30, no 96366
        (91, 1),  # 31 minutes into the second hour: 96366 once
        (150, 1),  # 30 minutes into the third hour: still once
        (151, 2),  # 31 minutes into the third hour: twice
        (210, 2),
        (211, 3),
    ],
)
def test_96366_units(minutes: int, additional_hours: int) -> None:
    assert infusion_additional_hours(minutes) == additional_hours
    lines = summary(dosing_session_lines(Route.iv_infusion, FIRST_J0013_DAY, 35, minutes, None))
    expected_96366 = [("96366", additional_hours, ())] if additional_hours else []
    assert lines == [("96365", 1, ()), *expected_96366, ("J3490", 1, ()), ("99214", 1, ("25",))]


# --- the lines of each route, either side of 2026-01-01 -------------------------------------------------------


@pytest.mark.parametrize(
    ("dose_mg", "visit"),
    [
        (28, "G2082"),
        (56, "G2082"),  # G2082: up to 56 mg (CMS HCPCS)
        (57, "G2083"),  # G2083: more than 56 mg
        (84, "G2083"),
    ],
)
@BOTH_SIDES
def test_esketamine_visit_code_by_dose_and_drug_code_by_date(dose_mg: int, visit: str, day: date) -> None:
    lines = dosing_session_lines(Route.intranasal_esketamine, day, dose_mg, None, None)
    drug = "S0013" if day < FIRST_J0013_DAY else "J0013"
    # No E/M: G2082/G2083 include it and the 2-hour observation.
    assert summary(lines) == [(visit, 1, ()), (drug, dose_mg, ())]
    assert lines[1].note is not None and "Medicare" in lines[1].note


def test_esketamine_dose_given_as_a_whole_float_is_billed_in_mg() -> None:
    lines = dosing_session_lines(Route.intranasal_esketamine, FIRST_J0013_DAY, 84.0, None, 40)
    assert summary(lines) == [("G2083", 1, ()), ("J0013", 84, ()), ("90834", 1, ())]


@pytest.mark.parametrize(
    ("route", "infusion_minutes", "expected"),
    [
        # IV: administration (96365), drug (J3490 x 1), E/M with modifier 25 beside the drug administration (CPT
        # guidelines for 96360-96549), psychotherapy added to the E/M (45-minute band).
        (
            Route.iv_infusion,
            45,
            [("96365", 1, ()), ("J3490", 1, ()), ("99214", 1, ("25",)), ("90836", 1, ())],
        ),
        (
            Route.intramuscular,
            None,
            [("96372", 1, ()), ("J3490", 1, ()), ("99214", 1, ("25",)), ("90836", 1, ())],
        ),
        (
            Route.subcutaneous,
            None,
            [("96372", 1, ()), ("J3490", 1, ()), ("99214", 1, ("25",)), ("90836", 1, ())],
        ),
        # Sublingual/oral: no administration code, no J3490 (self-administered; clinic policy), no modifier 25.
        (Route.sublingual_oral, None, [("99214", 1, ()), ("90836", 1, ())]),
    ],
)
@BOTH_SIDES
def test_racemic_ketamine_lines_by_route(
    route: Route, infusion_minutes: int | None, expected: list[Line], day: date
) -> None:
    # The racemic ketamine codes do not change on 2026-01-01.
    assert summary(dosing_session_lines(route, day, 40, infusion_minutes, 45)) == expected


def test_j3490_carries_the_drug_dose_and_ndc_in_its_note() -> None:
    lines = dosing_session_lines(Route.iv_infusion, FIRST_J0013_DAY, 37.5, 40, None)
    drug = next(line for line in lines if line.code.code == "J3490")
    assert drug.units == 1
    assert drug.note is not None
    for word in ("ketamine", "37.5 mg", "NDC"):
        assert word in drug.note


def test_a_dosing_session_before_99214_s_descriptor_is_refused_naming_its_dates() -> None:
    # 99214 is listed from its 2021 E/M descriptor (AMA CPT 2021).
    with pytest.raises(CodeNotValidOn, match=r"99214.*from 2021-01-01 onward"):
        dosing_session_lines(Route.intramuscular, date(2020, 12, 31), 40, None, None)


# --- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "dose_mg", "infusion_minutes", "psychotherapy_minutes", "words"),
    [
        (Route.intranasal_esketamine, -56, None, None, "more than 0 mg"),
        (Route.intranasal_esketamine, 0, None, None, "more than 0 mg"),
        (Route.iv_infusion, -35, 40, None, "more than 0 mg"),
        (Route.sublingual_oral, 0.0, None, None, "more than 0 mg"),
        (Route.intramuscular, float("nan"), None, None, "number of milligrams"),
        (Route.intranasal_esketamine, 56.5, None, None, "whole mg"),
        # An IV session needs its infusion duration.
        (Route.iv_infusion, 35, None, None, "infusion duration"),
        # 15 minutes or less is a push, not an infusion (AMA CPT 96360-96379 guidelines); 0 is nothing.
        (Route.iv_infusion, 35, 15, None, "16 minutes"),
        (Route.iv_infusion, 35, 0, None, "16 minutes"),
        (Route.iv_infusion, 35, -10, None, "negative"),
        # An infusion duration on a route without an infusion is a mix-up.
        (Route.intramuscular, 35, 40, None, "no infusion"),
        (Route.intranasal_esketamine, 56, 40, None, "no infusion"),
        (Route.sublingual_oral, 35, -1, None, "no infusion"),
        (Route.sublingual_oral, 200, None, -20, "negative"),
        (Route.iv_infusion, 35, 40.5, None, "whole number"),
    ],
)
def test_bad_dosing_input_is_refused(
    route: Route, dose_mg: float, infusion_minutes: int | None, psychotherapy_minutes: int | None, words: str
) -> None:
    with pytest.raises(NotBillable, match=words):
        dosing_session_lines(route, FIRST_J0013_DAY, dose_mg, infusion_minutes, psychotherapy_minutes)


def test_every_refusal_is_one_exception_class_and_a_value_error() -> None:
    assert issubclass(UnknownCode, NotBillable)
    assert issubclass(CodeNotValidOn, NotBillable)
    assert issubclass(NotBillable, ValueError)


def test_a_charge_line_needs_a_unit_and_is_never_a_diagnosis() -> None:
    g2082 = CODE_TABLE.valid_on("G2082", FIRST_J0013_DAY)
    with pytest.raises(ValidationError):
        ChargeLine(code=g2082, units=0, description="no units")
    with pytest.raises(ValidationError, match="diagnosis"):
        ChargeLine(code=diagnosis_for(Indication.depression, FIRST_J0013_DAY), units=1, description="F32.9")


# --- intake and diagnoses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("with_medical_services", "code"), [(True, "90792"), (False, "90791")])
@BOTH_SIDES
def test_intake_evaluation(with_medical_services: bool, code: str, day: date) -> None:
    assert summary(intake_evaluation_lines(day, with_medical_services)) == [(code, 1, ())]


@pytest.mark.parametrize(
    ("indication", "code"),
    [
        (Indication.depression, "F32.9"),
        # ICD-10-CM has no "treatment-resistant" code: recurrent MDD, resistance documented in the history.
        (Indication.treatment_resistant_depression, "F33.9"),
        (Indication.anxiety, "F41.1"),
        (Indication.ptsd, "F43.10"),
        (Indication.ocd, "F42.2"),
        (Indication.substance_use_disorder, "F19.20"),
    ],
)
@BOTH_SIDES
def test_diagnosis_by_indication(indication: Indication, code: str, day: date) -> None:
    diagnosis = diagnosis_for(indication, day)
    assert (diagnosis.code, diagnosis.system) == (code, CodeSystem.ICD10CM)
    assert indication.value in diagnosis.source


def test_every_indication_but_other_has_a_default_diagnosis_with_a_reason() -> None:
    assert set(INDICATION_DIAGNOSES) == set(Indication) - {Indication.other}
    assert all(len(why) > 20 for _code, why in INDICATION_DIAGNOSES.values())
    assert "no code for 'treatment-resistant'" in INDICATION_DIAGNOSES[Indication.treatment_resistant_depression][1]


def test_indication_other_needs_the_clinicians_code() -> None:
    with pytest.raises(NotBillable, match="clinician must give"):
        diagnosis_for(Indication.other, FIRST_J0013_DAY)
