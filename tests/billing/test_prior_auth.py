"""Prior authorisation (services/billing/domain/prior_auth.py): the status machine, what each status needs, and the
event a change returns. Pure and fast: no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.billing.domain.claims import within_authorisation
from services.billing.domain.ledger import Charge, ChargeSource
from services.billing.domain.money import Money
from services.billing.domain.prior_auth import (
    PRIOR_AUTH_TRANSITIONS,
    Approval,
    PriorAuthChange,
    PriorAuthorisation,
    PriorAuthStatus,
)
from shared.errors import Conflict, RuleRefused
from shared.events.billing import PriorAuthStatusChanged

S = PriorAuthStatus
OPENED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 6, 14, 30, tzinfo=UTC)
EVIDENCE = ["sertraline 100 mg, 12 weeks, no response", "venlafaxine 225 mg, 8 weeks, no response"]
APPROVAL = Approval(authorisation_number="PA-2026-001", units=8, valid_from=date(2026, 1, 6), valid_to=date(2026, 4, 6))


def authorisation(status: PriorAuthStatus) -> PriorAuthorisation:
    return PriorAuthorisation(
        id=uuid.uuid4(),
        patient_id=uuid.uuid4(),
        course_id=uuid.uuid4(),
        payer="Acme Health",
        plan="Gold PPO",
        status=status,
        changed_at=OPENED,
    )


def change_to(status: PriorAuthStatus) -> PriorAuthChange:
    """A change carrying exactly what its status needs."""
    if status is S.approved:
        return PriorAuthChange(status=status, approval=APPROVAL)
    if status is S.denied:
        return PriorAuthChange(status=status, denial_reason="step therapy not documented")
    return PriorAuthChange(status=status)


# --- the transitions ---------------------------------------------------------------------------------------------

ALLOWED = [
    (S.needed, S.submitted),
    (S.submitted, S.approved),
    (S.submitted, S.denied),
    (S.denied, S.appealed),  # a denial can be appealed
    (S.appealed, S.approved),  # an appeal ends approved ...
    (S.appealed, S.denied),  # ... or denied again
]


def test_the_transition_table_is_exactly_the_allowed_list() -> None:
    table = {(source, target) for source, targets in PRIOR_AUTH_TRANSITIONS.items() for target in targets}
    assert table == set(ALLOWED)
    assert set(PRIOR_AUTH_TRANSITIONS) == set(S)
    assert PRIOR_AUTH_TRANSITIONS[S.approved] == frozenset()  # approved is final


@pytest.mark.parametrize(("source", "target"), ALLOWED, ids=[f"{a}-to-{b}" for a, b in ALLOWED])
def test_allowed_transition(source: PriorAuthStatus, target: PriorAuthStatus) -> None:
    record = authorisation(source)
    events = record.change(change_to(target), EVIDENCE, NOW)
    assert record.status is target
    assert record.changed_at == NOW
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, PriorAuthStatusChanged)
    assert (event.previous_status, event.status) == (source.value, target.value)
    assert (event.patient_id, event.prior_auth_id, event.course_id) == (record.patient_id, record.id, record.course_id)
    assert event.changed_at == NOW


REFUSED = [
    (S.needed, S.needed),
    (S.needed, S.approved),  # never approved without being submitted
    (S.needed, S.denied),
    (S.needed, S.appealed),
    (S.submitted, S.submitted),
    (S.submitted, S.appealed),  # nothing to appeal until denied
    (S.submitted, S.needed),
    (S.denied, S.approved),  # a denial turns into an approval only through an appeal
    (S.denied, S.denied),
    (S.denied, S.submitted),
    (S.appealed, S.appealed),
    (S.appealed, S.submitted),
    (S.approved, S.denied),  # approved is final
    (S.approved, S.appealed),
    (S.approved, S.approved),
    (S.approved, S.submitted),
    (S.approved, S.needed),
]


@pytest.mark.parametrize(("source", "target"), REFUSED, ids=[f"{a}-to-{b}" for a, b in REFUSED])
def test_refused_transition_is_a_conflict_and_changes_nothing(source: PriorAuthStatus, target: PriorAuthStatus) -> None:
    record = authorisation(source)
    before = record.model_dump()
    with pytest.raises(Conflict, match=f"{source.value} cannot become {target.value}"):
        record.change(change_to(target), EVIDENCE, NOW)
    assert record.model_dump() == before


# --- evidence -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "target"), [(S.needed, S.submitted), (S.denied, S.appealed)])
def test_submitting_or_appealing_without_evidence_is_refused(source: PriorAuthStatus, target: PriorAuthStatus) -> None:
    record = authorisation(source)
    before = record.model_dump()
    with pytest.raises(RuleRefused, match="prior-treatment history"):
        record.change(change_to(target), [], NOW)
    assert record.model_dump() == before


def test_the_transition_is_checked_before_the_evidence() -> None:
    # An approved authorisation re-submitted without evidence: the state is the problem (Conflict), not the evidence.
    with pytest.raises(Conflict):
        authorisation(S.approved).change(change_to(S.submitted), [], NOW)


def test_submitting_keeps_the_evidence() -> None:
    record = authorisation(S.needed)
    record.change(change_to(S.submitted), EVIDENCE, NOW)
    assert record.evidence == EVIDENCE


@pytest.mark.parametrize(("source", "target"), [(S.submitted, S.approved), (S.submitted, S.denied)])
def test_deciding_needs_no_evidence_and_keeps_the_submitted_evidence(
    source: PriorAuthStatus, target: PriorAuthStatus
) -> None:
    record = authorisation(S.needed)
    record.change(change_to(S.submitted), EVIDENCE, NOW)
    record.change(change_to(target), [], NOW)
    assert record.status is target
    assert record.evidence == EVIDENCE


# --- what each status needs ----------------------------------------------------------------------------------------


def test_approval_carries_its_terms() -> None:
    record = authorisation(S.submitted)
    events = record.change(change_to(S.approved), [], NOW)
    assert record.approval == APPROVAL
    assert record.denial_reason is None
    event = events[0]
    assert isinstance(event, PriorAuthStatusChanged)
    assert event.denial_reason is None


def test_denial_carries_its_reason_into_the_event() -> None:
    record = authorisation(S.submitted)
    events = record.change(change_to(S.denied), [], NOW)
    assert record.denial_reason == "step therapy not documented"
    assert record.approval is None
    event = events[0]
    assert isinstance(event, PriorAuthStatusChanged)
    assert event.denial_reason == "step therapy not documented"


def test_denied_appealed_approved() -> None:
    record = authorisation(S.needed)
    statuses = [S.submitted, S.denied, S.appealed, S.approved]
    previous = [S.needed, *statuses[:-1]]
    for status, before in zip(statuses, previous, strict=True):
        event = record.change(change_to(status), EVIDENCE, NOW)[0]
        assert isinstance(event, PriorAuthStatusChanged)
        assert (event.previous_status, event.status) == (before.value, status.value)
    assert record.status is S.approved and record.approval == APPROVAL


def test_approving_needs_the_approval() -> None:
    with pytest.raises(ValidationError, match="approval"):
        PriorAuthChange(status=S.approved)


@pytest.mark.parametrize("status", [S.needed, S.submitted, S.denied, S.appealed])
def test_only_an_approval_may_carry_approval_terms(status: PriorAuthStatus) -> None:
    extra: dict[str, Any] = {"denial_reason": "not medically necessary"} if status is S.denied else {}
    with pytest.raises(ValidationError, match="approval"):
        PriorAuthChange(status=status, approval=APPROVAL, **extra)


@pytest.mark.parametrize("reason", [None, "", "  ", "no"], ids=["none", "empty", "blank", "too-short"])
def test_a_denial_needs_a_reason_of_three_characters_or_more(reason: str | None) -> None:
    with pytest.raises(ValidationError):
        PriorAuthChange(status=S.denied, denial_reason=reason)


@pytest.mark.parametrize("status", [S.needed, S.submitted, S.approved, S.appealed])
def test_only_a_denial_may_carry_a_reason(status: PriorAuthStatus) -> None:
    extra: dict[str, Any] = {"approval": APPROVAL} if status is S.approved else {}
    with pytest.raises(ValidationError, match="denial_reason"):
        PriorAuthChange(status=status, denial_reason="not medically necessary", **extra)


@pytest.mark.parametrize(
    "fields",
    [
        {"units": 0},  # at least one session
        {"units": 501},
        {"authorisation_number": ""},
        {"authorisation_number": "   "},  # stripped to empty
        {"valid_from": date(2026, 4, 7)},  # after valid_to
    ],
    ids=["no-units", "too-many-units", "no-number", "blank-number", "ends-before-it-starts"],
)
def test_approval_terms_are_validated(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Approval.model_validate(APPROVAL.model_dump() | fields)


def test_a_one_day_approval_is_accepted() -> None:
    one_day = Approval(authorisation_number="PA-1", units=1, valid_from=date(2026, 1, 6), valid_to=date(2026, 1, 6))
    assert one_day.valid_from == one_day.valid_to


def _charge_on(day: date) -> Charge:
    return Charge(
        id=uuid.uuid4(),
        patient_id=uuid.uuid4(),
        course_id=None,
        source=ChargeSource.dosing_session,
        source_id=uuid.uuid4(),
        service_on=day,
        lines=(),
        diagnosis_codes=(),
        amount=Money(cents=100_00),
        patient_share=Money.zero(),
        billed_to_payer=True,
    )


def test_a_claim_takes_only_the_visits_an_approval_allows() -> None:
    approval = Approval(authorisation_number="PA-1", units=3, valid_from=date(2026, 2, 1), valid_to=date(2026, 4, 30))
    days = [date(2026, 1, 31), date(2026, 3, 2), date(2026, 2, 2), date(2026, 4, 30), date(2026, 5, 1)]
    charges = [_charge_on(day) for day in days]
    inside = within_authorisation(charges, approval, already_claimed=0)
    assert [c.service_on for c in inside] == [date(2026, 2, 2), date(2026, 3, 2), date(2026, 4, 30)]
    assert [c.service_on for c in within_authorisation(charges, approval, already_claimed=2)] == [date(2026, 2, 2)]
    assert within_authorisation(charges, approval, already_claimed=3) == []


def test_a_charge_whose_authorisation_was_denied_is_the_patients() -> None:
    charge = _charge_on(date(2026, 3, 2))
    moved = charge.to_patient()
    assert (moved.billed_to_payer, moved.patient_share, moved.amount) == (False, Money(cents=100_00), charge.amount)
