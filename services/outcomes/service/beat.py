"""What the site role does on its beat: judge every course, keep the results with their definition, announce
the follow-ups that fell due, and, once per release period, release what changed to the network (the release
rules, shared/privacy/release.py), so the network never learns when an individual event happened."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict
from sqlmodel import func, select

from services.outcomes.domain.definitions import OutcomeDefinition
from services.outcomes.service import publication, trajectories
from shared.bus.consumer import infrastructure_failure
from shared.bus.kafka import raise_if_cancelling
from shared.bus.tables import InboxEntry, utcnow
from shared.db.database import only_the_connection_lost
from shared.db.unit_of_work import UnitOfWork
from shared.instants import local_date
from shared.privacy.release import ReleasePeriod, release_boundary, release_due
from shared.privacy.suppression_process import SolverUnavailable

log = logging.getLogger(__name__)


class Watermark(BaseModel):
    """What the site's beat depends on: the events taken in, the site's calendar day (a follow-up falls due on a
    day, with no event), and the release period (a held change is released in the next one, with no event)."""

    model_config = ConfigDict(frozen=True)

    events_taken_in: int
    last_taken_in_at: datetime | None
    today: date
    release_period_from: datetime


async def watermark(uow: UnitOfWork, zone: ZoneInfo, period: ReleasePeriod) -> Watermark:
    taken, last = (await uow.session.exec(select(func.count(), func.max(InboxEntry.received_at)))).one()
    now = utcnow()
    return Watermark(
        events_taken_in=taken,
        last_taken_in_at=last,
        today=local_date(now, zone),
        release_period_from=release_boundary(now, period),
    )


class PrivacyBudgetSettings(BaseModel):
    """The differential-privacy mode's budget (from the site's settings)."""

    model_config = ConfigDict(frozen=True)

    epsilon_per_month: float
    epsilon_per_release: float


class BeatReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    courses: int
    results_written: int
    follow_ups_announced: int
    released_for: datetime | None
    cohorts_published: int
    # The release was due but did not happen (the privacy solver's process out, a database error, a defect): the
    # rest of the beat went on without it, and the next beat tries it again.
    release_deferred: bool = False


async def review_site(
    unit_of_work: Callable[[], UnitOfWork],
    site: str,
    zone: ZoneInfo,
    definition: OutcomeDefinition,
    period: ReleasePeriod,
    now: datetime | None = None,
    noise: PrivacyBudgetSettings | None = None,
) -> BeatReport:
    """Load in one short transaction, judge and count with none open, then write the results and the follow-up
    announcements in one transaction and (when a release is due) the release in the next. Follow-ups due are a
    patient's care and never wait on the network's figures: whatever stops the release (the solver's process
    out, a database error, a defect in the release code) is logged, the release transaction rolls back whole,
    and the release, still due, is made at a later beat (clinic policy). A crash between the two transactions
    likewise leaves the release due. Nothing else writes what the beat reads back (the announcements and what
    was released), so the gaps between the transactions are safe."""
    now = now or utcnow()
    released_for = release_boundary(now, period)
    async with unit_of_work() as uow:
        facts = await trajectories.load_site_facts(uow)
        last = await publication.last_release(uow)
    due = release_due(last.released_for, now, period)
    spend = None
    spend_failed = False
    if due and noise is not None:
        # Spent before the noise is drawn, in its own transaction: a crash after it wastes budget, never reuses it.
        # A retry of a release that a lost connection stopped uses the spend kept for it (PrivacyAccountant).
        try:
            async with unit_of_work() as uow:
                spend = await publication.spend_privacy_budget(
                    uow, site, now.date(), noise.epsilon_per_month, noise.epsilon_per_release, released_for
                )
                await uow.commit()
        except Exception:
            raise_if_cancelling()
            # The follow-ups below are a patient's care: they never wait on the budget's book. Were the spend
            # committed after all, it is wasted, never reused (a later try spends again).
            log.exception("the privacy budget could not be spent: the release is deferred to a later beat")
            spend, spend_failed = None, True
        due = spend is not None
    judged = await trajectories.judge_site(facts, definition, zone, local_date(now, zone))
    async with unit_of_work() as uow:
        written = await trajectories.record_results(uow, judged, now)
        announced = await trajectories.announce_due_follow_ups(uow, judged, now)
        await uow.commit()
    published: int | None = None
    superseded = False
    if due:
        try:
            epsilon = spend.epsilon if spend is not None else None
            release = await publication.cohort_release(site, judged, definition.key, zone, last, released_for, epsilon)
            async with unit_of_work() as uow:
                if await publication.still_the_last_release(uow, last):
                    registrations = await publication.registrations_release(uow, site, last.registrations, released_for)
                    cohorts = await publication.publish_release(uow, release, registrations, released_for, now)
                    await uow.commit()
                    published = cohorts  # only once committed: a failed commit is a deferred release too
                else:
                    superseded = True
                    log.warning("another instance released since this beat began; its release is dropped")
        except Exception as failure:
            raise_if_cancelling()
            if isinstance(failure, SolverUnavailable) or infrastructure_failure(failure):
                log.error("the release is deferred to a later beat: %s", failure)
            else:  # not an outage: a defect, with its traceback for whoever fixes it
                log.exception("the release failed and is deferred to a later beat")
            if noise is not None and spend is not None and only_the_connection_lost(failure):
                await _keep_spend(unit_of_work, site, now.date(), noise, released_for, spend, last)
    return BeatReport(
        courses=len(judged),
        results_written=written,
        follow_ups_announced=announced,
        released_for=released_for if published is not None else None,
        cohorts_published=published or 0,
        release_deferred=spend_failed or (due and published is None and not superseded),
    )


async def _keep_spend(
    unit_of_work: Callable[[], UnitOfWork],
    site: str,
    on: date,
    noise: PrivacyBudgetSettings,
    released_for: datetime,
    spend: publication.ReleaseSpend,
    last: publication.LastRelease,
) -> None:
    """The release lost its connection to the database, which the noise drawn had no part in: its retry may draw
    afresh on this spend. Any other failure (a defect, a statement timeout, a full disk) might depend on the draw,
    so its retry spends again, as it does when this write fails too (the database still away)."""
    try:
        async with unit_of_work() as uow:
            await publication.keep_privacy_spend(uow, site, on, noise.epsilon_per_month, released_for, spend, last)
            await uow.commit()
    except Exception as failure:
        raise_if_cancelling()
        log.warning("the release's privacy spend could not be kept for its retry, which will spend again: %s", failure)
