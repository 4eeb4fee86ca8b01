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


def test_a_lone_suppressed_cell_gets_a_complement() -> None:
    # 5 beside 40 and 60 with a total of 105 would give the 5 away: the 40 is hidden too.
    assert shown({"2026-01": 5, "2026-02": 40, "2026-03": 60}) == ([None, None, 60], 105)


def test_two_suppressed_cells_need_no_complement() -> None:
    assert shown({"2026-01": 5, "2026-02": 3, "2026-03": 60}) == ([None, None, 60], 68)


def test_a_small_total_is_suppressed() -> None:
    assert shown({"2026-01": 4, "2026-02": 3}) == ([None, None], None)


def test_a_single_small_cell_with_nothing_to_pair_hides_the_total() -> None:
    assert shown({"2026-01": 4, "2026-02": 0}) == ([None, 0], None)


def test_suppressed_cells_cannot_be_recovered_from_the_total() -> None:
    for counts in ({"a": 1, "b": 11, "c": 12}, {"a": 10, "b": 100}, {"a": 2, "b": 2, "c": 30}):
        cells, total = suppress_small_counts({f"2026-0{i + 1}": v for i, v in enumerate(counts.values())})
        hidden = [c for c in cells if c.suppressed]
        assert len(hidden) != 1 or total.suppressed
