"""The release rules (shared/privacy/release.py): cadence, boundary times, and the step rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from shared.events.outcomes import AggregateCell, CohortOutcomesPublished, ReleasedCount
from shared.privacy.release import (
    ReleasePeriod,
    held_cells,
    held_count,
    held_release,
    is_release_boundary,
    release_boundary,
    release_due,
    step_allowed,
)
from tests.outcomes.test_network_view_rules import cohort

# A Wednesday afternoon, in a zone west of UTC (where the site's day and UTC's differ).
WEDNESDAY = datetime(2026, 3, 4, 21, 30, tzinfo=timezone(timedelta(hours=-5)))


def shown(n: int) -> ReleasedCount:
    return ReleasedCount(count=n)


HIDDEN = ReleasedCount(suppressed=True)


def test_a_release_is_stamped_with_its_periods_boundary_at_midnight_utc() -> None:
    # 21:30 at UTC-5 is 02:30 UTC on Thursday 5 March.
    assert release_boundary(WEDNESDAY, ReleasePeriod.day) == datetime(2026, 3, 5, tzinfo=UTC)
    assert release_boundary(WEDNESDAY, ReleasePeriod.week) == datetime(2026, 3, 2, tzinfo=UTC)
    assert release_boundary(WEDNESDAY, ReleasePeriod.month) == datetime(2026, 3, 1, tzinfo=UTC)
    assert release_boundary(WEDNESDAY, ReleasePeriod.beat) == datetime(2026, 3, 5, tzinfo=UTC)
    assert is_release_boundary(datetime(2026, 3, 5, tzinfo=UTC))
    assert not is_release_boundary(datetime(2026, 3, 5, 0, 0, 1, tzinfo=UTC))
    assert not is_release_boundary(datetime(2026, 3, 5, 14, 3, tzinfo=UTC))
    assert not is_release_boundary(datetime(2026, 3, 5))  # no zone: not a boundary anyone can check


def test_a_site_releases_once_per_period() -> None:
    today = release_boundary(WEDNESDAY, ReleasePeriod.day)
    assert release_due(None, WEDNESDAY, ReleasePeriod.day), "the first release"
    assert not release_due(today, WEDNESDAY + timedelta(hours=20), ReleasePeriod.day), "later the same UTC day"
    assert release_due(today, WEDNESDAY + timedelta(hours=22), ReleasePeriod.day), "the next UTC day"
    this_month = release_boundary(WEDNESDAY, ReleasePeriod.month)
    assert not release_due(this_month, WEDNESDAY + timedelta(days=20), ReleasePeriod.month)
    assert release_due(this_month, WEDNESDAY + timedelta(days=30), ReleasePeriod.month)
    assert release_due(today, WEDNESDAY, ReleasePeriod.beat), "development: every beat"


def test_a_shown_count_moves_only_by_eleven_or_more() -> None:
    assert held_count(shown(20), shown(23)) == shown(20), "+3 waits"
    assert held_count(shown(20), shown(30)) == shown(20), "+10 waits"
    assert held_count(shown(20), shown(31)) == shown(31), "+11 is released"
    assert held_count(shown(31), shown(25)) == shown(31), "a fall of 6 waits too"
    assert held_count(shown(11), shown(0)) == shown(0)
    assert held_count(shown(20), HIDDEN) == HIDDEN, "a count that fell to 1-10 is hidden at once"
    assert held_count(HIDDEN, shown(11)) == shown(11)
    assert held_count(None, shown(14)) == shown(14)
    assert held_count(shown(0), HIDDEN) == HIDDEN
    assert step_allowed(shown(20), shown(20)) and step_allowed(shown(20), shown(31)) and step_allowed(None, shown(13))
    assert not step_allowed(shown(20), shown(21))
    assert not step_allowed(shown(20), shown(10 + 20))
    assert step_allowed(shown(20), HIDDEN) and step_allowed(HIDDEN, shown(12))


def test_a_mean_moves_only_with_its_count_and_a_rate_follows_the_released_counts() -> None:
    def with_mean(figures: CohortOutcomesPublished, mean: float) -> CohortOutcomesPublished:
        return figures.model_copy(
            update={"instruments": [figures.instruments[0].model_copy(update={"mean_change": mean})]}
        )

    last = with_mean(cohort("north", "2026-01", courses=40, started=30, with_result=20, responded=12), -7.5)
    candidate = with_mean(cohort("north", "2026-01", courses=44, started=33, with_result=21, responded=12), -9.0)
    held = held_release(last, candidate)
    assert (held.courses, held.started) == (shown(40), shown(30))
    phq9 = held.instruments[0]
    assert phq9.with_result == shown(20)
    # A new mean over the same 20 would show how one course's score moved.
    assert phq9.mean_change == -7.5
    moved = held_release(
        last, with_mean(cohort("north", "2026-01", courses=51, started=41, with_result=31, responded=12), -9.0)
    )
    assert moved.instruments[0].mean_change == -9.0
    assert (moved.courses, moved.started, moved.instruments[0].with_result) == (shown(51), shown(41), shown(31))
    for figures in moved.adverse_events:
        if figures.courses.count is not None and moved.started.count:
            assert figures.per_100_courses == round(figures.courses.count * 100 / moved.started.count, 1)


def test_the_registrations_per_month_are_held_to_the_same_rule() -> None:
    last = [AggregateCell(period="2026-01", count=15), AggregateCell(period="2026-02", count=12)]
    now = [
        AggregateCell(period="2026-01", count=16),
        AggregateCell(period="2026-02", count=23),
        AggregateCell(period="2026-03", suppressed=True),
    ]
    assert held_cells(last, now) == [
        AggregateCell(period="2026-01", count=15),
        AggregateCell(period="2026-02", count=23),
        AggregateCell(period="2026-03", suppressed=True),
    ]
