"""Prior authorisation of a course: its status and transitions, what was approved, why it was denied, and the
evidence the payer asks for (the patient's prior treatment, from intake)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.errors import Conflict, RuleRefused
from shared.events.billing import PriorAuthStatusChanged
from shared.events.registry import DomainEvent


class PriorAuthStatus(StrEnum):
    needed = "needed"
    submitted = "submitted"
    approved = "approved"
    denied = "denied"
    appealed = "appealed"


PRIOR_AUTH_TRANSITIONS: dict[PriorAuthStatus, frozenset[PriorAuthStatus]] = {
    PriorAuthStatus.needed: frozenset({PriorAuthStatus.submitted}),
    PriorAuthStatus.submitted: frozenset({PriorAuthStatus.approved, PriorAuthStatus.denied}),
    # A denial can be appealed; an appeal ends approved or denied again.
    PriorAuthStatus.denied: frozenset({PriorAuthStatus.appealed}),
    PriorAuthStatus.appealed: frozenset({PriorAuthStatus.approved, PriorAuthStatus.denied}),
    PriorAuthStatus.approved: frozenset(),
}


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    authorisation_number: str = Field(min_length=1, max_length=60)
    units: int = Field(ge=1, le=500, description="sessions (or drug units) approved")
    valid_from: date
    valid_to: date

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self


class PriorAuthChange(BaseModel):
    """A change of status, with what that status needs: an approval's terms, a denial's reason."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    status: PriorAuthStatus
    approval: Approval | None = None
    denial_reason: str | None = Field(default=None, min_length=3, max_length=2000)
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _what_each_status_needs(self) -> Self:
        if (self.status is PriorAuthStatus.approved) != (self.approval is not None):
            raise ValueError("approval: give the approval's number, units and dates exactly when approving")
        if (self.status is PriorAuthStatus.denied) != (self.denial_reason is not None):
            raise ValueError("denial_reason: give the payer's reason exactly when recording a denial")
        return self


class PriorAuthorisation(BaseModel):
    model_config = ConfigDict(validate_assignment=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    course_id: uuid.UUID
    payer: str
    plan: str
    status: PriorAuthStatus
    approval: Approval | None = None
    denial_reason: str | None = None
    evidence: list[str] = Field(default_factory=list)
    changed_at: datetime

    def change(self, change: PriorAuthChange, evidence: list[str], now: datetime) -> list[DomainEvent]:
        if change.status not in PRIOR_AUTH_TRANSITIONS[self.status]:
            raise Conflict(f"a prior authorisation that is {self.status.value} cannot become {change.status.value}")
        if change.status in (PriorAuthStatus.submitted, PriorAuthStatus.appealed) and not evidence:
            raise RuleRefused(
                "the payer asks for the prior-treatment history: record the patient's prior treatments at intake "
                "before submitting"
            )
        previous = self.status
        self.status, self.changed_at = change.status, now
        if change.status in (PriorAuthStatus.submitted, PriorAuthStatus.appealed):
            self.evidence = evidence
        if change.approval is not None:
            self.approval, self.denial_reason = change.approval, None
        if change.denial_reason is not None:
            self.denial_reason = change.denial_reason
        return [
            PriorAuthStatusChanged(
                patient_id=self.patient_id,
                prior_auth_id=self.id,
                course_id=self.course_id,
                previous_status=previous.value,
                status=change.status.value,
                denial_reason=change.denial_reason,
                changed_at=now,
            )
        ]
