"""Small-cell suppression for anything that crosses the privacy boundary.

Counts from 1 to 10 are suppressed (shown as suppressed, never as a number), following the CMS cell-size
suppression policy (no cell 1-10 derived from patient data may be displayed). Complementary suppression then
hides enough further cells that a suppressed one cannot be recovered by subtracting the shown cells from the
total (HHS/OCR, "Guidance Regarding Methods for De-identification of PHI", 2012, section 2.8 on small cells).
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.events.outcomes import AggregateCell

SMALLEST_SHOWN_COUNT = 11


def is_small(count: int) -> bool:
    return 0 < count < SMALLEST_SHOWN_COUNT


def suppress_small_counts(counts: Mapping[str, int]) -> tuple[list[AggregateCell], AggregateCell]:
    """Cells (by period, in order) and their total, with primary and complementary suppression applied."""
    total = sum(counts.values())
    hidden = {period for period, count in counts.items() if is_small(count)}
    total_hidden = is_small(total)
    if not total_hidden and len(hidden) == 1:
        # One hidden cell beside a shown total is just total minus the rest: hide the next smallest
        # non-zero cell too, or the total when there is none.
        candidates = sorted((count, period) for period, count in counts.items() if period not in hidden and count)
        if candidates:
            hidden.add(candidates[0][1])
        else:
            total_hidden = True
    cells = [
        AggregateCell(period=period, suppressed=True) if period in hidden else AggregateCell(period=period, count=count)
        for period, count in sorted(counts.items())
    ]
    total_cell = (
        AggregateCell(period="all", suppressed=True) if total_hidden else AggregateCell(period="all", count=total)
    )
    return cells, total_cell
