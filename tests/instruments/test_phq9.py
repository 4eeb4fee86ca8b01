"""PHQ-9: totals, every severity band boundary, and the item 9 safety flag."""

import pytest

from shared.instruments import INSTRUMENT_VERSIONS, Instrument, Severity, score


def with_total(total: int) -> list[int]:
    """Nine answers summing to ``total``, filled from item 1, with item 9 kept at 0 while the total allows."""
    answers = [0] * 9
    left = total
    for i in range(9):
        answers[i] = min(3, left)
        left -= answers[i]
    assert left == 0
    return answers


def test_worked_example_by_the_scoring_card_method() -> None:
    # The PHQ-9 scoring card adds up the columns: 3 checks under "several days" (1 each), 2 under "more
    # than half the days" (2 each), 1 under "nearly every day" (3): 3 + 4 + 3 = 10, moderate.
    answers = [2, 3, 1, 0, 1, 2, 1, 0, 0]
    result = score("phq9", answers)
    assert result.total == 10
    assert result.severity is Severity.moderate
    assert result.safety_flag is False


def test_the_docstring_example() -> None:
    result = score("phq9", [1, 2, 0, 1, 3, 0, 0, 1, 0])
    assert (result.total, result.severity, result.safety_flag) == (8, Severity.mild, False)


@pytest.mark.parametrize(
    ("total", "severity"),
    [
        (0, Severity.minimal),
        (4, Severity.minimal),
        (5, Severity.mild),
        (9, Severity.mild),
        (10, Severity.moderate),
        (14, Severity.moderate),
        (15, Severity.moderately_severe),
        (19, Severity.moderately_severe),
        (20, Severity.severe),
        (27, Severity.severe),
    ],
)
def test_every_band_boundary(total: int, severity: Severity) -> None:
    result = score(Instrument.phq9, with_total(total))
    assert result.total == total
    assert result.severity is severity


def test_severity_compares_as_its_label() -> None:
    assert score("phq9", with_total(17)).severity == "moderately_severe"


def test_item_9_of_0_raises_no_flag_even_with_a_severe_total() -> None:
    result = score("phq9", [3, 3, 3, 3, 3, 3, 3, 3, 0])
    assert result.total == 24
    assert result.severity is Severity.severe
    assert result.safety_flag is False


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_item_9_above_0_raises_the_flag_whatever_the_total(item9: int) -> None:
    result = score("phq9", [0, 0, 0, 0, 0, 0, 0, 0, item9])
    assert result.total == item9
    assert result.safety_flag is True


def test_a_total_of_1_from_item_9_is_minimal_and_flagged() -> None:
    result = score("phq9", [0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert result.severity is Severity.minimal
    assert result.safety_flag is True


def test_only_item_9_raises_the_flag() -> None:
    for item in range(8):
        answers = [0] * 9
        answers[item] = 3
        assert score("phq9", answers).safety_flag is False


def test_fields_that_do_not_apply_are_none() -> None:
    result = score("phq9", with_total(12))
    assert result.instrument is Instrument.phq9
    assert result.version == INSTRUMENT_VERSIONS[Instrument.phq9] == "PHQ-9 (Kroenke, Spitzer & Williams 2001)"
    assert result.item_count == 9
    assert (result.clusters, result.endorsed, result.provisional_ptsd) == (None, None, None)
    assert (result.at_or_above_cutoff, result.cutoff) == (None, None)


def test_the_pcl5_cutoff_does_not_touch_a_phq9() -> None:
    # A site's PCL-5 setting, even a wrong one, must not stop a depression score.
    assert score("phq9", with_total(6), pcl5_cutoff=999).total == 6
