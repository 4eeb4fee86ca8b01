"""Outcomes' pure rules: months only, and a change hidden by suppression publishes nothing."""

from datetime import UTC, datetime

from services.outcomes.domain.registrations import fingerprint, month_of, registrations_by_month


def test_no_date_finer_than_a_month() -> None:
    assert month_of(datetime(2026, 11, 27, 13, 5, tzinfo=UTC)) == "2026-11"


def test_a_change_within_a_suppressed_count_changes_nothing_published() -> None:
    three = registrations_by_month(["2026-11"] * 3)
    four = registrations_by_month(["2026-11"] * 4)
    assert fingerprint(*three) == fingerprint(*four), "the network must not learn that one more patient came"
    eleven = registrations_by_month(["2026-11"] * 11)
    assert fingerprint(*eleven) != fingerprint(*four)
    cells, total = eleven
    assert [c.count for c in cells] == [11] and total.count == 11
