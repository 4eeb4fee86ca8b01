"""Access barriers (services/billing/domain/barriers.py): care deferred or declined for cost. Pure and fast."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.billing.domain.barriers import AccessBarrier, BarrierEntry, BarrierReason, CareOutcome
from services.billing.domain.money import Money
from shared.events.billing import AccessBarrierRecorded

PATIENT = uuid.uuid4()
COURSE = uuid.uuid4()
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


# --- the entry ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("note", [None, "", "   "], ids=["none", "empty", "blank"])
def test_other_needs_a_note(note: str | None) -> None:
    with pytest.raises(ValidationError, match="note"):
        BarrierEntry(reason=BarrierReason.other, outcome=CareOutcome.deferred, note=note)


def test_other_with_a_note_is_accepted_and_stripped() -> None:
    entry = BarrierEntry(reason=BarrierReason.other, outcome=CareOutcome.declined, note="  no transport  ")
    assert entry.note == "no transport"


@pytest.mark.parametrize("reason", [r for r in BarrierReason if r is not BarrierReason.other])
def test_other_reasons_need_no_note(reason: BarrierReason) -> None:
    assert BarrierEntry(reason=reason, outcome=CareOutcome.deferred).note is None


@pytest.mark.parametrize(("cents", "accepted"), [(-1, False), (-50_000, False), (0, True), (45_000, True)])
def test_the_estimate_is_not_negative(cents: int, accepted: bool) -> None:
    fields: dict[str, Any] = {
        "reason": BarrierReason.high_out_of_pocket,
        "outcome": CareOutcome.deferred,
        "estimated_out_of_pocket": Money(cents=cents),
    }
    if accepted:
        assert BarrierEntry.model_validate(fields).estimated_out_of_pocket == Money(cents=cents)
    else:
        with pytest.raises(ValidationError, match="not negative"):
            BarrierEntry.model_validate(fields)


def test_a_note_is_at_most_2000_characters() -> None:
    BarrierEntry(reason=BarrierReason.other, outcome=CareOutcome.deferred, note="n" * 2000)
    with pytest.raises(ValidationError):
        BarrierEntry(reason=BarrierReason.other, outcome=CareOutcome.deferred, note="n" * 2001)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        BarrierEntry.model_validate({"reason": "cannot_pay", "outcome": "deferred", "severity": "high"})


# --- recording ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("by", "automatically"),
    [
        (None, True),  # from an event (barrier_on_hold): no member of staff
        ("staff-7f3a", False),
    ],
    ids=["automatic", "by-staff"],
)
def test_record_says_whether_it_was_recorded_automatically(by: str | None, automatically: bool) -> None:
    entry = BarrierEntry(
        course_id=COURSE,
        reason=BarrierReason.authorisation_denied,
        outcome=CareOutcome.deferred,
        estimated_out_of_pocket=Money(cents=45_000),
        note="waiting for the appeal",
    )
    barrier, event = AccessBarrier.record(PATIENT, entry, by, NOW)

    assert barrier.recorded_automatically is automatically
    assert barrier.recorded_by == by
    assert (barrier.patient_id, barrier.course_id, barrier.reason, barrier.outcome) == (
        PATIENT,
        COURSE,
        BarrierReason.authorisation_denied,
        CareOutcome.deferred,
    )
    assert barrier.estimated_out_of_pocket == Money(cents=45_000)
    assert barrier.note == "waiting for the appeal"
    assert barrier.recorded_at == NOW

    assert isinstance(event, AccessBarrierRecorded)
    assert event.recorded_automatically is automatically
    assert (event.patient_id, event.barrier_id, event.course_id) == (PATIENT, barrier.id, COURSE)
    assert (event.reason, event.outcome) == ("authorisation_denied", "deferred")
    assert (event.estimated_out_of_pocket_cents, event.currency) == (45_000, "USD")
    assert event.recorded_at == NOW


@pytest.mark.parametrize(("estimate", "cents"), [(None, None), (Money.zero(), 0)], ids=["no-estimate", "zero"])
def test_the_event_carries_the_estimate_in_cents_or_none(estimate: Money | None, cents: int | None) -> None:
    entry = BarrierEntry(
        reason=BarrierReason.cannot_pay, outcome=CareOutcome.declined, estimated_out_of_pocket=estimate
    )
    barrier, event = AccessBarrier.record(PATIENT, entry, None, NOW)
    assert barrier.course_id is None and event.course_id is None
    assert event.estimated_out_of_pocket_cents == cents


def test_each_record_is_a_new_barrier() -> None:
    entry = BarrierEntry(reason=BarrierReason.not_covered, outcome=CareOutcome.declined)
    first, _ = AccessBarrier.record(PATIENT, entry, None, NOW)
    second, _ = AccessBarrier.record(PATIENT, entry, None, NOW)
    assert first.id != second.id
