"""Cross-site sums: a reader who adds what the network API says of several sites together with every site's own
releases learns no suppressed count. The network's totals (services/outcomes/domain/network_view.py) sum only the
counts shown, and say so: an exact total over a suppressed cell would give it by subtraction, and the auditor's
linear programs find that at once."""

from __future__ import annotations

from services.outcomes.domain.network_view import TotalStatus, totals
from shared.events.outcomes import CohortOutcomesPublished
from shared.privacy.cells import CellId, cells_of
from shared.privacy.inference import SumBound
from tests.outcomes.test_network_view_rules import cohort
from tests.privacy.reader import infer


def courses_cells(*figures: CohortOutcomesPublished) -> tuple[CellId, ...]:
    return tuple(cell for f in figures for cell in cells_of(f) if cell.measure == "courses")


def test_the_networks_total_across_sites_gives_no_hidden_count() -> None:
    north = cohort("north", "2026-01", courses=25, started=20, with_result=15, responded=11)
    south = cohort("south", "2026-01", courses=None, started=None, with_result=None, responded=None, completed=None)
    served = totals([north, south]).courses
    assert served.status is TotalStatus.partial and served.sum_of_shown == 25 and served.lower_bound
    # What the API says, as a reader would use it: the true sum is at least the shown sum, and no upper bound.
    said = SumBound(courses_cells(north, south), lower=served.sum_of_shown, upper=None)
    assert infer([[north, south]], [said]).leaks == ()
    # Had it served the true sum (25 + 5), south's hidden count would be 5 exactly.
    exact = SumBound(courses_cells(north, south), lower=30, upper=30)
    [leak] = [leak for leak in infer([[north, south]], [exact]).leaks if leak.cell.measure == "courses"]
    assert (leak.cell.site, leak.low, leak.high) == ("south", 5, 5)
