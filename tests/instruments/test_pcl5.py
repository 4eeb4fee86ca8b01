"""PCL-5: cluster scores, the DSM-5 cluster rule, the endorsement threshold and the cutoff."""

import pytest

from shared.instruments import PCL5_DEFAULT_CUTOFF, Instrument, check_pcl5_cutoff, score

FIRST_ITEM = {"B": 1, "C": 6, "D": 8, "E": 15}
MINIMUM = {"B": 1, "C": 1, "D": 2, "E": 2}


def rated(endorsed: dict[str, int], rating: int = 2, rest: int = 0) -> list[int]:
    """20 answers with the first ``endorsed[c]`` items of each cluster at ``rating`` and the others at ``rest``."""
    answers = [rest] * 20
    for cluster, count in endorsed.items():
        for n in range(FIRST_ITEM[cluster], FIRST_ITEM[cluster] + count):
            answers[n - 1] = rating
    return answers


def with_total(total: int) -> list[int]:
    answers = [0] * 20
    left = total
    for i in range(20):
        answers[i] = min(4, left)
        left -= answers[i]
    assert left == 0
    return answers


def test_example_meeting_the_cluster_rule() -> None:
    # Intrusive memories and nightmares, avoidance of reminders, negative beliefs, blame and loss of interest,
    # irritability, hypervigilance and poor sleep.
    answers = [3, 2, 1, 1, 0, 0, 3, 0, 2, 2, 1, 2, 1, 0, 2, 0, 3, 1, 1, 2]
    result = score("pcl5", answers)
    assert result.total == 27
    assert result.clusters == {"B": 7, "C": 3, "D": 8, "E": 9}
    assert result.endorsed == {"B": 2, "C": 1, "D": 3, "E": 3}
    assert result.provisional_ptsd is True
    # The two methods can disagree: this one meets the cluster rule below the default cutoff.
    assert result.at_or_above_cutoff is False


def test_example_with_a_high_total_that_misses_a_cluster() -> None:
    # Everything "extremely" but no avoidance endorsed (items 6 and 7 "a little bit").
    answers = [4, 4, 4, 4, 4, 1, 1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]
    result = score("pcl5", answers)
    assert result.total == 74
    assert result.clusters == {"B": 20, "C": 2, "D": 28, "E": 24}
    assert result.endorsed == {"B": 5, "C": 0, "D": 7, "E": 6}
    assert result.provisional_ptsd is False
    assert result.at_or_above_cutoff is True


def test_the_smallest_profile_that_meets_the_rule_totals_12() -> None:
    result = score("pcl5", rated(MINIMUM))
    assert result.total == 12
    assert result.provisional_ptsd is True


def test_cluster_scores_sum_their_items() -> None:
    answers = [n % 5 for n in range(20)]  # 0,1,2,3,4 repeating
    result = score("pcl5", answers)
    assert result.clusters == {
        "B": sum(answers[0:5]),
        "C": sum(answers[5:7]),
        "D": sum(answers[7:14]),
        "E": sum(answers[14:20]),
    }
    assert result.clusters is not None
    assert sum(result.clusters.values()) == result.total


@pytest.mark.parametrize("cluster", ["B", "C", "D", "E"])
def test_each_cluster_at_exactly_its_minimum_meets_the_rule(cluster: str) -> None:
    # Every other cluster fully endorsed, this one at its minimum.
    endorsed = {"B": 5, "C": 2, "D": 7, "E": 6} | {cluster: MINIMUM[cluster]}
    assert score("pcl5", rated(endorsed)).provisional_ptsd is True


@pytest.mark.parametrize("cluster", ["B", "C", "D", "E"])
def test_each_cluster_one_short_of_its_minimum_misses_the_rule(cluster: str) -> None:
    endorsed = {"B": 5, "C": 2, "D": 7, "E": 6} | {cluster: MINIMUM[cluster] - 1}
    result = score("pcl5", rated(endorsed))
    assert result.endorsed is not None
    assert result.endorsed[cluster] == MINIMUM[cluster] - 1
    assert result.provisional_ptsd is False


def test_items_rated_1_are_not_endorsed() -> None:
    # The minimum profile rated 1 ("a little bit") throughout endorses nothing.
    result = score("pcl5", rated(MINIMUM, rating=1))
    assert result.endorsed == {"B": 0, "C": 0, "D": 0, "E": 0}
    assert result.provisional_ptsd is False


@pytest.mark.parametrize("rating", [2, 3, 4])
def test_items_rated_2_or_more_are_endorsed(rating: int) -> None:
    result = score("pcl5", rated(MINIMUM, rating=rating))
    assert result.endorsed == MINIMUM
    assert result.provisional_ptsd is True


def test_a_1_in_place_of_a_2_misses_the_rule() -> None:
    answers = rated(MINIMUM)
    answers[FIRST_ITEM["D"]] = 1  # the second D item, from 2 down to 1
    assert score("pcl5", answers).provisional_ptsd is False
    answers[FIRST_ITEM["D"]] = 2
    assert score("pcl5", answers).provisional_ptsd is True


def test_many_items_at_1_never_add_up_to_an_endorsement() -> None:
    result = score("pcl5", [1] * 20)
    assert result.total == 20
    assert result.provisional_ptsd is False


@pytest.mark.parametrize(("total", "above"), [(32, False), (33, True), (0, False), (80, True)])
def test_default_cutoff_both_sides(total: int, above: bool) -> None:
    result = score(Instrument.pcl5, with_total(total))
    assert result.total == total
    assert result.cutoff == PCL5_DEFAULT_CUTOFF == 33
    assert result.at_or_above_cutoff is above


@pytest.mark.parametrize(("total", "above"), [(30, False), (31, True), (32, True)])
def test_a_site_cutoff_of_31(total: int, above: bool) -> None:
    result = score("pcl5", with_total(total), pcl5_cutoff=31)
    assert result.cutoff == 31
    assert result.at_or_above_cutoff is above


@pytest.mark.parametrize(("total", "above"), [(37, False), (38, True)])
def test_the_older_cutoff_of_38(total: int, above: bool) -> None:
    assert score("pcl5", with_total(total), pcl5_cutoff=38).at_or_above_cutoff is above


@pytest.mark.parametrize("cutoff", [0, 80])
def test_cutoffs_at_the_ends_of_the_range_are_accepted(cutoff: int) -> None:
    assert score("pcl5", with_total(40), pcl5_cutoff=cutoff).at_or_above_cutoff is (40 >= cutoff)
    assert check_pcl5_cutoff(cutoff) == cutoff


@pytest.mark.parametrize(
    ("cutoff", "message"),
    [
        (-1, "PCL-5 cutoff -1 is out of range 0-80"),
        (81, "PCL-5 cutoff 81 is out of range 0-80"),
        (33.0, "PCL-5 cutoff must be an int, got float 33.0"),
        (True, "PCL-5 cutoff must be an int, got bool True"),
        ("33", "PCL-5 cutoff must be an int, got str '33'"),
    ],
)
def test_a_cutoff_out_of_range_or_not_an_int_is_refused(cutoff: object, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        score("pcl5", with_total(40), pcl5_cutoff=cutoff)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_no_severity_bands_and_no_safety_flag() -> None:
    # The PCL-5 has no validated severity ranges, and no suicide item.
    result = score("pcl5", [4] * 20)
    assert result.severity is None
    assert result.safety_flag is False
    assert result.item_count == 20
