"""Outcomes' tables: site role (per patient, stays at the site) and network role (aggregates only)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.outcomes.domain.course_summary import PayerGroup
from shared.db.types import UtcDateTime
from shared.instruments.scoring import Instrument
from shared.measures.models import MeasureContext
from shared.treatment import AdverseEventType, CourseStatus, Indication, Route, VitalsAlertCode


class Registration(SQLModel, table=True):
    """Site role: one row per registered patient, as learnt from intake's events."""

    __tablename__ = "registration"

    patient_id: uuid.UUID = Field(primary_key=True)
    registered_month: str = Field(sa_column=sa.Column(sa.String(7), nullable=False, index=True))


class PublishedAggregate(SQLModel, table=True):
    """Site role: what was last released per cohort, so an unchanged aggregate is not sent again and the next
    release holds each shown figure to the step rule (shared/privacy/release.py)."""

    __tablename__ = "published_aggregate"

    cohort: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    fingerprint: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    published_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    # The event as released (None for a row from before the release rules).
    released: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))


class ReleasedVersion(SQLModel, table=True):
    """Site role: every version of every cohort ever released, as a reader of the network topic could have kept
    them, so that complementary suppression is solved against all of them (shared/privacy/inference.py)."""

    __tablename__ = "released_version"

    id: int | None = Field(default=None, primary_key=True)
    cohort: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, index=True))
    released_for: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    # Which release of its period (the event's ``release``): a period boundary may be shared by several releases
    # (every beat of development's ``beat``), and a reader keeps each of them.
    release: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    figures: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))


class PrivacyBudget(SQLModel, table=True):
    """Site role, differential-privacy mode: the ε spent in each calendar month (exact fractions, as text)."""

    __tablename__ = "privacy_budget"

    month: str = Field(sa_column=sa.Column(sa.String(7), primary_key=True))
    budget: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    spends: list[str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    # The release boundary the last spend is kept for: its release lost the connection (PrivacyAccountant).
    kept_for: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))


class SiteRelease(SQLModel, table=True):
    """Site role: one row per period boundary released for (once per period, but in development's ``beat``)."""

    __tablename__ = "site_release"

    released_for: datetime = Field(sa_column=sa.Column(UtcDateTime(), primary_key=True))
    released_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    cohorts_published: int
    groups_refused: int
    # How many releases were made for this boundary: one, or more in development's ``beat``.
    releases: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0"))


class NetworkAggregate(SQLModel, table=True):
    """Network role: the latest aggregate of every (site, cohort)."""

    __tablename__ = "network_aggregate"

    site: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    cohort: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    aggregate: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    received_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


# --- site role: what outcomes learns of each patient's treatment from the site's events ------------------------
# One row per fact, keyed by the id its event carries, so a redelivered event finds its row. Patient-level: these
# tables never leave the site; only cohorts.py's aggregates do.


class OutcomePatient(SQLModel, table=True):
    __tablename__ = "outcome_patient"

    patient_id: uuid.UUID = Field(primary_key=True)
    birth_date: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    registered_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class OutcomeCourse(SQLModel, table=True):
    __tablename__ = "outcome_course"

    course_id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    indication: Indication = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    route: Route = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    status: CourseStatus = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    planned_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=sa.Column(UtcDateTime()))
    end_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


class OutcomeCoverage(SQLModel, table=True):
    """Billing's latest coverage determination of a course. Its own row, not a column of the course: billing's
    topic is read beside sessions', so a determination may arrive before the course it names."""

    __tablename__ = "outcome_coverage"

    course_id: uuid.UUID = Field(primary_key=True)
    payer: PayerGroup = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    determined_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class OutcomeSession(SQLModel, table=True):
    """Which course a session belongs to: adverse events and alerts name only their session."""

    __tablename__ = "outcome_session"

    session_id: uuid.UUID = Field(primary_key=True)
    course_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))


class OutcomeDose(SQLModel, table=True):
    __tablename__ = "outcome_dose"

    session_id: uuid.UUID = Field(primary_key=True)
    course_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    route: Route = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    dose_mg: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    mg_per_kg: float | None = Field(default=None, sa_column=sa.Column(sa.Float))
    administered_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class OutcomeMeasurement(SQLModel, table=True):
    __tablename__ = "outcome_measurement"

    assessment_id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    instrument: Instrument = Field(sa_column=sa.Column(sa.String(10), nullable=False))
    total: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    context: MeasureContext = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    administered_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class OutcomeAdverseEvent(SQLModel, table=True):
    __tablename__ = "outcome_adverse_event"

    adverse_event_id: uuid.UUID = Field(primary_key=True)
    session_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    type: AdverseEventType = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    serious: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    occurred_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class OutcomeVitalsAlert(SQLModel, table=True):
    __tablename__ = "outcome_vitals_alert"

    # The alert event's own id (its CloudEvent id): an alert carries no id of its own.
    event_id: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    session_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    code: VitalsAlertCode = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    taken_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class OutcomeSafetyFlag(SQLModel, table=True):
    __tablename__ = "outcome_safety_flag"

    flag_id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    raised_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class OutcomePriorTreatment(SQLModel, table=True):
    __tablename__ = "outcome_prior_treatment"

    prior_treatment_id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    # The drug of a failed adequate antidepressant trial; None for any other treatment.
    failed_trial_of: str | None = Field(default=None, sa_column=sa.Column(sa.String(40)))


class OutcomeBarrier(SQLModel, table=True):
    __tablename__ = "outcome_barrier"

    barrier_id: uuid.UUID = Field(primary_key=True)
    patient_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    course_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid, index=True))
    reason: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    outcome: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    estimated_out_of_pocket_cents: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    recorded_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class OutcomeResult(SQLModel, table=True):
    """A course's result on one instrument, judged by one definition: a new definition adds rows beside the old
    ones rather than rewriting them."""

    __tablename__ = "outcome_result"

    course_id: uuid.UUID = Field(primary_key=True)
    instrument: Instrument = Field(sa_column=sa.Column(sa.String(10), primary_key=True))
    definition: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    baseline: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    last_in_course: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    responded: bool | None = Field(default=None, sa_column=sa.Column(sa.Boolean))
    remitted: bool | None = Field(default=None, sa_column=sa.Column(sa.Boolean))
    hours_to_response: float | None = Field(default=None, sa_column=sa.Column(sa.Float))
    days_to_response: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    judged_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class FollowUpAnnounced(SQLModel, table=True):
    """A follow-up whose followup.due event was published: each is announced once."""

    __tablename__ = "followup_announced"

    course_id: uuid.UUID = Field(primary_key=True)
    week: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True))
    due_on: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    announced_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class CohortKeyColumns(SQLModel):
    """The key of one site's cohort (site x indication x route x month x cut x cut value), in this order: the
    primary key's first columns in the network's tables of cohorts."""

    site: str = Field(sa_type=sa.String(40), primary_key=True)
    indication: Indication = Field(sa_type=sa.String(40), primary_key=True)
    route: Route = Field(sa_type=sa.String(40), primary_key=True)
    period: str = Field(sa_type=sa.String(7), primary_key=True)
    cut: str = Field(sa_type=sa.String(20), primary_key=True)
    cut_value: str = Field(sa_type=sa.String(40), primary_key=True)


class NetworkCohortOutcome(CohortKeyColumns, table=True):
    """Network role: the latest CohortOutcomesPublished of every site x indication x route x month x cut x cut value,
    as published (re-validated on the way out). ``cohort_id`` is a short hash of that key: the stable part of the
    FHIR MeasureReport ids, so a read by id is one indexed lookup."""

    __tablename__ = "network_cohort_outcome"

    cohort_id: str = Field(sa_column=sa.Column(sa.String(32), nullable=False, unique=True))
    generated_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
    outcomes: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    received_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))


class NetworkMeasureReport(CohortKeyColumns, table=True):
    """Network role: the MeasureReports each held cohort has, one row per cohort and measure, so a FHIR search
    counts and pages its matches in the database rather than judging every cohort on every page. Written with
    the cohort by the use case that takes it in, and checked against the cohorts whenever the network's leader
    starts, since which measures a cohort reports is a rule of the code (service/network.py)."""

    __tablename__ = "network_measure_report"

    measure: str = Field(sa_type=sa.String(40), primary_key=True)
