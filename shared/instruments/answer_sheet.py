"""What a form shows the person filling it in: each item's wording and the words of its rating scale, and the score
so far while the items are being answered (the console shows it as they are typed).

Sources:
- PHQ-9 and GAD-7 item wording: LOINC's item names (loinc.py), in form order. Rating words: "Not at all",
  "Several days", "More than half the days", "Nearly every day" (0-3), as printed on the PHQ-9 and GAD-7 forms
  (Pfizer, "Instructions for Patient Health Questionnaire (PHQ) and GAD-7 Measures").
- PCL-5: the 20 items and the words of its 0-4 scale ("Not at all", "A little bit", "Moderately", "Quite a bit",
  "Extremely") from the PCL-5 as published by the National Center for PTSD (Weathers FW, Litz BT, Keane TM,
  Palmieri PA, Marx BP, Schnurr PP. The PTSD Checklist for DSM-5 (PCL-5), 2013; public domain), each item
  about "the stressful experience" and the past month.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.instruments import gad7, phq9
from shared.instruments.loinc import LOINC
from shared.instruments.pcl5 import DEFAULT_CUTOFF as PCL5_DEFAULT_CUTOFF
from shared.instruments.scoring import AnswerError, Instrument, Severity, band

_PHQ_RATINGS = ("Not at all", "Several days", "More than half the days", "Nearly every day")

_PCL5_ITEMS = (
    "Repeated, disturbing, and unwanted memories of the stressful experience",
    "Repeated, disturbing dreams of the stressful experience",
    "Suddenly feeling or acting as if the stressful experience were actually happening again",
    "Feeling very upset when something reminded you of the stressful experience",
    "Having strong physical reactions when something reminded you of the stressful experience",
    "Avoiding memories, thoughts, or feelings related to the stressful experience",
    "Avoiding external reminders of the stressful experience",
    "Trouble remembering important parts of the stressful experience",
    "Having strong negative beliefs about yourself, other people, or the world",
    "Blaming yourself or someone else for the stressful experience or what happened after it",
    "Having strong negative feelings such as fear, horror, anger, guilt, or shame",
    "Loss of interest in activities that you used to enjoy",
    "Feeling distant or cut off from other people",
    "Trouble experiencing positive feelings",
    "Irritable behavior, angry outbursts, or acting aggressively",
    "Taking too many risks or doing things that could cause you harm",
    'Being "superalert" or watchful or on guard',
    "Feeling jumpy or easily startled",
    "Having difficulty concentrating",
    "Trouble falling or staying asleep",
)


@dataclass(frozen=True)
class AnswerSheet:
    instrument: Instrument
    title: str
    period: str  # the time the questions ask about
    items: tuple[str, ...]
    ratings: tuple[str, ...]  # ratings[0] is the words for 0


def _loinc_items(instrument: Instrument) -> tuple[str, ...]:
    items = LOINC[instrument].items
    assert items is not None  # PHQ-9 and GAD-7 have every item's name
    return tuple(i.display for i in items)


SHEETS: dict[Instrument, AnswerSheet] = {
    Instrument.phq9: AnswerSheet(
        Instrument.phq9,
        "PHQ-9 (depression)",
        "Over the last 2 weeks, how often have you been bothered by any of the following problems?",
        _loinc_items(Instrument.phq9),
        _PHQ_RATINGS,
    ),
    Instrument.gad7: AnswerSheet(
        Instrument.gad7,
        "GAD-7 (anxiety)",
        "Over the last 2 weeks, how often have you been bothered by the following problems?",
        _loinc_items(Instrument.gad7),
        _PHQ_RATINGS,
    ),
    Instrument.pcl5: AnswerSheet(
        Instrument.pcl5,
        "PCL-5 (post-traumatic stress)",
        "In the past month, how much were you bothered by:",
        _PCL5_ITEMS,
        ("Not at all", "A little bit", "Moderately", "Quite a bit", "Extremely"),
    ),
}

_BANDS: dict[Instrument, tuple[tuple[int, Severity], ...]] = {
    Instrument.phq9: phq9.SEVERITY_BANDS,
    Instrument.gad7: gad7.SEVERITY_BANDS,
}


@dataclass(frozen=True)
class ScoreSoFar:
    """The score of a form being filled in. Unanswered items can only add, so the total so far is a lower bound,
    and so is its band: "at least moderate" until the last item is answered."""

    instrument: Instrument
    answered: int
    item_count: int
    total: int
    severity: Severity | None  # the band of the total so far (PHQ-9, GAD-7)
    complete: bool
    at_or_above_cutoff: bool | None  # PCL-5: reached the site's cutoff already (it cannot fall below it)
    safety_item_endorsed: bool  # PHQ-9 item 9 answered above 0: the flag will be raised on saving


def score_so_far(
    instrument: Instrument, answers: Sequence[int | None], *, pcl5_cutoff: int = PCL5_DEFAULT_CUTOFF
) -> ScoreSoFar:
    """``answers`` in form order, None for an item not answered yet. Raises AnswerError for a rating out of range
    or a sheet of the wrong length, naming the item, as the scorer does."""
    sheet = SHEETS[instrument]
    if len(answers) != len(sheet.items):
        raise AnswerError(f"expected {len(sheet.items)} answers, got {len(answers)}", instrument=instrument)
    for number, value in enumerate(answers, start=1):
        if value is not None and not 0 <= value < len(sheet.ratings):
            raise AnswerError(
                f"item {number}: {value} is out of range 0-{len(sheet.ratings) - 1}", instrument=instrument, item=number
            )
    given = [a for a in answers if a is not None]
    total = sum(given)
    bands = _BANDS.get(instrument)
    return ScoreSoFar(
        instrument=instrument,
        answered=len(given),
        item_count=len(sheet.items),
        total=total,
        severity=band(total, bands) if bands else None,
        complete=len(given) == len(sheet.items),
        at_or_above_cutoff=total >= pcl5_cutoff if instrument is Instrument.pcl5 else None,
        safety_item_endorsed=instrument is Instrument.phq9 and (answers[phq9.SAFETY_ITEM - 1] or 0) > 0,
    )
