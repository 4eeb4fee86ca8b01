"""The same numbers on both sides: what a site publishes to the network equals what its own trajectories give.

A synthetic cohort (deploy/synthetic.py) goes onto a site's topics on the real broker; the real outcomes service
consumes it and its beat publishes the cohorts. Independently, this test reads every patient's trajectory back
through the site's API, as a clinician would, and recomputes every cohort of every cut from those answers alone
(grouping, counts, suppression with its complements, means and medians written again here, not imported). Each
published aggregate must equal the recomputed one, figure for figure, and no cohort may be missing on either side."""

from __future__ import annotations

import json
import statistics
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import func, select

from deploy.synthetic import cohort, publish
from services.outcomes.app import create_app
from services.outcomes.domain.definitions import site_definition
from services.outcomes.models import OutcomeCourse, OutcomeDose, OutcomeMeasurement
from services.outcomes.service.beat import review_site
from shared.bus.tables import OutboxMessage
from shared.events.billing import AccessBarrierReason
from shared.events.intake import AssessmentRecorded, PatientRegistered
from shared.events.outcomes import CohortOutcomesPublished
from shared.events.sessions import CoursePlanned, CourseStatusChanged, DoseAdministered, InCourseAssessmentRecorded
from shared.privacy.release import ReleasePeriod
from shared.settings import ServiceSettings
from shared.treatment import AdverseEventType, CourseStatus
from tests.harness import ServiceUnderTest, app_in_process, eventually
from tests.outcomes.conftest import Outcomes

pytestmark = pytest.mark.broker

# Enough on one site that several cohorts reach 11 courses and show their figures (about 45 s on PostgreSQL).
PATIENTS = 500
SEED = 11
ZONE = "America/New_York"
COHORT_EVENT = "org.kapnet.outcomes.cohort_outcomes.published.v1"
CUTS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "age_band": lambda s: s["age_band"],
    "dose_band": lambda s: s["dose_band"],
    "frequency": lambda s: s["frequency"],
    "payer": lambda s: s["payer"],
    "prior_trials": lambda s: s["prior_trials"],
}


def shown(count: int) -> dict[str, Any]:
    return {"count": None, "suppressed": True} if 1 <= count <= 10 else {"count": count, "suppressed": False}


def part(count: int, whole: int, whole_shown: dict[str, Any]) -> dict[str, Any]:
    """A count within a whole: hidden too when the whole is shown and the rest of it is 1-10."""
    if whole_shown["count"] is not None and 1 <= whole - count <= 10:
        return {"count": None, "suppressed": True}
    return shown(count)


def middle(values: Sequence[float], mean: bool = False) -> float | None:
    if len(values) < 11:
        return None
    return round(statistics.fmean(values) if mean else float(statistics.median(values)), 2)


def month(moment: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(moment).astimezone(zone).strftime("%Y-%m")


def recompute(site: str, courses: list[dict[str, Any]], zone: ZoneInfo) -> dict[str, dict[str, Any]]:
    """Every cohort's figures from the trajectories the site's API served."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for course in courses:
        summary = course["summary"]
        period = month(course["planned_at"], zone)
        base = (course["indication"], course["route"], period)
        groups[(*base, "all", "all")].append(course)
        for cut, value_of in CUTS.items():
            value = value_of(summary)
            if value is not None:
                groups[(*base, cut, value)].append(course)
    figures = {}
    for (indication, route, period, cut, value), members in groups.items():
        dosed = [c for c in members if c["summary"]["first_dose_at"] is not None]
        in_cohort = shown(len(members))
        started = part(len(dosed), len(members), in_cohort)
        instruments = []
        for instrument in ("phq9", "gad7", "pcl5"):
            judged = [c["results"][instrument] for c in dosed if c["results"][instrument]["responded"] is not None]
            responders = [r for r in judged if r["responded"]]
            changes = [float(r["change"]) for r in judged if r["change"] is not None]
            times = [r["time_to_response"] for r in responders if r["time_to_response"]]
            with_result = part(len(judged), len(dosed), started)
            responded = part(len(responders), len(judged), with_result)
            changes_shown = with_result["count"] is not None
            times_shown = responded["count"] is not None
            instruments.append(
                {
                    "instrument": instrument,
                    "with_result": with_result,
                    "responded": responded,
                    "remitted": part(sum(bool(r["remitted"]) for r in judged), len(judged), with_result),
                    "mean_change": middle(changes, mean=True) if changes_shown else None,
                    "median_change": middle(changes) if changes_shown else None,
                    "median_hours_to_response": middle([t["hours"] for t in times]) if times_shown else None,
                    "median_days_to_response": middle([float(t["days"]) for t in times]) if times_shown else None,
                }
            )
        adverse = []
        for kind in AdverseEventType:
            had = sum(kind.value in c["summary"]["adverse_events_by_type"] for c in dosed)
            with_it = part(had, len(dosed), started)
            rate = None
            if with_it["count"] is not None and started["count"]:
                rate = round(with_it["count"] * 100 / started["count"], 1)
            serious = sum(kind.value in c["summary"]["serious_adverse_events_by_type"] for c in dosed)
            adverse.append(
                {
                    "type": kind.value,
                    "courses": with_it,
                    "per_100_courses": rate,
                    "serious_courses": part(serious, had, with_it),
                }
            )
        barriers = []
        for reason in AccessBarrierReason.__args__:  # type: ignore[attr-defined]
            hit = [c for c in members if reason in c["summary"]["barriers_by_reason"]]
            costs = [float(c["summary"]["estimated_out_of_pocket_cents"]) for c in hit]
            hit_shown = part(len(hit), len(members), in_cohort)
            cost = middle([c for c in costs if c]) if hit_shown["count"] is not None else None
            barriers.append(
                {
                    "reason": reason,
                    "courses": hit_shown,
                    "median_out_of_pocket_cents": round(cost) if cost is not None else None,
                }
            )
        waits = [
            float(c["summary"]["days_to_first_dose"]) for c in dosed if c["summary"]["days_to_first_dose"] is not None
        ]
        key = "|".join((site, indication, route, period, cut, value))
        finished = sum(c["status"] == CourseStatus.completed.value for c in dosed)
        stopped = sum(c["summary"]["dropped_out"] for c in dosed)
        completed, dropped_out = part(finished, len(dosed), started), part(stopped, len(dosed), started)
        running = len(dosed) - finished - stopped
        if None not in (started["count"], completed["count"], dropped_out["count"]) and 1 <= running <= 10:
            dropped_out = {"count": None, "suppressed": True}
        figures[key] = {
            "courses": in_cohort,
            "started": started,
            "completed": completed,
            "dropped_out": dropped_out,
            "instruments": instruments,
            "adverse_events": adverse,
            "barriers": barriers,
            "median_days_to_first_dose": middle(waits) if started["count"] is not None else None,
        }
    return figures


def published(messages: Sequence[OutboxMessage]) -> dict[str, dict[str, Any]]:
    """The latest aggregate the site published per cohort, without what only names it (a cohort with no course
    has no trajectory to compare with)."""
    latest: dict[str, dict[str, Any]] = {}
    for message in sorted(messages, key=lambda m: m.id or 0):
        if message.ce_type == COHORT_EVENT:
            figures = CohortOutcomesPublished.model_validate_json(message.payload)
            latest[figures.cohort_key] = json.loads(message.payload)
    naming = ("site", "indication", "route", "period", "cut", "cut_value", "definition", "generated_at", "release")
    return {
        key: {k: v for k, v in data.items() if k not in naming}
        for key, data in latest.items()
        if data["courses"]["count"] != 0
    }


async def count(service: ServiceUnderTest, table: type[Any]) -> int:
    async with service.database.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(table))).one())


# PostgreSQL only: the site's database in deployment; SQLite's path is the same code, run by the API tests.
@pytest.mark.parametrize("new_database_url", ["postgresql"], indirect=True)
async def test_what_a_site_publishes_equals_what_its_trajectories_give(
    kafka: str, database_url: str, tmp_path: Path
) -> None:
    site = f"same{uuid.uuid4().hex[:6]}"
    events = cohort(PATIENTS, [site], SEED)
    settings = ServiceSettings(
        service="outcomes",
        site=site,
        database_url=database_url,
        var_dir=tmp_path,
        kafka_bootstrap_servers=kafka,
        time_zone=ZONE,
        aggregate_publish_interval_seconds=3600,  # the test calls the beat itself, once everything is in
    )
    typed = [e.event for e in events]
    expected = {
        OutcomeMeasurement: sum(isinstance(e, AssessmentRecorded | InCourseAssessmentRecorded) for e in typed),
        OutcomeDose: sum(isinstance(e, DoseAdministered) for e in typed),
        OutcomeCourse: sum(isinstance(e, CoursePlanned) for e in typed),
    }
    final_status: dict[uuid.UUID, CourseStatus] = {}
    for event in typed:
        if isinstance(event, CourseStatusChanged):
            final_status[event.course_id] = event.status
    patients = [e.patient_id for e in typed if isinstance(e, PatientRegistered)]
    async with app_in_process(create_app(settings)) as client:
        outcomes = Outcomes(client, settings)
        await publish(events, kafka)

        async def consumed() -> bool:
            for table, n in expected.items():
                if await count(outcomes, table) != n:
                    return False
            async with outcomes.database.sessions() as session:
                statuses = {c.course_id: c.status for c in (await session.exec(select(OutcomeCourse))).all()}
            return all(statuses.get(course) == status for course, status in final_status.items())

        await eventually(consumed, within=240, what="outcomes consumed the synthetic cohort")
        # One release of the whole cohort: the first of its period, so nothing is held by the step rule.
        report = await review_site(
            outcomes.runtime.unit_of_work, site, settings.zone, site_definition(settings.pcl5_cutoff), ReleasePeriod.day
        )
        assert report.courses == expected[OutcomeCourse]

        trajectories: list[dict[str, Any]] = []
        for patient_id in patients:
            reply = await client.get(f"/patients/{patient_id}/outcomes", headers=outcomes.as_("clinician"))
            assert reply.status_code == 200, reply.text
            trajectories.extend(reply.json()["courses"])
        async with outcomes.database.sessions() as session:
            messages = (await session.exec(select(OutboxMessage))).all()

    site_side = recompute(site, trajectories, ZoneInfo(ZONE))
    network_side = published(messages)
    assert len(trajectories) == expected[OutcomeCourse]
    assert set(network_side) == set(site_side)
    unsuppressed = [k for k, v in site_side.items() if v["started"]["count"]]
    assert unsuppressed, "the cohort is big enough that some cohorts show their figures"
    shown = complements = 0
    for key, figures in site_side.items():
        for path, recomputed, sent in pairs(figures, network_side[key]):
            if isinstance(recomputed, str):
                assert sent == recomputed, (key, path)
            elif sent is None or sent == {"count": None, "suppressed": True}:
                # Hidden: primary suppression gives the same; complementary suppression across cuts (the
                # release rules) may hide a figure the recomputation shows, and whatever stood over it.
                complements += recomputed != sent
            else:
                assert sent == recomputed, (key, path)
                shown += 1
    assert shown > 10 * complements, f"{shown} figures shown as recomputed, {complements} hidden as complements"


def pairs(expected: Any, sent: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every leaf figure (a released count or a number) of two cohorts of the same shape, side by side."""
    if isinstance(expected, dict) and set(expected) != {"count", "suppressed"}:
        assert isinstance(sent, dict) and set(sent) == set(expected), path
        for name in expected:
            yield from pairs(expected[name], sent[name], f"{path}.{name}")
    elif isinstance(expected, list):
        assert isinstance(sent, list) and len(sent) == len(expected), path
        for n, (a, b) in enumerate(zip(expected, sent, strict=True)):
            yield from pairs(a, b, f"{path}[{n}]")
    else:
        yield path, expected, sent
