"""Sedation (MOAA/S), dissociation (CADSS) and the check at the chair that discharge waits for (recovery_unmet)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.sessions.domain.recovery import (
    CADSS_VERSION,
    MOAAS_SCORE,
    CadssAnswerError,
    CadssPart,
    RecoveryCheck,
    SedationLevel,
    is_sedated,
    recovery_unmet,
    score_cadss,
    sedation_level,
    sedation_observed,
)
from services.sessions.domain.settings import DEFAULT_SETTINGS, SessionRuleSettings

S = DEFAULT_SETTINGS
END = datetime(2026, 3, 4, 10, 40, tzinfo=UTC)  # the end of the administration
NOW = END + timedelta(minutes=60)
NO_CHECK = (
    "no sedation and dissociation check since the dose ended: assess the patient (MOAA/S, dissociation, breathing)"
)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def check(at: datetime, moaa_s: int = 5, *, dissociation: bool = False, respiratory: bool = False) -> RecoveryCheck:
    return RecoveryCheck(
        assessed_at=at,
        moaa_s=moaa_s,
        sedation_level=sedation_level(moaa_s),
        dissociation_present=dissociation,
        respiratory_depression_present=respiratory,
        recorded_by="nurse-1",
    )


# --- sedation (MOAA/S) ---


def test_moaas_levels_and_scores() -> None:
    # [MOAA/S]: 5 responds readily to name ... 0 no response to a painful trapezius squeeze.
    assert [MOAAS_SCORE[level] for level in SedationLevel] == [5, 4, 3, 2, 1, 0]
    assert all(sedation_level(MOAAS_SCORE[level]) is level for level in SedationLevel)


@pytest.mark.parametrize("bad", [6, -1, True, False])
def test_moaas_score_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError, match="MOAA/S"):
        sedation_level(bad)


def test_sedation_is_anything_below_fully_alert() -> None:
    # [Spravato PI] trials: MOAA/S 4 is already mild sedation.
    assert not is_sedated(SedationLevel.responds_readily)
    assert all(is_sedated(level) for level in SedationLevel if level is not SedationLevel.responds_readily)
    assert sedation_observed([SedationLevel.responds_readily, SedationLevel.lethargic]) is True
    assert sedation_observed([SedationLevel.responds_readily] * 3) is False
    assert sedation_observed([]) is False


# --- CADSS ---


def test_cadss_total_is_the_subjective_items() -> None:
    # [Bremner 1998]: 23 subjective items and 5 observer items, each 0-4.
    assert score_cadss([0] * 23).total == 0
    full = score_cadss([4] * 23, [4] * 5)
    assert (full.total, full.observer_total, full.version) == (92, 20, CADSS_VERSION)
    assert CADSS_VERSION == "CADSS (Bremner et al. 1998)"


def test_cadss_observer_items_are_optional_and_kept_apart() -> None:
    answers = [1] * 10 + [2] * 13
    without = score_cadss(answers)
    assert (without.total, without.observer_total, without.observer_answers) == (36, None, None)
    assert without.subjective_answers == tuple(answers)
    with_observer = score_cadss(answers, [3, 0, 1, 0, 2])
    assert (with_observer.total, with_observer.observer_total) == (36, 6)


@pytest.mark.parametrize(("value", "says"), [(5, "item 5: 5 is out of range 0-4"), (-1, "item 5: -1 is out of")])
def test_cadss_item_out_of_range_names_the_item(value: int, says: str) -> None:
    answers = [0] * 23
    answers[4] = value
    with pytest.raises(CadssAnswerError, match=says) as caught:
        score_cadss(answers)
    assert (caught.value.item, caught.value.part) == (5, CadssPart.subjective)


def test_cadss_observer_item_out_of_range_names_the_observer_item() -> None:
    with pytest.raises(CadssAnswerError, match="observer item 3: 7 is out of range 0-4") as caught:
        score_cadss([0] * 23, [0, 0, 7, 0, 0])
    assert (caught.value.item, caught.value.part) == (3, CadssPart.observer)


@pytest.mark.parametrize(
    ("subjective", "observer"),
    [
        ([0] * 22, None),
        ([0] * 24, None),
        ([0] * 23, [0] * 4),
        ([0] * 23, [0] * 6),
        ("0" * 23, None),
        (None, None),
        ([0] * 22 + [True], None),
        ([0] * 22 + [2.5], None),
    ],
)
def test_cadss_malformed_answers(subjective: Any, observer: Any) -> None:
    with pytest.raises(CadssAnswerError):
        score_cadss(subjective, observer)


# --- the check at the chair ---


@pytest.mark.parametrize("moaa_s", [-1, 6])
def test_a_check_needs_a_moaas_score_of_0_to_5(moaa_s: int) -> None:
    with pytest.raises(ValidationError):
        RecoveryCheck(
            assessed_at=END,
            moaa_s=moaa_s,
            sedation_level=SedationLevel.responds_readily,
            dissociation_present=False,
            respiratory_depression_present=False,
            recorded_by="nurse-1",
        )


def test_a_check_whose_moaas_score_and_level_disagree_is_refused() -> None:
    with pytest.raises(ValidationError):
        RecoveryCheck(
            assessed_at=END,
            moaa_s=3,
            sedation_level=SedationLevel.responds_readily,
            dissociation_present=False,
            respiratory_depression_present=False,
            recorded_by="nurse-1",
        )


@pytest.mark.parametrize(
    ("checks", "unmet"),
    [
        ([check(NOW - minutes(5))], []),
        ([], [NO_CHECK]),
        # a check before the administration ended, or after now, does not describe the patient now
        ([check(END - minutes(1))], [NO_CHECK]),
        ([check(NOW + minutes(1))], [NO_CHECK]),
        # a check at the very end counts (here 60 minutes old, so too old)
        (
            [check(END)],
            ["the last sedation and dissociation check is 1 h old: check again (at most 15 minutes old at discharge)"],
        ),
        # at most 15 minutes old at discharge: exactly 15 counts, 16 does not
        ([check(NOW - minutes(15))], []),
        (
            [check(NOW - minutes(16))],
            [
                "the last sedation and dissociation check is 16 min old: check again "
                "(at most 15 minutes old at discharge)"
            ],
        ),
        # [Spravato REMS]: monitor until sedation, dissociation and respiratory depression have resolved
        (
            [check(NOW - minutes(5), 4)],
            ["still sedated (MOAA/S 4 of 5): wait until the patient responds readily to their name"],
        ),
        ([check(NOW - minutes(5), dissociation=True)], ["dissociation has not resolved"]),
        ([check(NOW - minutes(5), respiratory=True)], ["respiratory depression has not resolved"]),
        # only the latest check counts, in whatever order they are given
        ([check(NOW - minutes(2)), check(NOW - minutes(20), 2, dissociation=True)], []),
        (
            [check(NOW - minutes(2), 3), check(NOW - minutes(10))],
            ["still sedated (MOAA/S 3 of 5): wait until the patient responds readily to their name"],
        ),
        # every reason together
        (
            [check(NOW - minutes(20), 4, dissociation=True, respiratory=True)],
            [
                "the last sedation and dissociation check is 20 min old: check again (at most 15 minutes old at "
                "discharge)",
                "still sedated (MOAA/S 4 of 5): wait until the patient responds readily to their name",
                "dissociation has not resolved",
                "respiratory depression has not resolved",
            ],
        ),
    ],
)
def test_recovery_unmet(checks: list[RecoveryCheck], unmet: list[str]) -> None:
    assert recovery_unmet(checks, administration_end=END, now=NOW, settings=S) == unmet


def test_the_age_of_the_check_is_a_site_setting() -> None:
    site = SessionRuleSettings(discharge_reading_max_age_minutes=10)
    assert recovery_unmet([check(NOW - minutes(10))], administration_end=END, now=NOW, settings=site) == []
    assert recovery_unmet([check(NOW - minutes(11))], administration_end=END, now=NOW, settings=site) != []
