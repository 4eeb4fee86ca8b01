"""Eligibility screening rules: pure functions, no database, no broker."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from services.intake.screening import (
    BloodPressureThreshold,
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
    "ketamine_hypersensitivity": False,
    "pregnant": False,
    "current_psychosis": False,
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
    "takes_benzodiazepines": False,
    "takes_stimulants": False,
    "takes_maoi": False,
}

# answer field -> the reason it must produce when true
CONTRAINDICATIONS: dict[str, ReasonCode] = {
    "aneurysmal_vascular_disease_or_avm": ReasonCode.aneurysmal_vascular_disease_or_avm,
    "intracerebral_haemorrhage_history": ReasonCode.intracerebral_haemorrhage_history,
    "ketamine_hypersensitivity": ReasonCode.ketamine_hypersensitivity,
    "pregnant": ReasonCode.pregnancy,
    "current_psychosis": ReasonCode.current_psychosis,
}
# Yes/no cautions; bipolar (needs mood_stabiliser), age and blood pressure have their own tests below.
FLAG_CAUTIONS: dict[str, ReasonCode] = {
    "breastfeeding": ReasonCode.breastfeeding,
    "psychosis_or_mania_history": ReasonCode.psychosis_or_mania_history,
    "substance_use_disorder": ReasonCode.substance_use_disorder,
    "significant_liver_disease": ReasonCode.significant_liver_disease,
    "raised_icp_or_glaucoma": ReasonCode.raised_icp_or_glaucoma,
    "seizure_in_last_year": ReasonCode.seizure_in_last_year,
    "cardiovascular_disease": ReasonCode.cardiovascular_disease,
    "takes_benzodiazepines": ReasonCode.benzodiazepines,
    "takes_stimulants": ReasonCode.stimulants,
    "takes_maoi": ReasonCode.maoi,
}


def answers(**changes: Any) -> ScreeningAnswers:
    return ScreeningAnswers.model_validate({**CLEAR, **changes})


def run(
    answers_: ScreeningAnswers,
    *,
    birth_date: date = ADULT,
    screened_on: date = SCREENED_ON,
    bp_threshold: BloodPressureThreshold | None = None,
) -> ScreeningResult:
    if bp_threshold is None:
        return screen(answers_, birth_date=birth_date, screened_on=screened_on)
    return screen(answers_, birth_date=birth_date, screened_on=screened_on, bp_threshold=bp_threshold)


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
    tested |= {"systolic_mmhg", "diastolic_mmhg"}
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
    with pytest.raises(ValueError, match="after the screening date"):
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


def test_unanswered_question_is_an_error_not_a_no() -> None:
    data = dict(CLEAR)
    del data["pregnant"]
    with pytest.raises(ValidationError) as caught:
        ScreeningAnswers.model_validate(data)
    assert error_fields(caught.value) == {"pregnant"}


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
NEEDS_REVIEW = screen(answers(cardiovascular_disease=True), birth_date=ADULT, screened_on=SCREENED_ON)
INELIGIBLE = screen(answers(pregnant=True, breastfeeding=True), birth_date=ADULT, screened_on=SCREENED_ON)
ELIGIBLE = screen(answers(), birth_date=ADULT, screened_on=SCREENED_ON)


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
