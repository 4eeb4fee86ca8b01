"""The dosing session: its booking, its status, and the record made at the chair, as one typed aggregate.

`DosingSessionChart` is the only caller of the dosing, vitals, recovery, discharge, scheduling and REMS rules.
Each change is a method that checks them and returns the events to publish; it raises `RuleRefused` (the entry
breaks a rule: 422), `Conflict` (the session's state does not allow it: 409) or `NotPermitted` (a decision only a
clinician may take: 403), and changes nothing when it raises.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from services.sessions.domain.adverse_events import AdverseEvent, is_serious
from services.sessions.domain.discharge import DischargeCheck, discharge_check
from services.sessions.domain.dosing import (
    WEIGHT_MAX_KG,
    WEIGHT_MIN_KG,
    BodyWeight,
    DoseCheck,
    DoseNotAllowed,
    RecordedWeight,
    calculate_dose,
    check_device_times,
    check_dose,
    dose_allowed,
    fixed_dose,
    infusion_duration_problems,
    too_soon_after,
    weight_change_needs_confirmation,
)
from services.sessions.domain.eligibility import PatientStanding, treatment_blockers
from services.sessions.domain.overrides import DoseOverride, OverrideNotNeeded, PredoseDecision, ScheduleOverride
from services.sessions.domain.recovery import (
    CADSS_VERSION,
    CadssAnswerError,
    RecoveryCheck,
    score_cadss,
    sedation_level,
    sedation_observed,
)
from services.sessions.domain.rems import RECORD_FIELDS, BloodPressure, RemsMonitoringForm, disagreements
from services.sessions.domain.scheduling import overlaps, weekly_cap_allows
from services.sessions.domain.settings import SessionRuleSettings
from services.sessions.domain.staff import Staff
from services.sessions.domain.vitals import (
    PredoseFindings,
    VitalsAlert,
    VitalsReading,
    monitoring_gaps,
    postdose_bp_in_window,
    predose_findings,
    predose_reading_too_old,
    vitals_alerts,
)
from services.sessions.domain.wording import duration, number
from shared.errors import Conflict, NotPermitted, RuleRefused
from shared.events.registry import DomainEvent
from shared.events.sessions import (
    AdverseEventReported,
    DoseAdministered,
    SessionCancelled,
    SessionCompleted,
    SessionNoShow,
    SessionScheduled,
    VitalsAlertRaised,
)
from shared.instants import UtcInstant, age_on, local_date
from shared.treatment import OPEN_COURSE_STATUSES, CourseStatus, Indication, Route

# --- status ---------------------------------------------------------------------------------------------------


class SessionStatus(StrEnum):
    scheduled = "scheduled"
    in_progress = "in_progress"  # the pre-dose check has begun
    completed = "completed"  # discharged
    cancelled = "cancelled"
    no_show = "no_show"


SESSION_TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.scheduled: frozenset({SessionStatus.in_progress, SessionStatus.cancelled, SessionStatus.no_show}),
    # Begun but not dosed can still be called off (a patient unwell at check-in); dosed ends only by discharge.
    SessionStatus.in_progress: frozenset({SessionStatus.completed, SessionStatus.cancelled, SessionStatus.no_show}),
    SessionStatus.completed: frozenset(),
    SessionStatus.cancelled: frozenset(),
    SessionStatus.no_show: frozenset(),
}
# Sessions that hold their room, staff and a place in the patient's week.
ACTIVE_SESSION_STATUSES = frozenset({SessionStatus.scheduled, SessionStatus.in_progress, SessionStatus.completed})
# A signature closes the record of a session that has ended.
SIGNABLE_STATUSES = frozenset({SessionStatus.completed, SessionStatus.cancelled, SessionStatus.no_show})

# Clinical times are entered as things happen. A time ahead of the server's clock (beyond a little skew between
# devices) would claim observation that has not passed; one long before the booking is a typing error (a year 1
# date made every FHIR read of the session fail). Both are refused.
CLOCK_SKEW = timedelta(minutes=5)
EARLIEST_BEFORE_BOOKING = timedelta(hours=24)
# Bookings: not more than a day in the past (a session recorded after the fact), not more than 400 days ahead.
BOOKING_PAST_LIMIT = timedelta(days=1)
BOOKING_FUTURE_LIMIT = timedelta(days=400)


# --- entries: what staff send -------------------------------------------------------------------------------


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SessionBooking(_Entry):
    starts_at: UtcInstant
    duration_minutes: int = Field(ge=30, le=480, description="room and staff are held for this long")
    room: str = Field(min_length=1, max_length=60)
    clinician: str = Field(min_length=1, max_length=200, description="the clinician's user id (sub)")
    therapist: str = Field(min_length=1, max_length=200, description="the therapist's user id (sub)")
    weekly_cap_override: ScheduleOverride | None = Field(
        default=None, description="a clinician's reason to exceed the site's weekly cap of dosing sessions"
    )


class PreDoseEntry(_Entry):
    weight: BodyWeight = Field(description="the weight with its unit: kg, or lb (converted to kg)")
    weight_change_confirmed: bool = Field(
        default=False, description="the nurse confirms a weight more than 10 % from the last recorded one"
    )
    vitals: VitalsReading = Field(description="the pre-dose reading; it must include a blood pressure")
    fasting: bool = Field(description="no food for the interval the site asks (nausea and vomiting are common)")
    takes_benzodiazepines: bool
    takes_stimulants: bool
    takes_maois: bool
    takes_opioids: bool
    escort_arranged: bool = Field(description="an escort or transport home is arranged")
    transport_note: str | None = Field(default=None, max_length=500)
    decision: PredoseDecision | None = Field(
        default=None,
        description="a clinician's decision to proceed (or not) on what the reading found: a blood pressure above "
        "the site threshold, or an SpO2, heart-rate or respiratory-rate alert",
    )

    @model_validator(mode="after")
    def _blood_pressure_measured(self) -> Self:
        if not self.vitals.has_bp:
            raise ValueError("vitals: the pre-dose check needs a blood pressure")
        return self


class DoseEntry(_Entry):
    """mg/kg routes give mg_per_kg (the mg follow from the pre-dose weight); fixed-dose routes give dose_mg.
    An IV infusion gives its end, or its planned duration, or records the end later (`/infusion-end`). Esketamine
    gives each device's time; the first is the administration's start."""

    mg_per_kg: float | None = Field(default=None, gt=0, le=5)
    dose_mg: float | None = Field(default=None, gt=0, le=1000)
    lot_number: str = Field(min_length=1, max_length=60)
    administration_start: UtcInstant
    administration_end: UtcInstant | None = Field(default=None, description="IV: when the infusion ended")
    infusion_minutes: int | None = Field(default=None, ge=1, le=240, description="IV: the infusion's duration")
    device_times: list[UtcInstant] | None = Field(
        default=None, max_length=3, description="esketamine: each 28 mg device's time"
    )
    override: DoseOverride | None = None

    @model_validator(mode="after")
    def _one_amount(self) -> Self:
        if (self.mg_per_kg is None) == (self.dose_mg is None):
            raise ValueError("give exactly one of mg_per_kg or dose_mg")
        if self.administration_end is not None and self.infusion_minutes is not None:
            raise ValueError("give the infusion's end or its duration, not both")
        return self


class InfusionEndEntry(_Entry):
    ended_at: UtcInstant
    override: DoseOverride | None = Field(
        default=None, description="a clinician's reason when the infusion ran outside the site's usual duration"
    )


class RecoveryCheckEntry(_Entry):
    """A sedation and dissociation check at the chair, repeated until both have resolved."""

    assessed_at: UtcInstant
    moaa_s: int = Field(ge=0, le=5, description="sedation: Modified Observer's Assessment of Alertness/Sedation")
    dissociation_present: bool = Field(description="the patient is still dissociated")
    respiratory_depression_present: bool = Field(description="breathing is depressed")
    cadss_subjective: list[StrictInt] | None = Field(default=None, description="the 23 subjective CADSS items, 0-4")
    cadss_observer: list[StrictInt] | None = Field(default=None, description="the 5 observer CADSS items, 0-4")


class AdverseEventReport(_Entry):
    event: AdverseEvent
    action_taken: str = Field(min_length=2, max_length=2000)
    occurred_at: UtcInstant


class Modality(StrEnum):
    mindfulness_meditation = "mindfulness_meditation"
    visualization = "visualization"
    emotional_processing = "emotional_processing"
    memory_processing = "memory_processing"
    other = "other"


class TherapyEntry(_Entry):
    modalities: list[Modality] = Field(min_length=1)
    other_modality: str | None = Field(default=None, max_length=200)
    notes: str = Field(min_length=1, max_length=20000)
    insights: str | None = Field(default=None, max_length=20000, description="insights or breakthroughs reported")
    psychotherapy_minutes: int | None = Field(
        default=None, ge=1, le=480, description="face-to-face psychotherapy time (billing's CPT time bands)"
    )

    @model_validator(mode="after")
    def _other_named(self) -> Self:
        if Modality.other in self.modalities and not self.other_modality:
            raise ValueError("other_modality: name the modality when 'other' is used")
        return self


class DischargeEntry(_Entry):
    escort_present: bool
    discharged_at: UtcInstant | None = None


class AddendumEntry(_Entry):
    text: str = Field(min_length=3, max_length=20000)


class RemsFormEntry(_Entry):
    """What the nurse adds to the REMS form. Everything else is filled from the session record; a value sent for
    one of those fields must agree with the record."""

    # Said in the schema, so that a form made from it (the console's) asks only what the record lacks.
    model_config = ConfigDict(json_schema_extra={"x-filled-by-service": list(RECORD_FIELDS)})

    concomitant_medications: list[str] = Field(default_factory=list, max_length=50)
    minutes_until_ready_to_leave: int | None = Field(default=None, ge=0, le=24 * 60)
    serious_adverse_event_description: str | None = Field(default=None, max_length=4000)
    dose_mg: int | None = None
    lot_number: str | None = None
    total_monitoring_minutes: int | None = None
    bp_before_dosing: BloodPressure | None = None
    bp_at_40_minutes: BloodPressure | None = None
    bp_before_discharge: BloodPressure | None = None
    sedation: bool | None = None
    dissociation: bool | None = None
    respiratory_depression: bool | None = None
    serious_adverse_events: bool | None = None


# --- the record: what is kept ---------------------------------------------------------------------------------


class VitalsPhase(StrEnum):
    pre_dose = "pre_dose"
    monitoring = "monitoring"


class RecordedVitals(VitalsReading):
    phase: VitalsPhase
    alerts: list[VitalsAlert]
    recorded_by: str


class PreDoseCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    weight_kg: float
    weight_as_entered: BodyWeight
    previous_weight_kg: float | None
    weight_change_confirmed: bool
    vitals: VitalsReading
    fasting: bool
    takes_benzodiazepines: bool
    takes_stimulants: bool
    takes_maois: bool
    takes_opioids: bool
    escort_arranged: bool
    transport_note: str | None
    findings: PredoseFindings
    decision: PredoseDecision | None
    decided_by: str | None
    recorded_by: str
    recorded_at: datetime


class DoseRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    route: Route
    dose_mg: float
    mg_per_kg: float
    weight_kg: float
    age_years: int
    first_dose: bool
    within_range: bool
    problems: list[str]
    devices: int | None
    override_reason: str | None
    lot_number: str
    administration_start: datetime
    # None while an IV infusion runs and its end is not yet recorded: discharge waits for it.
    administration_end: datetime | None
    device_times: list[datetime]
    infusion_end_override_reason: str | None = None
    recorded_by: str
    recorded_at: datetime


class AdverseEventRecord(AdverseEvent):
    id: uuid.UUID
    serious: bool
    flagged_for_reporting: bool
    action_taken: str
    occurred_at: datetime
    reported_by: str
    reported_at: datetime | None = None  # None on reports made before it was kept


class TherapyNote(TherapyEntry):
    recorded_by: str


class DischargeRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    discharged_at: datetime
    escort_present: bool
    observation_minutes: int
    by: str


class Addendum(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    author: str
    added_at: datetime


class SessionRecord(BaseModel):
    """The clinical record of one session, filled in as it happens; signed at the end, then only addenda."""

    pre_dose: PreDoseCheck | None = None
    dose: DoseRecord | None = None
    vitals: list[RecordedVitals] = Field(default_factory=list)
    recovery_checks: list[RecoveryCheck] = Field(default_factory=list)
    adverse_events: list[AdverseEventRecord] = Field(default_factory=list)
    therapy: TherapyNote | None = None
    discharge: DischargeRecord | None = None
    addenda: list[Addendum] = Field(default_factory=list)


# --- what the service loads for a change ------------------------------------------------------------------------


class EarlierDose(BaseModel):
    """A dose (or a booking, for scheduling) in another session of the same patient."""

    model_config = ConfigDict(frozen=True)

    session_id: uuid.UUID
    route: Route
    at: datetime


class DosingContext(BaseModel):
    """The patient's facts a dose is checked against, loaded by the service from sessions' own tables."""

    model_config = ConfigDict(frozen=True)

    standing: PatientStanding
    course_status: CourseStatus
    birth_date: date | None
    last_weight: RecordedWeight | None
    earlier_doses: list[EarlierDose]


class BookedSlot(BaseModel):
    """Another active booking, as the clash check needs it."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    room: str
    clinician: str
    therapist: str


class MonitoringView(BaseModel):
    session_id: uuid.UUID
    status: SessionStatus
    dose_recorded: bool
    infusion_running: bool
    gaps: list[str]
    last_alerts: list[VitalsAlert]
    discharge_unmet: list[str]


# --- the aggregate ------------------------------------------------------------------------------------------


class DosingSessionChart(BaseModel):
    model_config = ConfigDict(validate_assignment=True)

    id: uuid.UUID
    course_id: uuid.UUID
    patient_id: uuid.UUID
    route: Route
    indication: Indication
    starts_at: datetime
    ends_at: datetime
    room: str
    clinician: str
    therapist: str
    status: SessionStatus
    status_reason: str | None = None
    weekly_cap_override: str | None = None
    record: SessionRecord = Field(default_factory=SessionRecord)
    signed_at: datetime | None = None
    signed_by: str | None = None
    rems_form: RemsMonitoringForm | None = None
    rems_submitted_at: datetime | None = None

    # --- booking ---

    @classmethod
    def book(
        cls,
        *,
        course_id: uuid.UUID,
        patient_id: uuid.UUID,
        route: Route,
        indication: Indication,
        course_open: bool,
        booking: SessionBooking,
        by: Staff,
        others: list[BookedSlot],
        rules: SessionRuleSettings,
        zone: ZoneInfo,
        now: datetime,
    ) -> tuple[DosingSessionChart, list[DomainEvent]]:
        """Books a dosing session: no clash of room, clinician, therapist or patient; the site's weekly cap (a
        clinician may override it with a reason); the minimum interval between dosing sessions (no override).
        ``others`` are the active bookings that could clash or count: the service loads them in a window."""
        if not course_open:
            raise Conflict("the course is not open: no session can be scheduled")
        starts_at = booking.starts_at
        if not now - BOOKING_PAST_LIMIT <= starts_at <= now + BOOKING_FUTURE_LIMIT:
            raise RuleRefused(
                f"starts_at {starts_at.isoformat()} is outside the booking window: from a day ago to "
                f"{BOOKING_FUTURE_LIMIT.days} days ahead"
            )
        ends_at = starts_at + timedelta(minutes=booking.duration_minutes)
        for other in sorted(others, key=lambda o: o.starts_at):
            if not overlaps(starts_at, ends_at, other.starts_at, other.ends_at):
                continue
            for what, mine, theirs in (
                ("room", booking.room, other.room),
                ("clinician", booking.clinician, other.clinician),
                ("therapist", booking.therapist, other.therapist),
            ):
                if mine == theirs:
                    raise Conflict(
                        f"{what} {mine} is already booked {other.starts_at:%Y-%m-%d %H:%M}-{other.ends_at:%H:%M} UTC"
                    )
            if other.patient_id == patient_id:
                raise Conflict(f"the patient already has a session at {other.starts_at:%Y-%m-%d %H:%M} UTC")
        patients_sessions = [o.starts_at for o in others if o.patient_id == patient_id]
        too_close = too_soon_after(patients_sessions, starts_at, rules)
        if too_close:
            raise Conflict("; ".join(too_close))
        override = booking.weekly_cap_override
        if override is not None and not by.clinician:
            raise NotPermitted("only a clinician may override the weekly cap")
        try:
            allowed = weekly_cap_allows(patients_sessions, starts_at, override, rules, zone)
        except OverrideNotNeeded as exc:
            raise RuleRefused(str(exc)) from None
        if not allowed:
            raise Conflict(
                f"the patient's week already has the site's cap of {rules.weekly_session_cap} dosing sessions; a "
                "clinician may override with a reason"
            )
        chart = cls(
            id=uuid.uuid4(),
            course_id=course_id,
            patient_id=patient_id,
            route=route,
            indication=indication,
            starts_at=starts_at,
            ends_at=ends_at,
            room=booking.room,
            clinician=booking.clinician,
            therapist=booking.therapist,
            status=SessionStatus.scheduled,
            weekly_cap_override=override.reason if override else None,
        )
        scheduled = SessionScheduled(
            patient_id=patient_id,
            session_id=chart.id,
            course_id=course_id,
            route=route,
            starts_at=starts_at,
            ends_at=ends_at,
            weekly_cap_overridden=override is not None,
        )
        return chart, [scheduled]

    def call_off(self, outcome: SessionStatus, reason: str, now: datetime) -> list[DomainEvent]:
        """Cancellation or no-show, with its reason: only a session not yet dosed."""
        if outcome not in (SessionStatus.cancelled, SessionStatus.no_show):
            raise ValueError(f"{outcome} is not a way to call a session off")
        if self.record.dose is not None or outcome not in SESSION_TRANSITIONS[self.status]:
            raise Conflict(f"the session is {self.status.value}; only a session not yet dosed can be {outcome.value}")
        self._move(outcome)
        self.status_reason = reason
        if outcome is SessionStatus.cancelled:
            return [
                SessionCancelled(
                    patient_id=self.patient_id,
                    session_id=self.id,
                    course_id=self.course_id,
                    reason=reason,
                    cancelled_at=now,
                )
            ]
        return [
            SessionNoShow(
                patient_id=self.patient_id, session_id=self.id, course_id=self.course_id, reason=reason, recorded_at=now
            )
        ]

    # --- at the chair ---

    def record_pre_dose(
        self, entry: PreDoseEntry, by: Staff, context: DosingContext, rules: SessionRuleSettings, now: datetime
    ) -> list[DomainEvent]:
        """Weight (checked against the last recorded one), the pre-dose reading and what it finds, fasting,
        medicines, escort. A finding that needs a decision may carry a clinician's decision. May be taken again
        (a second reading after rest) until the dose; every reading stays on the timeline."""
        self._open_for_change()
        if self.record.dose is not None:
            raise Conflict("the dose was already given; pre-dose checks cannot change")
        self._may_treat(context, now, rules)
        self._plausible(now, entry.vitals.taken_at)
        earlier = self.record.pre_dose
        if earlier is not None and (
            entry.vitals.taken_at < earlier.vitals.taken_at
            or (entry.vitals.taken_at == earlier.vitals.taken_at and entry.vitals != earlier.vitals)
        ):
            # A new check replaces the old one (to correct the weight or the answers, the same reading is sent
            # again); an older or rewritten reading must not hide one that refused the dose.
            raise RuleRefused(
                f"a pre-dose check with a reading taken at {earlier.vitals.taken_at.isoformat()} is already "
                "recorded: send that same reading again, or a new one taken after it"
            )
        weight_kg = entry.weight.kg
        if not WEIGHT_MIN_KG <= weight_kg <= WEIGHT_MAX_KG:
            raise RuleRefused(
                f"weight {number(weight_kg)} kg is outside {WEIGHT_MIN_KG}-{WEIGHT_MAX_KG} kg: check the unit and the "
                "number"
            )
        previous = context.last_weight
        if (
            weight_change_needs_confirmation(weight_kg, previous.kg if previous else None, rules)
            and not entry.weight_change_confirmed
        ):
            assert previous is not None
            change = abs(weight_kg - previous.kg) / previous.kg * 100
            raise RuleRefused(
                f"weight {number(weight_kg)} kg is {number(round(change, 1))} % from the last recorded "
                f"{number(previous.kg)} kg ({previous.weighed_at:%Y-%m-%d}), more than the site's "
                f"{number(rules.weight_change_confirm_percent)} %: weigh again, and confirm with "
                "weight_change_confirmed"
            )
        findings = predose_findings(entry.vitals, rules)
        if entry.decision is not None:
            if not by.clinician:
                raise NotPermitted("only a clinician decides whether to proceed on what the pre-dose check found")
            if not findings.needs_decision:
                why = (
                    "no decision can accept " + "; ".join(findings.refusals)
                    if findings.refusals
                    else "the pre-dose reading is within the site's limits"
                )
                raise RuleRefused(f"no decision to proceed is needed or possible: {why}")
        alerts = vitals_alerts(entry.vitals, rules)
        reading = RecordedVitals(
            **entry.vitals.model_dump(), phase=VitalsPhase.pre_dose, alerts=alerts, recorded_by=by.sub
        )
        self.record = self.record.model_copy(
            update={
                "pre_dose": PreDoseCheck(
                    weight_kg=weight_kg,
                    weight_as_entered=entry.weight,
                    previous_weight_kg=previous.kg if previous else None,
                    weight_change_confirmed=entry.weight_change_confirmed,
                    vitals=entry.vitals,
                    fasting=entry.fasting,
                    takes_benzodiazepines=entry.takes_benzodiazepines,
                    takes_stimulants=entry.takes_stimulants,
                    takes_maois=entry.takes_maois,
                    takes_opioids=entry.takes_opioids,
                    escort_arranged=entry.escort_arranged,
                    transport_note=entry.transport_note,
                    findings=findings,
                    decision=entry.decision,
                    decided_by=by.sub if entry.decision else None,
                    recorded_by=by.sub,
                    recorded_at=now,
                ),
                "vitals": _timeline([*self.record.vitals, reading]),
            }
        )
        if self.status is SessionStatus.scheduled:
            self._move(SessionStatus.in_progress)
        return self._alert_events(reading)

    def record_dose(
        self,
        entry: DoseEntry,
        by: Staff,
        context: DosingContext,
        rules: SessionRuleSettings,
        zone: ZoneInfo,
        now: datetime,
    ) -> list[DomainEvent]:
        """The dose, checked against everything that must hold before it: the pre-dose check and its decision,
        the reading's age, the patient's standing, the route's range and ceiling, esketamine's devices and
        starting dose (the first dose and the age worked out here, from the history and the birth date), the
        infusion's duration, and the interval since the last dose."""
        self._open_for_change()
        pre_dose = self.record.pre_dose
        if pre_dose is None:
            raise Conflict("record the pre-dose checks first")
        if self.record.dose is not None:
            raise Conflict("a dose is already recorded for this session")
        self._may_treat(context, now, rules)
        if pre_dose.findings.refusals:
            raise Conflict(
                "; ".join(pre_dose.findings.refusals) + ": let the patient rest and record a new pre-dose check"
            )
        if pre_dose.findings.needs_decision:
            if pre_dose.decision is None:
                raise Conflict(
                    "the pre-dose check found: "
                    + "; ".join(pre_dose.findings.needs_decision)
                    + ": a clinician's decision to proceed is needed"
                )
            if not pre_dose.decision.proceed:
                raise Conflict(f"the clinician decided not to proceed: {pre_dose.decision.reason}")
        start = entry.administration_start
        self._plausible(now, start, entry.administration_end, *(entry.device_times or []))
        too_old = predose_reading_too_old(pre_dose.vitals.taken_at, start, rules)
        if too_old:
            raise Conflict(too_old)
        since_check = self._readings_since_pre_dose_check(start, rules)
        if since_check:
            raise Conflict(
                "; ".join(since_check)
                + ": the pre-dose decision did not see it; record a new pre-dose check before the dose"
            )
        if entry.override is not None and not by.clinician:
            raise NotPermitted("only a clinician may override a dose rule")

        end, problems, refusals = self._administration(entry, rules)
        age, check = self.dose_check(entry.mg_per_kg, entry.dose_mg, context, rules, local_date(start, zone))
        first_dose = check.first_dose
        if self.route is Route.intranasal_esketamine and not check.refusals:
            refusals += check_device_times(check.dose_mg, entry.device_times or [], rules)
        refusals = [*check.refusals, *refusals, *too_soon_after([d.at for d in context.earlier_doses], start, rules)]
        problems = [*check.problems, *problems]
        try:
            dose_allowed(problems, refusals, entry.override)
        except (DoseNotAllowed, OverrideNotNeeded) as exc:
            raise RuleRefused(str(exc)) from None
        self.record = self.record.model_copy(
            update={
                "dose": DoseRecord(
                    route=self.route,
                    dose_mg=check.dose_mg,
                    mg_per_kg=check.mg_per_kg,
                    weight_kg=pre_dose.weight_kg,
                    age_years=age,
                    first_dose=first_dose,
                    within_range=not problems,
                    problems=problems,
                    devices=check.devices,
                    override_reason=entry.override.reason if entry.override else None,
                    lot_number=entry.lot_number,
                    administration_start=start,
                    administration_end=end,
                    device_times=list(entry.device_times or []),
                    recorded_by=by.sub,
                    recorded_at=now,
                )
            }
        )
        return [
            DoseAdministered(
                patient_id=self.patient_id,
                session_id=self.id,
                course_id=self.course_id,
                route=self.route,
                dose_mg=check.dose_mg,
                dose_mg_per_kg=check.mg_per_kg,
                within_range=not problems,
                override_reason=entry.override.reason if entry.override else None,
                administered_at=start,
            )
        ]

    def dose_check(
        self,
        mg_per_kg: float | None,
        dose_mg: float | None,
        context: DosingContext,
        rules: SessionRuleSettings,
        on: date,
    ) -> tuple[int, DoseCheck]:
        """(age, the dose worked out and checked) for the pre-dose weight: what the bedside calculator shows before
        the dose, and what record_dose checks again when it is given. The age and whether it is the first
        esketamine dose come from intake's birth date and the dose history, never from the client."""
        pre_dose = self.record.pre_dose
        if pre_dose is None:
            raise Conflict("record the pre-dose checks first: the dose follows from the weight taken there")
        if context.birth_date is None:
            raise Conflict("sessions does not know the patient's date of birth yet (from intake's registration)")
        try:
            age = age_on(context.birth_date, on)
        except ValueError:
            raise RuleRefused(
                f"the date of birth from intake ({context.birth_date}) is after the dose's date: correct it at intake"
            ) from None
        first_dose = self.route is Route.intranasal_esketamine and not any(
            d.route is Route.intranasal_esketamine for d in context.earlier_doses
        )
        try:
            if self.route in (Route.iv_infusion, Route.intramuscular, Route.subcutaneous):
                if mg_per_kg is None:
                    raise RuleRefused(f"{self.route.value} is dosed in mg/kg: give mg_per_kg")
                calculation = calculate_dose(self.route, pre_dose.weight_kg, mg_per_kg)
            else:
                if dose_mg is None:
                    raise RuleRefused(f"{self.route.value} is a fixed dose: give dose_mg")
                calculation = fixed_dose(self.route, pre_dose.weight_kg, dose_mg)
            return age, check_dose(
                self.route,
                dose_mg=calculation.dose_mg,
                weight_kg=pre_dose.weight_kg,
                age_years=age,
                first_dose=first_dose,
                settings=rules,
            )
        except ValidationError as exc:
            raise RuleRefused(f"the dose cannot be checked: {exc.errors(include_url=False)[0]['msg']}") from None

    def _administration(
        self, entry: DoseEntry, rules: SessionRuleSettings
    ) -> tuple[datetime | None, list[str], list[str]]:
        """(end of the administration, overridable problems, refusals) for the route's way of giving a dose."""
        start = entry.administration_start
        problems: list[str] = []
        refusals: list[str] = []
        if self.route is Route.iv_infusion:
            if entry.device_times:
                raise RuleRefused("device_times are for esketamine only")
            end = entry.administration_end or (
                start + timedelta(minutes=entry.infusion_minutes) if entry.infusion_minutes is not None else None
            )
            if end is not None:
                problems += self._infusion_problems(start, end, rules)
            return end, problems, refusals
        if entry.administration_end is not None or entry.infusion_minutes is not None:
            raise RuleRefused("administration_end and infusion_minutes are for an IV infusion only")
        if self.route is Route.intranasal_esketamine:
            times = entry.device_times or []
            if not times:
                raise RuleRefused(
                    "esketamine: give each device's time in device_times (observation runs from the last)"
                )
            if times[0] != start:
                raise RuleRefused("esketamine: the first device's time is the administration's start")
            return times[-1], problems, refusals
        if entry.device_times:
            raise RuleRefused("device_times are for esketamine only")
        return start, problems, refusals

    @staticmethod
    def _infusion_problems(start: datetime, end: datetime, rules: SessionRuleSettings) -> list[str]:
        try:
            return infusion_duration_problems(start, end, rules)
        except ValueError as exc:
            raise RuleRefused(str(exc)) from None

    def record_infusion_end(
        self, entry: InfusionEndEntry, by: Staff, rules: SessionRuleSettings, now: datetime
    ) -> list[DomainEvent]:
        """The end of an IV infusion, recorded once it has ended: observation counts from here."""
        self._open_for_change()
        dose = self.record.dose
        if self.route is not Route.iv_infusion:
            raise Conflict("only an IV infusion has an end to record")
        if dose is None:
            raise Conflict("record the dose first")
        if dose.administration_end is not None:
            raise Conflict(f"the infusion's end is already recorded ({dose.administration_end.isoformat()})")
        self._plausible(now, entry.ended_at)
        problems = self._infusion_problems(dose.administration_start, entry.ended_at, rules)
        if entry.override is not None and not by.clinician:
            raise NotPermitted("only a clinician may accept an infusion outside the site's usual duration")
        try:
            dose_allowed(problems, [], entry.override)
        except (DoseNotAllowed, OverrideNotNeeded) as exc:
            raise RuleRefused(str(exc)) from None
        self.record = self.record.model_copy(
            update={
                "dose": dose.model_copy(
                    update={
                        "administration_end": entry.ended_at,
                        "infusion_end_override_reason": entry.override.reason if entry.override else None,
                    }
                )
            }
        )
        return []

    def record_vitals(
        self, reading: VitalsReading, by: Staff, rules: SessionRuleSettings, now: datetime
    ) -> tuple[list[VitalsAlert], list[DomainEvent]]:
        self._open_for_change()
        if self.record.pre_dose is None:
            raise Conflict("record the pre-dose checks first (they include the first vitals)")
        self._plausible(now, reading.taken_at)
        alerts = vitals_alerts(reading, rules)
        entry = RecordedVitals(**reading.model_dump(), phase=VitalsPhase.monitoring, alerts=alerts, recorded_by=by.sub)
        self.record = self.record.model_copy(update={"vitals": _timeline([*self.record.vitals, entry])})
        return alerts, self._alert_events(entry)

    def record_recovery_check(self, entry: RecoveryCheckEntry, by: Staff, now: datetime) -> list[DomainEvent]:
        self._open_for_change()
        if self.record.pre_dose is None:
            raise Conflict("record the pre-dose checks first")
        self._plausible(now, entry.assessed_at)
        cadss = None
        if entry.cadss_subjective is not None or entry.cadss_observer is not None:
            if entry.cadss_subjective is None:
                raise RuleRefused("a CADSS needs its 23 subjective items (cadss_subjective)")
            try:
                cadss = score_cadss(entry.cadss_subjective, entry.cadss_observer)
            except CadssAnswerError as exc:
                raise RuleRefused(str(exc)) from None
        check = RecoveryCheck(
            assessed_at=entry.assessed_at,
            moaa_s=entry.moaa_s,
            sedation_level=sedation_level(entry.moaa_s),
            dissociation_present=entry.dissociation_present,
            respiratory_depression_present=entry.respiratory_depression_present,
            cadss=cadss,
            recorded_by=by.sub,
        )
        checks = sorted([*self.record.recovery_checks, check], key=lambda c: c.assessed_at)
        self.record = self.record.model_copy(update={"recovery_checks": checks})
        return []

    def report_adverse_event(
        self, report: AdverseEventReport, by: Staff, now: datetime
    ) -> tuple[AdverseEventRecord, list[DomainEvent]]:
        """An adverse event is taken whenever it is reported, after discharge and after signing too: one seen at
        the chair and charted late must still reach the record, the REMS form and the safety report. Each keeps
        the time it was reported, so a late entry shows as late."""
        if self.record.pre_dose is None:
            raise Conflict("the session has not begun: record the pre-dose checks first")
        self._plausible(now, report.occurred_at)
        serious = is_serious(report.event)
        entry = AdverseEventRecord(
            **report.event.model_dump(),
            id=uuid.uuid4(),
            serious=serious,
            flagged_for_reporting=serious,
            action_taken=report.action_taken,
            occurred_at=report.occurred_at,
            reported_by=by.sub,
            reported_at=now,
        )
        self.record = self.record.model_copy(update={"adverse_events": [*self.record.adverse_events, entry]})
        return entry, [
            AdverseEventReported(
                patient_id=self.patient_id,
                session_id=self.id,
                adverse_event_id=entry.id,
                type=entry.type.value,
                severity=entry.severity.value,
                serious=serious,
                action_taken=entry.action_taken,
                occurred_at=entry.occurred_at,
            )
        ]

    def record_therapy(self, entry: TherapyEntry, by: Staff) -> list[DomainEvent]:
        self._open_for_change()
        note = TherapyNote(**entry.model_dump(), recorded_by=by.sub)
        self.record = self.record.model_copy(update={"therapy": note})
        return []

    def discharge_check(self, escort_present: bool, rules: SessionRuleSettings, now: datetime) -> DischargeCheck:
        dose = self.record.dose
        if dose is None:
            raise Conflict("no dose is recorded: cancel the session or record the dose first")
        return discharge_check(
            self.route,
            administration_start=dose.administration_start,
            administration_end=dose.administration_end,
            now=now,
            readings=self.record.vitals,
            recovery_checks=self.record.recovery_checks,
            escort_present=escort_present,
            settings=rules,
        )

    def discharge(
        self, entry: DischargeEntry, by: Staff, rules: SessionRuleSettings, now: datetime
    ) -> list[DomainEvent]:
        self._open_for_change()
        at = entry.discharged_at or now
        self._plausible(now, at)
        last_observed = self._last_observation()
        if last_observed is not None and at < last_observed:
            # The discharge criteria are judged as at the discharge time; a time before the last observation
            # would judge them without it (a low SpO2 charted after the chosen time).
            raise RuleRefused(
                f"discharge at {at.isoformat()} is before the last observation on the chart "
                f"({last_observed.isoformat()}): give the real discharge time"
            )
        check = self.discharge_check(entry.escort_present, rules, at)
        if not check.allowed:
            raise Conflict("discharge not yet allowed: " + "; ".join(check.unmet))
        dose = self.record.dose
        assert dose is not None and dose.administration_end is not None  # the check requires both
        observed = int((at - dose.administration_end) / timedelta(minutes=1))
        record = DischargeRecord(discharged_at=at, escort_present=True, observation_minutes=observed, by=by.sub)
        self.record = self.record.model_copy(update={"discharge": record})
        self._move(SessionStatus.completed)
        peak = max((c.cadss.total for c in self.record.recovery_checks if c.cadss is not None), default=None)
        therapy = self.record.therapy
        return [
            SessionCompleted(
                patient_id=self.patient_id,
                session_id=self.id,
                course_id=self.course_id,
                route=self.route,
                dose_mg=dose.dose_mg,
                dose_mg_per_kg=dose.mg_per_kg,
                observation_minutes=observed,
                modalities=[m.value for m in therapy.modalities] if therapy else [],
                dissociation_score=peak,
                dissociation_scale=CADSS_VERSION if peak is not None else None,
                discharged_at=at,
                infusion_minutes=(
                    int((dose.administration_end - dose.administration_start) / timedelta(minutes=1))
                    if self.route is Route.iv_infusion
                    else None
                ),
                psychotherapy_minutes=therapy.psychotherapy_minutes if therapy else None,
            )
        ]

    def sign(self, by: Staff, now: datetime) -> list[DomainEvent]:
        if self.signed_at is not None:
            raise Conflict("the session record is already signed")
        if self.status not in SIGNABLE_STATUSES:
            raise Conflict("sign the record after discharge")
        self.signed_at, self.signed_by = now, by.sub
        return []

    def add_addendum(self, entry: AddendumEntry, by: Staff, now: datetime) -> list[DomainEvent]:
        """After signing only an addendum is allowed, kept beside the original, which never changes."""
        if self.signed_at is None:
            raise Conflict("the record is not signed yet: change it directly")
        addendum = Addendum(text=entry.text, author=by.sub, added_at=now)
        self.record = self.record.model_copy(update={"addenda": [*self.record.addenda, addendum]})
        return []

    # --- views ---

    def monitoring(self, rules: SessionRuleSettings, now: datetime) -> MonitoringView:
        """Where the monitoring stands: what the vitals timeline is missing, the last reading's alerts, and what
        discharge still waits for (with the escort arranged at check-in)."""
        dose = self.record.dose
        gaps: list[str] = []
        unmet: list[str] = []
        if dose is not None and self.status is SessionStatus.in_progress:
            gaps = monitoring_gaps(dose.administration_start, self.record.vitals, now, rules)
            escort = self.record.pre_dose.escort_arranged if self.record.pre_dose else False
            unmet = self.discharge_check(escort, rules, now).unmet
        return MonitoringView(
            session_id=self.id,
            status=self.status,
            dose_recorded=dose is not None,
            infusion_running=dose is not None and dose.administration_end is None,
            gaps=gaps,
            last_alerts=self.record.vitals[-1].alerts if self.record.vitals else [],
            discharge_unmet=unmet,
        )

    # --- the esketamine REMS form ---

    def rems_form_from_record(
        self, rules: SessionRuleSettings, entry: RemsFormEntry | None = None
    ) -> RemsMonitoringForm:
        """The REMS Patient Monitoring Form as the session record fills it, with what the nurse adds."""
        dose, discharge = self.record.dose, self.record.discharge
        if self.route is not Route.intranasal_esketamine or dose is None:
            raise Conflict("the REMS monitoring form is for esketamine sessions only")
        if discharge is None or self.status is not SessionStatus.completed:
            raise Conflict("fill in the REMS form once the patient is discharged")
        readings = self.record.vitals
        before = self.record.pre_dose.vitals if self.record.pre_dose else None
        at_40 = postdose_bp_in_window(dose.administration_start, readings, rules)
        last = max(
            (r for r in readings if r.has_bp and r.taken_at <= discharge.discharged_at),
            key=lambda r: r.taken_at,
            default=None,
        )
        if before is None or at_40 is None or last is None:
            raise Conflict("the session record lacks a blood pressure the REMS form asks for")
        serious = [e for e in self.record.adverse_events if e.serious]
        entry = entry or RemsFormEntry()
        total = int((discharge.discharged_at - dose.administration_start) / timedelta(minutes=1))
        try:
            return RemsMonitoringForm(
                concomitant_medications=entry.concomitant_medications,
                dose_mg=int(dose.dose_mg),
                lot_number=dose.lot_number,
                total_monitoring_minutes=total,
                minutes_until_ready_to_leave=(
                    entry.minutes_until_ready_to_leave if entry.minutes_until_ready_to_leave is not None else total
                ),
                bp_before_dosing=_bp(before),
                bp_at_40_minutes=_bp(at_40),
                bp_before_discharge=_bp(last),
                sedation=sedation_observed([c.sedation_level for c in self.record.recovery_checks]),
                dissociation=any(c.dissociation_present for c in self.record.recovery_checks),
                respiratory_depression=any(c.respiratory_depression_present for c in self.record.recovery_checks),
                serious_adverse_events=bool(serious),
                serious_adverse_event_description=entry.serious_adverse_event_description
                or ("; ".join(f"{e.type.value}: {e.action_taken}" for e in serious) if serious else None),
            )
        except ValidationError as exc:
            raise RuleRefused(f"the REMS form: {exc.errors(include_url=False)[0]['msg']}") from None

    def save_rems_form(self, entry: RemsFormEntry, by: Staff, rules: SessionRuleSettings) -> list[DomainEvent]:
        if self.rems_submitted_at is not None:
            raise Conflict("the REMS form was already submitted")
        form = self.rems_form_from_record(rules, entry)
        mismatches = disagreements(entry.model_dump(mode="json", exclude_unset=True), form)
        if mismatches:
            raise RuleRefused("the REMS form disagrees with the session record: " + "; ".join(mismatches))
        self.rems_form = form.model_copy(update={"completed_by": by.sub})
        return []

    def submit_rems_form(self, now: datetime) -> list[DomainEvent]:
        if self.rems_form is None:
            raise Conflict("fill in the REMS form before submitting it")
        if self.rems_submitted_at is not None:
            raise Conflict("the REMS form was already submitted")
        self.rems_submitted_at = now
        return []

    # --- rules every change shares ---

    def _readings_since_pre_dose_check(self, dose_at: datetime, rules: SessionRuleSettings) -> list[str]:
        """What any reading taken after the pre-dose check and before the dose found, judged by the pre-dose
        rules: a blood pressure of 195/118 five minutes before the dose refuses it even if the pre-dose check was
        normal."""
        pre_dose = self.record.pre_dose
        assert pre_dose is not None
        found: list[str] = []
        for reading in self.record.vitals:
            if pre_dose.vitals.taken_at < reading.taken_at <= dose_at:
                findings = predose_findings(reading, rules)
                found += [
                    f"reading at {reading.taken_at.isoformat()}: {what}"
                    for what in [*findings.refusals, *findings.needs_decision]
                ]
        return found

    def _last_observation(self) -> datetime | None:
        times = [
            *(v.taken_at for v in self.record.vitals),
            *(c.assessed_at for c in self.record.recovery_checks),
            *(e.occurred_at for e in self.record.adverse_events),
        ]
        return max(times, default=None)

    def _open_for_change(self) -> None:
        if self.signed_at is not None:
            raise Conflict("the session record is signed and cannot change; add an addendum instead")
        if self.status not in (SessionStatus.scheduled, SessionStatus.in_progress):
            raise Conflict(f"the session is {self.status.value}")

    def _move(self, status: SessionStatus) -> None:
        if status not in SESSION_TRANSITIONS[self.status]:
            raise Conflict(f"a session that is {self.status.value} cannot become {status.value}")
        self.status = status

    def _may_treat(self, context: DosingContext, now: datetime, rules: SessionRuleSettings) -> None:
        """The course must be open, and the patient still eligible, consented and without an open safety flag (a
        withdrawal holds the course, and no dose may follow, even in a session booked before)."""
        if context.course_status not in OPEN_COURSE_STATUSES:
            raise Conflict(f"the course is {context.course_status.value.replace('_', ' ')}: no dose may be given")
        blockers = treatment_blockers(context.standing, now, rules)
        if blockers:
            raise Conflict("no dose may be given: " + "; ".join(blockers))

    def _plausible(self, now: datetime, *moments: datetime | None) -> None:
        earliest = self.starts_at - EARLIEST_BEFORE_BOOKING
        for moment in moments:
            if moment is None:
                continue
            if moment > now + CLOCK_SKEW:
                raise RuleRefused(f"{moment.isoformat()} is in the future: record what has happened")
            if moment < earliest:
                raise RuleRefused(
                    f"{moment.isoformat()} is more than {duration(EARLIEST_BEFORE_BOOKING)} before the session's "
                    f"booked start ({self.starts_at.isoformat()}): check the date"
                )

    def _alert_events(self, reading: RecordedVitals) -> list[DomainEvent]:
        return [
            VitalsAlertRaised(
                patient_id=self.patient_id,
                session_id=self.id,
                code=alert.code.value,
                value=alert.value,
                threshold=alert.threshold,
                message=alert.message,
                taken_at=reading.taken_at,
            )
            for alert in reading.alerts
        ]


def _bp(reading: VitalsReading) -> BloodPressure:
    assert reading.systolic_mmhg is not None and reading.diastolic_mmhg is not None
    return BloodPressure(systolic_mmhg=reading.systolic_mmhg, diastolic_mmhg=reading.diastolic_mmhg)


def _timeline(readings: list[RecordedVitals]) -> list[RecordedVitals]:
    # Ordered by instant (all UTC), never by the text a client sent.
    return sorted(readings, key=lambda r: r.taken_at)
