"""Adverse events: severity by [CTCAE v5] grade, seriousness by the criteria of [21 CFR 312.32](a)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.sessions.domain.adverse_events import (
    CTCAE_GRADE,
    AdverseEvent,
    AdverseEventSeverity,
    AdverseEventType,
    is_serious,
)

NO_CRITERIA = {
    "resulted_in_death": False,
    "life_threatening": False,
    "hospitalisation": False,
    "persistent_disability": False,
    "congenital_anomaly": False,
    "important_medical_event": False,
}


def event(**changes: Any) -> AdverseEvent:
    return AdverseEvent.model_validate({"type": "nausea", "severity": "mild", **NO_CRITERIA, **changes})


def test_ctcae_grades() -> None:
    # [CTCAE v5]: grade 1 mild ... grade 5 death.
    assert [CTCAE_GRADE[s] for s in AdverseEventSeverity] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("severity", ["mild", "moderate", "severe"])
def test_severity_alone_is_not_seriousness(severity: str) -> None:
    # [21 CFR 312.32](a): a severe (grade 3) event that meets no criterion is not serious.
    assert is_serious(event(severity=severity)) is False


@pytest.mark.parametrize(
    "criterion", ["hospitalisation", "persistent_disability", "congenital_anomaly", "important_medical_event"]
)
@pytest.mark.parametrize("severity", ["mild", "severe"])
def test_each_criterion_alone_makes_it_serious_at_any_severity(criterion: str, severity: str) -> None:
    assert is_serious(event(severity=severity, **{criterion: True})) is True


def test_life_threatening_is_serious() -> None:
    assert is_serious(event(severity="life_threatening", life_threatening=True)) is True
    # an event that put the patient at risk of death is life-threatening whatever its grade was recorded as
    assert is_serious(event(type="hypertension", severity="severe", life_threatening=True)) is True


def test_death_is_serious_and_grade_5() -> None:
    death = event(type="respiratory_depression", severity="death", resulted_in_death=True, life_threatening=True)
    assert is_serious(death) is True
    assert CTCAE_GRADE[death.severity] == 5


@pytest.mark.parametrize(
    "changes",
    [
        {"type": "other"},  # "other" must say what it was
        {"type": "other", "description": "   "},
        {"severity": "death"},  # grade 5 is a death, and a death is grade 5
        {"severity": "severe", "resulted_in_death": True},
        {"severity": "life_threatening"},  # grade 4 is life-threatening
        {"type": "seizure"},
        {"severity": "grade 3"},
        {"unknown": True},
    ],
)
def test_inconsistent_adverse_events_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        event(**changes)


def test_other_with_a_description_is_accepted() -> None:
    other = event(type="other", description="  headache  ")
    assert (other.type, other.description) == (AdverseEventType.other, "headache")


@pytest.mark.parametrize("left_out", list(NO_CRITERIA))
def test_no_criterion_has_a_default(left_out: str) -> None:
    # An unasked seriousness criterion must not read as an absent one.
    answers = {k: v for k, v in NO_CRITERIA.items() if k != left_out}
    with pytest.raises(ValidationError, match=left_out):
        AdverseEvent.model_validate({"type": "nausea", "severity": "mild", **answers})
