"""Whether a patient may start or continue treatment, from what sessions has learnt of them (intake's events and
its own measures). Pure: the service loads a `PatientStanding`, the rule says what blocks.

Sources (docs/clinical-rules.md): intake's screening rules; [PHQ-9] item 9 (Kroenke 2001); clinic policy for
the eligibility interval.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from services.sessions.domain.settings import SessionRuleSettings


class ScreeningOutcome(StrEnum):
    """As intake's screening reports it (services/intake/screening.py)."""

    eligible = "eligible"
    needs_medical_review = "needs_medical_review"
    ineligible = "ineligible"


class PatientStanding(BaseModel):
    model_config = ConfigDict(frozen=True)

    known: bool
    active: bool
    eligible: bool
    screening_outcome: ScreeningOutcome | None
    screened_at: datetime | None
    consented: bool
    ever_consented: bool
    # PHQ-9 item-9 flags (from intake's events and sessions' own measures) no clinician has acknowledged yet.
    open_safety_flags: int = 0


def treatment_blockers(standing: PatientStanding, now: datetime, settings: SessionRuleSettings) -> list[str]:
    """Why a course may not be planned, nor a dose given, right now; empty when nothing blocks.

    - Known, active, screened eligible (or approved on medical review), consented, consent not withdrawn.
    - The screening is no older than the site's interval (default 180 days, clinic policy).
    - No open PHQ-9 item-9 safety flag: a clinician must assess suicide risk and acknowledge it first.
    """
    if not standing.known:
        return ["sessions has not learnt of this patient from intake yet (registration, screening and consent)"]
    blockers = []
    if not standing.active:
        blockers.append("the patient's record is deactivated")
    if not standing.eligible:
        blockers.append(
            {
                None: "the patient has not been screened",
                ScreeningOutcome.needs_medical_review: "the screening needs a clinician's medical review, not yet "
                "approved",
                ScreeningOutcome.ineligible: "the screening found an absolute contraindication",
            }.get(standing.screening_outcome, "the patient is not eligible: the medical review declined")
        )
    elif standing.screened_at is not None and now - standing.screened_at > timedelta(
        days=settings.eligibility_valid_days
    ):
        blockers.append(
            f"the eligibility screening of {standing.screened_at:%Y-%m-%d} is older than the site's "
            f"{settings.eligibility_valid_days} days: screen the patient again"
        )
    if not standing.consented:
        blockers.append("consent was withdrawn" if standing.ever_consented else "no signed consent")
    if standing.open_safety_flags:
        blockers.append(
            "an open PHQ-9 item-9 safety flag: a clinician must assess suicide risk and acknowledge the flag first"
        )
    return blockers
