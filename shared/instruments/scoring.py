"""Types shared by every instrument: which instrument, how its answers are checked, what a score holds.

Nothing here does I/O; every service imports the same rules, so a score means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Instrument(StrEnum):
    phq9 = "phq9"
    gad7 = "gad7"
    pcl5 = "pcl5"


# Stored with every assessment, so a score can always be traced to the published version it was scored by.
INSTRUMENT_VERSIONS: dict[Instrument, str] = {
    Instrument.phq9: "PHQ-9 (Kroenke, Spitzer & Williams 2001)",
    Instrument.gad7: "GAD-7 (Spitzer, Kroenke, Williams & Löwe 2006)",
    Instrument.pcl5: "PCL-5 (Weathers, Litz, Keane, Palmieri, Marx & Schnurr 2013)",
}


class Severity(StrEnum):
    """Severity labels of the PHQ-9 and GAD-7 bands (a str, so it compares and serialises as its value)."""

    minimal = "minimal"
    mild = "mild"
    moderate = "moderate"
    # snake_case like every other code (was "moderately severe" before assessment.recorded v2).
    moderately_severe = "moderately_severe"
    severe = "severe"


class UnknownInstrument(ValueError):
    def __init__(self, instrument: object) -> None:
        known = ", ".join(i.value for i in Instrument)
        super().__init__(f"unknown instrument {instrument!r}; expected one of {known}")
        self.instrument = instrument


class AnswerError(ValueError):
    """A set of answers that cannot be scored.

    ``item`` is the 1-based item number at fault, or None when the set as a whole is wrong (count, type).
    """

    def __init__(self, message: str, *, instrument: Instrument, item: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.instrument = instrument
        self.item = item


@dataclass(frozen=True)
class InstrumentSpec:
    """The shape of an instrument's answer sheet: how many items and the range each is rated on."""

    instrument: Instrument
    item_count: int
    item_min: int
    item_max: int

    @property
    def max_total(self) -> int:
        return self.item_count * self.item_max


@dataclass(frozen=True)
class Score:
    """One scored assessment.

    Fields that do not apply to an instrument are None rather than a made-up value: PHQ-9 and GAD-7 have
    severity bands and no clusters or cutoff here; the PCL-5 has clusters, a provisional diagnosis and a
    cutoff but no validated severity bands.
    """

    instrument: Instrument
    version: str
    total: int
    severity: Severity | None
    # PCL-5 only: cluster severity (sum of the cluster's items), keyed "B", "C", "D", "E".
    clusters: dict[str, int] | None
    # PCL-5 only: how many items in each cluster count as endorsed (rated 2 or more).
    endorsed: dict[str, int] | None
    provisional_ptsd: bool | None
    at_or_above_cutoff: bool | None
    cutoff: int | None
    # PHQ-9 item 9 above 0. False means "not raised by this form", never "cleared".
    safety_flag: bool
    item_count: int
    answers: tuple[int, ...]


def check_answers(spec: InstrumentSpec, answers: Sequence[int]) -> tuple[int, ...]:
    """The answers as a tuple of plain ints, or AnswerError naming the first item at fault.

    Strict on purpose: a bool is an int in Python and a float may be a UI slip (2.5), and either would be
    summed silently into a clinical score.
    """
    # A str is a Sequence too ("012..."), and a set or generator has no item order to check against.
    if isinstance(answers, str | bytes | bytearray) or not isinstance(answers, Sequence):
        raise AnswerError(
            f"answers must be a sequence of ints, got {type(answers).__name__}",
            instrument=spec.instrument,
        )
    if len(answers) != spec.item_count:
        raise AnswerError(
            f"expected {spec.item_count} answers, got {len(answers)}",
            instrument=spec.instrument,
        )
    checked: list[int] = []
    for number, value in enumerate(answers, start=1):
        if isinstance(value, bool) or not isinstance(value, int):
            raise AnswerError(
                f"item {number}: expected an int, got {type(value).__name__} {value!r}",
                instrument=spec.instrument,
                item=number,
            )
        if not spec.item_min <= value <= spec.item_max:
            raise AnswerError(
                f"item {number}: {value} is out of range {spec.item_min}-{spec.item_max}",
                instrument=spec.instrument,
                item=number,
            )
        # int() turns an IntEnum member into a plain int, so the stored answers are plain data.
        checked.append(int(value))
    return tuple(checked)


def band(total: int, bands: Sequence[tuple[int, Severity]]) -> Severity:
    """The severity of the highest band whose lower bound the total reaches (bands ascending, first at 0)."""
    found = bands[0][1]
    for lowest, severity in bands:
        if total >= lowest:
            found = severity
    return found
