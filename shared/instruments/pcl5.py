"""PCL-5: the PTSD Checklist for DSM-5.

Weathers FW, Litz BT, Keane TM, Palmieri PA, Marx BP, Schnurr PP. The PTSD Checklist for DSM-5 (PCL-5).
National Center for PTSD, 2013. Scoring as in National Center for PTSD, "Using the PTSD Checklist for
DSM-5 (PCL-5)" (2013, revised 2018).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.instruments.scoring import INSTRUMENT_VERSIONS, Instrument, InstrumentSpec, Score, check_answers

# Twenty items, each "not at all" 0 to "extremely" 4; the total symptom severity is their sum, 0-80
# (NCPTSD, "Using the PCL-5", Scoring).
SPEC = InstrumentSpec(Instrument.pcl5, item_count=20, item_min=0, item_max=4)

# DSM-5 symptom clusters by item number: B intrusion 1-5, C avoidance 6-7, D negative alterations in
# cognitions and mood 8-14, E alterations in arousal and reactivity 15-20 (NCPTSD, "Using the PCL-5").
CLUSTER_ITEMS: dict[str, range] = {
    "B": range(1, 6),
    "C": range(6, 8),
    "D": range(8, 15),
    "E": range(15, 21),
}

# An item counts as an endorsed symptom when rated 2 "moderately" or higher (NCPTSD, "Using the PCL-5").
ENDORSED_AT = 2

# The DSM-5 diagnostic rule for a provisional diagnosis: at least 1 B, 1 C, 2 D and 2 E items endorsed
# (NCPTSD, "Using the PCL-5"; American Psychiatric Association, DSM-5, 2013, criteria B-E for PTSD).
CLUSTER_MINIMUM: dict[str, int] = {"B": 1, "C": 1, "D": 2, "E": 2}

# "A PCL-5 cutoff score between 31-33 is indicative of probable PTSD across samples" (NCPTSD, "Using the
# PCL-5", 2018 revision, citing Bovin MJ et al., Psychol Assess 2016;28(11):1379-91). The 2013 text
# proposed 38, so the cutoff is a per-site setting and 33, the top of the current range, is only the default.
DEFAULT_CUTOFF = 33

# No severity bands: the PCL-5 has no empirically derived severity ranges, so none are invented here.


def check_cutoff(cutoff: int) -> int:
    """A site's cutoff, which must be a total the PCL-5 can reach (0-80)."""
    if isinstance(cutoff, bool) or not isinstance(cutoff, int):
        raise ValueError(f"PCL-5 cutoff must be an int, got {type(cutoff).__name__} {cutoff!r}")
    if not 0 <= cutoff <= SPEC.max_total:
        raise ValueError(f"PCL-5 cutoff {cutoff} is out of range 0-{SPEC.max_total}")
    return int(cutoff)


def score_pcl5(answers: Sequence[int], *, cutoff: int = DEFAULT_CUTOFF) -> Score:
    cutoff = check_cutoff(cutoff)
    checked = check_answers(SPEC, answers)
    total = sum(checked)
    clusters = {name: sum(checked[n - 1] for n in items) for name, items in CLUSTER_ITEMS.items()}
    endorsed = {name: sum(checked[n - 1] >= ENDORSED_AT for n in items) for name, items in CLUSTER_ITEMS.items()}
    return Score(
        instrument=Instrument.pcl5,
        version=INSTRUMENT_VERSIONS[Instrument.pcl5],
        total=total,
        severity=None,
        clusters=clusters,
        endorsed=endorsed,
        # The cluster rule and the cutoff are two separate ways to a provisional diagnosis (NCPTSD): both are
        # reported, and neither is folded into the other.
        provisional_ptsd=all(endorsed[name] >= minimum for name, minimum in CLUSTER_MINIMUM.items()),
        at_or_above_cutoff=total >= cutoff,
        cutoff=cutoff,
        # The PCL-5 has no suicide item (item 16, risk-taking, is not one).
        safety_flag=False,
        item_count=SPEC.item_count,
        answers=checked,
    )
