"""Small-cell suppression for anything that crosses the privacy boundary.

Counts from 1 to 10 are suppressed (shown as suppressed, never as a number), following the CMS cell-size
suppression policy (no cell 1-10 derived from patient data may be displayed). Complementary suppression then
hides the total whenever a cell is hidden, so that a suppressed cell cannot be recovered by subtracting the
shown cells from a total (HHS/OCR, "Guidance Regarding Methods for De-identification of PHI", 2012).
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.events.outcomes import AggregateCell

SMALLEST_SHOWN_COUNT = 11


def is_small(count: int) -> bool:
    return 0 < count < SMALLEST_SHOWN_COUNT


def suppress_small_counts(counts: Mapping[str, int]) -> tuple[list[AggregateCell], AggregateCell]:
    """Cells (by period, in order) and their total, with primary and complementary suppression applied.

    The complement is the total: whenever any cell is hidden, so is the total. Hiding another cell instead
    would not hold across publications: a month shown in one aggregate and chosen as the complement in the
    next can be subtracted from the next one's total (found in review).
    """
    hidden = {period for period, count in counts.items() if is_small(count)}
    total = sum(counts.values())
    cells = [
        AggregateCell(period=period, suppressed=True) if period in hidden else AggregateCell(period=period, count=count)
        for period, count in sorted(counts.items())
    ]
    total_hidden = bool(hidden) or is_small(total)
    total_cell = (
        AggregateCell(period="all", suppressed=True) if total_hidden else AggregateCell(period="all", count=total)
    )
    return cells, total_cell
