import pytest

from shared.privacy import suppress_small_counts


def shown(counts: dict[str, int]) -> tuple[list[int | None], int | None]:
    cells, total = suppress_small_counts(counts)
    return [c.count for c in cells], total.count


@pytest.mark.parametrize(("count", "hidden"), [(0, False), (1, True), (10, True), (11, False)])
def test_counts_from_1_to_10_are_suppressed(count: int, hidden: bool) -> None:
    cells, _total = suppress_small_counts({"2026-01": count, "2026-02": 50, "2026-03": 60})
    assert cells[0].suppressed is hidden
    assert (cells[0].count is None) is hidden


def test_a_suppressed_cell_hides_the_total() -> None:
    # 5 beside 40 and 60 with a total of 105 would give the 5 away.
    assert shown({"2026-01": 5, "2026-02": 40, "2026-03": 60}) == ([None, 40, 60], None)


def test_nothing_small_shows_everything() -> None:
    assert shown({"2026-01": 0, "2026-02": 11, "2026-03": 60}) == ([0, 11, 60], 71)


def test_a_small_total_is_suppressed() -> None:
    assert shown({"2026-01": 4, "2026-02": 0}) == ([None, 0], None)


def test_successive_publications_cannot_be_subtracted() -> None:
    """Review finding: January shown as 12, then chosen as February's complement, gave February away as
    total - 12. Every publication must stand up against every earlier one."""
    history = [{"2025-01": 12}, {"2025-01": 12, "2025-02": 3}, {"2025-01": 12, "2025-02": 3, "2025-03": 25}]
    known: dict[str, int] = {}
    for counts in history:
        cells, total = suppress_small_counts(counts)
        known.update({c.period: c.count for c in cells if c.count is not None})
        if total.count is not None:
            unknown = [c.period for c in cells if c.suppressed]
            assert not unknown, "a shown total beside a hidden cell can be subtracted"
    assert "2025-02" not in known
