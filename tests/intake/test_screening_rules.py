"""Eligibility screening rules: pure functions, no database, no broker."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from services.intake.screening import (
    BloodPressureThreshold,
    EarlierScreening,
    MedicalReviewDecision,
    ReasonCode,
    ReasonKind,
    ReviewDecision,
    ReviewNotAllowed,
    ScreeningAnswers,
    ScreeningOutcome,
    ScreeningReason,
    ScreeningResult,
    age_on,
    cleared_contraindications,
    eligibility_after_review,
    review_allowed,
    screen,
)

SCREENED_ON = date(2026, 3, 15)
ADULT = date(1985, 12, 10)

# Every yes/no question answered "no", and a normal blood pressure: the baseline every test changes one thing of.
CLEAR: dict[str, Any] = {
    "aneurysmal_vascular_disease_or_avm": False,
    "intracerebral_haemorrhage_history": False,
    "cardiovascular_event_in_last_6_weeks": False,
    "ketamine_hypersensitivity": False,
    "pregnant": False,
    "current_psychosis": False,
    "suicidal_intent_needs_higher_care": False,
    "breastfeeding": False,
    "psychosis_or_mania_history": False,
    "bipolar_disorder": False,
    "mood_stabiliser": None,
    "systolic_mmhg": 120,
    "diastolic_mmhg": 80,
    "substance_use_disorder": False,
    "significant_liver_disease": False,
    "raised_icp_or_glaucoma": False,
    "seizure_in_last_year": False,
    "cardiovascular_disease": False,
    "hypertensive_encephalopathy_history": False,
    "stroke_history": False,
    "cerebrovascular_disease": False,
    "untreated_hyperthyroidism": False,
    "copd_or_pulmonary_insufficiency": False,
    "sleep_apnoea": False,
    "bmi_kg_m2": 24.5,
    "cystitis_or_urinary_symptoms": False,
    "takes_benzodiazepines": False,
    "takes_opioids": False,
    "takes_other_sedatives": False,
    "drinks_alcohol": False,
    "takes_stimulants": False,
    "takes_maoi": False,
}

# answer field -> the reason it must produce when true
CONTRAINDICATIONS: dict[str, ReasonCode] = {
    "aneurysmal_vascular_disease_or_avm": ReasonCode.aneurysmal_vascular_disease_or_avm,
    "intracerebral_haemorrhage_history": ReasonCode.intracerebral_haemorrhage_history,
    "cardiovascular_event_in_last_6_weeks": ReasonCode.cardiovascular_event_in_last_6_weeks,
    "ketamine_hypersensitivity": ReasonCode.ketamine_hypersensitivity,
    "pregnant": ReasonCode.pregnancy,
    "current_psychosis": ReasonCode.current_psychosis,
    "suicidal_intent_needs_higher_care": ReasonCode.suicidal_intent_needs_higher_care,
}
# Yes/no cautions; bipolar (needs mood_stabiliser), sleep apnoea (needs the BMI), age and blood pressure have
# their own tests below.
FLAG_CAUTIONS: dict[str, ReasonCode] = {
    "breastfeeding": ReasonCode.breastfeeding,
    "psychosis_or_mania_history": ReasonCode.psychosis_or_mania_history,
    "substance_use_disorder": ReasonCode.substance_use_disorder,
    "significant_liver_disease": ReasonCode.significant_liver_disease,
    "raised_icp_or_glaucoma": ReasonCode.raised_icp_or_glaucoma,
    "seizure_in_last_year": ReasonCode.seizure_in_last_year,
    "cardiovascular_disease": ReasonCode.cardiovascular_disease,
    "hypertensive_encephalopathy_history": ReasonCode.hypertensive_encephalopathy_history,
    "stroke_history": ReasonCode.stroke_history,
    "cerebrovascular_disease": ReasonCode.cerebrovascular_disease,
    "untreated_hyperthyroidism": ReasonCode.untreated_hyperthyroidism,
    "copd_or_pulmonary_insufficiency": ReasonCode.copd_or_pulmonary_insufficiency,
    "cystitis_or_urinary_symptoms": ReasonCode.cystitis_or_urinary_symptoms,
    "takes_benzodiazepines": ReasonCode.benzodiazepines,
    "takes_opioids": ReasonCode.opioids,
    "takes_other_sedatives": ReasonCode.other_sedatives,
    "drinks_alcohol": ReasonCode.alcohol,
    "takes_stimulants": ReasonCode.stimulants,
    "takes_maoi": ReasonCode.maoi,
}
# The questions this change added: each must be answered, never defaulted.
NEW_QUESTIONS = [
    "cardiovascular_event_in_last_6_weeks",
    "suicidal_intent_needs_higher_care",
    "hypertensive_encephalopathy_history",
    "stroke_history",
    "cerebrovascular_disease",
    "untreated_hyperthyroidism",
    "copd_or_pulmonary_insufficiency",
    "sleep_apnoea",
    "bmi_kg_m2",
    "cystitis_or_urinary_symptoms",
    "takes_opioids",
    "takes_other_sedatives",
    "drinks_alcohol",
]


def answers(**changes: Any) -> ScreeningAnswers:
    return ScreeningAnswers.model_validate({**CLEAR, **changes})


def run(
    answers_: ScreeningAnswers,
    *,
    birth_date: date = ADULT,
    screened_on: date = SCREENED_ON,
    earlier: Sequence[EarlierScreening] = (),
    bp_threshold: BloodPressureThreshold | None = None,
) -> ScreeningResult:
    if bp_threshold is None:
        return screen(answers_, birth_date=birth_date, screened_on=screened_on, earlier=earlier)
    return screen(answers_, birth_date=birth_date, screened_on=screened_on, earlier=earlier, bp_threshold=bp_threshold)


def codes(result: ScreeningResult) -> list[ReasonCode]:
    return [reason.code for reason in result.reasons]


def error_fields(error: ValidationError) -> set[str]:
    return {str(detail["loc"][0]) for detail in error.errors() if detail["loc"]}


def test_clear_answers_are_eligible() -> None:
    result = run(answers())
    assert result.outcome is ScreeningOutcome.eligible
    assert result.reasons == []


def test_every_question_is_covered_by_a_test() -> None:
    # A new question added to the model without a rule test fails here.
    tested = set(CONTRAINDICATIONS) | set(FLAG_CAUTIONS) | {"bipolar_disorder", "mood_stabiliser"}
    tested |= {"systolic_mmhg", "diastolic_mmhg", "sleep_apnoea", "bmi_kg_m2"}
    assert tested == set(ScreeningAnswers.model_fields)


# --- contraindications ---


@pytest.mark.parametrize(("field", "code"), CONTRAINDICATIONS.items())
def test_contraindication_on_makes_ineligible(field: str, code: ReasonCode) -> None:
    result = run(answers(**{field: True}))
    assert result.outcome is ScreeningOutcome.ineligible
    assert codes(result) == [code]
    assert result.reasons[0].kind is ReasonKind.contraindication


@pytest.mark.parametrize(("field", "code"), CONTRAINDICATIONS.items())
def test_contraindication_off_is_not_reported(field: str, code: ReasonCode) -> None:
    assert run(answers(**{field: False})).outcome is ScreeningOutcome.eligible
    # Off while every other contraindication is on: the rule answers to its own question only.
    others = {other: True for other in CONTRAINDICATIONS if other != field}
    result = run(answers(**others, **{field: False}))
    assert code not in codes(result)
    assert len(result.reasons) == len(CONTRAINDICATIONS) - 1


# --- cautions ---


@pytest.mark.parametrize(("field", "code"), FLAG_CAUTIONS.items())
def test_caution_on_needs_review(field: str, code: ReasonCode) -> None:
    result = run(answers(**{field: True}))
    assert result.outcome is ScreeningOutcome.needs_medical_review
    assert codes(result) == [code]
    assert result.reasons[0].kind is ReasonKind.caution


@pytest.mark.parametrize(("field", "code"), FLAG_CAUTIONS.items())
def test_caution_off_is_not_reported(field: str, code: ReasonCode) -> None:
    assert run(answers(**{field: False})).outcome is ScreeningOutcome.eligible
    others = {other: True for other in FLAG_CAUTIONS if other != field}
    result = run(answers(**others, **{field: False}))
    assert code not in codes(result)
    assert len(result.reasons) == len(FLAG_CAUTIONS) - 1


@pytest.mark.parametrize(("on_stabiliser", "wording"), [(True, "on a mood stabiliser"), (False, "not on a mood")])
def test_bipolar_needs_review_and_says_whether_on_a_mood_stabiliser(on_stabiliser: bool, wording: str) -> None:
    result = run(answers(bipolar_disorder=True, mood_stabiliser=on_stabiliser))
    assert result.outcome is ScreeningOutcome.needs_medical_review
    assert codes(result) == [ReasonCode.bipolar_disorder]
    assert wording in result.reasons[0].detail


def test_no_bipolar_disorder_is_eligible_whatever_the_mood_stabiliser_answer() -> None:
    for stabiliser in (None, True, False):
        assert run(answers(bipolar_disorder=False, mood_stabiliser=stabiliser)).outcome is ScreeningOutcome.eligible


def test_bipolar_without_mood_stabiliser_answer_names_the_field() -> None:
    for missing in ({"mood_stabiliser": None}, {}):
        data = {**CLEAR, "bipolar_disorder": True, **missing}
        if not missing:
            del data["mood_stabiliser"]
        with pytest.raises(ValidationError) as caught:
            ScreeningAnswers.model_validate(data)
        assert error_fields(caught.value) == {"mood_stabiliser"}


# --- sleep apnoea with obesity ---


@pytest.mark.parametrize("bmi", [35, 35.0, 41.3])
def test_sleep_apnoea_at_bmi_35_or_more_needs_review(bmi: float) -> None:
    result = run(answers(sleep_apnoea=True, bmi_kg_m2=bmi))
    assert result.outcome is ScreeningOutcome.needs_medical_review
    assert codes(result) == [ReasonCode.sleep_apnoea_with_obesity]
    assert result.reasons[0].kind is ReasonKind.caution
    assert f"BMI of {bmi:g} kg/m²" in result.reasons[0].detail


@pytest.mark.parametrize(("apnoea", "bmi"), [(True, 34.9), (True, 22), (False, 35), (False, 48.2)])
def test_sleep_apnoea_below_bmi_35_or_obesity_alone_is_not_reported(apnoea: bool, bmi: float) -> None:
    result = run(answers(sleep_apnoea=apnoea, bmi_kg_m2=bmi))
    assert result.outcome is ScreeningOutcome.eligible
    assert result.reasons == []


@pytest.mark.parametrize("bmi", [9.9, 100.1, "nan", "inf", -30])
def test_implausible_bmi_names_the_field(bmi: float | str) -> None:
    with pytest.raises(ValidationError) as caught:
        answers(bmi_kg_m2=bmi)
    assert error_fields(caught.value) == {"bmi_kg_m2"}


# --- age ---


def test_one_day_before_18th_birthday_needs_review() -> None:
    result = run(answers(), birth_date=date(2008, 3, 16), screened_on=date(2026, 3, 15))  # 17 years 364 days
    assert result.outcome is ScreeningOutcome.needs_medical_review
    assert codes(result) == [ReasonCode.under_18]
    assert "aged 17" in result.reasons[0].detail


def test_on_18th_birthday_is_eligible() -> None:
    result = run(answers(), birth_date=date(2008, 3, 15), screened_on=date(2026, 3, 15))
    assert result.outcome is ScreeningOutcome.eligible


def test_leap_day_birth_turns_18_on_1_march_in_a_common_year() -> None:
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18
    assert age_on(date(2008, 2, 29), date(2028, 2, 29)) == 20


def test_birth_after_screening_date_is_refused() -> None:
    with pytest.raises(ValueError, match="is after"):
        run(answers(), birth_date=date(2026, 3, 16), screened_on=date(2026, 3, 15))


# --- blood pressure ---


def test_bp_exactly_at_default_threshold_is_eligible() -> None:
    assert run(answers(systolic_mmhg=140, diastolic_mmhg=90)).outcome is ScreeningOutcome.eligible


@pytest.mark.parametrize(("systolic", "diastolic"), [(141, 90), (140, 91)])
def test_bp_one_above_on_either_number_needs_review(systolic: int, diastolic: int) -> None:
    result = run(answers(systolic_mmhg=systolic, diastolic_mmhg=diastolic))
    assert result.outcome is ScreeningOutcome.needs_medical_review
    assert codes(result) == [ReasonCode.bp_above_threshold]


def test_bp_detail_gives_reading_and_threshold() -> None:
    result = run(answers(systolic_mmhg=150, diastolic_mmhg=95))
    assert result.reasons[0].detail == "blood pressure 150/95 mmHg is above the site threshold 140/90"


def test_custom_site_threshold() -> None:
    stricter = BloodPressureThreshold(130, 80)
    reading = answers(systolic_mmhg=135, diastolic_mmhg=78)
    assert run(reading).outcome is ScreeningOutcome.eligible  # under the default 140/90
    result = run(reading, bp_threshold=stricter)
    assert result.outcome is ScreeningOutcome.needs_medical_review
    assert result.reasons[0].detail == "blood pressure 135/78 mmHg is above the site threshold 130/80"
    at_threshold = answers(systolic_mmhg=130, diastolic_mmhg=80)
    assert run(at_threshold, bp_threshold=stricter).outcome is ScreeningOutcome.eligible
    assert run(answers(systolic_mmhg=125, diastolic_mmhg=81), bp_threshold=stricter).reasons[0].code == (
        ReasonCode.bp_above_threshold
    )


def test_implausible_site_threshold_is_refused() -> None:
    with pytest.raises(ValidationError):
        BloodPressureThreshold(90, 140)
    with pytest.raises(ValidationError):
        BloodPressureThreshold(400, 90)


@pytest.mark.parametrize(
    ("systolic", "diastolic", "field"),
    [
        (400, 20, "systolic_mmhg"),
        (120, 130, "diastolic_mmhg"),
        (120, 120, "diastolic_mmhg"),
        (49, 30, "systolic_mmhg"),
        (120, 19, "diastolic_mmhg"),
        (301, 80, "systolic_mmhg"),
        (290, 201, "diastolic_mmhg"),
    ],
)
def test_implausible_bp_names_the_field(systolic: int, diastolic: int, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        answers(systolic_mmhg=systolic, diastolic_mmhg=diastolic)
    assert error_fields(caught.value) == {field}


@pytest.mark.parametrize(("systolic", "diastolic"), [(50, 20), (300, 200), (51, 50)])
def test_bp_at_plausibility_limits_is_accepted(systolic: int, diastolic: int) -> None:
    assert answers(systolic_mmhg=systolic, diastolic_mmhg=diastolic).systolic_mmhg == systolic


# --- the form itself ---


@pytest.mark.parametrize("field", ["pregnant", *NEW_QUESTIONS])
def test_unanswered_question_is_an_error_not_a_no(field: str) -> None:
    data = dict(CLEAR)
    del data[field]
    with pytest.raises(ValidationError) as caught:
        ScreeningAnswers.model_validate(data)
    assert error_fields(caught.value) == {field}
    assert [detail["type"] for detail in caught.value.errors()] == ["missing"]


@pytest.mark.parametrize("field", [f for f in NEW_QUESTIONS if f != "bmi_kg_m2"])
def test_a_new_yes_no_question_refuses_null(field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        answers(**{field: None})
    assert error_fields(caught.value) == {field}


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        answers(smoker=True)
    assert error_fields(caught.value) == {"smoker"}


# --- several findings ---


def test_several_cautions_are_all_listed() -> None:
    result = run(
        answers(breastfeeding=True, takes_benzodiazepines=True, takes_maoi=True, systolic_mmhg=160),
        birth_date=date(2010, 1, 1),
    )
    assert result.outcome is ScreeningOutcome.needs_medical_review
    assert codes(result) == [
        ReasonCode.under_18,
        ReasonCode.breastfeeding,
        ReasonCode.bp_above_threshold,
        ReasonCode.benzodiazepines,
        ReasonCode.maoi,
    ]


def test_every_finding_at_once_in_the_fixed_order() -> None:
    everything = {field: True for field in [*CONTRAINDICATIONS, *FLAG_CAUTIONS, "bipolar_disorder", "sleep_apnoea"]}
    result = run(
        answers(**everything, mood_stabiliser=True, bmi_kg_m2=38, systolic_mmhg=170, diastolic_mmhg=100),
        birth_date=date(2010, 1, 1),
    )
    assert result.outcome is ScreeningOutcome.ineligible
    # Every code but contraindication_cleared (nothing was cleared), contraindications first, in enum order.
    assert codes(result) == [code for code in ReasonCode if code is not ReasonCode.contraindication_cleared]
    kinds = [reason.kind for reason in result.reasons]
    assert kinds == sorted(kinds, key=lambda kind: kind is ReasonKind.caution)


def test_contraindication_with_cautions_is_ineligible_and_lists_both() -> None:
    result = run(answers(pregnant=True, current_psychosis=True, cardiovascular_disease=True, takes_stimulants=True))
    assert result.outcome is ScreeningOutcome.ineligible
    assert codes(result) == [
        ReasonCode.pregnancy,
        ReasonCode.current_psychosis,
        ReasonCode.cardiovascular_disease,
        ReasonCode.stimulants,
    ]
    assert [reason.kind for reason in result.reasons] == [ReasonKind.contraindication] * 2 + [ReasonKind.caution] * 2


def test_result_whose_outcome_contradicts_its_reasons_is_refused() -> None:
    pregnancy = ScreeningReason(code=ReasonCode.pregnancy, kind=ReasonKind.contraindication, detail="pregnant")
    with pytest.raises(ValidationError, match="does not match"):
        ScreeningResult(outcome=ScreeningOutcome.eligible, reasons=[pregnancy])


def test_reason_cannot_downgrade_a_contraindication_to_a_caution() -> None:
    with pytest.raises(ValidationError, match="is a contraindication"):
        ScreeningReason(code=ReasonCode.pregnancy, kind=ReasonKind.caution, detail="pregnant")


# --- medical review ---

APPROVE = MedicalReviewDecision(decision=ReviewDecision.approve, rationale="BP rechecked at 132/84 after rest.")
DECLINE = MedicalReviewDecision(decision=ReviewDecision.decline, rationale="Uncontrolled angina; refer to GP first.")
NEEDS_REVIEW = run(answers(cardiovascular_disease=True))
INELIGIBLE = run(answers(pregnant=True, breastfeeding=True))
ELIGIBLE = run(answers())


def test_review_is_allowed_only_when_needed() -> None:
    assert review_allowed(NEEDS_REVIEW)
    assert not review_allowed(INELIGIBLE)
    assert not review_allowed(ELIGIBLE)


def test_approved_review_makes_eligible() -> None:
    assert eligibility_after_review(NEEDS_REVIEW, APPROVE) is True


def test_declined_review_is_not_eligible() -> None:
    assert eligibility_after_review(NEEDS_REVIEW, DECLINE) is False


def test_pending_review_is_not_eligible() -> None:
    assert eligibility_after_review(NEEDS_REVIEW, None) is False


def test_without_a_decision_eligible_is_eligible_and_ineligible_is_not() -> None:
    assert eligibility_after_review(ELIGIBLE, None) is True
    assert eligibility_after_review(INELIGIBLE, None) is False


def test_approving_an_ineligible_screening_is_refused() -> None:
    with pytest.raises(ReviewNotAllowed, match="contraindication cannot be overridden") as caught:
        eligibility_after_review(INELIGIBLE, APPROVE)
    assert caught.value.outcome is ScreeningOutcome.ineligible


@pytest.mark.parametrize("decision", [APPROVE, DECLINE], ids=["approve", "decline"])
def test_any_decision_on_a_screening_that_needs_no_review_is_refused(decision: MedicalReviewDecision) -> None:
    with pytest.raises(ReviewNotAllowed, match="needs no medical review"):
        eligibility_after_review(ELIGIBLE, decision)
    with pytest.raises(ReviewNotAllowed):
        eligibility_after_review(INELIGIBLE, decision)


@pytest.mark.parametrize("rationale", ["", "ok", "   fine    ", " " * 20])
def test_review_needs_a_real_rationale(rationale: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MedicalReviewDecision(decision=ReviewDecision.approve, rationale=rationale)
    assert error_fields(caught.value) == {"rationale"}


def test_review_decision_must_be_approve_or_decline() -> None:
    with pytest.raises(ValidationError) as caught:
        MedicalReviewDecision.model_validate({"decision": "maybe", "rationale": "long enough rationale"})
    assert error_fields(caught.value) == {"decision"}


# --- re-screening: a contraindication cleared since the last screening ---

JAN, FEB = date(2026, 1, 10), date(2026, 2, 10)


def earlier(on: date, result: ScreeningResult, decision: MedicalReviewDecision | None = None) -> EarlierScreening:
    return EarlierScreening(screened_on=on, result=result, decision=decision)


PREGNANT_IN_JAN = earlier(JAN, run(answers(pregnant=True)))


def test_a_first_screening_clears_nothing() -> None:
    assert cleared_contraindications([], []) is None
    assert run(answers(), earlier=[]).outcome is ScreeningOutcome.eligible


def test_rescreening_that_no_longer_finds_a_contraindication_needs_review() -> None:
    result = run(answers(), earlier=[PREGNANT_IN_JAN])
    assert result.outcome is ScreeningOutcome.needs_medical_review
    assert codes(result) == [ReasonCode.contraindication_cleared]
    [reason] = result.reasons
    assert reason.kind is ReasonKind.caution
    assert reason.detail == (
        "no longer found, a clinician must confirm it has resolved: pregnancy (screening of 2026-01-10)"
    )
    # A caution, so a clinician can approve it, and only then may treatment start.
    assert review_allowed(result)
    assert eligibility_after_review(result, None) is False
    assert eligibility_after_review(result, APPROVE) is True


def test_rescreening_after_a_screening_without_a_contraindication_is_unaffected() -> None:
    for before in (ELIGIBLE, NEEDS_REVIEW):
        assert run(answers(), earlier=[earlier(FEB, before)]).outcome is ScreeningOutcome.eligible
        assert codes(run(answers(takes_maoi=True), earlier=[earlier(FEB, before)])) == [ReasonCode.maoi]


def test_only_the_latest_earlier_screening_counts_when_it_cleared_nothing() -> None:
    # January's pregnancy was followed by a screening that found no contraindication and cleared none.
    result = run(answers(), earlier=[earlier(FEB, ELIGIBLE), PREGNANT_IN_JAN])
    assert result.outcome is ScreeningOutcome.eligible


def test_a_contraindication_still_found_is_not_cleared() -> None:
    result = run(answers(pregnant=True), earlier=[PREGNANT_IN_JAN])
    assert result.outcome is ScreeningOutcome.ineligible
    assert codes(result) == [ReasonCode.pregnancy]


def test_one_of_two_contraindications_cleared_is_listed_beside_the_one_remaining() -> None:
    both = earlier(JAN, run(answers(pregnant=True, current_psychosis=True)))
    result = run(answers(pregnant=True), earlier=[both])
    assert result.outcome is ScreeningOutcome.ineligible
    assert codes(result) == [ReasonCode.pregnancy, ReasonCode.contraindication_cleared]
    assert "current_psychosis (screening of 2026-01-10)" in result.reasons[1].detail
    assert "pregnancy" not in result.reasons[1].detail


def test_the_cleared_caution_comes_first_of_the_cautions_and_the_others_stay() -> None:
    result = run(answers(breastfeeding=True, drinks_alcohol=True), earlier=[PREGNANT_IN_JAN])
    assert codes(result) == [ReasonCode.contraindication_cleared, ReasonCode.breastfeeding, ReasonCode.alcohol]


def test_every_cleared_contraindication_is_named_in_a_fixed_order() -> None:
    all_of_them = earlier(JAN, run(answers(**{field: True for field in CONTRAINDICATIONS})))
    result = run(answers(), earlier=[all_of_them])
    assert codes(result) == [ReasonCode.contraindication_cleared]
    named = ", ".join(f"{code.value} (screening of 2026-01-10)" for code in CONTRAINDICATIONS.values())
    assert result.reasons[0].detail.endswith(f"resolved: {named}")


@pytest.mark.parametrize("decision", [None, DECLINE], ids=["review pending", "review declined"])
def test_a_second_rescreening_does_not_skip_an_unapproved_clearance(decision: MedicalReviewDecision | None) -> None:
    clearance = earlier(FEB, run(answers(), earlier=[PREGNANT_IN_JAN]), decision)
    result = run(answers(), earlier=[clearance, PREGNANT_IN_JAN])
    assert result.outcome is ScreeningOutcome.needs_medical_review
    assert codes(result) == [ReasonCode.contraindication_cleared]
    # It names the screening that found the contraindication, not the clearance.
    assert result.reasons[0].detail.endswith("pregnancy (screening of 2026-01-10)")


def test_an_approved_clearance_ends_the_matter() -> None:
    clearance = earlier(FEB, run(answers(), earlier=[PREGNANT_IN_JAN]), APPROVE)
    assert run(answers(), earlier=[clearance, PREGNANT_IN_JAN]).outcome is ScreeningOutcome.eligible


def test_contraindications_cleared_across_an_ineligible_screening_are_all_named() -> None:
    # January: pregnant. February: no longer pregnant but psychotic, so ineligible and unreviewable. Now: neither.
    february = earlier(FEB, run(answers(current_psychosis=True), earlier=[PREGNANT_IN_JAN]))
    assert codes(february.result) == [ReasonCode.current_psychosis, ReasonCode.contraindication_cleared]
    result = run(answers(), earlier=[february, PREGNANT_IN_JAN])
    assert result.outcome is ScreeningOutcome.needs_medical_review
    assert result.reasons[0].detail.endswith(
        "pregnancy (screening of 2026-01-10), current_psychosis (screening of 2026-02-10)"
    )


def test_a_contraindication_found_twice_is_dated_by_the_latest_screening_that_found_it() -> None:
    again = earlier(FEB, run(answers(pregnant=True), earlier=[PREGNANT_IN_JAN]))
    result = run(answers(), earlier=[again, PREGNANT_IN_JAN])
    assert result.reasons[0].detail.endswith("pregnancy (screening of 2026-02-10)")
