"""Eligibility screening for ketamine-assisted psychotherapy: pure rules, no I/O.

The screening sorts what it finds into two kinds. A *contraindication* makes the patient ineligible and no
reviewer can override it. A *caution* sends the screening to a medical review, whose decision is recorded
separately (`MedicalReviewDecision`). Every finding is listed, never just the first, so a reviewer sees the
whole picture at once.

Sources cited below:
- [Spravato PI]: SPRAVATO (esketamine) nasal spray, US prescribing information, Janssen: section 4
  (Contraindications), 5 (Warnings and Precautions), 7 (Drug Interactions), 8 (Use in Specific Populations).
- [Ketalar PI]: KETALAR (ketamine hydrochloride) injection, US prescribing information, Par: Contraindications
  ("patients in whom a significant elevation of blood pressure would constitute a serious hazard") and
  Precautions (raised cerebrospinal fluid pressure).
- [Sanacora 2017]: Sanacora G, et al., "A Consensus Statement on the Use of Ketamine in the Treatment of Mood
  Disorders", JAMA Psychiatry 2017;74(4):399-405, section on patient selection.
- [ACC/AHA 2017]: Whelton PK, et al., 2017 ACC/AHA guideline for high blood pressure in adults (stage 2 is
  systolic >= 140 or diastolic >= 90 mmHg).
- [Miller]: Miller's Anesthesia, "Nonbarbiturate intravenous anesthetics", ketamine contraindications (raised
  intracranial pressure; raised intraocular pressure would be harmful).
Which findings are absolute and which need review is this network's clinical policy; where it is stricter than
a label (pregnancy, current psychosis) the comment on the rule says so.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from shared.blood_pressure import (
    DEFAULT_BP_THRESHOLD,
    DIASTOLIC_MAX,
    DIASTOLIC_MIN,
    SYSTOLIC_MAX,
    SYSTOLIC_MIN,
    BloodPressureThreshold,
    bp_above,
)

# Spravato PI 1 (adults only) and 8.4 (not approved in paediatric patients): under 18 is off any label.
ADULT_AGE_YEARS = 18


class ReasonKind(StrEnum):
    contraindication = "contraindication"
    caution = "caution"


class ReasonCode(StrEnum):
    """Stable codes: stored, sent in events and matched by other services, so never rename one."""

    # contraindications
    aneurysmal_vascular_disease_or_avm = "aneurysmal_vascular_disease_or_avm"
    intracerebral_haemorrhage_history = "intracerebral_haemorrhage_history"
    ketamine_hypersensitivity = "ketamine_hypersensitivity"
    pregnancy = "pregnancy"
    current_psychosis = "current_psychosis"
    # cautions
    under_18 = "under_18"
    breastfeeding = "breastfeeding"
    psychosis_or_mania_history = "psychosis_or_mania_history"
    bipolar_disorder = "bipolar_disorder"
    bp_above_threshold = "bp_above_threshold"
    substance_use_disorder = "substance_use_disorder"
    significant_liver_disease = "significant_liver_disease"
    raised_icp_or_glaucoma = "raised_icp_or_glaucoma"
    seizure_in_last_year = "seizure_in_last_year"
    cardiovascular_disease = "cardiovascular_disease"
    benzodiazepines = "benzodiazepines"
    stimulants = "stimulants"
    maoi = "maoi"


_CONTRAINDICATIONS = frozenset(
    {
        ReasonCode.aneurysmal_vascular_disease_or_avm,
        ReasonCode.intracerebral_haemorrhage_history,
        ReasonCode.ketamine_hypersensitivity,
        ReasonCode.pregnancy,
        ReasonCode.current_psychosis,
    }
)


def kind_of(code: ReasonCode) -> ReasonKind:
    """A code's kind is fixed, so a stored reason cannot claim a contraindication is only a caution."""
    return ReasonKind.contraindication if code in _CONTRAINDICATIONS else ReasonKind.caution


class ScreeningOutcome(StrEnum):
    eligible = "eligible"
    needs_medical_review = "needs_medical_review"
    ineligible = "ineligible"


class ScreeningAnswers(BaseModel):
    """What intake asks before a first treatment.

    No answer has a default: a question left out is a 422, never a silent "no", because an unasked
    contraindication must not read as an absent one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- absolute contraindications ---
    aneurysmal_vascular_disease_or_avm: bool = Field(
        description="aneurysmal vascular disease (thoracic or abdominal aorta, intracranial or peripheral arteries) "
        "or an arteriovenous malformation"
    )
    intracerebral_haemorrhage_history: bool = Field(description="any past intracerebral haemorrhage")
    ketamine_hypersensitivity: bool = Field(description="hypersensitivity to ketamine, esketamine or an excipient")
    pregnant: bool
    current_psychosis: bool = Field(description="psychotic symptoms now")

    # --- cautions ---
    breastfeeding: bool
    psychosis_or_mania_history: bool = Field(description="a past psychotic or manic episode")
    bipolar_disorder: bool
    mood_stabiliser: bool | None = Field(
        default=None,
        # Validated even when left out, so a bipolar patient without an answer here is rejected.
        validate_default=True,
        description="takes a mood stabiliser; required when bipolar_disorder is true",
    )
    systolic_mmhg: int = Field(ge=SYSTOLIC_MIN, le=SYSTOLIC_MAX, description="measured at screening")
    diastolic_mmhg: int = Field(ge=DIASTOLIC_MIN, le=DIASTOLIC_MAX, description="measured at screening")
    substance_use_disorder: bool = Field(description="an active substance use disorder, or any ketamine misuse")
    significant_liver_disease: bool
    raised_icp_or_glaucoma: bool = Field(description="raised intracranial pressure, or glaucoma")
    seizure_in_last_year: bool
    cardiovascular_disease: bool
    takes_benzodiazepines: bool
    takes_stimulants: bool
    takes_maoi: bool

    # Field validators see earlier fields in info.data, so the error names the field that needs fixing.
    @field_validator("mood_stabiliser")
    @classmethod
    def _mood_stabiliser_known_for_bipolar(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value is None and info.data.get("bipolar_disorder") is True:
            raise ValueError("say whether a mood stabiliser is taken when bipolar_disorder is true")
        return value

    @field_validator("diastolic_mmhg")
    @classmethod
    def _diastolic_below_systolic(cls, value: int, info: ValidationInfo) -> int:
        systolic = info.data.get("systolic_mmhg")
        # When systolic itself failed, it is absent here and already reported on its own.
        if systolic is not None and value >= systolic:
            raise ValueError(f"diastolic {value} mmHg must be below systolic {systolic} mmHg")
        return value


class ScreeningReason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: ReasonCode
    kind: ReasonKind
    detail: str = Field(min_length=1)

    @model_validator(mode="after")
    def _kind_matches_code(self) -> Self:
        if self.kind != kind_of(self.code):
            raise ValueError(f"{self.code} is a {kind_of(self.code)}, not a {self.kind}")
        return self


def outcome_for(reasons: list[ScreeningReason]) -> ScreeningOutcome:
    """Any contraindication wins over any number of cautions; cautions alone mean review."""
    kinds = {reason.kind for reason in reasons}
    if ReasonKind.contraindication in kinds:
        return ScreeningOutcome.ineligible
    if ReasonKind.caution in kinds:
        return ScreeningOutcome.needs_medical_review
    return ScreeningOutcome.eligible


class ScreeningResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: ScreeningOutcome
    reasons: list[ScreeningReason]

    # A result read back from storage or a request must not claim "eligible" beside a contraindication.
    @model_validator(mode="after")
    def _outcome_matches_reasons(self) -> Self:
        expected = outcome_for(self.reasons)
        if self.outcome != expected:
            raise ValueError(f"outcome {self.outcome} does not match its reasons, which give {expected}")
        return self


def age_on(birth_date: date, on: date) -> int:
    """Age in completed years. Someone born on 29 February turns a year older on 1 March in common years."""
    if birth_date > on:
        raise ValueError(f"date of birth {birth_date} is after the screening date {on}")
    had_birthday = (on.month, on.day) >= (birth_date.month, birth_date.day)
    return on.year - birth_date.year - (0 if had_birthday else 1)


def _reason(code: ReasonCode, detail: str) -> ScreeningReason:
    return ScreeningReason(code=code, kind=kind_of(code), detail=detail)


def screen(
    answers: ScreeningAnswers,
    *,
    birth_date: date,
    screened_on: date,
    bp_threshold: BloodPressureThreshold = DEFAULT_BP_THRESHOLD,
) -> ScreeningResult:
    """Applies every rule and lists every finding, contraindications first, in a fixed order."""
    reasons: list[ScreeningReason] = []
    add = reasons.append

    # --- absolute contraindications ---

    # Spravato PI 4: contraindicated in aneurysmal vascular disease (including thoracic and abdominal aorta,
    # intracranial and peripheral arterial vessels) or arteriovenous malformation.
    if answers.aneurysmal_vascular_disease_or_avm:
        add(_reason(ReasonCode.aneurysmal_vascular_disease_or_avm, "aneurysmal vascular disease or AVM"))
    # Spravato PI 4: contraindicated with a history of intracerebral hemorrhage.
    if answers.intracerebral_haemorrhage_history:
        add(_reason(ReasonCode.intracerebral_haemorrhage_history, "history of intracerebral haemorrhage"))
    # Spravato PI 4 and Ketalar PI Contraindications: hypersensitivity to esketamine, ketamine or an excipient.
    if answers.ketamine_hypersensitivity:
        add(_reason(ReasonCode.ketamine_hypersensitivity, "hypersensitivity to ketamine or esketamine"))
    # Spravato PI 5 (Embryo-fetal Toxicity) and 8.1: may cause fetal harm; not recommended in pregnancy. The
    # label makes this a warning, not a contraindication; this network's policy makes it absolute.
    if answers.pregnant:
        add(_reason(ReasonCode.pregnancy, "pregnant"))
    # Spravato PI 5 (Dissociation: assess patients with psychosis carefully, treat only if benefit outweighs
    # risk); Sanacora 2017 (psychosis a concern in patient selection). Ketamine is psychotomimetic, so active
    # psychosis is absolute here by policy, stricter than the label.
    if answers.current_psychosis:
        add(_reason(ReasonCode.current_psychosis, "current psychosis"))

    # --- cautions: need a medical review ---

    # Spravato PI 1 and 8.4: adults only; safety and effectiveness not established in paediatric patients.
    age = age_on(birth_date, screened_on)
    if age < ADULT_AGE_YEARS:
        add(_reason(ReasonCode.under_18, f"aged {age} on {screened_on.isoformat()}, under {ADULT_AGE_YEARS}"))
    # Spravato PI 8.2: breastfeeding is not recommended during treatment.
    if answers.breastfeeding:
        add(_reason(ReasonCode.breastfeeding, "breastfeeding"))
    # Sanacora 2017: a history of psychosis needs careful assessment; ketamine can worsen psychotic symptoms.
    if answers.psychosis_or_mania_history:
        add(_reason(ReasonCode.psychosis_or_mania_history, "history of psychosis or mania"))
    # Sanacora 2017: bipolar depression was studied with patients on mood stabilisers; risk of a manic switch.
    # Always reviewed; the detail tells the reviewer whether a mood stabiliser is taken.
    if answers.bipolar_disorder:
        on_or_not = "on" if answers.mood_stabiliser else "not on"
        add(_reason(ReasonCode.bipolar_disorder, f"bipolar disorder, {on_or_not} a mood stabiliser"))
    # Spravato PI 5 (Increases in Blood Pressure): assess before treatment; >140/90 as a general guide. Also
    # Ketalar PI Contraindications and Sanacora 2017 (uncontrolled hypertension). See bp_above for 140/90 itself.
    if bp_above(answers.systolic_mmhg, answers.diastolic_mmhg, bp_threshold):
        add(
            _reason(
                ReasonCode.bp_above_threshold,
                f"blood pressure {answers.systolic_mmhg}/{answers.diastolic_mmhg} mmHg "
                f"is above the site threshold {bp_threshold}",
            )
        )
    # Spravato PI boxed warning and 5 (Abuse and Misuse), 9 (Drug Abuse and Dependence); Sanacora 2017
    # (history of substance use).
    if answers.substance_use_disorder:
        add(_reason(ReasonCode.substance_use_disorder, "active substance use disorder or ketamine misuse"))
    # Spravato PI 8 (Hepatic Impairment): longer monitoring if moderate, not recommended if severe (Child-Pugh C).
    if answers.significant_liver_disease:
        add(_reason(ReasonCode.significant_liver_disease, "significant liver disease"))
    # Spravato PI 5 (contraindicated where a rise in blood pressure or intracranial pressure is a serious risk);
    # Ketalar PI precautions (raised cerebrospinal fluid pressure); Miller (raised intracranial pressure, and
    # raised intraocular pressure, hence glaucoma).
    if answers.raised_icp_or_glaucoma:
        add(_reason(ReasonCode.raised_icp_or_glaucoma, "raised intracranial pressure or glaucoma"))
    # No label names seizures: ketamine's effect on seizure threshold is uncertain and a seizure under
    # dissociation is hard to recognise and manage, so recent seizures go to review (clinic policy).
    if answers.seizure_in_last_year:
        add(_reason(ReasonCode.seizure_in_last_year, "seizure in the last year"))
    # Spravato PI 5 (cardiovascular and cerebrovascular conditions: assess benefit and risk); Ketalar PI
    # Contraindications; Sanacora 2017 (cardiovascular disease).
    if answers.cardiovascular_disease:
        add(_reason(ReasonCode.cardiovascular_disease, "cardiovascular disease"))
    # Spravato PI 7 (CNS depressants): more sedation; monitor closely.
    if answers.takes_benzodiazepines:
        add(_reason(ReasonCode.benzodiazepines, "takes a benzodiazepine"))
    # Spravato PI 7 (Psychostimulants): blood pressure rises further; monitor closely.
    if answers.takes_stimulants:
        add(_reason(ReasonCode.stimulants, "takes a stimulant"))
    # Spravato PI 7 (Monoamine Oxidase Inhibitors): blood pressure rises further; monitor closely.
    if answers.takes_maoi:
        add(_reason(ReasonCode.maoi, "takes a monoamine oxidase inhibitor"))

    return ScreeningResult(outcome=outcome_for(reasons), reasons=reasons)


# --- medical review ---


class ReviewDecision(StrEnum):
    approve = "approve"
    decline = "decline"


class MedicalReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    decision: ReviewDecision
    # Long enough that "ok" cannot stand in for the clinical reasoning a later reader needs.
    rationale: str = Field(min_length=10, max_length=4000)


class ReviewNotAllowed(Exception):
    """A review decision was given for a screening that takes none (eligible or ineligible)."""

    def __init__(self, outcome: ScreeningOutcome, decision: ReviewDecision) -> None:
        self.outcome = outcome
        self.decision = decision
        why = (
            "a contraindication cannot be overridden by a medical review"
            if outcome is ScreeningOutcome.ineligible
            else "the screening needs no medical review"
        )
        super().__init__(f"cannot record a decision to {decision} a screening that is {outcome}: {why}")


def review_allowed(result: ScreeningResult) -> bool:
    """Only cautions can be reviewed; contraindications are final and an eligible screening needs nothing."""
    return result.outcome is ScreeningOutcome.needs_medical_review


def eligibility_after_review(result: ScreeningResult, decision: MedicalReviewDecision | None) -> bool:
    """Whether the patient may start treatment: eligible outright, or needs review and was approved.

    Any decision (approve or decline) on a screening that takes no review raises ReviewNotAllowed: on an
    ineligible one it would be an attempt to override a contraindication, and on an eligible one it is a
    decision filed against the wrong screening, which is better refused than silently ignored.
    """
    if decision is not None and not review_allowed(result):
        raise ReviewNotAllowed(result.outcome, decision.decision)
    match result.outcome:
        case ScreeningOutcome.eligible:
            return True
        case ScreeningOutcome.ineligible:
            return False
        case ScreeningOutcome.needs_medical_review:
            # No decision yet means not yet: a pending review never lets treatment start.
            return decision is not None and decision.decision is ReviewDecision.approve
