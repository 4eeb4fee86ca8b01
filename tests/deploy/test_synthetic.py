"""The synthetic cohort generator: deterministic, realistic in its shares, valid event by event, and accepted by the
real consumers (sessions, billing, outcomes) from a real broker without a dead letter."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import SQLModel, select

from deploy.synthetic import PRIMARY, SyntheticEvent, cohort, dead_letter_topics, figures, publish, record_counts
from deploy.synthetic import main as synthetic_main
from services.billing.app import create_app as create_billing
from services.billing.models import BillingCourse
from services.outcomes.app import create_app as create_outcomes
from services.outcomes.models import (
    OutcomeBarrier,
    OutcomeCourse,
    OutcomeCoverage,
    OutcomeDose,
    OutcomeMeasurement,
    OutcomePriorTreatment,
)
from services.sessions.app import create_app as create_sessions
from services.sessions.domain.course import COURSE_TRANSITIONS
from shared.app import ServiceRuntime
from shared.bus.consumer import EventConsumer
from shared.db.database import Database
from shared.events.envelope import from_kafka, to_kafka
from shared.events.intake import AssessmentRecorded, PatientRegistered
from shared.events.registry import decode, topic_for
from shared.events.sessions import (
    CoursePlanned,
    CourseStatusChanged,
    DoseAdministered,
    InCourseAssessmentRecorded,
    SessionScheduled,
)
from shared.instruments import SPECS, Instrument
from shared.settings import ServiceSettings
from shared.treatment import CourseStatus, Route
from tests.harness import app_in_process, eventually

END = date(2026, 6, 30)


def fingerprint(events: list[SyntheticEvent]) -> list[tuple[str, str, Any]]:
    return [(e.topic, e.key, to_kafka(e.envelope)) for e in events]


@pytest.fixture(scope="module")
def thousand() -> list[SyntheticEvent]:
    return cohort(1000, ["north", "south"], seed=7, end=END)


def test_the_same_seed_gives_the_same_events_and_another_seed_other_ones() -> None:
    first = cohort(40, ["north", "south"], seed=3, end=END)
    assert fingerprint(first) == fingerprint(cohort(40, ["north", "south"], seed=3, end=END))
    assert fingerprint(first) != fingerprint(cohort(40, ["north", "south"], seed=4, end=END))
    assert {e.envelope.id for e in first} == {e.envelope.id for e in cohort(40, ["north", "south"], seed=3, end=END)}


def test_shares_are_like_the_published_real_world_series(thousand: list[SyntheticEvent]) -> None:
    found = figures(thousand)
    assert found.patients == 1000
    assert found.with_result > 600
    assert 0.40 <= found.share(found.responders) <= 0.60
    assert 0.15 <= found.share(found.remitters) <= 0.32
    assert 0.08 <= found.dropped_out / found.dosed <= 0.22
    assert found.never_dosed_for_cost > 0 and found.still_running > 0
    assert found.payers["self_pay"] > 0 and found.payers["insured"] > 0
    assert {"high_out_of_pocket", "cannot_pay", "not_covered"} <= {k.split("/")[0] for k in found.barriers}
    nausea_or_vomiting = found.courses_with_adverse_event["nausea"] + found.courses_with_adverse_event["vomiting"]
    assert 0.08 <= nausea_or_vomiting / found.dosed <= 0.25
    assert 0 < found.serious_adverse_events < found.dosed * 0.02
    assert found.vitals_alerts > 0 and found.follow_up_scores > 0
    assert set(found.routes) == {r.value for r in Route}


def test_every_event_fits_its_registered_model_topic_and_envelope(thousand: list[SyntheticEvent]) -> None:
    ids = Counter(e.envelope.id for e in thousand)
    assert max(ids.values()) == 1
    for item in thousand:
        headers, value = to_kafka(item.envelope)
        envelope = from_kafka(headers, value)
        assert decode(envelope) == item.event
        site = item.topic.split(".")[1]
        assert item.topic == topic_for(type(item.event), site)
        assert envelope.source == f"/kapnet/{site}/{type(item.event).producer}"
        assert item.key == item.event.partition_key() == str(item.event.model_dump()["patient_id"])


def test_nothing_happens_on_or_after_the_end_date(thousand: list[SyntheticEvent]) -> None:
    cutoff = datetime(END.year, END.month, END.day, tzinfo=UTC)
    times = [e.envelope.time for e in thousand]
    assert times == sorted(times)
    assert times[-1] < cutoff
    assert times[0] > cutoff - timedelta(days=400)
    for item in thousand:
        for value in item.event.model_dump().values():
            if isinstance(value, datetime):
                assert value < cutoff + timedelta(hours=3)  # a session's planned end, the same day
            elif isinstance(value, date):
                assert value < END
    first_doses = figures(thousand).first_doses
    assert len({(d.year, d.month) for d in first_doses}) >= 8  # spread over the months before the end


def test_courses_follow_the_allowed_transitions_and_doses_stay_under_the_ceilings(
    thousand: list[SyntheticEvent],
) -> None:
    status: dict[uuid.UUID, CourseStatus] = {}
    for item in thousand:
        event = item.event
        if isinstance(event, CoursePlanned):
            status[event.course_id] = CourseStatus.planned
        elif isinstance(event, CourseStatusChanged):
            assert event.previous_status is status[event.course_id]
            assert event.status in COURSE_TRANSITIONS[event.previous_status]
            status[event.course_id] = event.status
        elif isinstance(event, DoseAdministered):
            assert status[event.course_id] is CourseStatus.active
            ceiling = {
                Route.iv_infusion: 1.0,
                Route.intramuscular: 0.75,
                Route.subcutaneous: 1.0,
            }.get(event.route)
            if ceiling is not None:
                assert 0.25 <= event.dose_mg_per_kg <= ceiling + 0.001
                assert event.within_range or event.override_reason
            elif event.route is Route.intranasal_esketamine:
                assert event.dose_mg in (56, 84)
            else:
                assert 50 <= event.dose_mg <= 300


def test_scores_are_valid_totals_and_the_primary_instrument_follows_the_indication(
    thousand: list[SyntheticEvent],
) -> None:
    indication = {e.event.patient_id: e.event.indication for e in thousand if isinstance(e.event, CoursePlanned)}
    ages = [(END - e.event.birth_date).days / 365.25 for e in thousand if isinstance(e.event, PatientRegistered)]
    assert min(ages) >= 18 and any(age >= 90 for age in ages) and sum(age > 80 for age in ages) < 50
    pre_session: Counter[bool] = Counter()
    for item in thousand:
        event = item.event
        if isinstance(event, AssessmentRecorded):
            spec = SPECS[Instrument(event.instrument)]
            assert 0 <= event.total <= spec.max_total
            if isinstance(event, InCourseAssessmentRecorded) and event.context == "pre_session":
                pre_session[event.instrument == PRIMARY[indication[event.patient_id]].value] += 1
    assert pre_session[True] > 0 and pre_session[False] == 0


# --- with the real broker and the real consumers ---------------------------------------------------------------


async def count(database: Database, table: type[SQLModel]) -> int:
    async with database.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(table))).one())


def expected_by(consumer: EventConsumer, events: list[SyntheticEvent]) -> int:
    """How many of the events this consumer has a handler for (it skips the other types)."""
    topics = {t.name for t in consumer.config.topics}
    return sum(e.topic in topics and e.envelope.type in consumer.handlers for e in events)


def took_in(consumer: EventConsumer, wanted: int) -> Callable[[], bool]:
    return lambda: consumer.processed_total + consumer.dead_lettered_total >= wanted


@pytest.mark.broker
async def test_a_published_cohort_reaches_sessions_billing_and_outcomes_without_a_dead_letter(
    kafka: str, tmp_path: Path
) -> None:
    site = f"syn{uuid.uuid4().hex[:6]}"
    events = cohort(30, [site], seed=11, end=END)
    common: dict[str, Any] = {
        "site": site,
        "kafka_bootstrap_servers": kafka,
        "var_dir": tmp_path,
        "outbox_poll_interval_seconds": 0.2,
        "time_zone": "America/New_York",
    }
    sessions = create_sessions(ServiceSettings(service="sessions", **common))
    billing = create_billing(ServiceSettings(service="billing", billing_rules={"rems_certified": True}, **common))
    outcomes = create_outcomes(ServiceSettings(service="outcomes", aggregate_publish_interval_seconds=3600, **common))
    async with app_in_process(sessions), app_in_process(billing), app_in_process(outcomes):
        runtimes: list[ServiceRuntime] = [app.state.runtime for app in (sessions, billing, outcomes)]
        consumers = [c for runtime in runtimes for c in runtime.consumers]
        await publish(events, kafka)

        # Every event arrived; the running services may already have added their own (billing re-decides a
        # course's coverage when it reads it), so a topic may hold more than was published (seen in CI).
        counts = await record_counts(kafka, sorted({e.topic for e in events}))
        sent = Counter(e.topic for e in events)
        assert all(counts[topic] >= n for topic, n in sent.items()), (counts, sent)

        for consumer in consumers:
            await eventually(took_in(consumer, expected_by(consumer, events)), within=180, what=consumer.config.name)

        # Billing reacts (its own coverage determinations): outcomes reads those too before the counts are final.
        async def quiet() -> bool:
            pending = [await runtime.relay.pending_count() for runtime in runtimes]
            return not any(pending) and all(c.health.lag == 0 for c in consumers)

        await eventually(quiet, within=120, what="every outbox sent and every consumer without lag")
        assert [c.dead_lettered_total for c in consumers] == [0, 0, 0]
        outcomes_db = outcomes.state.runtime.database
        assert await count(outcomes_db, OutcomeCourse) == sum(isinstance(e.event, CoursePlanned) for e in events)
        assert await count(outcomes_db, OutcomeDose) == sum(isinstance(e.event, DoseAdministered) for e in events)
        assert await count(outcomes_db, OutcomeMeasurement) == sum(
            isinstance(e.event, AssessmentRecorded) for e in events
        )
        assert await count(outcomes_db, OutcomeCoverage) == await count(outcomes_db, OutcomeCourse)
        assert await count(outcomes_db, OutcomePriorTreatment) > 0
        assert await count(outcomes_db, OutcomeBarrier) >= 0
        assert await count(billing.state.runtime.database, BillingCourse) == await count(outcomes_db, OutcomeCourse)
        assert sum(isinstance(e.event, SessionScheduled) for e in events) > 0
    dead = await record_counts(kafka, dead_letter_topics([site]))
    assert dead == dict.fromkeys(dead_letter_topics([site]), 0)


def test_the_generator_refuses_to_publish_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAPNET_ENVIRONMENT", "production")
    with pytest.raises(SystemExit) as refused:
        synthetic_main(["--patients", "1", "--sites", "1", "--bootstrap-servers", "127.0.0.1:1"])
    assert refused.value.code == 2
