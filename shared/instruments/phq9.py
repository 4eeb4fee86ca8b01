"""PHQ-9: the nine-item depression module of the Patient Health Questionnaire.

Kroenke K, Spitzer RL, Williams JB. The PHQ-9: validity of a brief depression severity measure.
J Gen Intern Med 2001;16(9):606-13.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.instruments.scoring import (
    INSTRUMENT_VERSIONS,
    Instrument,
    InstrumentSpec,
    Score,
    Severity,
    band,
    check_answers,
)

# Nine items, each "not at all" 0 to "nearly every day" 3, summed to 0-27 (Kroenke et al. 2001).
SPEC = InstrumentSpec(Instrument.phq9, item_count=9, item_min=0, item_max=3)

# "PHQ-9 scores of 5, 10, 15, and 20 represented mild, moderate, moderately severe, and severe depression"
# (Kroenke et al. 2001, abstract); 0-4 is "minimal" (the PHQ-9 scoring table in Pfizer's "Instructions for
# Patient Health Questionnaire (PHQ) and GAD-7 Measures").
SEVERITY_BANDS: tuple[tuple[int, Severity], ...] = (
    (0, Severity.minimal),
    (5, Severity.mild),
    (10, Severity.moderate),
    (15, Severity.moderately_severe),
    (20, Severity.severe),
)

# Item 9, "thoughts that you would be better off dead or of hurting yourself in some way": any answer above
# "not at all" needs further assessment of suicide risk by someone competent to assess it, whatever the
# total (Pfizer, "Instructions for Patient Health Questionnaire (PHQ) and GAD-7 Measures").
SAFETY_ITEM = 9


def score_phq9(answers: Sequence[int]) -> Score:
    checked = check_answers(SPEC, answers)
    total = sum(checked)
    return Score(
        instrument=Instrument.phq9,
        version=INSTRUMENT_VERSIONS[Instrument.phq9],
        total=total,
        severity=band(total, SEVERITY_BANDS),
        clusters=None,
        endorsed=None,
        provisional_ptsd=None,
        at_or_above_cutoff=None,
        cutoff=None,
        safety_flag=checked[SAFETY_ITEM - 1] > 0,
        item_count=SPEC.item_count,
        answers=checked,
    )
