"""A delivery: one event for one endpoint, from queued to delivered (or failed after its retries), with every
attempt kept for the delivery log.

Sending follows the Standard Webhooks specification (https://www.standardwebhooks.com): the body is
``{"type", "timestamp", "data"}``; ``webhook-id`` is the same on every attempt and on a replay, so a receiver drops
what it already has; a 2xx answer is success, anything else (a redirect, a timeout) is retried.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.errors import Conflict


class DeliveryStatus(StrEnum):
    pending = "pending"  # queued, or waiting for its next attempt
    delivered = "delivered"
    failed = "failed"  # ran out of retries; can be replayed
    cancelled = "cancelled"  # its endpoint was deleted


# Not yet delivered, and not given up on by its endpoint's owner: what deleting the endpoint cancels.
WAITING = (DeliveryStatus.pending, DeliveryStatus.failed)

_TRANSITIONS: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    DeliveryStatus.pending: frozenset(
        {DeliveryStatus.pending, DeliveryStatus.delivered, DeliveryStatus.failed, DeliveryStatus.cancelled}
    ),
    DeliveryStatus.failed: frozenset({DeliveryStatus.pending, DeliveryStatus.cancelled}),
    DeliveryStatus.delivered: frozenset(),
    DeliveryStatus.cancelled: frozenset(),
}


class RetrySchedule(BaseModel):
    """Exponential backoff: the n-th retry waits ``base * 2^(n-1)`` seconds, at most ``cap``, until ``window``
    seconds have passed since the first attempt (at least a day in production: issue 14, settings)."""

    model_config = ConfigDict(frozen=True)

    base_seconds: float = Field(gt=0)
    cap_seconds: float = Field(gt=0)
    window_seconds: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.cap_seconds < self.base_seconds:
            raise ValueError("the retry cap is below its base")
        return self

    def delay(self, failed_attempts: int) -> timedelta:
        exponent = min(failed_attempts - 1, 60)  # 2**60 s is past any cap; no float overflow
        return timedelta(seconds=min(self.base_seconds * 2.0**exponent, self.cap_seconds))

    def next_attempt(self, failed_attempts: int, first_attempt_at: datetime, now: datetime) -> datetime | None:
        """When to try again after ``failed_attempts`` failures, or None: the window is over, give up."""
        if now - first_attempt_at >= timedelta(seconds=self.window_seconds):
            return None
        return now + self.delay(failed_attempts)


class AttemptResult(BaseModel):
    """What one attempt got: the receiver's status code, or why there was none."""

    model_config = ConfigDict(frozen=True)

    attempted_at: datetime
    response_status: int | None = None
    error: str | None = Field(default=None, max_length=300)
    duration_ms: int = Field(ge=0)

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300


def message_body(event_type: str, timestamp: datetime, data: dict[str, Any]) -> bytes:
    """The Standard Webhooks payload: fixed once queued, so every attempt signs and sends the same bytes."""
    return json.dumps(
        {"type": event_type, "timestamp": timestamp.isoformat(), "data": data}, separators=(",", ":")
    ).encode()


class Delivery(BaseModel):
    model_config = ConfigDict(frozen=True)

    sequence: int | None  # the queue's order; a patient's deliveries to one endpoint go out in it
    message_id: str
    endpoint_id: uuid.UUID
    event_id: str
    event_type: str
    ordering_key: str  # the Kafka key: the patient (site) or the site and cohort (network)
    status: DeliveryStatus
    attempts: int
    first_attempt_at: datetime | None
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_response_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    queued_at: datetime

    @classmethod
    def queue(
        cls, endpoint_id: uuid.UUID, event_id: str, event_type: str, ordering_key: str, now: datetime
    ) -> Delivery:
        return cls(
            sequence=None,
            message_id=f"msg_{uuid.uuid4().hex}",
            endpoint_id=endpoint_id,
            event_id=event_id,
            event_type=event_type,
            ordering_key=ordering_key,
            status=DeliveryStatus.pending,
            attempts=0,
            first_attempt_at=None,
            next_attempt_at=now,
            last_attempt_at=None,
            last_response_status=None,
            last_error=None,
            delivered_at=None,
            queued_at=now,
        )

    def _to(self, status: DeliveryStatus, **changes: object) -> Self:
        if status not in _TRANSITIONS[self.status]:
            raise Conflict(f"the delivery is {self.status.value}: it cannot become {status.value}")
        return self.model_copy(update={"status": status, **changes})

    def attempted(self, result: AttemptResult, schedule: RetrySchedule) -> Self:
        """Delivered on a 2xx; else retried on the schedule, or failed once its window is over."""
        first = self.first_attempt_at or result.attempted_at
        seen = {
            "attempts": self.attempts + 1,
            "first_attempt_at": first,
            "last_attempt_at": result.attempted_at,
            "last_response_status": result.response_status,
            "last_error": result.error,
        }
        if result.succeeded:
            return self._to(DeliveryStatus.delivered, delivered_at=result.attempted_at, **seen)
        retry_at = schedule.next_attempt(self.attempts + 1, first, result.attempted_at)
        if retry_at is None:
            return self._to(DeliveryStatus.failed, **seen)
        return self._to(DeliveryStatus.pending, next_attempt_at=retry_at, **seen)

    def replay(self, now: datetime) -> Self:
        """A failed delivery queued again, with the same ``webhook-id`` and a fresh retry window."""
        if self.status is not DeliveryStatus.failed:
            raise Conflict(f"the delivery is {self.status.value}: only a failed delivery is replayed")
        return self._to(DeliveryStatus.pending, attempts=0, first_attempt_at=None, next_attempt_at=now)

    def cancel(self) -> Self:
        return self._to(DeliveryStatus.cancelled)
