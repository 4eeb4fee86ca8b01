"""Prior-treatment rules: an antidepressant trial's adequacy, treatment resistance, and the words a payer reads.
Pure functions, no database, no broker."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.intake.prior_treatment import (
    MIN_ADEQUATE_WEEKS,
    MINIMUM_ADEQUATE_DAILY_DOSE,
    AntidepressantTrial,
    Augmentation,
    Neuromodulation,
    PriorTreatment,
    Psychotherapy,
    failed_adequate_trials,
    prior_treatment_from,
    treatment_resistant,
)
from shared.prior_treatment import Antidepressant, TreatmentOutcome


def trial(drug: str = "sertraline", dose: float = 150, weeks: float = 8, **changes: Any) -> AntidepressantTrial:
    data = {
        "kind": "antidepressant_trial",
        "drug": drug,
        "daily_dose_mg": dose,
        "duration_weeks": weeks,
        "outcome": "no_response",
        "current_episode": True,
        **changes,
    }
    found = prior_treatment_from(data)
    assert isinstance(found, AntidepressantTrial)
    return found


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    """Field name -> message; the tag of the union dropped from each location."""
    with pytest.raises(ValidationError) as caught:
        prior_treatment_from(data)
    return {".".join(str(p) for p in e["loc"][1:]): e["msg"] for e in caught.value.errors()}


# --- adequacy ---


def test_the_dose_table_knows_every_listed_antidepressant_and_cites_a_source() -> None:
    assert set(MINIMUM_ADEQUATE_DAILY_DOSE) == set(Antidepressant) - {Antidepressant.other}
    for drug, minimum in MINIMUM_ADEQUATE_DAILY_DOSE.items():
        assert minimum.mg_per_day > 0, drug
        assert minimum.source.startswith(("US PI", "clinic policy")), drug


def test_the_doses_a_payer_checks_most() -> None:
    """Pinned, so that a change to the table is a decision and not an accident."""
    expected = {"sertraline": 50, "fluoxetine": 20, "escitalopram": 10, "citalopram": 20, "paroxetine": 20}
    expected |= {"venlafaxine": 75, "duloxetine": 40, "bupropion": 300, "mirtazapine": 15}
    for drug, mg in expected.items():
        assert MINIMUM_ADEQUATE_DAILY_DOSE[Antidepressant(drug)].mg_per_day == mg, drug
    assert MIN_ADEQUATE_WEEKS == 6


@pytest.mark.parametrize("drug", sorted(MINIMUM_ADEQUATE_DAILY_DOSE), ids=str)
def test_adequate_at_the_minimum_dose_for_6_weeks_and_not_below_either(drug: Antidepressant) -> None:
    minimum = MINIMUM_ADEQUATE_DAILY_DOSE[drug].mg_per_day
    assert trial(drug, minimum, 6).adequate is True
    assert trial(drug, minimum * 2, 52).adequate is True
    below = trial(drug, minimum - 0.5, 6)
    assert below.adequate is False
    assert below.shortfalls() == [f"below the minimum effective dose of {minimum:g} mg/day"]
    short = trial(drug, minimum, 5.9)
    assert short.adequate is False and short.shortfalls() == ["under 6 weeks"]
    assert trial(drug, minimum - 0.5, 5).shortfalls() == [
        f"below the minimum effective dose of {minimum:g} mg/day",
        "under 6 weeks",
    ]


def test_an_unlisted_drug_is_not_judged() -> None:
    agomelatine = trial("other", 50, 12, drug_name="agomelatine")
    assert agomelatine.adequate is None and agomelatine.minimum_dose is None
    assert agomelatine.shortfalls() == []
    assert trial("other", 50, 3, drug_name="agomelatine").shortfalls() == ["under 6 weeks"]


def test_other_kinds_have_no_adequacy() -> None:
    therapy = prior_treatment_from(
        {"kind": "psychotherapy", "therapy": "cbt", "sessions": 16, "outcome": "no_response", "current_episode": True}
    )
    assert therapy.adequate is None


# --- treatment resistance ---


def test_one_adequate_failed_trial_is_not_treatment_resistance_and_two_are() -> None:
    sertraline = trial("sertraline", 150, 8)
    assert not treatment_resistant([sertraline])
    venlafaxine = trial("venlafaxine", 225, 10, outcome="partial_response")
    assert treatment_resistant([sertraline, venlafaxine])
    assert failed_adequate_trials([sertraline, venlafaxine]) == [sertraline, venlafaxine]


@pytest.mark.parametrize(
    ("second", "why"),
    [
        ({"drug": "sertraline", "dose": 200}, "the same antidepressant twice is one antidepressant"),
        ({"dose": 5}, "below the minimum effective dose"),
        ({"weeks": 5}, "under 6 weeks"),
        ({"current_episode": False}, "an earlier episode"),
        ({"outcome": "response_then_relapse"}, "it responded"),
        ({"outcome": "not_tolerated"}, "not a non-response"),
        ({"drug": "other", "drug_name": "agomelatine", "dose": 50}, "adequacy of an unlisted drug is not judged"),
    ],
)
def test_a_second_trial_that_does_not_count(second: dict[str, Any], why: str) -> None:
    first = trial("sertraline", 150, 8)
    changes = {k: v for k, v in second.items() if k not in ("drug", "dose", "weeks")}
    other = trial(second.get("drug", "escitalopram"), second.get("dose", 20), second.get("weeks", 8), **changes)
    assert not treatment_resistant([first, other]), why


def test_psychotherapy_ect_tms_and_augmentation_do_not_count_towards_the_two() -> None:
    history: list[PriorTreatment] = [
        trial("sertraline", 150, 8),
        Psychotherapy(kind="psychotherapy", therapy="cbt", sessions=20, outcome="no_response", current_episode=True),
        Neuromodulation(kind="ect", sessions=12, outcome="no_response", current_episode=True),
        Neuromodulation(kind="tms", sessions=36, outcome="no_response", current_episode=True),
        Augmentation(
            kind="other_augmentation",
            agent="lithium",
            daily_dose_mg=900,
            duration_weeks=8,
            outcome="no_response",
            current_episode=True,
        ),
    ]
    assert not treatment_resistant(history)
    assert treatment_resistant([*history, trial("mirtazapine", 30, 6, outcome="partial_response")])
    assert not treatment_resistant([])


# --- words for a payer ---


def test_summaries() -> None:
    assert (
        trial("sertraline", 150, 8).summary()
        == "sertraline 150 mg/day for 8 weeks (adequate): no response; current episode"
    )
    assert (
        trial(
            "venlafaxine",
            37.5,
            3,
            outcome="not_tolerated",
            current_episode=False,
            start_date="2024-01-08",
            end_date="2024-02-01",
        ).summary()
        == "venlafaxine 37.5 mg/day for 3 weeks (not adequate: below the minimum effective dose of 75 mg/day and "
        "under 6 weeks): not tolerated; earlier episode, 2024-01-08 to 2024-02-01"
    )
    assert (
        trial("selegiline_transdermal", 6, 1, outcome="partial_response", start_date="2024-01-08").summary()
        == "selegiline transdermal 6 mg/day for 1 week (not adequate: under 6 weeks): partial response; current "
        "episode, from 2024-01-08"
    )
    assert (
        trial("other", 50, 10, drug_name="agomelatine", outcome="response_then_relapse").summary()
        == "agomelatine 50 mg/day for 10 weeks (adequacy not judged: no minimum effective dose on file): response, "
        "then relapse; current episode"
    )
    words = {
        "psychotherapy (CBT), 16 sessions: partial response; current episode, until 2025-03-01": {
            "kind": "psychotherapy",
            "therapy": "cbt",
            "sessions": 16,
            "outcome": "partial_response",
            "end_date": "2025-03-01",
        },
        "psychotherapy (behavioural activation), 1 session: not tolerated; current episode": {
            "kind": "psychotherapy",
            "therapy": "other",
            "therapy_name": "behavioural activation",
            "sessions": 1,
            "outcome": "not_tolerated",
        },
        "ECT, 12 sessions: response, then relapse; current episode": {
            "kind": "ect",
            "sessions": 12,
            "outcome": "response_then_relapse",
        },
        "TMS, 36 sessions: no response; current episode": {"kind": "tms", "sessions": 36, "outcome": "no_response"},
        "lithium augmentation 900 mg/day for 8 weeks: no response; current episode": {
            "kind": "other_augmentation",
            "agent": "lithium",
            "daily_dose_mg": 900,
            "duration_weeks": 8,
            "outcome": "no_response",
        },
        "liothyronine (T3) augmentation 0.025 mg/day for 6 weeks: partial response; current episode": {
            "kind": "other_augmentation",
            "agent": "liothyronine",
            "daily_dose_mg": 0.025,
            "duration_weeks": 6,
            "outcome": "partial_response",
        },
        "pramipexole augmentation for 4 weeks: no response; current episode": {
            "kind": "other_augmentation",
            "agent": "other",
            "agent_name": "pramipexole",
            "duration_weeks": 4,
            "outcome": "no_response",
        },
    }
    for expected, data in words.items():
        assert prior_treatment_from({**data, "current_episode": True}).summary() == expected


# --- what is refused ---


def test_an_other_drug_therapy_or_agent_needs_its_name_and_a_listed_one_takes_none() -> None:
    assert errors_of({**trial().model_dump(), "drug": "other"}) == {
        "drug_name": "Value error, name the drug when drug is other"
    }
    assert errors_of({**trial().model_dump(), "drug_name": "Zoloft"}) == {
        "drug_name": "Value error, give a name only when drug is other; sertraline names itself"
    }
    therapy = {
        "kind": "psychotherapy",
        "therapy": "other",
        "sessions": 3,
        "outcome": "no_response",
        "current_episode": True,
    }
    assert set(errors_of(therapy)) == {"therapy_name"}
    augmentation = {"kind": "other_augmentation", "agent": "other", "duration_weeks": 3, "outcome": "no_response"}
    assert set(errors_of({**augmentation, "current_episode": True})) == {"agent_name"}


def test_dates_are_ordered_not_ahead_and_hold_the_duration() -> None:
    base = trial().model_dump()
    assert set(errors_of({**base, "start_date": "2025-03-01", "end_date": "2025-02-01"})) == {"end_date"}
    ahead = (date.today() + timedelta(days=3)).isoformat()
    assert set(errors_of({**base, "start_date": ahead})) == {"start_date"}
    assert set(errors_of({**base, "start_date": "1850-01-01"})) == {"start_date"}
    # 6 weeks are 42 days, both ends included: 2025-01-01 to 2025-02-11.
    assert trial(weeks=6, start_date="2025-01-01", end_date="2025-02-11").adequate is True
    assert errors_of({**base, "duration_weeks": 6, "start_date": "2025-01-01", "end_date": "2025-02-10"}) == {
        "duration_weeks": "Value error, longer than the 41 days from start_date to end_date"
    }


def test_implausible_numbers_are_refused() -> None:
    base = trial().model_dump()
    assert set(errors_of({**base, "daily_dose_mg": 0})) == {"daily_dose_mg"}
    assert set(errors_of({**base, "daily_dose_mg": float("nan")})) == {"daily_dose_mg"}
    # More than 8 times the minimum adequate dose: a typing error (1500 for 150).
    assert errors_of({**base, "daily_dose_mg": 1500}) == {
        "daily_dose_mg": "Value error, not a plausible daily dose of sertraline: above 400 mg/day"
    }
    assert trial(dose=400).adequate is True
    assert set(errors_of({**base, "duration_weeks": 0})) == {"duration_weeks"}
    session = {"kind": "tms", "outcome": "no_response", "current_episode": True}
    assert set(errors_of({**session, "sessions": 0})) == {"sessions"}
    assert set(errors_of({**session, "sessions": 501})) == {"sessions"}


def test_a_field_of_another_kind_or_an_unknown_one_is_refused() -> None:
    assert set(errors_of({**trial().model_dump(), "sessions": 12})) == {"sessions"}
    assert set(
        errors_of({"kind": "ect", "sessions": 6, "outcome": "no_response", "current_episode": True, "drug": "x"})
    ) == {"drug"}


def test_no_answer_defaults_to_the_current_episode_or_an_outcome() -> None:
    data = trial().model_dump()
    for field in ("current_episode", "outcome", "drug", "daily_dose_mg", "duration_weeks"):
        assert field in errors_of({k: v for k, v in data.items() if k != field}), field


def test_a_stored_treatment_reads_back_the_same() -> None:
    original = trial("bupropion", 300, 12, outcome=TreatmentOutcome.partial_response, start_date="2025-01-06")
    assert prior_treatment_from(original.model_dump(mode="json")) == original
