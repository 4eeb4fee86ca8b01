"""GAD-7: the seven-item Generalized Anxiety Disorder scale.

Spitzer RL, Kroenke K, Williams JB, Löwe B. A brief measure for assessing generalized anxiety disorder:
the GAD-7. Arch Intern Med 2006;166(10):1092-7.
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

# Seven items, each "not at all" 0 to "nearly every day" 3, summed to 0-21 (Spitzer et al. 2006).
SPEC = InstrumentSpec(Instrument.gad7, item_count=7, item_min=0, item_max=3)

# "Cut points of 5, 10, and 15 might be interpreted as representing mild, moderate, and severe levels of
# anxiety" (Spitzer et al. 2006); 0-4 is "minimal" (the GAD-7 scoring instructions in Pfizer's
# "Instructions for Patient Health Questionnaire (PHQ) and GAD-7 Measures"). There is no "moderately
# severe" band in the GAD-7.
SEVERITY_BANDS: tuple[tuple[int, Severity], ...] = (
    (0, Severity.minimal),
    (5, Severity.mild),
    (10, Severity.moderate),
    (15, Severity.severe),
)


def score_gad7(answers: Sequence[int]) -> Score:
    checked = check_answers(SPEC, answers)
    total = sum(checked)
    return Score(
        instrument=Instrument.gad7,
        version=INSTRUMENT_VERSIONS[Instrument.gad7],
        total=total,
        severity=band(total, SEVERITY_BANDS),
        clusters=None,
        endorsed=None,
        provisional_ptsd=None,
        at_or_above_cutoff=None,
        cutoff=None,
        # The GAD-7 has no suicide item.
        safety_flag=False,
        item_count=SPEC.item_count,
        answers=checked,
    )
