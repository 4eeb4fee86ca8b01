"""Access barriers: care deferred or declined because of cost or coverage, recorded so the network can see how
often cost stands between a patient and treatment (the issue's third part of the mission)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.billing.domain.money import Money
from shared.events.billing import AccessBarrierRecorded


class BarrierReason(StrEnum):
    not_covered = "not_covered"
    high_out_of_pocket = "high_out_of_pocket"
    authorisation_denied = "authorisation_denied"
    cannot_pay = "cannot_pay"
    other = "other"


class CareOutcome(StrEnum):
    deferred = "deferred"
    declined = "declined"


class BarrierEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    course_id: uuid.UUID | None = None
    reason: BarrierReason
    outcome: CareOutcome
    estimated_out_of_pocket: Money | None = None
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _explained(self) -> Self:
        if self.reason is BarrierReason.other and not self.note:
            raise ValueError("note: say what the barrier was when the reason is 'other'")
        if self.estimated_out_of_pocket is not None and self.estimated_out_of_pocket.is_negative:
            raise ValueError("estimated_out_of_pocket: an amount the patient would pay is not negative")
        return self


class AccessBarrier(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    course_id: uuid.UUID | None
    reason: BarrierReason
    outcome: CareOutcome
    estimated_out_of_pocket: Money | None
    note: str | None
    recorded_automatically: bool
    recorded_by: str | None
    recorded_at: datetime

    @classmethod
    def record(
        cls, patient_id: uuid.UUID, entry: BarrierEntry, by: str | None, now: datetime
    ) -> tuple[AccessBarrier, AccessBarrierRecorded]:
        barrier = cls(
            id=uuid.uuid4(),
            patient_id=patient_id,
            course_id=entry.course_id,
            reason=entry.reason,
            outcome=entry.outcome,
            estimated_out_of_pocket=entry.estimated_out_of_pocket,
            note=entry.note,
            recorded_automatically=by is None,
            recorded_by=by,
            recorded_at=now,
        )
        estimate = entry.estimated_out_of_pocket
        return barrier, AccessBarrierRecorded(
            patient_id=patient_id,
            barrier_id=barrier.id,
            course_id=entry.course_id,
            reason=entry.reason.value,
            outcome=entry.outcome.value,
            estimated_out_of_pocket_cents=estimate.cents if estimate else None,
            currency="USD",
            recorded_automatically=by is None,
            recorded_at=now,
        )
