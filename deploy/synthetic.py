"""A synthetic cohort: ``python -m deploy.synthetic --patients N --sites K --seed S [--end YYYY-MM-DD]``.

Invented patients of invented clinics, with months of history, published as the domain events intake, sessions
and billing publish, on each site's own topics (``kapnet.<site>.<service>.v1``). The services stamp API writes
with the current clock, so history cannot go through their APIs; through their events it reaches every consumer
(sessions, billing and outcomes) exactly as a clinic's real records would. Nothing here describes a real person.

Deterministic: one ``random.Random(seed)`` draws everything, every uuid and CloudEvent id included, and the events
come out in a stable order, so a seed and an ``--end`` date give the same events byte for byte. Every event
happens before ``--end`` (its day not included).

What a patient goes through: registration (self-pay or insured), an eligibility screening, a baseline PHQ-9,
GAD-7 and PCL-5 (a PHQ-9 item 9 above 0 raises a safety flag a clinician acknowledges), prior antidepressant
trials (0-4 failed adequate ones; 2 or more is treatment-resistant), consent, a planned course (indication,
route), billing's coverage determination, sometimes an access barrier (deferred: a later first dose; declined:
never dosed), then dosing sessions (scheduled, dosed, vitals alerts, adverse events, discharge with a
dissociation score), in-course scores (the primary instrument on the hours after the first and last doses too),
integration therapy, the course's end (completed, or discontinued: a dropout), and follow-ups 4, 12 and 26 weeks
later for a share of patients, with some responders relapsing.

Realism targets. Approximately, from published real-world series of IV ketamine for depression (e.g. McInnes
LA et al., J Affect Disord Rep 2022; Oliver PA et al., Front Psychiatry 2022) and the trials behind them
(Wilkinson ST et al., Psychother Psychosom 2017): about half respond (a fall of 50 % or more on the primary
instrument by the end of the course) and under a third remit; about 15 % of courses end early; dissociation is
near universal and mostly mild; nausea or vomiting in roughly 10-20 % of courses; transient blood-pressure rises;
serious adverse events rare. Everything else (the mix of indications, routes and payers, the share of access
barriers, waiting times, follow-up attendance, relapse rates, prices) is invented for the demo. Doses stay
within the clinic's documented ranges and ceilings (docs/clinical-rules.md): IV 0.5-1.0 mg/kg over 40 minutes
(above 0.75 with an override), IM 0.3-0.6 mg/kg, SC 0.5-0.75 mg/kg, esketamine 56 mg first then 56 or 84 mg,
sublingual/oral 100-300 mg. Self-pay prices are in the range US clinics advertise ($400-$800 an IV infusion).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy import local_http
from deploy.demo_data import FAMILY, GIVEN
from services.billing.domain.coverage import CoverageKind, PayerType, PlanBenefits, determine
from services.billing.domain.coverage import CoverageOnFile as BillingCoverageOnFile
from services.intake.prior_treatment import (
    MINIMUM_ADEQUATE_DAILY_DOSE,
    AntidepressantTrial,
    Neuromodulation,
    PriorTreatment,
    Psychotherapy,
    treatment_resistant,
)
from services.outcomes.domain.definitions import OutcomeDefinition
from services.sessions.domain.recovery import CADSS_VERSION
from services.sessions.domain.session_record import Modality
from shared.bus.kafka import (
    KafkaAccess,
    TopicSpec,
    admin_client,
    ensure_topics,
    reliable_producer,
    start_with_timeout,
    stop_quietly,
    wait_for_topics,
)
from shared.demographics import AdministrativeSex
from shared.events.billing import AccessBarrierReason, AccessBarrierRecorded, CoverageDetermined
from shared.events.envelope import CloudEvent, to_kafka
from shared.events.intake import (
    AssessmentRecorded,
    ConsentSigned,
    CoverageOnFile,
    MedicalReviewDecided,
    PatientRegistered,
    PriorTreatmentRecorded,
    SafetyFlagAcknowledged,
    SafetyFlagRaised,
    ScreeningCompleted,
)
from shared.events.registry import SITE_CHANNEL, DomainEvent
from shared.events.sessions import (
    AdverseEventReported,
    CoursePlanned,
    CourseStatusChanged,
    DoseAdministered,
    InCourseAssessmentRecorded,
    InCourseSafetyFlagAcknowledged,
    InCourseSafetyFlagRaised,
    IntegrationSessionCompleted,
    SessionCompleted,
    SessionScheduled,
    VitalsAlertRaised,
)
from shared.instruments import INSTRUMENT_VERSIONS, SPECS, Instrument, score
from shared.measures.models import MeasureContext
from shared.measures.service import PHQ9_ITEM9_REASON
from shared.prior_treatment import Antidepressant, PriorTreatmentKind, PsychotherapyType, TreatmentOutcome
from shared.treatment import (
    AdverseEventSeverity,
    AdverseEventType,
    CourseStatus,
    Indication,
    Route,
    VitalsAlertCode,
)

DEFAULT_END = date(2026, 11, 30)  # fixed, so a seed alone gives the same events; `make run` passes today
SITE_NAMES = ("north", "south", "east", "west", "central", "harbour", "valley", "lakeside")
# Registrations spread over this many days before --end, denser in recent months (a network that grows).
HISTORY_DAYS = 300
CONSENT_VERSION = "2026.1"  # deploy/demo_data.py's consent document
PCL5_CUTOFF = 33
DEFINITION = OutcomeDefinition(pcl5_remission_below=PCL5_CUTOFF)
PRIMARY: dict[Indication, Instrument] = {
    Indication.depression: Instrument.phq9,
    Indication.treatment_resistant_depression: Instrument.phq9,
    Indication.anxiety: Instrument.gad7,
    Indication.ptsd: Instrument.pcl5,
}
# The plans insured synthetic patients hold (invented payers). `make run` enters them at billing, so billing's own
# determination (it determines coverage again when it reads a course) agrees with the one published here.
PLANS: tuple[PlanBenefits, ...] = (
    PlanBenefits(
        payer="Demo Health",
        plan="Standard",
        payer_type=PayerType.commercial,
        covers_esketamine_with_prior_auth=True,
        covers_off_label_ketamine=False,
        covers_psychotherapy=True,
    ),
    PlanBenefits(
        payer="Riverside Mutual",
        plan="Basic HMO",
        payer_type=PayerType.commercial,
        covers_esketamine_with_prior_auth=True,
        covers_off_label_ketamine=False,
        covers_psychotherapy=False,
    ),
    PlanBenefits(
        payer="Silver Years Advantage",
        plan="Medicare Advantage",
        payer_type=PayerType.medicare,
        covers_esketamine_with_prior_auth=True,
        covers_off_label_ketamine=False,
        covers_psychotherapy=True,
    ),
)
# Self-pay price of one session in dollars (low, high), and of an integration session (invented).
SESSION_PRICE: dict[Route, tuple[int, int]] = {
    Route.iv_infusion: (400, 800),
    Route.intramuscular: (350, 500),
    Route.subcutaneous: (350, 500),
    Route.intranasal_esketamine: (800, 1000),
    Route.sublingual_oral: (200, 350),
}
INTEGRATION_PRICE = 180
PRESCRIBERS = ("Dr. Imani Osei", "Dr. Tomas Lindqvist", "Dr. Priya Raman", "Dr. Elena Duarte")
DROPOUT_REASONS = (
    "patient choice: no benefit felt",
    "adverse effects: nausea and dissociation too unpleasant",
    "cost: could not continue paying for the sessions",
    "lost to follow-up: did not return after a missed session",
    "moved away from the area",
    "medical: blood pressure concerns, referred to primary care",
)
_T = TypeVar("_T")
PAUSE_REASONS = ("intercurrent illness", "travel for a family emergency", "surgery scheduled, resumes after")


@dataclass(frozen=True)
class SyntheticEvent:
    """One event to publish: its topic, the CloudEvent that carries it, and the typed event itself."""

    topic: str
    envelope: CloudEvent
    event: DomainEvent

    @property
    def key(self) -> str:
        return self.event.partition_key()


def site_names(count: int) -> list[str]:
    return [SITE_NAMES[i] if i < len(SITE_NAMES) else f"site{i + 1}" for i in range(count)]


class _Ids:
    """Every uuid from the seeded generator, so a seed gives the same ids."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def __call__(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)


@dataclass
class _Timeline:
    """One patient's events in the order they happened (per topic that is the order a consumer needs)."""

    site: str
    new_id: _Ids
    items: list[tuple[datetime, int, str, CloudEvent, DomainEvent]] = field(default_factory=list)

    def add(self, at: datetime, event: DomainEvent) -> None:
        service = type(event).producer
        model = type(event)
        envelope = CloudEvent(
            type=model.ce_type(),
            source=f"/kapnet/{self.site}/{service}",
            subject=event.subject(),
            data=json.loads(event.model_dump_json()),
            id=str(self.new_id()),
            time=at,
            dataschema=f"urn:{model.ce_type()}",
        )
        self.items.append((at, len(self.items), SITE_CHANNEL.format(site=self.site, service=service), envelope, event))


def _at(day: date, hour: float) -> datetime:
    """A moment on a clinic day, in UTC (clinic hours of US sites are 13:00-23:00 UTC)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)


def _weighted(rng: random.Random, choices: Sequence[tuple[_T, float]]) -> _T:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _answers(rng: random.Random, instrument: Instrument, total: int, item9: int = 0) -> list[int]:
    """Item answers that sum to ``total`` (PHQ-9: item 9 as given, raised when the other items cannot hold it)."""
    spec = SPECS[instrument]
    answers = [0] * spec.item_count
    free = list(range(spec.item_count))
    if instrument is Instrument.phq9:
        free.remove(8)
        answers[8] = max(min(item9, total), total - 8 * spec.item_max)
    remaining = total - sum(answers)
    while remaining > 0:
        item = rng.choice([i for i in free if answers[i] < spec.item_max])
        answers[item] += 1
        remaining -= 1
    return answers


@dataclass(frozen=True)
class _SiteProfile:
    name: str
    esketamine: bool  # REMS-certified: may give esketamine


@dataclass
class _Patient:
    """What one patient is, before any event is written."""

    n: int
    site: _SiteProfile
    patient_id: uuid.UUID
    given: str
    family: str
    sex: AdministrativeSex
    age: int
    weight_kg: float
    plan: PlanBenefits | None
    indication: Indication
    route: Route
    failed_trials: int


class _PatientWriter:
    """Writes one patient's history onto a timeline."""

    def __init__(self, rng: random.Random, patient: _Patient, registered: datetime) -> None:
        self.rng = rng
        self.p = patient
        self.registered = registered
        self.new_id = _Ids(rng)
        self.timeline = _Timeline(patient.site.name, self.new_id)
        self.clinician = f"clinician-{rng.randint(1, 6)}@{patient.site.name}"

    # --- measures -----------------------------------------------------------------------------------------

    def measure(
        self, instrument: Instrument, total: int, at: datetime, context: MeasureContext, *, item9: int = 0
    ) -> None:
        spec = SPECS[instrument]
        total = max(0, min(spec.max_total, total))
        result = score(instrument, _answers(self.rng, instrument, total, item9), pcl5_cutoff=PCL5_CUTOFF)
        assert result.total == total
        in_course = context in (MeasureContext.in_course, MeasureContext.pre_session)
        recorded = InCourseAssessmentRecorded if in_course else AssessmentRecorded
        assessment_id = self.new_id()
        self.timeline.add(
            at,
            recorded(
                patient_id=self.p.patient_id,
                assessment_id=assessment_id,
                instrument=instrument.value,
                instrument_version=INSTRUMENT_VERSIONS[instrument],
                total=total,
                severity=result.severity,
                clusters=result.clusters,
                provisional_ptsd=result.provisional_ptsd,
                context=context.value,
                administered_at=at,
            ),
        )
        if result.safety_flag:
            # Intake's rule: item 9 above 0 raises a flag; a clinician assesses the risk and acknowledges it.
            raised, acknowledged = (
                (InCourseSafetyFlagRaised, InCourseSafetyFlagAcknowledged)
                if in_course
                else (SafetyFlagRaised, SafetyFlagAcknowledged)
            )
            flag_id = self.new_id()
            self.timeline.add(
                at,
                raised(
                    patient_id=self.p.patient_id,
                    flag_id=flag_id,
                    assessment_id=assessment_id,
                    reason=PHQ9_ITEM9_REASON,
                    raised_at=at,
                ),
            )
            later = at + timedelta(minutes=self.rng.randint(20, 180))
            self.timeline.add(
                later,
                acknowledged(
                    patient_id=self.p.patient_id, flag_id=flag_id, acknowledged_at=later, acknowledged_by=self.clinician
                ),
            )

    def item9(self, chance: float) -> int:
        return _weighted(self.rng, [(1, 0.8), (2, 0.2)]) if self.rng.random() < chance else 0

    # --- the whole history ----------------------------------------------------------------------------------

    def write(self) -> None:
        rng, p = self.rng, self.p
        coverage = (
            CoverageOnFile(self_pay=True)
            if p.plan is None
            else CoverageOnFile(self_pay=False, payer=p.plan.payer, plan=p.plan.plan, member_id=_member_id(p))
        )
        birth = self.registered.date() - timedelta(days=int(p.age * 365.25) + rng.randint(1, 360))
        self.timeline.add(
            self.registered,
            PatientRegistered(
                patient_id=p.patient_id,
                site=p.site.name,
                mrn=f"SYN-{p.n:06d}",
                given_name=p.given,
                family_name=p.family,
                birth_date=birth,
                sex=p.sex,
                registered_at=self.registered,
                coverage=coverage,
            ),
        )
        screened = _at(self.registered.date() + timedelta(days=rng.randint(0, 6)), rng.uniform(13.5, 20))
        if not self.screen(screened):
            return
        baselines = self.baselines(screened + timedelta(minutes=20))
        self.prior_treatments(screened + timedelta(minutes=40))
        self.timeline.add(
            screened + timedelta(minutes=55),
            ConsentSigned(
                patient_id=p.patient_id,
                consent_id=self.new_id(),
                document_version=CONSENT_VERSION,
                signed_at=screened + timedelta(minutes=55),
            ),
        )
        planned = _at(screened.date() + timedelta(days=rng.randint(1, 10)), rng.uniform(13.5, 21))
        self.course(planned, baselines)

    def screen(self, at: datetime) -> bool:
        rng, p = self.rng, self.p
        outcome = _weighted(rng, [("eligible", 0.87), ("needs_medical_review", 0.10), ("ineligible", 0.03)])
        screening_id = self.new_id()
        codes = {"eligible": [], "needs_medical_review": ["blood_pressure_above_threshold"], "ineligible": ["pregnant"]}
        self.timeline.add(
            at,
            ScreeningCompleted(
                patient_id=p.patient_id,
                screening_id=screening_id,
                outcome=outcome,
                reason_codes=codes[outcome],
                screened_at=at,
                with_medical_services=True,
            ),
        )
        if outcome == "needs_medical_review":
            decided = at + timedelta(hours=rng.randint(2, 48))
            self.timeline.add(
                decided,
                MedicalReviewDecided(
                    patient_id=p.patient_id,
                    screening_id=screening_id,
                    decision="approve",
                    eligible=True,
                    decided_at=decided,
                ),
            )
        return outcome != "ineligible"

    def baselines(self, at: datetime) -> dict[Instrument, int]:
        """All three instruments at intake; the indication's own one is high enough to treat."""
        rng, primary = self.rng, PRIMARY[self.p.indication]
        severity = rng.uniform(0.55, 0.95)  # how unwell, shared by the instruments
        wanted = {
            Instrument.phq9: round(27 * severity + rng.gauss(0, 2.5)),
            Instrument.gad7: round(21 * severity + rng.gauss(0, 2.5)),
            Instrument.pcl5: round(80 * severity + rng.gauss(0, 8)) - (0 if primary is Instrument.pcl5 else 20),
        }
        floor = {Instrument.phq9: 11, Instrument.gad7: 10, Instrument.pcl5: 38}
        result: dict[Instrument, int] = {}
        for k, instrument in enumerate(Instrument):
            total = max(wanted[instrument], floor[instrument]) if instrument is primary else wanted[instrument]
            total = max(0, min(SPECS[instrument].max_total, total))
            item9 = self.item9(0.18) if instrument is Instrument.phq9 else 0
            self.measure(instrument, total, at + timedelta(minutes=4 * k), MeasureContext.baseline, item9=item9)
            result[instrument] = total
        return result

    def prior_treatments(self, at: datetime) -> None:
        rng, p = self.rng, self.p
        drugs = rng.sample([d for d in Antidepressant if d is not Antidepressant.other], 6)
        history: list[PriorTreatment] = []
        for k in range(p.failed_trials):
            minimum = _minimum_dose(drugs[k])
            history.append(
                AntidepressantTrial(
                    kind=PriorTreatmentKind.antidepressant_trial,
                    current_episode=True,
                    outcome=_weighted(
                        rng, [(TreatmentOutcome.no_response, 0.6), (TreatmentOutcome.partial_response, 0.4)]
                    ),
                    drug=drugs[k],
                    daily_dose_mg=minimum * rng.choice([1, 1.5, 2]),
                    duration_weeks=rng.randint(6, 16),
                )
            )
        if rng.random() < 0.35:  # not counted: stopped for side effects
            history.append(
                AntidepressantTrial(
                    kind=PriorTreatmentKind.antidepressant_trial,
                    current_episode=True,
                    outcome=TreatmentOutcome.not_tolerated,
                    drug=drugs[5],
                    daily_dose_mg=_minimum_dose(drugs[5]),
                    duration_weeks=rng.randint(1, 4),
                )
            )
        if rng.random() < 0.6:
            history.append(
                Psychotherapy(
                    kind=PriorTreatmentKind.psychotherapy,
                    current_episode=True,
                    outcome=TreatmentOutcome.partial_response,
                    therapy=_weighted(rng, [(PsychotherapyType.cbt, 0.7), (PsychotherapyType.ipt, 0.3)]),
                    sessions=rng.randint(8, 24),
                )
            )
        if p.failed_trials >= 3 and rng.random() < 0.25:
            history.append(
                Neuromodulation(
                    kind=PriorTreatmentKind.tms,
                    current_episode=True,
                    outcome=TreatmentOutcome.no_response,
                    sessions=rng.randint(20, 36),
                )
            )
        for k, treatment in enumerate(history):
            recorded = at + timedelta(minutes=2 * k)
            self.timeline.add(
                recorded, _prior_treatment_event(p.patient_id, self.new_id(), treatment, history[: k + 1], recorded)
            )

    # --- the course -------------------------------------------------------------------------------------------

    def course(self, planned: datetime, baselines: dict[Instrument, int]) -> None:
        rng, p = self.rng, self.p
        course_id = self.new_id()
        per_week, sessions = _schedule(rng, p.route)
        self.timeline.add(
            planned,
            CoursePlanned(
                patient_id=p.patient_id,
                course_id=course_id,
                indication=p.indication,
                route=p.route,
                planned_dosing_sessions=sessions,
                dosing_sessions_per_week=per_week,
                planned_integration_sessions=sessions // 2,
                prescriber=rng.choice(PRESCRIBERS),
                planned_at=planned,
            ),
        )
        on_file = BillingCoverageOnFile(
            self_pay=p.plan is None,
            payer=p.plan.payer if p.plan else None,
            plan=p.plan.plan if p.plan else None,
            member_id=_member_id(p) if p.plan else None,
        )
        decision = determine(p.route, p.indication, on_file, p.plan, site_rems_certified=p.site.esketamine)
        determined = planned + timedelta(minutes=rng.randint(1, 30))
        self.timeline.add(
            determined,
            CoverageDetermined(
                patient_id=p.patient_id,
                course_id=course_id,
                kind=decision.kind.value,
                reason=decision.reason.value,
                payer_type="self_pay" if p.plan is None else p.plan.payer_type.value,
                prior_auth_needed=decision.prior_auth_needed,
                determined_at=determined,
            ),
        )
        low, high = SESSION_PRICE[p.route]
        price = rng.randint(low, high)
        out_of_pocket = (price * sessions + INTEGRATION_PRICE * (sessions // 2)) * 100
        barrier = _barrier(rng, p.plan is None, decision.kind, decision.prior_auth_needed)
        wait = timedelta(days=rng.randint(2, 14))
        if barrier is not None:
            reason, outcome = barrier
            recorded = determined + timedelta(days=rng.randint(1, 6), hours=rng.uniform(0, 3))
            self.timeline.add(
                recorded,
                AccessBarrierRecorded(
                    patient_id=p.patient_id,
                    barrier_id=self.new_id(),
                    course_id=course_id,
                    reason=reason,
                    outcome=outcome,
                    estimated_out_of_pocket_cents=out_of_pocket,
                    currency="USD",
                    recorded_automatically=False,
                    recorded_at=recorded,
                ),
            )
            if outcome == "declined":
                closed = recorded + timedelta(days=rng.randint(0, 14))
                self.status(course_id, CourseStatus.planned, CourseStatus.discontinued, closed, f"declined: {reason}")
                return
            wait += timedelta(days=rng.randint(21, 70))  # saved up, appealed, or found the money
        first_day = planned.date() + wait
        self.dosing(course_id, first_day, per_week, sessions, baselines)

    def status(
        self, course_id: uuid.UUID, before: CourseStatus, after: CourseStatus, at: datetime, reason: str | None
    ) -> None:
        self.timeline.add(
            at,
            CourseStatusChanged(
                patient_id=self.p.patient_id,
                course_id=course_id,
                previous_status=before,
                status=after,
                reason=reason,
                changed_at=at,
            ),
        )

    def dosing(
        self, course_id: uuid.UUID, first_day: date, per_week: int, sessions: int, baselines: dict[Instrument, int]
    ) -> None:
        rng, p = self.rng, self.p
        primary = PRIMARY[p.indication]
        dropout_after = rng.randint(1, sessions - 1) if rng.random() < 0.17 else None
        done = dropout_after or sessions
        respond_chance = (
            0.15 if dropout_after else (0.55 if p.indication is Indication.treatment_resistant_depression else 0.6)
        )
        # The pre-dose score on the first day is the baseline outcomes judges by; intake's is days or weeks older.
        reference = max(
            {Instrument.phq9: 10, Instrument.gad7: 10, Instrument.pcl5: 38}[primary],
            baselines[primary] + rng.randint(-2, 2),
        )
        ends = {
            primary: _end_score(rng, primary, reference, rng.random() < respond_chance),
        }
        for other in Instrument:
            if other is not primary:
                fall = 1 - ends[primary] / reference  # the others follow the primary, loosely
                ends[other] = max(0, round(baselines[other] * (1 - fall + rng.gauss(0, 0.12))))
        starts = {primary: reference, **{i: baselines[i] for i in Instrument if i is not primary}}
        mid = max(1, done // 2)
        pause_after = rng.randint(2, sessions - 2) if sessions > 4 and rng.random() < 0.04 else None
        dose_plan = _doses(rng, p.route, sessions)
        day = first_day
        last_dose_at = datetime.min.replace(tzinfo=UTC)
        gaps = {1: [7], 2: [3, 4], 3: [2, 2, 3]}[per_week]
        for k in range(1, done + 1):
            start = _at(day, rng.choice([13.5, 14.5, 15.5, 17.0, 18.5]))
            session_id = self.new_id()
            booked = _at(day - timedelta(days=rng.randint(1, 2)), rng.uniform(14, 21))
            duration = timedelta(hours=3 if p.route is Route.intranasal_esketamine else 2)
            self.timeline.add(
                booked,
                SessionScheduled(
                    patient_id=p.patient_id,
                    session_id=session_id,
                    course_id=course_id,
                    route=p.route,
                    starts_at=start,
                    ends_at=start + duration,
                    weekly_cap_overridden=False,
                ),
            )
            if k == 1:
                self.measure(primary, reference, start + timedelta(minutes=5), MeasureContext.pre_session)
                self.status(course_id, CourseStatus.planned, CourseStatus.active, start + timedelta(minutes=10), None)
            dosed = start + timedelta(minutes=20)
            last_dose_at = dosed
            self.dose(course_id, session_id, dosed, dose_plan[k - 1])
            # "Relief within hours": the primary instrument a few hours after the first, middle and last doses.
            if k in (1, mid, done) or rng.random() < 0.25:
                progress = k / sessions
                hours = timedelta(hours=rng.uniform(2.5, 5))
                for j, instrument in enumerate(Instrument):
                    if instrument is not primary and k not in (mid, done):
                        continue
                    final = k == done
                    total = _path(rng, starts[instrument], ends[instrument], 1.0 if final else progress, exact=final)
                    item9 = self.item9(0.02) if instrument is Instrument.phq9 else 0
                    self.measure(
                        instrument,
                        total,
                        dosed + hours + timedelta(minutes=4 * j),
                        MeasureContext.in_course,
                        item9=item9,
                    )
            if k % 2 == 0 and k // 2 <= sessions // 2:
                held = _at(day + timedelta(days=rng.randint(1, 2)), rng.uniform(14, 21))
                self.timeline.add(
                    held,
                    IntegrationSessionCompleted(
                        patient_id=p.patient_id,
                        integration_session_id=self.new_id(),
                        course_id=course_id,
                        modality=rng.choice([m.value for m in Modality if m is not Modality.other]),
                        duration_minutes=rng.choice([50, 55, 60]),
                        held_at=held,
                    ),
                )
            day += timedelta(days=gaps[(k - 1) % len(gaps)])
            if k == pause_after:
                paused = _at(day - timedelta(days=1), 16)
                self.status(course_id, CourseStatus.active, CourseStatus.on_hold, paused, rng.choice(PAUSE_REASONS))
                day += timedelta(days=rng.randint(7, 21))
                self.status(
                    course_id, CourseStatus.on_hold, CourseStatus.active, _at(day - timedelta(days=1), 16), None
                )
        if dropout_after is not None:
            ended = _at(last_dose_at.date() + timedelta(days=rng.randint(7, 21)), 17)
            self.status(course_id, CourseStatus.active, CourseStatus.discontinued, ended, rng.choice(DROPOUT_REASONS))
            attend = (0.3, 0.2, 0.15)
        else:
            ended = last_dose_at + timedelta(hours=8)  # after the last scores of that day
            self.status(course_id, CourseStatus.active, CourseStatus.completed, ended, None)
            attend = (0.75, 0.6, 0.45)
        self.follow_ups(ended, starts, ends, primary, attend)

    def dose(self, course_id: uuid.UUID, session_id: uuid.UUID, at: datetime, amount: float) -> None:
        rng, p = self.rng, self.p
        if p.route in (Route.iv_infusion, Route.intramuscular, Route.subcutaneous):
            dose_mg = round(amount * p.weight_kg, 1)
        else:
            dose_mg = amount
        per_kg = round(dose_mg / p.weight_kg, 3)
        in_range = {
            Route.iv_infusion: amount <= 0.75,
            Route.intramuscular: amount <= 0.5,
            Route.subcutaneous: True,
            Route.intranasal_esketamine: True,
            Route.sublingual_oral: True,
        }[p.route]
        self.timeline.add(
            at,
            DoseAdministered(
                patient_id=p.patient_id,
                session_id=session_id,
                course_id=course_id,
                route=p.route,
                dose_mg=dose_mg,
                dose_mg_per_kg=per_kg,
                within_range=in_range,
                override_reason=None if in_range else "partial response at the usual dose; titrated up, tolerated",
                administered_at=at,
            ),
        )
        if rng.random() < 0.018:
            code, value, threshold, what = _weighted(
                rng,
                [
                    ((VitalsAlertCode.systolic_high, rng.randint(180, 196), 180, "systolic"), 0.6),
                    ((VitalsAlertCode.diastolic_high, rng.randint(110, 118), 110, "diastolic"), 0.4),
                ],
            )
            taken = at + timedelta(minutes=rng.randint(20, 45))
            self.timeline.add(
                taken,
                VitalsAlertRaised(
                    patient_id=p.patient_id,
                    session_id=session_id,
                    code=code,
                    value=value,
                    threshold=threshold,
                    message=f"{what} {value} mmHg is at or above the alert threshold of {threshold} mmHg",
                    taken_at=taken,
                ),
            )
        for kind, chance in ADVERSE_EVENT_CHANCE:
            if rng.random() < chance:
                self.adverse_event(session_id, at, kind)
        observation = {Route.intranasal_esketamine: 125, Route.iv_infusion: 105}.get(p.route, 70)
        discharged = at + timedelta(minutes=observation + rng.randint(0, 25))
        therapy = None if p.route is Route.intranasal_esketamine else rng.choice([45, 53, 60])
        self.timeline.add(
            discharged,
            SessionCompleted(
                patient_id=p.patient_id,
                session_id=session_id,
                course_id=course_id,
                route=p.route,
                dose_mg=dose_mg,
                dose_mg_per_kg=per_kg,
                observation_minutes=observation,
                modalities=rng.sample([m.value for m in Modality if m is not Modality.other], 2) if therapy else [],
                # Dissociation is expected with every route (CADSS 0-92); mostly mild.
                dissociation_score=max(0, round(rng.gammavariate(2.0, 6.0))),
                dissociation_scale=CADSS_VERSION,
                discharged_at=discharged,
                infusion_minutes=40 if p.route is Route.iv_infusion else None,
                psychotherapy_minutes=therapy,
            ),
        )

    def adverse_event(self, session_id: uuid.UUID, dosed: datetime, kind: AdverseEventType) -> None:
        rng = self.rng
        serious = rng.random() < 0.02
        severity = (
            AdverseEventSeverity.severe
            if serious
            else _weighted(rng, [(AdverseEventSeverity.mild, 0.75), (AdverseEventSeverity.moderate, 0.25)])
        )
        action = (
            "transferred to the emergency department; admitted overnight for observation, resolved"
            if serious
            else ACTIONS.get(kind, "observed until resolved")
        )
        at = dosed + timedelta(minutes=rng.randint(10, 70))
        self.timeline.add(
            at,
            AdverseEventReported(
                patient_id=self.p.patient_id,
                session_id=session_id,
                adverse_event_id=self.new_id(),
                type=kind,
                severity=severity,
                serious=serious,
                action_taken=action,
                occurred_at=at,
            ),
        )

    def follow_ups(
        self,
        ended: datetime,
        starts: dict[Instrument, int],
        ends: dict[Instrument, int],
        primary: Instrument,
        attend: tuple[float, float, float],
    ) -> None:
        rng = self.rng
        responded = DEFINITION.responded(primary, starts[primary], ends[primary])
        relapsed = False
        for week, chance, relapse in zip((4, 12, 26), attend, (0.15, 0.2, 0.2), strict=True):
            relapsed = relapsed or bool(responded and rng.random() < relapse)
            if rng.random() >= chance:
                continue  # missed
            day = ended.date() + timedelta(weeks=week, days=rng.randint(-4, 4))
            at = _at(day, rng.uniform(14, 21))
            for j, instrument in enumerate(Instrument):
                start, end = starts[instrument], ends[instrument]
                if relapsed:
                    total = round(start * rng.uniform(0.6, 0.95))
                else:
                    total = end + rng.randint(-2, 2 if instrument is not Instrument.pcl5 else 5)
                item9 = self.item9(0.05 if relapsed else 0.02) if instrument is Instrument.phq9 else 0
                self.measure(instrument, total, at + timedelta(minutes=4 * j), MeasureContext.follow_up, item9=item9)


ADVERSE_EVENT_CHANCE: tuple[tuple[AdverseEventType, float], ...] = (
    # Per dosing session; over a 6-session course nausea reaches about 15 % of courses, vomiting about 5 %.
    (AdverseEventType.nausea, 0.028),
    (AdverseEventType.vomiting, 0.009),
    (AdverseEventType.hallucinations, 0.008),
    (AdverseEventType.hypertension, 0.007),
    (AdverseEventType.sedation, 0.010),
    (AdverseEventType.agitation, 0.004),
    (AdverseEventType.respiratory_depression, 0.0005),
    (AdverseEventType.other, 0.004),
)
ACTIONS: dict[AdverseEventType, str] = {
    AdverseEventType.nausea: "ondansetron 4 mg; resolved before discharge",
    AdverseEventType.vomiting: "ondansetron 4 mg, observation extended; resolved",
    AdverseEventType.hallucinations: "reassurance, lights dimmed; resolved before discharge",
    AdverseEventType.hypertension: "infusion paused, blood pressure rechecked every 5 minutes; settled",
    AdverseEventType.sedation: "observation extended until MOAA/S 5",
    AdverseEventType.agitation: "reassurance and music; settled",
    AdverseEventType.respiratory_depression: "stimulation and supplemental oxygen; SpO2 recovered within minutes",
}


def _member_id(patient: _Patient) -> str:
    return f"{(patient.plan.payer if patient.plan else 'SP')[:2].upper()}-{patient.n:07d}"


def _minimum_dose(drug: Antidepressant) -> float:
    return MINIMUM_ADEQUATE_DAILY_DOSE[drug].mg_per_day


def _prior_treatment_event(
    patient_id: uuid.UUID,
    treatment_id: uuid.UUID,
    treatment: PriorTreatment,
    history: Sequence[PriorTreatment],
    at: datetime,
) -> PriorTreatmentRecorded:
    """What intake publishes for one recorded treatment: its fields, its words, and whether the history so far is
    treatment-resistant (intake's own rules, services/intake/prior_treatment.py)."""
    return PriorTreatmentRecorded(
        patient_id=patient_id,
        prior_treatment_id=treatment_id,
        kind=treatment.kind,
        current_episode=treatment.current_episode,
        outcome=treatment.outcome,
        drug=treatment.drug if isinstance(treatment, AntidepressantTrial) else None,
        daily_dose_mg=treatment.daily_dose_mg if isinstance(treatment, AntidepressantTrial) else None,
        duration_weeks=treatment.duration_weeks if isinstance(treatment, AntidepressantTrial) else None,
        adequate=treatment.adequate,
        therapy=treatment.therapy if isinstance(treatment, Psychotherapy) else None,
        sessions=treatment.sessions if isinstance(treatment, Psychotherapy | Neuromodulation) else None,
        description=treatment.summary(),
        treatment_resistant=treatment_resistant(history),
        recorded_at=at,
    )


def _schedule(rng: random.Random, route: Route) -> tuple[int, int]:
    """(dosing sessions a week, planned dosing sessions) of an induction course."""
    match route:
        case Route.iv_infusion:
            return _weighted(rng, [((2, 6), 0.75), ((3, 6), 0.2), ((2, 8), 0.05)])
        case Route.intranasal_esketamine:
            return (2, 8)  # the label's induction: twice a week for 4 weeks
        case Route.intramuscular:
            return _weighted(rng, [((2, 6), 0.7), ((1, 6), 0.3)])
        case Route.subcutaneous:
            return (1, 6)
        case _:
            return _weighted(rng, [((1, 6), 0.6), ((2, 8), 0.4)])


def _doses(rng: random.Random, route: Route, sessions: int) -> list[float]:
    """Each session's dose: mg/kg for weight-based routes, mg otherwise. Weight-based routes start at the usual
    dose and some are titrated up after the second session."""
    match route:
        case Route.iv_infusion:
            target = _weighted(rng, [(0.5, 0.55), (0.6, 0.15), (0.75, 0.22), (0.9, 0.05), (1.0, 0.03)])
            return [0.5, 0.5] + [target] * (sessions - 2)
        case Route.intramuscular:
            target = _weighted(rng, [(0.3, 0.2), (0.4, 0.3), (0.5, 0.45), (0.6, 0.05)])
            return [min(0.5, target)] * 2 + [target] * (sessions - 2)
        case Route.subcutaneous:
            target = _weighted(rng, [(0.5, 0.5), (0.6, 0.3), (0.75, 0.2)])
            return [0.5, 0.5] + [target] * (sessions - 2)
        case Route.intranasal_esketamine:
            target = _weighted(rng, [(56.0, 0.45), (84.0, 0.55)])
            return [56.0] + [target] * (sessions - 1)
        case _:
            target = _weighted(rng, [(100.0, 0.2), (150.0, 0.25), (200.0, 0.3), (250.0, 0.15), (300.0, 0.1)])
            return [min(target, 150.0)] + [target] * (sessions - 1)


def _end_score(rng: random.Random, instrument: Instrument, baseline: int, responds: bool) -> int:
    """The last score of the course: a fall of 50 % or more for a responder (below the remission cutoff for about
    half of them), less for the others, never reaching remission without responding."""
    half = baseline // 2  # at most this is a response (20 -> 10 is 50 %)
    cutoff = DEFINITION.remission_below(instrument)
    if responds:
        remit_chance = 0.42 if instrument is not Instrument.pcl5 else 0.9
        if cutoff <= half and rng.random() >= remit_chance:
            return rng.randint(cutoff, half)
        return rng.randint(0, min(cutoff - 1, half))
    low = max(half + 1, cutoff)
    return rng.randint(low, max(low, round(baseline * 0.95)))


def _path(rng: random.Random, start: int, end: int, progress: float, *, exact: bool) -> int:
    """A score part-way through the course: most of the change comes early (a fast-acting drug), with noise."""
    if exact:
        return end
    share = (1 - math.exp(-3 * progress)) / (1 - math.exp(-3))
    return max(0, round(start - (start - end) * share + rng.gauss(0, 1.5)))


BarrierOutcome = Literal["deferred", "declined"]


def _barrier(
    rng: random.Random, self_pay: bool, kind: CoverageKind, prior_auth: bool
) -> tuple[AccessBarrierReason, BarrierOutcome] | None:
    """Whether cost or coverage stood in the way, why, and whether care was deferred or declined (invented)."""
    outcome: BarrierOutcome = "declined" if rng.random() < 0.4 else "deferred"
    if self_pay:
        if rng.random() < 0.28:
            reason: AccessBarrierReason = _weighted(
                rng, [("high_out_of_pocket", 0.55), ("cannot_pay", 0.4), ("other", 0.05)]
            )
            return reason, outcome
        return None
    if prior_auth:
        return (
            ("authorisation_denied", "declined" if rng.random() < 0.3 else "deferred") if rng.random() < 0.15 else None
        )
    if kind is CoverageKind.not_covered and rng.random() < 0.35:
        return "not_covered", outcome
    if kind is CoverageKind.partly_covered and rng.random() < 0.12:
        return "high_out_of_pocket", outcome
    return None


def _indication_and_route(rng: random.Random, esketamine: bool) -> tuple[Indication, Route]:
    indication = _weighted(
        rng,
        [
            (Indication.treatment_resistant_depression, 0.45),
            (Indication.depression, 0.25),
            (Indication.ptsd, 0.17),
            (Indication.anxiety, 0.13),
        ],
    )
    # Concentrated on IV so that several cohorts (site x indication x route x month) pass the small-count rule.
    routes: dict[Indication, list[tuple[Route, float]]] = {
        Indication.treatment_resistant_depression: [
            (Route.iv_infusion, 0.65),
            (Route.intranasal_esketamine, 0.17),
            (Route.intramuscular, 0.08),
            (Route.sublingual_oral, 0.05),
            (Route.subcutaneous, 0.05),
        ],
        Indication.depression: [
            (Route.iv_infusion, 0.6),
            (Route.intramuscular, 0.15),
            (Route.sublingual_oral, 0.2),
            (Route.subcutaneous, 0.05),
        ],
        Indication.ptsd: [(Route.iv_infusion, 0.6), (Route.intramuscular, 0.2), (Route.sublingual_oral, 0.2)],
        Indication.anxiety: [(Route.iv_infusion, 0.5), (Route.sublingual_oral, 0.35), (Route.intramuscular, 0.15)],
    }
    route = _weighted(rng, routes[indication])
    if route is Route.intranasal_esketamine and not esketamine:
        route = Route.iv_infusion  # a site without REMS certification cannot give esketamine
    return indication, route


def _failed_trials(rng: random.Random, indication: Indication) -> int:
    if indication is Indication.treatment_resistant_depression:
        return _weighted(rng, [(2, 0.5), (3, 0.35), (4, 0.15)])
    if indication is Indication.depression:
        return _weighted(rng, [(0, 0.45), (1, 0.55)])
    return _weighted(rng, [(0, 0.7), (1, 0.3)])


def _age(rng: random.Random) -> int:
    if rng.random() < 0.015:
        return rng.randint(90, 96)  # a few of the oldest old: outcomes groups them as 90+
    return round(rng.triangular(18, 80, 40))


def _registered(rng: random.Random, end: date, history_days: int) -> datetime:
    """Recent months denser: half uniform, half weighted towards --end (a growing network)."""
    recency = rng.random() if rng.random() < 0.5 else max(rng.random(), rng.random())
    day = end - timedelta(days=1 + int((1 - recency) * history_days))
    return _at(day, rng.uniform(13.5, 21))


def _patient(rng: random.Random, n: int, site: _SiteProfile) -> _Patient:
    sex = _weighted(
        rng, [(AdministrativeSex.female, 0.58), (AdministrativeSex.male, 0.4), (AdministrativeSex.other, 0.02)]
    )
    age = _age(rng)
    mean_weight = 72.0 if sex is AdministrativeSex.female else 85.0
    insured = rng.random() < (0.8 if age >= 65 else 0.42)
    plan = None
    if insured:
        plan = PLANS[2] if age >= 65 else _weighted(rng, [(PLANS[0], 0.6), (PLANS[1], 0.4)])
    indication, route = _indication_and_route(rng, site.esketamine)
    return _Patient(
        n=n,
        site=site,
        patient_id=_Ids(rng)(),
        given=rng.choice(GIVEN),
        family=rng.choice(FAMILY),
        sex=sex,
        age=age,
        weight_kg=round(min(150.0, max(45.0, rng.gauss(mean_weight, 14))), 1),
        plan=plan,
        indication=indication,
        route=route,
        failed_trials=_failed_trials(rng, indication),
    )


def cohort(
    patients: int,
    sites: Sequence[str],
    seed: int,
    end: date = DEFAULT_END,
    *,
    esketamine_sites: Collection[str] | None = None,
    history_days: int = HISTORY_DAYS,
) -> list[SyntheticEvent]:
    """Every event of ``patients`` invented patients spread round-robin over ``sites``, in the order they
    happened (ties in the order written). Pure: no clock, no I/O; the same arguments give the same events.
    ``esketamine_sites``: the REMS-certified sites (all when None); the others give no esketamine.
    ``history_days``: how far back registrations go (fewer days, denser months)."""
    rng = random.Random(seed)
    cutoff = _at(end, 0)
    profiles = [_SiteProfile(s, esketamine_sites is None or s in esketamine_sites) for s in sites]
    collected: list[tuple[datetime, int, int, str, CloudEvent, DomainEvent]] = []
    for n in range(patients):
        patient_rng = random.Random(rng.getrandbits(64))  # one stream per patient: a change stays local
        patient = _patient(patient_rng, n + 1, profiles[n % len(profiles)])
        writer = _PatientWriter(patient_rng, patient, _registered(patient_rng, end, history_days))
        writer.write()
        for at, seq, topic, envelope, event in writer.timeline.items:
            if at >= cutoff or (isinstance(event, SessionScheduled) and event.starts_at >= cutoff):
                continue  # not happened yet on --end
            collected.append((at, n, seq, topic, envelope, event))
    collected.sort(key=lambda item: (item[0], item[1], item[2]))
    return [SyntheticEvent(topic, envelope, event) for _, _, _, topic, envelope, event in collected]


# --- what was generated ---------------------------------------------------------------------------------------


@dataclass
class Figures:
    """What a cohort holds, worked out from its events as outcomes would (the primary instrument of each course:
    its baseline is the latest score at or before the first dose, its result the last score in the course)."""

    events_by_site: Counter[str] = field(default_factory=Counter)
    events_by_type: Counter[str] = field(default_factory=Counter)
    patients: int = 0
    courses: int = 0
    dosed: int = 0
    completed: int = 0
    dropped_out: int = 0
    never_dosed_for_cost: int = 0
    still_running: int = 0
    with_result: int = 0
    responders: int = 0
    remitters: int = 0
    routes: Counter[str] = field(default_factory=Counter)
    indications: Counter[str] = field(default_factory=Counter)
    barriers: Counter[str] = field(default_factory=Counter)
    payers: Counter[str] = field(default_factory=Counter)
    courses_with_adverse_event: Counter[str] = field(default_factory=Counter)
    serious_adverse_events: int = 0
    vitals_alerts: int = 0
    follow_up_scores: int = 0
    first_doses: list[datetime] = field(default_factory=list)

    def share(self, part: int) -> float:
        return part / self.with_result if self.with_result else 0.0

    def lines(self) -> list[str]:
        def counts(counter: Counter[str]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))

        dosed = self.dosed or 1
        return [
            f"events by site: {counts(self.events_by_site)}",
            f"events by type: {counts(self.events_by_type)}",
            f"patients {self.patients}; courses {self.courses}: dosed {self.dosed}, completed {self.completed}, "
            f"dropped out {self.dropped_out} ({self.dropped_out * 100 / dosed:.1f} % of dosed), still running "
            f"{self.still_running}, never dosed for cost {self.never_dosed_for_cost}",
            f"primary-instrument result for {self.with_result}: responders {self.responders} "
            f"({self.share(self.responders) * 100:.1f} %), remitters {self.remitters} "
            f"({self.share(self.remitters) * 100:.1f} %)",
            f"indications: {counts(self.indications)}",
            f"routes: {counts(self.routes)}",
            f"payers (by course): {counts(self.payers)}",
            f"access barriers (reason/outcome): {counts(self.barriers)}",
            "courses with an adverse event (% of dosed): "
            + ", ".join(
                f"{k} {v} ({v * 100 / dosed:.1f} %)"
                for k, v in sorted(self.courses_with_adverse_event.items(), key=lambda kv: -kv[1])
            ),
            f"serious adverse events {self.serious_adverse_events}; vitals alerts {self.vitals_alerts}; "
            f"follow-up scores {self.follow_up_scores}",
        ]


@dataclass
class _CourseSeen:
    indication: Indication
    route: Route
    status: CourseStatus = CourseStatus.planned
    first_dose: datetime | None = None
    ended: datetime | None = None
    adverse: set[str] = field(default_factory=set)


def figures(events: Iterable[SyntheticEvent]) -> Figures:
    found = Figures()
    courses: dict[uuid.UUID, _CourseSeen] = {}
    course_of_session: dict[uuid.UUID, uuid.UUID] = {}
    scores: dict[uuid.UUID, list[tuple[datetime, Instrument, int]]] = {}
    course_of_patient: dict[uuid.UUID, uuid.UUID] = {}
    for item in events:
        event = item.event
        found.events_by_site[item.topic.split(".")[1]] += 1
        found.events_by_type[event.ce_type()] += 1
        match event:
            case PatientRegistered():
                found.patients += 1
            case CoursePlanned():
                courses[event.course_id] = _CourseSeen(event.indication, event.route)
                course_of_patient[event.patient_id] = event.course_id
            case CourseStatusChanged():
                seen = courses[event.course_id]
                seen.status = event.status
                if event.status in (CourseStatus.completed, CourseStatus.discontinued):
                    seen.ended = event.changed_at
            case DoseAdministered():
                course_of_session[event.session_id] = event.course_id
                seen = courses[event.course_id]
                seen.first_dose = seen.first_dose or event.administered_at
            case AdverseEventReported():
                courses[course_of_session[event.session_id]].adverse.add(event.type.value)
                found.serious_adverse_events += event.serious
            case VitalsAlertRaised():
                found.vitals_alerts += 1
            case AssessmentRecorded():  # InCourseAssessmentRecorded too
                scores.setdefault(event.patient_id, []).append(
                    (event.administered_at, Instrument(event.instrument), event.total)
                )
                found.follow_up_scores += event.context == MeasureContext.follow_up.value
            case AccessBarrierRecorded():
                found.barriers[f"{event.reason}/{event.outcome}"] += 1
            case CoverageDetermined():
                found.payers["self_pay" if event.payer_type == "self_pay" else "insured"] += 1
            case _:
                pass
    for patient_id, course_id in course_of_patient.items():
        seen = courses[course_id]
        found.courses += 1
        found.routes[seen.route.value] += 1
        found.indications[seen.indication.value] += 1
        if seen.first_dose is None:
            found.never_dosed_for_cost += seen.status is CourseStatus.discontinued
            continue
        found.dosed += 1
        found.first_doses.append(seen.first_dose)
        found.completed += seen.status is CourseStatus.completed
        found.dropped_out += seen.status is CourseStatus.discontinued
        found.still_running += seen.ended is None
        for kind in seen.adverse:
            found.courses_with_adverse_event[kind] += 1
        primary = PRIMARY[seen.indication]
        mine = sorted((at, total) for at, instrument, total in scores.get(patient_id, []) if instrument is primary)
        before = [total for at, total in mine if at <= seen.first_dose]
        during = [total for at, total in mine if at > seen.first_dose and (seen.ended is None or at <= seen.ended)]
        if before and during and DEFINITION.judged(primary, before[-1]):
            found.with_result += 1
            found.responders += bool(DEFINITION.responded(primary, before[-1], during[-1]))
            found.remitters += bool(DEFINITION.remitted(primary, before[-1], during[-1]))
    return found


# --- publishing -------------------------------------------------------------------------------------------------


async def publish(
    events: Sequence[SyntheticEvent],
    bootstrap_servers: KafkaAccess | str,
    *,
    partitions: int = 3,
    timeout_seconds: float = 30.0,
    progress: Callable[[int, int], None] = lambda sent, total: None,
) -> None:
    """Create the site topics that are missing (as the services would), then send every event in order, keyed by
    its partition key, with an idempotent producer; returns once the broker has acknowledged them all. On a broker
    with ACLs (make run's demo loader may write these topics but not create them) it waits for the services to."""
    topics = sorted({e.topic for e in events})
    specs = [TopicSpec(t, partitions=partitions) for t in topics]
    waiting = await ensure_topics(bootstrap_servers, specs, timeout_seconds, owned_elsewhere=topics)
    if waiting:
        await wait_for_topics(bootstrap_servers, waiting, timeout_seconds, within=120.0)
    producer = reliable_producer(bootstrap_servers, timeout_seconds)
    await start_with_timeout(producer, timeout_seconds)
    try:
        # Batches of sends then one wait: many concurrent unawaited sends degrade aiokafka (KAFKA-NOTES.md).
        for start in range(0, len(events), 2000):
            futures = []
            for item in events[start : start + 2000]:
                headers, value = to_kafka(item.envelope)
                futures.append(await producer.send(item.topic, value=value, key=item.key.encode(), headers=headers))
            await asyncio.wait_for(asyncio.gather(*futures), timeout_seconds)
            progress(start + len(futures), len(events))  # acknowledged by the broker
        await asyncio.wait_for(producer.flush(), timeout_seconds)
    finally:
        await stop_quietly(producer, timeout_seconds)


def dead_letter_topics(sites: Sequence[str]) -> list[str]:
    return [
        f"kapnet.{site}.{service}.deadletter.v1" for site in sites for service in ("sessions", "billing", "outcomes")
    ]


async def record_counts(
    bootstrap_servers: KafkaAccess | str, topics: Sequence[str], timeout_seconds: float = 30.0
) -> dict[str, int]:
    """How many records each topic holds (end offsets summed; 0 for a topic that does not exist or, under ACLs, that
    this principal may not see)."""
    admin = admin_client(bootstrap_servers, timeout_seconds)
    await asyncio.wait_for(admin.start(), timeout_seconds)
    try:
        existing = set(await asyncio.wait_for(admin.list_topics(), timeout_seconds))
        described = await asyncio.wait_for(admin.describe_topics([t for t in topics if t in existing]), timeout_seconds)
    finally:
        await asyncio.wait_for(admin.close(), timeout_seconds)
    partitions = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
    counts = dict.fromkeys(topics, 0)
    if not partitions:
        return counts
    consumer = AIOKafkaConsumer(**KafkaAccess.of(bootstrap_servers).client_kwargs(), enable_auto_commit=False)
    await start_with_timeout(consumer, timeout_seconds)
    try:
        consumer.assign(partitions)
        ends = await asyncio.wait_for(consumer.end_offsets(partitions), timeout_seconds)
    finally:
        await stop_quietly(consumer, timeout_seconds)
    for tp, offset in ends.items():
        counts[tp.topic] += offset
    return counts


def caught_up(urls: Sequence[str], timeout_seconds: float, say: Callable[[str], None]) -> bool:
    """Polls each service's /readyz until every consumer of it has no lag on two polls in a row a second apart
    (a lag of 0 just after publishing may predate the consumer's next fetch, hence two)."""
    deadline = time.monotonic() + timeout_seconds
    pending = list(urls)
    quiet: dict[str, int] = {}
    while pending and time.monotonic() < deadline:
        for url in list(pending):
            try:
                body = local_http.get(f"{url.rstrip('/')}/readyz", timeout=5).json()
                lags = [c.get("lag") for c in body.get("consumers", [])]
            except (httpx.HTTPError, ValueError):
                lags = [None]
            if lags and all(lag == 0 for lag in lags):
                quiet[url] = quiet.get(url, 0) + 1
                if quiet[url] >= 3:
                    say(f"caught up: {url}")
                    pending.remove(url)
            else:
                quiet[url] = 0
        time.sleep(1.0)
    for url in pending:
        say(f"not caught up within {timeout_seconds:.0f} s: {url}")
    return not pending


async def load(
    patients: int,
    sites: Sequence[str],
    seed: int,
    end: date,
    bootstrap_servers: KafkaAccess | str,
    *,
    esketamine_sites: Collection[str] | None = None,
    history_days: int = HISTORY_DAYS,
    say: Callable[[str], None] = print,
    progress: Callable[[int, int], None] = lambda sent, total: None,
) -> Figures:
    """Generate and publish, saying what was sent and how long it took. For `make run` and the CLI."""
    started = time.monotonic()
    events = cohort(patients, sites, seed, end, esketamine_sites=esketamine_sites, history_days=history_days)
    generated = time.monotonic()
    await publish(events, bootstrap_servers, progress=progress)
    published = time.monotonic()
    found = figures(events)
    say(
        f"synthetic cohort: {len(events)} events of {patients} patients at {', '.join(sites)} (seed {seed}, before "
        f"{end}); generated in {generated - started:.1f} s, published in {published - generated:.1f} s"
    )
    for line in found.lines():
        say(f"  {line}")
    return found


def main(argv: list[str] | None = None, progress: Callable[[int, int], None] | None = None) -> int:
    """``progress(sent, total)`` as the broker acknowledges the events (`kapnet seed` draws a bar with it)."""
    parser = argparse.ArgumentParser(prog="python -m deploy.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--sites", type=int, default=2, help=f"how many sites, named {', '.join(SITE_NAMES[:4])}...")
    parser.add_argument("--site-names", help="comma-separated site names instead of --sites")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--end", type=date.fromisoformat, default=DEFAULT_END, help="every event happens before it")
    parser.add_argument(
        "--rems-sites", help="comma-separated REMS-certified sites (default: all): esketamine only there"
    )
    parser.add_argument(
        "--bootstrap-servers", default=os.environ.get("KAPNET_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--dry-run", action="store_true", help="generate and print the figures; publish nothing")
    parser.add_argument(
        "--wait-for",
        nargs="*",
        default=[],
        metavar="URL",
        help="services (e.g. http://127.0.0.1:8104) to poll until their consumers caught up; then dead letters are "
        "counted",
    )
    parser.add_argument("--wait-timeout", type=float, default=600.0)
    parser.add_argument("--force", action="store_true", help="publish even onto site topics that already hold records")
    args = parser.parse_args(argv)
    # Invented patients on a real clinic's topics would be taken as real by every service, and their aggregates
    # would stay on the compacted network topic: never in production, and never onto live topics unasked.
    if os.environ.get("KAPNET_ENVIRONMENT", "").lower() == "production" and not args.dry_run:
        parser.error("refused: KAPNET_ENVIRONMENT is production; synthetic patients are for development only")
    sites = args.site_names.split(",") if args.site_names else site_names(args.sites)
    rems = set(args.rems_sites.split(",")) if args.rems_sites else None
    if args.patients < 1 or not sites:
        parser.error("at least one patient and one site")
    if args.dry_run:
        started = time.monotonic()
        events = cohort(args.patients, sites, args.seed, args.end, esketamine_sites=rems)
        print(f"synthetic cohort: {len(events)} events, generated in {time.monotonic() - started:.1f} s (not sent)")
        for line in figures(events).lines():
            print(f"  {line}")
        return 0
    started = time.monotonic()
    intake_topics = [SITE_CHANNEL.format(site=site, service="intake") for site in sites]
    held = {t: n for t, n in asyncio.run(record_counts(args.bootstrap_servers, intake_topics)).items() if n}
    if held and not args.force:
        parser.error(f"refused: {', '.join(sorted(held))} already hold records; --force to add invented patients")
    dead_before = asyncio.run(record_counts(args.bootstrap_servers, dead_letter_topics(sites)))
    asyncio.run(
        load(
            args.patients,
            sites,
            args.seed,
            args.end,
            args.bootstrap_servers,
            esketamine_sites=rems,
            progress=progress or (lambda sent, total: None),
        )
    )
    if args.wait_for:
        ok = caught_up(args.wait_for, args.wait_timeout, print)
        dead_after = asyncio.run(record_counts(args.bootstrap_servers, dead_letter_topics(sites)))
        new = {t: dead_after[t] - dead_before[t] for t in dead_after if dead_after[t] != dead_before[t]}
        print(f"dead letters since publishing: {new or 'none'}")
        print(f"done in {time.monotonic() - started:.1f} s")
        return 0 if ok and not new else 1
    print(f"done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
