"""Words of a patient's prior-treatment history that several services share (intake records it; billing sends it
to a payer as the evidence of a prior authorisation), so each means the same everywhere. The rules over them
(adequacy, treatment resistance) are intake's: services/intake/prior_treatment.py; which trials count as failed
is here, because outcomes groups its cohorts by their number."""

from __future__ import annotations

from enum import StrEnum


class PriorTreatmentKind(StrEnum):
    antidepressant_trial = "antidepressant_trial"
    psychotherapy = "psychotherapy"
    ect = "ect"
    tms = "tms"
    # Lithium, a second-generation antipsychotic or thyroid hormone added to an antidepressant.
    other_augmentation = "other_augmentation"


class TreatmentOutcome(StrEnum):
    no_response = "no_response"
    partial_response = "partial_response"
    response_then_relapse = "response_then_relapse"
    not_tolerated = "not_tolerated"


class Antidepressant(StrEnum):
    """The antidepressants whose minimum adequate dose intake knows; any other is ``other`` with its name."""

    citalopram = "citalopram"
    escitalopram = "escitalopram"
    fluoxetine = "fluoxetine"
    fluvoxamine = "fluvoxamine"
    paroxetine = "paroxetine"
    sertraline = "sertraline"
    venlafaxine = "venlafaxine"
    desvenlafaxine = "desvenlafaxine"
    duloxetine = "duloxetine"
    levomilnacipran = "levomilnacipran"
    bupropion = "bupropion"
    mirtazapine = "mirtazapine"
    trazodone = "trazodone"
    vilazodone = "vilazodone"
    vortioxetine = "vortioxetine"
    amitriptyline = "amitriptyline"
    imipramine = "imipramine"
    nortriptyline = "nortriptyline"
    phenelzine = "phenelzine"
    tranylcypromine = "tranylcypromine"
    selegiline_transdermal = "selegiline_transdermal"
    other = "other"


class PsychotherapyType(StrEnum):
    cbt = "cbt"  # cognitive behavioural therapy
    ipt = "ipt"  # interpersonal psychotherapy
    other = "other"


class AugmentationAgent(StrEnum):
    lithium = "lithium"
    aripiprazole = "aripiprazole"
    brexpiprazole = "brexpiprazole"
    cariprazine = "cariprazine"
    quetiapine = "quetiapine"
    olanzapine = "olanzapine"
    liothyronine = "liothyronine"  # T3
    other = "other"


# [Spravato PI] 14: "not responded adequately". A partial response is not an adequate one; a response that was
# later lost, or a drug stopped because it was not tolerated, is not a non-response (clinic policy).
NOT_RESPONDED = frozenset({TreatmentOutcome.no_response, TreatmentOutcome.partial_response})


def failed_adequate_trial(
    kind: PriorTreatmentKind, *, current_episode: bool, adequate: bool | None, outcome: TreatmentOutcome
) -> bool:
    """An antidepressant trial of the current episode, adequate in dose and duration, without an adequate
    response: one of the trials that make depression treatment-resistant ([Spravato PI] 14). Intake counts them
    for treatment resistance; outcomes cuts its cohorts by their number."""
    return (
        kind is PriorTreatmentKind.antidepressant_trial
        and current_episode
        and adequate is True
        and outcome in NOT_RESPONDED
    )
