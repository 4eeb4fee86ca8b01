"""The SPRAVATO REMS Patient Monitoring Form: its fields, its deadline on the site's calendar, and the check of a
form against the session record it reports.

Source (docs/clinical-rules.md): [Spravato REMS]: a form completed after every session and submitted within 7
days; blood pressure before dosing, at 40 minutes and before the patient leaves; the dose (56 mg, 84 mg or
"Other"); whether the patient had sedation, dissociation or respiratory depression; serious adverse events.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.instants import local_date

# [Spravato REMS]: "Submit completed patient monitoring forms within 7 days". A regulatory deadline.
REMS_FORM_DAYS = 7


class RemsStatus(StrEnum):
    submitted = "submitted"
    due = "due"
    overdue = "overdue"


def rems_form_deadline(session_end: datetime, zone: ZoneInfo) -> date:
    """The last day to submit: 7 days after the session's date on the site's calendar (a session at 22:00 in
    New York is that day's session, though it is already the next day in UTC)."""
    return local_date(session_end, zone) + timedelta(days=REMS_FORM_DAYS)


def rems_form_due(session_end: datetime, submitted: bool, now: datetime, zone: ZoneInfo) -> RemsStatus:
    """Due through day 7 and overdue from day 8, whatever the hour, counted on the site's calendar."""
    if submitted:
        return RemsStatus.submitted
    if local_date(now, zone) > rems_form_deadline(session_end, zone):
        return RemsStatus.overdue
    return RemsStatus.due


class BloodPressure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    systolic_mmhg: int = Field(ge=50, le=300)
    diastolic_mmhg: int = Field(ge=20, le=200)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.systolic_mmhg <= self.diastolic_mmhg:
            raise ValueError("diastolic_mmhg must be below systolic_mmhg")
        return self


class RemsMonitoringForm(BaseModel):
    """Every field of the form, as structured data. The service fills it from the session record; what the record
    does not hold (concomitant medications, when the patient would have been ready) comes from the nurse."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    concomitant_medications: list[str] = Field(default_factory=list, max_length=50)
    dose_mg: int = Field(ge=28, le=84)
    lot_number: str = Field(min_length=1, max_length=60)
    total_monitoring_minutes: int = Field(ge=0, le=24 * 60)
    minutes_until_ready_to_leave: int = Field(ge=0, le=24 * 60)
    bp_before_dosing: BloodPressure
    bp_at_40_minutes: BloodPressure
    bp_before_discharge: BloodPressure
    sedation: bool
    dissociation: bool
    respiratory_depression: bool
    serious_adverse_events: bool
    serious_adverse_event_description: str | None = Field(default=None, max_length=4000)
    completed_by: str | None = None

    @model_validator(mode="after")
    def _serious_described(self) -> Self:
        if self.serious_adverse_events and not self.serious_adverse_event_description:
            raise ValueError("serious_adverse_event_description: describe the serious adverse event")
        return self


# The fields the service derives from the record: what a client sends for them must agree with it.
RECORD_FIELDS = (
    "dose_mg",
    "lot_number",
    "total_monitoring_minutes",
    "bp_before_dosing",
    "bp_at_40_minutes",
    "bp_before_discharge",
    "sedation",
    "dissociation",
    "respiratory_depression",
    "serious_adverse_events",
)


def disagreements(sent: dict[str, object], from_record: RemsMonitoringForm) -> list[str]:
    """Each field the nurse sent that the session record contradicts: a form must report the session as
    recorded, so a mismatch is refused, naming the field and both values."""
    found = []
    recorded = from_record.model_dump(mode="json")
    for name in RECORD_FIELDS:
        if name in sent and sent[name] is not None and sent[name] != recorded[name]:
            found.append(f"{name}: the form says {sent[name]!r}, the session record says {recorded[name]!r}")
    return found
