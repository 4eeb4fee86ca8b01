"""Eligibility screening for ketamine-assisted psychotherapy: pure rules, no I/O.

The screening sorts what it finds into two kinds. A *contraindication* makes the patient ineligible and no
reviewer can override it. A *caution* sends the screening to a medical review, whose decision is recorded
separately (`MedicalReviewDecision`). Every finding is listed, never just the first, so a reviewer sees the
whole picture at once.

A re-screening that no longer finds a contraindication an earlier screening found is not eligible outright:
it needs a clinician to confirm the contraindication has resolved (`contraindication_cleared`), see
`cleared_contraindications`.

Sources cited below:
- [Spravato PI]: SPRAVATO (esketamine) nasal spray, US prescribing information, Janssen: boxed warning,
  section 4 (Contraindications), 5 (Warnings and Precautions), 7 (Drug Interactions), 8 (Use in Specific
  Populations).
- [Spravato SmPC]: Spravato 28 mg nasal spray, EU summary of product characteristics, Janssen-Cilag
  International: 4.3 (Contraindications) and 4.4 (Special warnings and precautions for use).
- [Ketalar PI]: KETALAR (ketamine hydrochloride) injection, US prescribing information, Par: Contraindications
  ("patients in whom a significant elevation of blood pressure would constitute a serious hazard") and
  Precautions (raised cerebrospinal fluid pressure).
- [Sanacora 2017]: Sanacora G, et al., "A Consensus Statement on the Use of Ketamine in the Treatment of Mood
  Disorders", JAMA Psychiatry 2017;74(4):399-405, section on patient selection.
- [ACC/AHA 2017]: Whelton PK, et al., 2017 ACC/AHA guideline for high blood pressure in adults (stage 2 is
  systolic >= 140 or diastolic >= 90 mmHg).
- [Miller]: Miller's Anesthesia, "Nonbarbiturate intravenous anesthetics", ketamine contraindications (raised
  intracranial pressure; raised intraocular pressure would be harmful).
- [Shahani 2007]: Shahani R, et al., "Ketamine-associated ulcerative cystitis: a new clinical entity", Urology
  2007;69(5):810-812 (ketamine-associated uropathy).
Which findings are absolute and which need review is this network's clinical policy; where it is stricter than
a label (pregnancy, current psychosis, suicidal intent that needs a higher level of care) the comment on the rule
says so.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from shared.instants import age_on

# Spravato PI 1 (adults only) and 8.4 (not approved in paediatric patients): under 18 is off any label.
ADULT_AGE_YEARS = 18
# Spravato SmPC 4.4: "sleep apnoea with morbid obesity (BMI >= 35)"; 35 itself counts.
SLEEP_APNOEA_BMI_KG_M2 = 35.0
# Plausible adult body-mass indices: outside these the number is a typing error, not a patient.
BMI_MIN, BMI_MAX = 10.0, 100.0


class ReasonKind(StrEnum):
    contraindication = "contraindication"
    caution = "caution"


class ReasonCode(StrEnum):
    """Stable codes: stored, sent in events and matched by other services, so never rename one."""

    # contraindications
    aneurysmal_vascular_disease_or_avm = "aneurysmal_vascular_disease_or_avm"
    intracerebral_haemorrhage_history = "intracerebral_haemorrhage_history"
    cardiovascular_event_in_last_6_weeks = "cardiovascular_event_in_last_6_weeks"
    ketamine_hypersensitivity = "ketamine_hypersensitivity"
    pregnancy = "pregnancy"
    current_psychosis = "current_psychosis"
    suicidal_intent_needs_higher_care = "suicidal_intent_needs_higher_care"
    # cautions
    contraindication_cleared = "contraindication_cleared"
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
    hypertensive_encephalopathy_history = "hypertensive_encephalopathy_history"
    stroke_history = "stroke_history"
    cerebrovascular_disease = "cerebrovascular_disease"
    untreated_hyperthyroidism = "untreated_hyperthyroidism"
    copd_or_pulmonary_insufficiency = "copd_or_pulmonary_insufficiency"
    sleep_apnoea_with_obesity = "sleep_apnoea_with_obesity"
    cystitis_or_urinary_symptoms = "cystitis_or_urinary_symptoms"
    benzodiazepines = "benzodiazepines"
    opioids = "opioids"
    other_sedatives = "other_sedatives"
    alcohol = "alcohol"
    stimulants = "stimulants"
    maoi = "maoi"


_CONTRAINDICATIONS = frozenset(
    {
        ReasonCode.aneurysmal_vascular_disease_or_avm,
        ReasonCode.intracerebral_haemorrhage_history,
        ReasonCode.cardiovascular_event_in_last_6_weeks,
        ReasonCode.ketamine_hypersensitivity,
        ReasonCode.pregnancy,
        ReasonCode.current_psychosis,
        ReasonCode.suicidal_intent_needs_higher_care,
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
    cardiovascular_event_in_last_6_weeks: bool = Field(
        description="a cardiovascular event, such as a myocardial infarction, in the last 6 weeks"
    )
    ketamine_hypersensitivity: bool = Field(description="hypersensitivity to ketamine, esketamine or an excipient")
    pregnant: bool
    current_psychosis: bool = Field(description="psychotic symptoms now")
    suicidal_intent_needs_higher_care: bool = Field(
        description="active suicidal intent that needs a higher level of care (such as inpatient) than an "
        "outpatient clinic gives"
    )

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
    hypertensive_encephalopathy_history: bool = Field(description="any past hypertensive encephalopathy")
    stroke_history: bool = Field(description="any past stroke, ischaemic or haemorrhagic")
    cerebrovascular_disease: bool = Field(
        description="cerebrovascular disease, such as a transient ischaemic attack or carotid or intracranial "
        "arterial stenosis"
    )
    untreated_hyperthyroidism: bool = Field(description="hyperthyroidism that is untreated or not sufficiently treated")
    copd_or_pulmonary_insufficiency: bool = Field(
        description="chronic obstructive pulmonary disease or other significant pulmonary insufficiency"
    )
    sleep_apnoea: bool = Field(description="obstructive or central sleep apnoea, diagnosed or suspected")
    bmi_kg_m2: float = Field(
        ge=BMI_MIN, le=BMI_MAX, allow_inf_nan=False, description="body-mass index at screening, kg/m²"
    )
    cystitis_or_urinary_symptoms: bool = Field(
        description="cystitis, or other lower urinary-tract symptoms (frequency, urgency, pain, blood in the urine)"
    )
    takes_benzodiazepines: bool
    takes_opioids: bool = Field(description="any opioid, prescribed or not, including opioid maintenance therapy")
    takes_other_sedatives: bool = Field(
        description="a CNS depressant other than a benzodiazepine or an opioid (such as a z-drug, barbiturate, "
        "gabapentinoid or sedating antihistamine)"
    )
    drinks_alcohol: bool = Field(description="drinks alcohol currently, in any amount")
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


def _reason(code: ReasonCode, detail: str) -> ScreeningReason:
    return ScreeningReason(code=code, kind=kind_of(code), detail=detail)


def screen(
    answers: ScreeningAnswers,
    *,
    birth_date: date,
    screened_on: date,
    earlier: Sequence[EarlierScreening],
    bp_threshold: BloodPressureThreshold = DEFAULT_BP_THRESHOLD,
) -> ScreeningResult:
    """Applies every rule and lists every finding, contraindications first, in a fixed order.

    `earlier` is the patient's earlier screenings, newest first (empty for a first screening). It has no
    default, so a caller cannot forget it and let a re-screening clear a contraindication unreviewed.
    """
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
    # Spravato SmPC 4.3: contraindicated after a "recent (within 6 weeks) cardiovascular event, including
    # myocardial infarction (MI)".
    if answers.cardiovascular_event_in_last_6_weeks:
        add(
            _reason(
                ReasonCode.cardiovascular_event_in_last_6_weeks,
                "cardiovascular event (such as a myocardial infarction) in the last 6 weeks",
            )
        )
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
    # Spravato PI boxed warning and 5 (Suicidal Thoughts and Behaviors): monitor for suicidal thoughts; the
    # label also says esketamine does not preclude hospitalisation where clinically warranted. Clinic policy:
    # an outpatient KAP clinic cannot give the level of care (constant observation, inpatient admission) that
    # active suicidal intent needs, so it is absolute here; the patient is referred to crisis or inpatient care
    # and re-screened afterwards. Suicidal thoughts without such intent are not this question.
    if answers.suicidal_intent_needs_higher_care:
        add(
            _reason(
                ReasonCode.suicidal_intent_needs_higher_care,
                "active suicidal intent needing a higher level of care than outpatient treatment",
            )
        )

    # --- cautions: need a medical review ---

    # Clinic policy (see cleared_contraindications): a contraindication that an earlier screening found and this
    # one does not must be confirmed resolved by a clinician before treatment. First, since it frames the rest.
    cleared = cleared_contraindications(earlier, reasons)
    if cleared is not None:
        add(cleared)

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
    # Spravato PI 5 (Increases in Blood Pressure): with a history of hypertensive encephalopathy even a small
    # rise in blood pressure risks encephalopathy, so monitor more intensively; Spravato SmPC 4.4.
    if answers.hypertensive_encephalopathy_history:
        add(_reason(ReasonCode.hypertensive_encephalopathy_history, "history of hypertensive encephalopathy"))
    # Spravato PI 5 (Increases in Blood Pressure: assess patients with cardiovascular and cerebrovascular
    # conditions for benefit and risk before prescribing); Spravato SmPC 4.4.
    if answers.stroke_history:
        add(_reason(ReasonCode.stroke_history, "history of stroke"))
    # Spravato PI 5 (Increases in Blood Pressure: cardiovascular and cerebrovascular conditions); Spravato SmPC
    # 4.4. Asked apart from a past stroke so that a reviewer sees which it is.
    if answers.cerebrovascular_disease:
        add(_reason(ReasonCode.cerebrovascular_disease, "cerebrovascular disease"))
    # Spravato SmPC 4.4: hyperthyroidism that has not been sufficiently treated; treat only if the benefit
    # outweighs the risk (a rise in blood pressure and heart rate weighs more there).
    if answers.untreated_hyperthyroidism:
        add(_reason(ReasonCode.untreated_hyperthyroidism, "untreated or insufficiently treated hyperthyroidism"))
    # Spravato SmPC 4.4: significant pulmonary insufficiency, including COPD (respiratory depression; also
    # Spravato PI 5, Respiratory Depression).
    if answers.copd_or_pulmonary_insufficiency:
        add(_reason(ReasonCode.copd_or_pulmonary_insufficiency, "COPD or significant pulmonary insufficiency"))
    # Spravato SmPC 4.4: sleep apnoea with morbid obesity (BMI >= 35). Sleep apnoea at a lower BMI, and a high
    # BMI without sleep apnoea, are not this rule.
    if answers.sleep_apnoea and answers.bmi_kg_m2 >= SLEEP_APNOEA_BMI_KG_M2:
        add(
            _reason(
                ReasonCode.sleep_apnoea_with_obesity,
                f"sleep apnoea with a BMI of {answers.bmi_kg_m2:g} kg/m², at or above {SLEEP_APNOEA_BMI_KG_M2:g}",
            )
        )
    # Spravato PI 5 (Ulcerative or Interstitial Cystitis: monitor urinary-tract and bladder symptoms); Shahani
    # 2007 (ketamine-associated uropathy). Existing symptoms need a baseline and a plan before treatment.
    if answers.cystitis_or_urinary_symptoms:
        add(_reason(ReasonCode.cystitis_or_urinary_symptoms, "cystitis or other urinary-tract symptoms"))
    # Spravato PI 7 (CNS depressants): more sedation; monitor closely.
    if answers.takes_benzodiazepines:
        add(_reason(ReasonCode.benzodiazepines, "takes a benzodiazepine"))
    # Spravato PI 7 (CNS depressants, which names opioids): more sedation; and 5 (Respiratory Depression).
    if answers.takes_opioids:
        add(_reason(ReasonCode.opioids, "takes an opioid"))
    # Spravato PI 7 (CNS depressants): more sedation; monitor closely. The benzodiazepine and opioid questions
    # are asked on their own.
    if answers.takes_other_sedatives:
        add(_reason(ReasonCode.other_sedatives, "takes another sedative (a CNS depressant)"))
    # Spravato PI 7 (CNS depressants, which names alcohol): more sedation; monitor closely.
    if answers.drinks_alcohol:
        add(_reason(ReasonCode.alcohol, "drinks alcohol"))
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


# --- re-screening ---


class EarlierScreening(BaseModel):
    """What the re-screening rule needs to know of one of the patient's earlier screenings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    screened_on: date
    result: ScreeningResult
    # Its medical review, if one was decided.
    decision: MedicalReviewDecision | None


def cleared_contraindications(
    earlier: Sequence[EarlierScreening], found_now: Sequence[ScreeningReason]
) -> ScreeningReason | None:
    """The `contraindication_cleared` caution, when a re-screening no longer finds an earlier contraindication.

    Clinic policy: a contraindication does not clear itself by being answered "no" the next time; a clinician
    confirms it has resolved, so the new screening needs a medical review instead of being eligible outright.

    `earlier` is newest first. The latest earlier screening decides: its contraindications that are not found
    now are the cleared ones. When that screening was itself a clearance that no clinician approved (its review
    is pending or was declined), the contraindications it was clearing are still unconfirmed, so the walk goes
    on to the screening before it; otherwise a second screening would make the patient eligible without the
    review. A clearance that a clinician approved ends the walk, and so does a screening that found no
    contraindication and cleared none: such a screening's successor is unaffected.
    """
    # code -> date of the newest earlier screening that found it
    found_before: dict[ReasonCode, date] = {}
    for screening in earlier:
        codes = [r.code for r in screening.result.reasons]
        for code in codes:
            if kind_of(code) is ReasonKind.contraindication:
                found_before.setdefault(code, screening.screened_on)
        approved = screening.decision is not None and screening.decision.decision is ReviewDecision.approve
        if ReasonCode.contraindication_cleared not in codes or approved:
            break
    now = {r.code for r in found_now}
    cleared = {code: on for code, on in found_before.items() if code not in now}
    if not cleared:
        return None
    # In the fixed order of the codes, so the same history always reads the same.
    named = ", ".join(
        f"{code.value} (screening of {cleared[code].isoformat()})" for code in ReasonCode if code in cleared
    )
    return _reason(
        ReasonCode.contraindication_cleared,
        f"no longer found, a clinician must confirm it has resolved: {named}",
    )
