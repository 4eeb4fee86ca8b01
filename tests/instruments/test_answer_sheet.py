"""The score so far while a form is filled in: a lower bound that ends where the scorer ends."""

from __future__ import annotations

import random

import pytest

from shared.instruments import SPECS, AnswerError, Instrument, Severity, score
from shared.instruments.answer_sheet import SHEETS, score_so_far


@pytest.mark.parametrize("instrument", list(Instrument))
def test_each_sheet_matches_its_instruments_shape(instrument: Instrument) -> None:
    sheet, spec = SHEETS[instrument], SPECS[instrument]
    assert len(sheet.items) == spec.item_count
    assert len(sheet.ratings) == spec.item_max - spec.item_min + 1


@pytest.mark.parametrize("instrument", list(Instrument))
def test_a_complete_sheet_scores_as_the_scorer_does(instrument: Instrument) -> None:
    spec, rng = SPECS[instrument], random.Random(7)
    for _ in range(200):
        answers = [rng.randint(spec.item_min, spec.item_max) for _ in range(spec.item_count)]
        so_far, final = score_so_far(instrument, answers), score(instrument, answers)
        assert so_far.complete and so_far.total == final.total and so_far.severity == final.severity
        assert so_far.safety_item_endorsed == final.safety_flag
        if instrument is Instrument.pcl5:
            assert so_far.at_or_above_cutoff == final.at_or_above_cutoff


def test_a_partial_phq9_is_at_least_its_band_and_flags_item_9_at_once() -> None:
    # Kroenke et al. 2001: 10-14 is moderate. Four items at "nearly every day" already make 12.
    partial = score_so_far(Instrument.phq9, [3, 3, 3, 3, None, None, None, None, None])
    assert (partial.answered, partial.total, partial.severity, partial.complete) == (4, 12, Severity.moderate, False)
    assert not partial.safety_item_endorsed
    item9 = score_so_far(Instrument.phq9, [None] * 8 + [1])
    assert item9.safety_item_endorsed and item9.total == 1


def test_a_pcl5_reaches_the_cutoff_before_it_is_finished() -> None:
    # The PCL-5's suggested cutoff of 33 (National Center for PTSD) is reached by 9 items at "Extremely" (36).
    answers: list[int | None] = [4] * 9 + [None] * 11
    assert score_so_far(Instrument.pcl5, answers).at_or_above_cutoff is True
    assert score_so_far(Instrument.pcl5, answers, pcl5_cutoff=40).at_or_above_cutoff is False


def test_ratings_out_of_range_and_wrong_lengths_are_refused_by_item() -> None:
    with pytest.raises(AnswerError, match="item 2: 4 is out of range 0-3"):
        score_so_far(Instrument.phq9, [0, 4] + [None] * 7)
    with pytest.raises(AnswerError, match="expected 7 answers"):
        score_so_far(Instrument.gad7, [None] * 9)
