"""What the site role does on its beat: judge every course, keep the results with their definition, announce
the follow-ups that fell due, and publish what changed to the network. On a fixed beat rather than per event,
so the network never learns when an individual event happened."""

from __future__ import annotations

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


async def review_site(uow: UnitOfWork, site: str, zone: ZoneInfo, definition: OutcomeDefinition) -> BeatReport:
    """One transaction: the results, the follow-up announcements and the cohorts commit together or not at all,
    so a crash between them repeats the beat rather than losing a follow-up or a cohort."""
    now = utcnow()
    judged = await trajectories.site_trajectories(uow, definition, zone, local_date(now, zone))
    written = await trajectories.record_results(uow, judged, now)
    announced = await trajectories.announce_due_follow_ups(uow, judged, now)
    published = await publication.publish_cohort_outcomes(uow, site, judged, definition.key, zone)
    await uow.commit()
    return BeatReport(
        courses=len(judged), results_written=written, follow_ups_announced=announced, cohorts_published=published
    )
