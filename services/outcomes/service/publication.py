"""Outcomes' release to the network: the registrations per month and the cohort outcomes, by the release rules
(shared/privacy/release.py): at most once per release period, stamped with the period's boundary, every shown
figure held until it has moved by 11 or more. Only what would be shown is compared with what was last released,
so a change hidden by suppression or held by the step rule publishes nothing."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from datetime import date, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, func, select

from services.outcomes.domain.cohorts import (
    COUNTS_PER_COHORT,
    CohortKey,
    CourseOutcome,
    aggregate,
    cohort_aggregates,
    cohorts_of,
    course_counts,
    figures_from_counts,
)
from services.outcomes.domain.course_record import CourseTrajectory
from services.outcomes.domain.registrations import REGISTRATIONS_COHORT, fingerprint, registrations_by_month
from services.outcomes.models import (
    NetworkAggregate,
    PrivacyBudget,
    PublishedAggregate,
    Registration,
    ReleasedVersion,
    SiteRelease,
)
from shared.db.unit_of_work import UnitOfWork
from shared.events.outcomes import AggregateCell, CohortAggregatePublished, CohortOutcomesPublished, ReleasedCount
from shared.privacy.cells import CandidateCell, CellId, cells_of
from shared.privacy.noise import (
    PrivacyAccountant,
    PrivacyBudgetSpent,
    ShownCount,
    as_epsilon,
    calendar_month,
    release_with_noise,
)
from shared.privacy.release import complements_by_table, held_cells, held_release, suppressing
from shared.privacy.suppression_process import Group, SuppressionProcess

log = logging.getLogger(__name__)

# HiGHS and numpy in a child that lives while releases are being made (shared/privacy/suppression_process.py):
# through make run's beats of 5 s it stays; after a day's release in production it is gone half a minute later.
SUPPRESSION = SuppressionProcess(idle_seconds=30.0)


class LastRelease(BaseModel):
    """What the site released last: each cohort's figures as released, and the period boundary it was for."""

    model_config = ConfigDict(frozen=True)

    released_for: datetime | None
    cohorts: dict[str, CohortOutcomesPublished]
    registrations: CohortAggregatePublished | None
    published_before: frozenset[str]
    # Per group (indication, route, month): what a reader held after each release that changed it, in order.
    history: dict[tuple[str, str, str], list[list[CohortOutcomesPublished]]] = Field(default_factory=dict)
    # Which releases this was read after: any release since changes it (release_stamp).
    stamp: ReleaseStamp = None


# The latest release's time and how many releases publish anything: every release moves the one, and a release
# made from stale figures would not be caught by the other alone.
ReleaseStamp = tuple[datetime | None, int] | None

# Held by the transaction that makes a release, and by the one that spends privacy budget.
RELEASE_LOCK = "outcomes release"


async def release_stamp(uow: UnitOfWork) -> ReleaseStamp:
    latest, releases = (
        await uow.session.exec(
            select(func.max(SiteRelease.released_at), func.coalesce(func.sum(SiteRelease.releases), 0))
        )
    ).one()
    return (latest, int(releases))


async def still_the_last_release(uow: UnitOfWork, last: LastRelease) -> bool:
    """Whether no release was made since ``last`` was read, holding the release lock to the transaction's end.
    Two instances of the site may both lead for a moment (shared.db.leadership): a release computed against
    what another instance has since released would be judged by the step and differencing rules against stale
    history, and would make a second release in one period."""
    await uow.lock(RELEASE_LOCK)
    return await release_stamp(uow) == last.stamp


async def last_release(uow: UnitOfWork) -> LastRelease:
    # The stamp first: on PostgreSQL each statement sees what was committed before it, so a release committed
    # between these reads makes the stamp older than the history, and the beat drops its release (the safe side).
    read_after = await release_stamp(uow)
    released_for = (await uow.session.exec(select(func.max(SiteRelease.released_for)))).one()
    rows = (await uow.session.exec(select(PublishedAggregate))).all()
    cohorts: dict[str, CohortOutcomesPublished] = {}
    registrations: CohortAggregatePublished | None = None
    for row in rows:
        if row.released is None:
            continue
        if row.cohort == REGISTRATIONS_COHORT:
            registrations = CohortAggregatePublished.model_validate(row.released)
        else:
            cohorts[row.cohort] = CohortOutcomesPublished.model_validate(row.released)
    versions = (
        await uow.session.exec(
            select(ReleasedVersion).order_by(col(ReleasedVersion.released_for), col(ReleasedVersion.id))
        )
    ).all()
    held: dict[tuple[str, str, str], dict[str, CohortOutcomesPublished]] = {}
    history: dict[tuple[str, str, str], list[list[CohortOutcomesPublished]]] = {}
    # A release is its boundary and its number within the period: a boundary may be shared by several (beat).
    stamps: dict[tuple[str, str, str], tuple[datetime, int | None]] = {}
    for version in versions:
        figures = CohortOutcomesPublished.model_validate(version.figures)
        group = _group_of(figures)
        held.setdefault(group, {})[figures.cohort_key] = figures
        snapshot = list(held[group].values())
        stamp = (version.released_for, version.release)
        if stamps.get(group) == stamp:
            history[group][-1] = snapshot
        else:
            history.setdefault(group, []).append(snapshot)
            stamps[group] = stamp
    return LastRelease(
        released_for=released_for,
        cohorts=cohorts,
        registrations=registrations,
        published_before=frozenset(row.cohort for row in rows),
        history=history,
        stamp=read_after,
    )


async def registrations_release(
    uow: UnitOfWork, site: str, last: CohortAggregatePublished | None, released_for: datetime
) -> CohortAggregatePublished:
    """The registrations per month as they may be released now: suppressed on raw counts, then held."""
    months = (await uow.session.exec(select(Registration.registered_month))).all()
    cells, total = registrations_by_month(months)
    held = held_cells(last.cells if last else None, cells)
    [held_total] = held_cells([last.total] if last else None, [total])
    if any(cell.suppressed for cell in held):
        # Complementary: a total over a hidden month would give that month by subtraction (shared/privacy).
        held_total = AggregateCell(period="all", suppressed=True)
    return CohortAggregatePublished(
        site=site,
        cohort=REGISTRATIONS_COHORT,
        measure="patients_registered",
        cells=held,
        total=held_total,
        generated_at=released_for,
    )


def _shown_fingerprint(figures: CohortOutcomesPublished) -> str:
    shown = figures.model_dump_json(exclude={"generated_at", "release"})
    return hashlib.sha256(shown.encode()).hexdigest()


def _key_of(cohort_key: str) -> CohortKey | None:
    """The cohort a published key names (site|indication|route|period|cut|value); None for another kind."""
    parts = cohort_key.split("|")
    if len(parts) != 6:
        return None
    _site, indication, route, period, cut, value = parts
    return CohortKey.model_validate(
        {"indication": indication, "route": route, "period": period, "cut": cut, "cut_value": value}
    )


class CohortRelease(BaseModel):
    """What would be released now: each cohort's figures and the fingerprint of what they show."""

    model_config = ConfigDict(frozen=True)

    figures: tuple[CohortOutcomesPublished, ...]
    fingerprints: tuple[str, ...]
    groups_refused: int = 0


def noisy_cohorts(
    site: str,
    members: Sequence[CourseOutcome],
    definition: str,
    zone: ZoneInfo,
    epsilon: Fraction,
    released_for: datetime,
) -> list[CohortOutcomesPublished]:
    """The differential-privacy mode: each whole cohort's raw counts with OpenDP's integer noise (one course adds
    at most 1 to each count of its one cohort, so the L1 sensitivity is the counts per cohort), then clamped and
    1-10 suppressed. Only the whole cohorts ("all"): every cut would multiply the sensitivity."""
    cohorts = {key: members for key, members in cohorts_of(members, zone).items() if key.cut == "all"}
    raw = {(key, measure): n for key, of in cohorts.items() for measure, n in course_counts(of).items()}
    noisy = release_with_noise(raw, epsilon, COUNTS_PER_COHORT)

    def released(key: CohortKey, measure: str) -> ReleasedCount:
        count = noisy.cells[(key, measure)]
        return ReleasedCount(count=count.count) if isinstance(count, ShownCount) else ReleasedCount(suppressed=True)

    return [
        figures_from_counts(site, key, {m: released(key, m) for m in course_counts([])}, definition, released_for)
        for key in cohorts
    ]


async def cohort_release(
    site: str,
    trajectories: Sequence[CourseTrajectory],
    definition: str,
    zone: ZoneInfo,
    last: LastRelease,
    released_for: datetime,
    noise_epsilon: Fraction | None = None,
) -> CohortRelease:
    """Every cohort's figures as they may be released now: from the raw counts, each count 1-10 suppressed
    (cohorts.py) or, in the differential-privacy mode (``noise_epsilon``), noise added first; then every shown
    figure held to the step rule against what was last released. A cohort released before that lost all its
    courses gets an emptied version, so the network never keeps a figure the site no longer has. Pure and
    CPU-bound for a site's whole history: off the event loop."""

    members = [t.cohort_member() for t in trajectories]
    return await asyncio.to_thread(safe_release, site, members, definition, zone, last, released_for, noise_epsilon)


def safe_release(
    site: str,
    members: Sequence[CourseOutcome],
    definition: str,
    zone: ZoneInfo,
    last: LastRelease,
    released_for: datetime,
    noise_epsilon: Fraction | None = None,
) -> CohortRelease:
    """cohort_release's work, pure: the candidate figures, held to the step rule, then made safe across cuts."""
    if noise_epsilon is None:
        candidates = cohort_aggregates(site, members, definition, zone, released_for)
    else:
        candidates = noisy_cohorts(site, members, definition, zone, noise_epsilon, released_for)
    by_key = {f.cohort_key: f for f in candidates}
    raw = {
        f"{site}|{k.indication.value}|{k.route.value}|{k.period}|{k.cut}|{k.cut_value}": course_counts(of)
        for k, of in cohorts_of(members, zone).items()
    }
    for cohort in last.published_before:
        key = _key_of(cohort)
        if key is not None and cohort not in by_key:
            by_key[cohort] = aggregate(site, key, [], definition, released_for)
    held = [held_release(last.cohorts.get(k), by_key[k]) for k in sorted(by_key)]
    if noise_epsilon is not None:
        # Noise is this mode's protection: a noisy count is not the truth a reader's linear programs assume, and
        # noisy counts need not respect a whole (started may exceed courses), so complements are not solved.
        return CohortRelease(figures=tuple(held), fingerprints=tuple(_shown_fingerprint(f) for f in held))
    ordered, refused = _protected(held, raw, last)
    return CohortRelease(
        figures=tuple(ordered),
        fingerprints=tuple(_shown_fingerprint(f) for f in ordered),
        groups_refused=refused,
    )


def _group_of(figures: CohortOutcomesPublished) -> tuple[str, str, str]:
    return (figures.indication.value, figures.route.value, figures.period)


def _protected(
    held: list[CohortOutcomesPublished], raw: dict[str, dict[str, int]], last: LastRelease
) -> tuple[list[CohortOutcomesPublished], int]:
    """Complementary suppression across every cut of a site, indication, route and month, against what was
    released before (shared/privacy/inference.py ``protect``): for each group with something new to show, hide
    further cells until no suppressed cell can be narrowed to fewer than 11 values. A group that cannot be made
    safe is refused: its cohorts stay as last released (a cohort never released stays out)."""
    groups: dict[tuple[str, str, str], list[CohortOutcomesPublished]] = {}
    for figures in held:
        groups.setdefault(_group_of(figures), []).append(figures)
    kept: list[CohortOutcomesPublished] = []
    # Each changed group: its figures, what was last released of them, and the complements chosen table by table.
    changed: list[tuple[list[CohortOutcomesPublished], list[CohortOutcomesPublished], set[CellId]]] = []
    to_solve: list[Group] = []
    for members in groups.values():
        before = [last.cohorts[f.cohort_key] for f in members if f.cohort_key in last.cohorts]
        if len(before) == len(members) and all(
            _shown_fingerprint(f) == _shown_fingerprint(last.cohorts[f.cohort_key]) for f in members
        ):
            kept.extend(members)  # nothing new in the group: it was made safe when it was released
            continue
        candidate = {
            cell: CandidateCell(
                raw=raw.get(f.cohort_key, {}).get(cell.measure, 0), suppressed=count.count is None, shown=count.count
            )
            for f in members
            for cell, count in cells_of(f).items()
        }
        first_choice = complements_by_table(candidate)
        candidate = {
            cell: CandidateCell(raw=known.raw, suppressed=True) if cell in first_choice else known
            for cell, known in candidate.items()
        }
        changed.append((members, before, first_choice))
        to_solve.append((candidate, last.history.get(_group_of(members[0]), [])))
    refused = 0
    # Every changed group in one call to the solver's process.
    for (members, before, first_choice), protection in zip(changed, SUPPRESSION.protect_each(to_solve), strict=True):
        if isinstance(protection, str):
            log.warning("a cohort group is not released this period: %s", protection)
            refused += 1
            kept.extend(before)
            continue
        hide = first_choice | protection
        for f in members:
            measures = {
                cell.measure
                for cell in hide
                if cell.site == f.site and cell.cut == f.cut and cell.cut_value == f.cut_value
            }
            kept.append(suppressing(f, measures))
    return sorted(kept, key=lambda f: f.cohort_key), refused


async def _remember(uow: UnitOfWork, cohort: str, shown: str, released: dict[str, object], now: datetime) -> None:
    row = await uow.session.get(PublishedAggregate, cohort)
    if row is None:
        row = PublishedAggregate(cohort=cohort, fingerprint=shown, published_at=now)
    row.fingerprint, row.published_at, row.released = shown, now, released
    uow.session.add(row)


async def publish_release(
    uow: UnitOfWork,
    release: CohortRelease,
    registrations: CohortAggregatePublished,
    released_for: datetime,
    now: datetime,
) -> int:
    """Publish every cohort whose shown figures changed since it was last released, and record the release for
    its period. Every record of the release carries its number within the period. Returns how many were
    published; the caller commits."""
    last = {row.cohort: row.fingerprint for row in (await uow.session.exec(select(PublishedAggregate))).all()}
    row = await uow.session.get(SiteRelease, released_for)
    if row is None:
        row = SiteRelease(released_for=released_for, released_at=now, cohorts_published=0, groups_refused=0)
    number = row.releases + 1
    published = 0
    shown_registrations = fingerprint(registrations.cells, registrations.total)
    if last.get(REGISTRATIONS_COHORT) != shown_registrations:
        registrations = registrations.model_copy(update={"release": number})
        await uow.publish(registrations)
        await _remember(uow, REGISTRATIONS_COHORT, shown_registrations, registrations.model_dump(mode="json"), now)
        published += 1
    for figures, shown in zip(release.figures, release.fingerprints, strict=True):
        if last.get(figures.cohort_key) == shown:
            continue
        figures = figures.model_copy(update={"release": number})
        await uow.publish(figures)
        await _remember(uow, figures.cohort_key, shown, figures.model_dump(mode="json"), now)
        uow.session.add(
            ReleasedVersion(
                cohort=figures.cohort_key,
                released_for=released_for,
                release=number,
                figures=figures.model_dump(mode="json"),
            )
        )
        published += 1
    row.released_at = now
    row.cohorts_published += published
    row.groups_refused += release.groups_refused
    if published:
        row.releases = number
    uow.session.add(row)
    return published


class ReleaseSpend(BaseModel):
    """What one release spent of the month's privacy budget: its ε, and how many spends the month had once it
    was made (the mark a later keeping checks, PrivacyAccountant.keep_for)."""

    model_config = ConfigDict(frozen=True)

    epsilon: Fraction
    month_spends: int


async def spend_privacy_budget(
    uow: UnitOfWork, site: str, on: date, budget: float, epsilon: float, released_for: datetime
) -> ReleaseSpend | None:
    """The differential-privacy mode's accountant: spend one release's ε of the month's budget, or use the spend
    kept for the release for ``released_for`` (its last try lost the database's connection); None when the month's
    budget is spent (nothing is released until the next month). The caller commits."""
    await uow.lock(RELEASE_LOCK)  # two instances spending at once must not both read the month's row as it was
    row = await uow.session.get(PrivacyBudget, calendar_month(on))
    try:
        accountant = _accountant(row, site, on, budget).spend_for_release(epsilon, on, released_for)
    except PrivacyBudgetSpent:
        return None
    _keep_accountant(uow, row, accountant)
    return ReleaseSpend(epsilon=as_epsilon(epsilon), month_spends=len(accountant.spends))


async def keep_privacy_spend(
    uow: UnitOfWork,
    site: str,
    on: date,
    budget: float,
    released_for: datetime,
    spend: ReleaseSpend,
    last: LastRelease,
) -> None:
    """Keep the release's spend for its retry: the release for ``released_for``, made after ``last``, failed
    because the database's connection was lost, which the noise drawn had no part in. Nothing is kept when a
    release has been made since (the lost connection's COMMIT may have gone through: that draw was published).
    The caller commits."""
    await uow.lock(RELEASE_LOCK)
    if not await still_the_last_release(uow, last):
        return
    row = await uow.session.get(PrivacyBudget, calendar_month(on))
    if row is not None:
        _keep_accountant(uow, row, _accountant(row, site, on, budget).keep_for(released_for, spend.month_spends))


def _accountant(row: PrivacyBudget | None, site: str, on: date, budget: float) -> PrivacyAccountant:
    if row is None:
        return PrivacyAccountant.opened(site, on, budget)
    return PrivacyAccountant(
        site=site,
        month=row.month,
        budget=as_epsilon(budget),
        spends=tuple(Fraction(spent) for spent in row.spends),
        kept_for=row.kept_for,
    )


def _keep_accountant(uow: UnitOfWork, row: PrivacyBudget | None, accountant: PrivacyAccountant) -> None:
    if row is None:
        row = PrivacyBudget(month=accountant.month, budget=str(accountant.budget), spends=[])
    row.budget, row.spends = str(accountant.budget), [str(spent) for spent in accountant.spends]
    row.kept_for = accountant.kept_for
    uow.session.add(row)


async def network_aggregates(
    uow: UnitOfWork, site: str | None = None, cohort: str | None = None
) -> list[NetworkAggregate]:
    """The latest aggregate of every (site, cohort), or of one site's or one cohort's: chosen by the database."""
    query = select(NetworkAggregate).order_by(col(NetworkAggregate.site), col(NetworkAggregate.cohort))
    if site is not None:
        query = query.where(col(NetworkAggregate.site) == site)
    if cohort is not None:
        query = query.where(col(NetworkAggregate.cohort) == cohort)
    return list((await uow.session.exec(query)).all())
