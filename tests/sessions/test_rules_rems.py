"""The SPRAVATO REMS Patient Monitoring Form: its deadline on the site's calendar, its fields, and the check of a
submitted form against the session record."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.sessions.domain.rems import (
    RECORD_FIELDS,
    REMS_FORM_DAYS,
    RemsMonitoringForm,
    RemsStatus,
    disagreements,
    rems_form_deadline,
    rems_form_due,
)

NEW_YORK = ZoneInfo("America/New_York")
UTC_ZONE = ZoneInfo("UTC")
# 22:30 on Wednesday 4 March in New York (EST) is 03:30 UTC on 5 March. Clocks go forward on 8 March.
SESSION_END = datetime(2026, 3, 4, 22, 30, tzinfo=NEW_YORK)


def test_the_form_is_due_within_7_days() -> None:
    # [Spravato REMS]: "Submit completed patient monitoring forms within 7 days".
    assert REMS_FORM_DAYS == 7


def test_the_deadline_is_counted_from_the_sessions_date_at_the_site() -> None:
    assert rems_form_deadline(SESSION_END, NEW_YORK) == date(2026, 3, 11)
    # In UTC the session is already on 5 March, which would move the deadline a day.
    assert rems_form_deadline(SESSION_END, UTC_ZONE) == date(2026, 3, 12)


@pytest.mark.parametrize(
    ("now", "status"),
    [
        (SESSION_END, RemsStatus.due),
        (datetime(2026, 3, 11, 0, 0, tzinfo=NEW_YORK), RemsStatus.due),
        (datetime(2026, 3, 11, 23, 59, tzinfo=NEW_YORK), RemsStatus.due),  # day 7 (03:59 UTC on the 12th)
        (datetime(2026, 3, 12, 0, 0, tzinfo=NEW_YORK), RemsStatus.overdue),  # day 8
        (datetime(2026, 4, 1, 12, 0, tzinfo=NEW_YORK), RemsStatus.overdue),
    ],
)
def test_due_through_day_7_and_overdue_from_day_8_on_the_sites_calendar(now: datetime, status: RemsStatus) -> None:
    assert rems_form_due(SESSION_END, False, now, NEW_YORK) is status


def test_counting_in_utc_would_give_a_different_answer() -> None:
    # 00:30 on 12 March in New York (EDT) is 04:30 UTC on 12 March: day 8 at the clinic, day 7 by UTC's calendar.
    now = datetime(2026, 3, 12, 0, 30, tzinfo=NEW_YORK)
    assert rems_form_due(SESSION_END, False, now, NEW_YORK) is RemsStatus.overdue
    assert rems_form_due(SESSION_END, False, now, UTC_ZONE) is RemsStatus.due


def test_the_same_instant_given_in_utc_gives_the_same_answer() -> None:
    in_utc = SESSION_END.astimezone(UTC)
    now = datetime(2026, 3, 12, 4, 30, tzinfo=UTC)
    assert rems_form_due(in_utc, False, now, NEW_YORK) is RemsStatus.overdue


def test_submitted_is_submitted_even_late() -> None:
    assert rems_form_due(SESSION_END, True, datetime(2026, 4, 1, tzinfo=UTC), NEW_YORK) is RemsStatus.submitted


# --- the form ---

BP = {"systolic_mmhg": 128, "diastolic_mmhg": 82}
FORM: dict[str, Any] = {
    "concomitant_medications": ["sertraline 100 mg"],
    "dose_mg": 56,
    "lot_number": "LOT-123",
    "total_monitoring_minutes": 130,
    "minutes_until_ready_to_leave": 125,
    "bp_before_dosing": BP,
    "bp_at_40_minutes": {"systolic_mmhg": 146, "diastolic_mmhg": 90},
    "bp_before_discharge": BP,
    "sedation": True,
    "dissociation": True,
    "respiratory_depression": False,
    "serious_adverse_events": False,
}
RECORD = RemsMonitoringForm.model_validate(FORM)


def test_a_complete_form_is_accepted() -> None:
    assert RECORD.dose_mg == 56 and RECORD.bp_at_40_minutes.systolic_mmhg == 146


@pytest.mark.parametrize(
    "changes",
    [
        {"serious_adverse_events": True},  # a serious adverse event must be described
        {"serious_adverse_events": True, "serious_adverse_event_description": ""},
        {"dose_mg": 27},
        {"dose_mg": 85},  # [Spravato PI]: 84 mg is the highest dose
        {"lot_number": ""},
        {"bp_before_dosing": {"systolic_mmhg": 80, "diastolic_mmhg": 80}},
        {"bp_before_dosing": {"systolic_mmhg": 128}},
        {"sedation": None},
        {"unknown": 1},
    ],
)
def test_an_incomplete_or_inconsistent_form_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RemsMonitoringForm.model_validate({**FORM, **changes})


def test_a_described_serious_adverse_event_is_accepted() -> None:
    form = RemsMonitoringForm.model_validate(
        {**FORM, "serious_adverse_events": True, "serious_adverse_event_description": "syncope, admitted overnight"}
    )
    assert form.serious_adverse_events


# --- the form against the session record ---


def test_a_form_that_agrees_with_the_record_has_no_disagreements() -> None:
    assert disagreements({}, RECORD) == []
    assert disagreements(RECORD.model_dump(mode="json"), RECORD) == []
    assert (
        disagreements({"dose_mg": 56, "bp_at_40_minutes": {"systolic_mmhg": 146, "diastolic_mmhg": 90}}, RECORD) == []
    )


def test_each_mismatching_field_is_named_with_both_values() -> None:
    sent = {"dissociation": False, "dose_mg": 84, "bp_at_40_minutes": {"systolic_mmhg": 130, "diastolic_mmhg": 80}}
    assert disagreements(sent, RECORD) == [
        "dose_mg: the form says 84, the session record says 56",
        "bp_at_40_minutes: the form says {'systolic_mmhg': 130, 'diastolic_mmhg': 80}, "
        "the session record says {'systolic_mmhg': 146, 'diastolic_mmhg': 90}",
        "dissociation: the form says False, the session record says True",
    ]


@pytest.mark.parametrize("field", RECORD_FIELDS)
def test_every_record_field_is_compared(field: str) -> None:
    (found,) = disagreements({field: "something else"}, RECORD)
    assert found.startswith(f"{field}: the form says 'something else'")


def test_what_the_record_does_not_hold_or_a_field_left_empty_is_not_compared() -> None:
    sent = {
        "concomitant_medications": ["lithium"],
        "minutes_until_ready_to_leave": 200,
        "completed_by": "nurse-2",
        "sedation": None,
    }
    assert disagreements(sent, RECORD) == []
