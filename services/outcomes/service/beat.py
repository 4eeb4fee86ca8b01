"""What the site role does on its beat: judge every course, keep the results with their definition, announce
the follow-ups that fell due, and publish what changed to the network. On a fixed beat rather than per event,
so the network never learns when an individual event happened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict
from sqlmodel import func, select

from services.outcomes.domain.definitions import OutcomeDefinition
from services.outcomes.service import publication, trajectories
from shared.bus.tables import InboxEntry, utcnow
from shared.db.unit_of_work import UnitOfWork
from shared.instants import local_date


class Watermark(BaseModel):
    """What the site's judgement depends on: the events taken in, and the site's calendar day (a follow-up falls
    due on a day, with no event)."""

    model_config = ConfigDict(frozen=True)

    events_taken_in: int
    last_taken_in_at: datetime | None
    today: date


async def watermark(uow: UnitOfWork, zone: ZoneInfo) -> Watermark:
    taken, last = (await uow.session.exec(select(func.count(), func.max(InboxEntry.received_at)))).one()
    return Watermark(events_taken_in=taken, last_taken_in_at=last, today=local_date(utcnow(), zone))


class BeatReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    courses: int
    results_written: int
    follow_ups_announced: int
    cohorts_published: int


async def review_site(
    unit_of_work: Callable[[], UnitOfWork], site: str, zone: ZoneInfo, definition: OutcomeDefinition
) -> BeatReport:
    """Load in one short transaction, judge and count with none open, then write the results, the follow-up
    announcements and the cohorts in one transaction: they commit together or not at all, so a crash between
    them repeats the beat rather than losing a follow-up or a cohort. Nothing else writes what the beat reads
    back (the announcements and published fingerprints), so the gap between the two transactions is safe."""
    now = utcnow()
    async with unit_of_work() as uow:
        facts = await trajectories.load_site_facts(uow)
        published_before = await publication.published_cohorts(uow)
    judged = await trajectories.judge_site(facts, definition, zone, local_date(now, zone))
    release = await publication.cohort_release(site, judged, definition.key, zone, published_before, now)
    async with unit_of_work() as uow:
        written = await trajectories.record_results(uow, judged, now)
        announced = await trajectories.announce_due_follow_ups(uow, judged, now)
        published = await publication.publish_cohort_outcomes(uow, release, now)
        await uow.commit()
    return BeatReport(
        courses=len(judged), results_written=written, follow_ups_announced=announced, cohorts_published=published
    )
