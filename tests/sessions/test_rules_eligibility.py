"""Whether a patient may start or continue treatment: what intake told sessions, the age of the screening, and any
open PHQ-9 item-9 safety flag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.sessions.domain.eligibility import PatientStanding, ScreeningOutcome, treatment_blockers
from services.sessions.domain.settings import DEFAULT_SETTINGS, SessionRuleSettings

S = DEFAULT_SETTINGS
NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
READY: dict[str, Any] = {
    "known": True,
    "active": True,
    "eligible": True,
    "screening_outcome": ScreeningOutcome.eligible,
    "screened_at": NOW - timedelta(days=30),
    "consented": True,
    "ever_consented": True,
    "open_safety_flags": 0,
}
SAFETY_FLAG = "an open PHQ-9 item-9 safety flag: a clinician must assess suicide risk and acknowledge the flag first"


def blockers(settings: SessionRuleSettings = S, **changes: Any) -> list[str]:
    return treatment_blockers(PatientStanding.model_validate({**READY, **changes}), NOW, settings)


def test_a_ready_patient_has_no_blockers() -> None:
    assert blockers() == []
    # approved on medical review: intake screened "needs review", the clinician approved
    assert blockers(screening_outcome=ScreeningOutcome.needs_medical_review) == []


def test_an_unknown_patient_is_one_blocker_whatever_else() -> None:
    assert blockers(known=False, active=False, consented=False, open_safety_flags=2) == [
        "sessions has not learnt of this patient from intake yet (registration, screening and consent)"
    ]


@pytest.mark.parametrize(
    ("changes", "blocker"),
    [
        ({"active": False}, "the patient's record is deactivated"),
        ({"eligible": False, "screening_outcome": None, "screened_at": None}, "the patient has not been screened"),
        (
            {"eligible": False, "screening_outcome": ScreeningOutcome.needs_medical_review},
            "the screening needs a clinician's medical review, not yet approved",
        ),
        (
            {"eligible": False, "screening_outcome": ScreeningOutcome.ineligible},
            "the screening found an absolute contraindication",
        ),
        (
            {"eligible": False, "screening_outcome": ScreeningOutcome.eligible},
            "the patient is not eligible: the medical review declined",
        ),
        ({"consented": False, "ever_consented": False}, "no signed consent"),
        ({"consented": False, "ever_consented": True}, "consent was withdrawn"),
        ({"open_safety_flags": 1}, SAFETY_FLAG),
        ({"open_safety_flags": 3}, SAFETY_FLAG),
    ],
)
def test_each_blocker(changes: dict[str, Any], blocker: str) -> None:
    assert blockers(**changes) == [blocker]


@pytest.mark.parametrize(
    ("age", "expired"),
    [
        # Clinic policy: a screening counts for 180 days. Strictly older blocks; exactly 180 days passes.
        (timedelta(days=179), False),
        (timedelta(days=180), False),
        (timedelta(days=180, seconds=1), True),
        (timedelta(days=181), True),
    ],
)
def test_eligibility_expires_after_180_days(age: timedelta, expired: bool) -> None:
    found = blockers(screened_at=NOW - age)
    if expired:
        assert found == [
            f"the eligibility screening of {(NOW - age):%Y-%m-%d} is older than the site's 180 days: screen the "
            "patient again"
        ]
    else:
        assert found == []


def test_the_expiry_names_the_screening_date() -> None:
    assert blockers(screened_at=datetime(2025, 9, 1, 9, 0, tzinfo=UTC)) == [
        "the eligibility screening of 2025-09-01 is older than the site's 180 days: screen the patient again"
    ]


def test_the_eligibility_interval_is_a_site_setting() -> None:
    site = SessionRuleSettings(eligibility_valid_days=90)
    assert blockers(site, screened_at=NOW - timedelta(days=90)) == []
    assert len(blockers(site, screened_at=NOW - timedelta(days=91))) == 1


def test_an_ineligible_patient_is_not_also_told_the_screening_expired() -> None:
    old = NOW - timedelta(days=400)
    assert blockers(eligible=False, screening_outcome=ScreeningOutcome.ineligible, screened_at=old) == [
        "the screening found an absolute contraindication"
    ]


def test_every_blocker_is_listed_together() -> None:
    found = blockers(active=False, screened_at=NOW - timedelta(days=200), consented=False, open_safety_flags=1)
    assert [b.split(":")[0] for b in found] == [
        "the patient's record is deactivated",
        "the eligibility screening of 2025-08-16 is older than the site's 180 days",
        "consent was withdrawn",
        "an open PHQ-9 item-9 safety flag",
    ]
