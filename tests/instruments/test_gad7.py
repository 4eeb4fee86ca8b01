"""GAD-7: totals and every severity band boundary."""

import pytest

from shared.instruments import INSTRUMENT_VERSIONS, Instrument, Severity, score


def with_total(total: int) -> list[int]:
    answers = [0] * 7
    left = total
    for i in range(7):
        answers[i] = min(3, left)
        left -= answers[i]
    assert left == 0
    return answers


def test_worked_example_by_the_scoring_method() -> None:
    # Scores 0-3 per item, summed: 2 "several days" (1 each), 2 "more than half the days" (2 each) and
    # 2 "nearly every day" (3 each): 2 + 4 + 6 = 12, moderate.
    result = score("gad7", [1, 2, 3, 0, 3, 2, 1])
    assert result.total == 12
    assert result.severity is Severity.moderate


@pytest.mark.parametrize(
    ("total", "severity"),
    [
        (0, Severity.minimal),
        (4, Severity.minimal),
        (5, Severity.mild),
        (9, Severity.mild),
        (10, Severity.moderate),
        (14, Severity.moderate),
        (15, Severity.severe),
        (21, Severity.severe),
    ],
)
def test_every_band_boundary(total: int, severity: Severity) -> None:
    result = score(Instrument.gad7, with_total(total))
    assert result.total == total
    assert result.severity is severity


def test_the_gad7_has_no_moderately_severe_band() -> None:
    severities = {score("gad7", with_total(t)).severity for t in range(22)}
    assert Severity.moderately_severe not in severities


def test_no_safety_flag_and_no_pcl5_fields() -> None:
    result = score("gad7", [3] * 7)
    assert result.version == INSTRUMENT_VERSIONS[Instrument.gad7]
    assert result.item_count == 7
    assert result.safety_flag is False
    assert (result.clusters, result.endorsed, result.provisional_ptsd) == (None, None, None)
    assert (result.at_or_above_cutoff, result.cutoff) == (None, None)
