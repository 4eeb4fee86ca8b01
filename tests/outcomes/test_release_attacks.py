"""Attacks on what a site releases, by a reader of the network topic who keeps every version: differencing
successive versions, and timing releases. Each failed before the release rules (a new version on each visible
change, within one beat, stamped with the month) and holds after them."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

import psycopg
import pytest
from sqlalchemy import exc as sa_exc
from sqlmodel import col, select

from services.outcomes.domain.cohorts import cohort_aggregates
from services.outcomes.domain.course_summary import PayerGroup
from services.outcomes.domain.definitions import site_definition
from services.outcomes.models import PrivacyBudget
from services.outcomes.service import publication
from services.outcomes.service.beat import BeatReport, PrivacyBudgetSettings, review_site
from services.outcomes.service.publication import (
    LastRelease,
    ReleaseSpend,
    keep_privacy_spend,
    last_release,
    publish_release,
    registrations_release,
    safe_release,
    spend_privacy_budget,
)
from shared.bus.tables import OutboxMessage
from shared.db.unit_of_work import UnitOfWork
from shared.events.intake import PatientRegistered
from shared.privacy.cells import cells_of
from shared.privacy.release import ReleasePeriod, is_release_boundary
from shared.privacy.suppression_process import SolverUnavailable
from tests.outcomes.conftest import Outcomes
from tests.outcomes.test_cohort_rules import DEFINITION, NEW_YORK, course
from tests.privacy.reader import infer

REGISTRATIONS = "org.kapnet.outcomes.cohort_aggregate.published.v1"
# 10:17 UTC on a Tuesday in March: the release for this day is stamped 00:00 UTC.
TUESDAY = datetime(2026, 3, 3, 10, 17, tzinfo=UTC)


async def register(outcomes: Outcomes, n: int, at: datetime) -> None:
    await outcomes.deliver(
        *(
            PatientRegistered(
                patient_id=uuid.uuid4(),
                site="north",
                mrn=f"N-{uuid.uuid4().hex[:8]}",
                birth_date=date(1980, 3, 1),
                sex="female",
                registered_at=at,
            )
            for _ in range(n)
        )
    )


async def released(outcomes: Outcomes) -> list[tuple[datetime, dict[str, Any]]]:
    """Every version of the registrations aggregate the site sent, in order, with its CloudEvent time."""
    async with outcomes.database.sessions() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.ce_type == REGISTRATIONS).order_by(col(OutboxMessage.id))
            )
        ).all()
    return [(datetime.fromisoformat(dict(row.headers)["ce_time"]), json.loads(row.payload)) for row in rows]


def march(version: dict[str, Any]) -> int | None:
    [cell] = [c for c in version["cells"] if c["period"] == "2026-03"]
    count: int | None = cell["count"]
    return count


async def test_differencing_successive_versions_never_shows_a_step_smaller_than_eleven(outcomes: Outcomes) -> None:
    await register(outcomes, 15, TUESDAY)
    await outcomes.beat()
    await register(outcomes, 3, TUESDAY + timedelta(hours=1))
    await outcomes.beat()  # every beat may release here: the step rule alone holds the +3 back
    await register(outcomes, 7, TUESDAY + timedelta(hours=2))
    await outcomes.beat()  # 25: still within 10 of the 15 released
    await register(outcomes, 1, TUESDAY + timedelta(hours=3))
    await outcomes.beat()  # 26: moved by 11
    versions = [march(v) for _, v in await released(outcomes)]
    assert versions == [15, 26]
    steps = [b - a for a, b in itertools.pairwise(versions) if a is not None and b is not None]
    assert all(step >= 11 for step in steps), steps


async def test_releases_come_once_a_day_stamped_with_the_days_boundary(outcomes: Outcomes) -> None:
    await register(outcomes, 12, TUESDAY - timedelta(hours=2))
    first = await outcomes.beat(period=ReleasePeriod.day, now=TUESDAY)
    assert first.released_for == datetime(2026, 3, 3, tzinfo=UTC)
    await register(outcomes, 11, TUESDAY + timedelta(minutes=5))
    later = await outcomes.beat(period=ReleasePeriod.day, now=TUESDAY + timedelta(minutes=6))
    assert later.released_for is None and later.cohorts_published == 0, "no second release the same day"
    assert len(await released(outcomes)) == 1, "the registrations a minute before are not dated by a new version"
    next_day = await outcomes.beat(period=ReleasePeriod.day, now=datetime(2026, 3, 4, 0, 0, 5, tzinfo=UTC))
    assert next_day.released_for == datetime(2026, 3, 4, tzinfo=UTC)
    versions = await released(outcomes)
    assert [march(v) for _, v in versions] == [12, 23]
    for ce_time, version in versions:
        # The CloudEvent time (and so the Kafka timestamp, which the relay takes from it) and the payload's own
        # time are the day's boundary: nothing dates the registrations to the minute.
        assert is_release_boundary(ce_time), ce_time
        assert datetime.fromisoformat(version["generated_at"]) == ce_time
    assert [t for t, _ in versions] == [datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)]


async def test_the_differential_privacy_mode_stops_releasing_when_the_months_budget_is_spent(
    outcomes: Outcomes,
) -> None:
    budget = PrivacyBudgetSettings(epsilon_per_month=0.5, epsilon_per_release=0.25)
    await register(outcomes, 12, TUESDAY - timedelta(hours=2))
    days = [TUESDAY + timedelta(days=n) for n in range(3)]
    reports = [await outcomes.beat(period=ReleasePeriod.day, now=day, noise=budget) for day in days]
    assert [r.released_for is not None for r in reports] == [True, True, False], "two releases of 0.25 in 0.5"
    async with outcomes.database.sessions() as session:
        [spent] = (await session.exec(select(PrivacyBudget))).all()
    assert (spent.month, spent.budget, spent.spends) == ("2026-03", "1/2", ["1/4", "1/4"])
    next_month = await outcomes.beat(period=ReleasePeriod.day, now=datetime(2026, 4, 1, 0, 5, tzinfo=UTC), noise=budget)
    assert next_month.released_for == datetime(2026, 4, 1, tzinfo=UTC), "a new month, a new budget"


def test_cross_cut_subtraction_finds_no_hidden_count() -> None:
    """Forty-two courses of one cohort: three self-pay, thirty-nine insured. Within each table every count 1-10 is
    hidden, but the whole cohort's 42 shown next to the payer cut's 39 gave self-pay = 3. The release rules hide a
    complement across the cuts, so a reader of every cut and version (the auditor's linear programs) cannot
    narrow any hidden count to fewer than 11 values."""
    courses = []
    for n in range(42):
        made = course(TUESDAY + timedelta(hours=n), 20, 8 if n % 2 else 14)
        payer = PayerGroup.self_pay if n < 3 else PayerGroup.insured
        courses.append(made.model_copy(update={"summary": made.summary.model_copy(update={"payer": payer})}))
    boundary = datetime(2026, 3, 4, tzinfo=UTC)
    within_each_table = cohort_aggregates("north", courses, DEFINITION.key, NEW_YORK, boundary)
    leaked = infer([within_each_table]).leaks
    assert any(leak.cell.cut == "payer" and (leak.low, leak.high) == (3, 3) for leak in leaked), leaked
    nothing_before = LastRelease(released_for=None, cohorts={}, registrations=None, published_before=frozenset())
    release = safe_release("north", courses, DEFINITION.key, NEW_YORK, nothing_before, boundary)
    assert release.groups_refused == 0
    assert infer([list(release.figures)]).leaks == ()
    # Everything hidden within each table stays hidden: complements are only ever added.
    before = {cell: count for f in within_each_table for cell, count in cells_of(f).items()}
    after = {cell: count for f in release.figures for cell, count in cells_of(f).items()}
    assert all(after[cell].suppressed for cell, count in before.items() if count.suppressed)


async def test_releases_that_share_a_boundary_stay_apart_in_what_complements_are_solved_against(
    outcomes: Outcomes,
) -> None:
    """Development's beat period stamps every release of a day with the day's boundary. A reader keeps each of
    them; so must the history that complementary suppression is solved against, or it misses what the reader
    saw in between (a cell shown, hidden, then shown again one higher pins the hidden one)."""
    day = datetime(2026, 3, 4, tzinfo=UTC)
    courses = [course(TUESDAY + timedelta(hours=n), 20, 8 if n % 2 else 14) for n in range(24)]
    for members, now in ((courses[:12], day + timedelta(hours=9)), (courses, day + timedelta(hours=9, seconds=5))):
        async with outcomes.runtime.unit_of_work() as uow:
            last = await last_release(uow)
            release = safe_release("north", members, DEFINITION.key, NEW_YORK, last, day)
            registrations = await registrations_release(uow, "north", last.registrations, day)
            assert await publish_release(uow, release, registrations, day, now) > 0
            await uow.commit()
    async with outcomes.runtime.unit_of_work() as uow:
        last = await last_release(uow)
    assert last.history and all(len(versions) == 2 for versions in last.history.values()), last.history.keys()


async def test_a_beat_drops_its_release_when_another_instance_released_since_it_began(outcomes: Outcomes) -> None:
    """Two instances may both lead for a moment (shared.db.leadership). Here the other one releases 23
    registrations between this beat's reading of the last release (none) and its own release, and one more
    arrives. Judged against the stale history, this beat would release 24: a second version the same day, one
    registration apart."""
    await register(outcomes, 12, TUESDAY - timedelta(hours=2))
    opened = 0

    class TheOtherInstanceReleasesFirst(UnitOfWork):
        async def __aenter__(self) -> UnitOfWork:
            await register(outcomes, 11, TUESDAY - timedelta(hours=1))
            other = await outcomes.beat(period=ReleasePeriod.day, now=TUESDAY)
            assert other.released_for == datetime(2026, 3, 3, tzinfo=UTC)
            await register(outcomes, 1, TUESDAY - timedelta(minutes=30))
            return await super().__aenter__()

    def unit_of_work() -> UnitOfWork:
        nonlocal opened
        opened += 1
        runtime = outcomes.runtime
        # The third is the release's transaction: the facts and the last release read, the results written.
        kind = TheOtherInstanceReleasesFirst if opened == 3 else UnitOfWork
        return kind(runtime.database, source=runtime.source, site=runtime.site)

    this = await review_site(
        unit_of_work, "north", outcomes.settings.zone, site_definition(33), ReleasePeriod.day, TUESDAY
    )
    assert opened == 3 and this.released_for is None and not this.release_deferred
    assert [march(v) for _, v in await released(outcomes)] == [23], "one release for the day: the other's"


async def test_instances_spending_privacy_budget_at_once_spend_it_once_each(outcomes: Outcomes) -> None:
    async def spend(released_for: datetime) -> ReleaseSpend | None:
        async with outcomes.runtime.unit_of_work() as uow:
            spent = await spend_privacy_budget(uow, "north", TUESDAY.date(), 0.5, 0.25, released_for)
            await uow.commit()
            return spent

    boundaries = [datetime(2026, 3, 3, hour, tzinfo=UTC) for hour in range(5)]
    async with outcomes.runtime.unit_of_work() as uow:
        last = await last_release(uow)
    spends = await asyncio.gather(*(spend(boundary) for boundary in boundaries))
    made = [s for s in spends if s is not None]
    assert sorted(s.month_spends for s in made) == [1, 2] and {s.epsilon for s in made} == {Fraction(1, 4)}
    budget = await privacy_budget(outcomes)
    assert budget.spends == ["1/4", "1/4"], "two spends of 0.25 in 0.5, neither lost to the other's write"
    # The second's release lost its connection and its spend was kept; three instances retry it at once: one
    # draws on the kept spend, and the others find the month spent.
    second = max(made, key=lambda s: s.month_spends)
    async with outcomes.runtime.unit_of_work() as uow:
        await keep_privacy_spend(uow, "north", TUESDAY.date(), 0.5, boundaries[0], second, last)
        await uow.commit()
    assert (await privacy_budget(outcomes)).kept_for == boundaries[0]
    first = min(made, key=lambda s: s.month_spends)
    async with outcomes.runtime.unit_of_work() as uow:
        # The first's release lost its connection too, but the second spent since: the last spend is not its own.
        await keep_privacy_spend(uow, "north", TUESDAY.date(), 0.5, boundaries[1], first, last)
        await uow.commit()
    assert (await privacy_budget(outcomes)).kept_for == boundaries[0], "the second's, as it was"
    retries = await asyncio.gather(*(spend(boundaries[0]) for _ in range(3)))
    assert sorted(retries, key=lambda s: s is None) == [second, None, None]
    budget = await privacy_budget(outcomes)
    assert (budget.spends, budget.kept_for) == (["1/4", "1/4"], None)


async def privacy_budget(outcomes: Outcomes) -> PrivacyBudget:
    async with outcomes.database.sessions() as session:
        [budget] = (await session.exec(select(PrivacyBudget))).all()
    return budget


async def test_a_release_whose_connection_was_lost_spends_its_epsilon_once_and_a_defect_spends_again(
    outcomes: Outcomes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Differential-privacy mode, a budget of four releases a month. The database's connection is lost three beats
    running while the release is written: before, each retry spent another 0.25, and three such beats left one
    release for the month. A defect's retry spends again: whether it strikes might depend on the noise drawn."""
    budget = PrivacyBudgetSettings(epsilon_per_month=1.0, epsilon_per_release=0.25)
    await register(outcomes, 12, TUESDAY - timedelta(hours=2))
    tuesday = datetime(2026, 3, 3, tzinfo=UTC)

    async def connection_lost(*_: Any, **__: Any) -> int:
        # What psycopg and SQLAlchemy raise when the server ends the session (checked against a real server).
        shutdown = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
        raise sa_exc.OperationalError("INSERT INTO released_version", {}, shutdown, connection_invalidated=True)

    async def a_defect(*_: Any, **__: Any) -> int:
        raise RuntimeError("a defect in the release code")

    async def beat(minute: int) -> BeatReport:
        return await outcomes.beat(period=ReleasePeriod.day, now=TUESDAY + timedelta(minutes=minute), noise=budget)

    monkeypatch.setattr(publication, "publish_release", connection_lost)
    assert all([(await beat(minute)).release_deferred for minute in range(3)])
    spent = await privacy_budget(outcomes)
    assert (spent.spends, spent.kept_for) == (["1/4"], tuesday), "three tries, one spend, kept for the next"
    monkeypatch.setattr(publication, "publish_release", a_defect)
    assert (await beat(3)).release_deferred
    spent = await privacy_budget(outcomes)
    assert (spent.spends, spent.kept_for) == (["1/4"], None), "the defect's try used the kept spend up"
    monkeypatch.undo()
    assert (await beat(4)).released_for == tuesday
    spent = await privacy_budget(outcomes)
    assert (spent.spends, spent.kept_for) == (["1/4", "1/4"], None), "the retry after the defect spent again"
    assert [march(v) for _, v in await released(outcomes)] == [12]


def behind(cause: Exception, error: Exception) -> Exception:
    """``error`` as raised while ``cause`` was being handled."""
    error.__context__ = cause
    return error


@pytest.mark.parametrize(
    "failure",
    [
        # A statement timeout, a deadlock, a full disk: each could depend on the rows the noise decided.
        sa_exc.OperationalError("INSERT", {}, psycopg.errors.QueryCanceled("canceling statement due to timeout")),
        sa_exc.OperationalError("INSERT", {}, psycopg.errors.DeadlockDetected("deadlock detected")),
        sa_exc.OperationalError("INSERT", {}, psycopg.errors.DiskFull("could not extend file")),
        # The server ended the session, but over how long the transaction sat idle: the session is gone all the
        # same (SQLAlchemy marks the connection invalidated), yet the cause is the transaction's own.
        sa_exc.InternalError(
            "SELECT",
            {},
            psycopg.errors.IdleInTransactionSessionTimeout("terminating connection due to idle-in-transaction timeout"),
            connection_invalidated=True,
        ),
        # psycopg refusing a statement before sending it (more than 65,535 parameters): no connection lost.
        sa_exc.OperationalError("INSERT", {}, psycopg.OperationalError("number of parameters must be below 65536")),
        # The solver's process is not used in this mode; were it, its time and size depend on the cells shown.
        SolverUnavailable("the suppression solver's process failed"),
        # A defect, then the connection gone before the rollback: the rollback's lost connection is what the beat
        # catches, with the defect behind it (a real server's case: tests/shared/test_connection_lost.py).
        behind(
            RuntimeError("a defect in the release code"),
            sa_exc.OperationalError(
                "ROLLBACK", {}, psycopg.errors.AdminShutdown("terminating connection"), connection_invalidated=True
            ),
        ),
    ],
    ids=["statement-timeout", "deadlock", "disk-full", "idle-timeout", "client-refusal", "solver", "defect-behind"],
)
async def test_a_release_stopped_by_a_failure_of_its_own_spends_again(
    outcomes: Outcomes, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    budget = PrivacyBudgetSettings(epsilon_per_month=1.0, epsilon_per_release=0.25)
    await register(outcomes, 12, TUESDAY - timedelta(hours=2))

    async def fails(*_: Any, **__: Any) -> int:
        raise failure

    monkeypatch.setattr(publication, "publish_release", fails)
    for minute in range(2):
        report = await outcomes.beat(period=ReleasePeriod.day, now=TUESDAY + timedelta(minutes=minute), noise=budget)
        assert report.release_deferred
    spent = await privacy_budget(outcomes)
    assert (spent.spends, spent.kept_for) == (["1/4", "1/4"], None)


async def test_a_release_committed_before_its_connection_was_lost_keeps_nothing(
    outcomes: Outcomes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release's COMMIT went through and only its answer was lost: that draw was published, so its spend is
    not kept for another."""
    budget = PrivacyBudgetSettings(epsilon_per_month=1.0, epsilon_per_release=0.25)
    await register(outcomes, 12, TUESDAY - timedelta(hours=2))
    publish = publication.publish_release

    async def committed_then_lost(uow: UnitOfWork, *args: Any) -> int:
        await publish(uow, *args)
        await uow.commit()
        shutdown = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
        raise sa_exc.OperationalError("COMMIT", {}, shutdown, connection_invalidated=True)

    monkeypatch.setattr(publication, "publish_release", committed_then_lost)
    assert (await outcomes.beat(period=ReleasePeriod.beat, now=TUESDAY, noise=budget)).release_deferred
    assert [march(v) for _, v in await released(outcomes)] == [12], "the release was made"
    spent = await privacy_budget(outcomes)
    assert (spent.spends, spent.kept_for) == (["1/4"], None)


async def test_a_release_whose_spend_could_not_be_kept_spends_again(
    outcomes: Outcomes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection lost while the release is written, and the server still away when its spend is to be kept:
    nothing is kept, so the retry spends again (fail closed)."""
    budget = PrivacyBudgetSettings(epsilon_per_month=1.0, epsilon_per_release=0.25)
    await register(outcomes, 12, TUESDAY - timedelta(hours=2))

    async def database_away(*_: Any, **__: Any) -> None:
        # What a connect to a server that is not there raises (checked against a real server).
        raise sa_exc.OperationalError(None, None, psycopg.OperationalError("connection failed: Connection refused"))

    monkeypatch.setattr(publication, "publish_release", database_away)
    monkeypatch.setattr(publication, "keep_privacy_spend", database_away)
    assert (await outcomes.beat(period=ReleasePeriod.day, now=TUESDAY, noise=budget)).release_deferred
    assert (await privacy_budget(outcomes)).spends == ["1/4"]
    monkeypatch.undo()
    later = await outcomes.beat(period=ReleasePeriod.day, now=TUESDAY + timedelta(minutes=1), noise=budget)
    assert later.released_for == datetime(2026, 3, 3, tzinfo=UTC)
    spent = await privacy_budget(outcomes)
    assert (spent.spends, spent.kept_for) == (["1/4", "1/4"], None)
