"""A clinician's reasoned decision to go ahead although a rule flagged something: one shape for all of them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ClinicianOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    # Long enough that "ok" cannot stand in for the clinical reasoning a later reader needs (as intake's review).
    reason: str = Field(min_length=10, max_length=4000)


class DoseOverride(ClinicianOverride):
    """Go ahead with a dose outside the site's range, or an infusion outside its usual duration."""


class ScheduleOverride(ClinicianOverride):
    """Book a session above the site's weekly cap."""


class PredoseDecision(ClinicianOverride):
    """A clinician's decision on what the pre-dose check found (a raised blood pressure, a low SpO2, a slow or fast
    heart or breathing rate): proceed or not, and why."""

    proceed: bool


class OverrideNotNeeded(Exception):
    """An override or decision was given where no rule asked for one: filed against the wrong thing."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"no clinician override is needed: {what}")
