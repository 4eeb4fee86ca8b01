"""The one scoring library of validated instruments (PHQ-9, GAD-7, PCL-5), used by every service.

    from shared.instruments import score
    result = score("phq9", [1, 2, 0, 1, 3, 0, 0, 1, 0])
    result.total, result.severity, result.safety_flag   # 8, Severity.mild, False

Pure functions, no I/O. Each clinical rule names its source where it is defined (phq9.py, gad7.py, pcl5.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.instruments import gad7, pcl5, phq9
from shared.instruments.gad7 import score_gad7
from shared.instruments.loinc import LOINC, LOINC_SYSTEM, InstrumentLoinc, LoincCode, usable_loinc
from shared.instruments.pcl5 import DEFAULT_CUTOFF as PCL5_DEFAULT_CUTOFF
from shared.instruments.pcl5 import check_cutoff as check_pcl5_cutoff
from shared.instruments.pcl5 import score_pcl5
from shared.instruments.phq9 import score_phq9
from shared.instruments.scoring import (
    INSTRUMENT_VERSIONS,
    AnswerError,
    Instrument,
    InstrumentSpec,
    Score,
    Severity,
    UnknownInstrument,
)

# The answer sheet of each instrument, for forms and API validation that must agree with the scorer.
SPECS: dict[Instrument, InstrumentSpec] = {
    Instrument.phq9: phq9.SPEC,
    Instrument.gad7: gad7.SPEC,
    Instrument.pcl5: pcl5.SPEC,
}

__all__ = [
    "INSTRUMENT_VERSIONS",
    "LOINC",
    "LOINC_SYSTEM",
    "PCL5_DEFAULT_CUTOFF",
    "SPECS",
    "AnswerError",
    "Instrument",
    "InstrumentLoinc",
    "InstrumentSpec",
    "LoincCode",
    "Score",
    "Severity",
    "UnknownInstrument",
    "check_pcl5_cutoff",
    "parse_instrument",
    "score",
    "usable_loinc",
]


def parse_instrument(instrument: Instrument | str) -> Instrument:
    """The Instrument named exactly by its value ("phq9", "gad7", "pcl5"), or UnknownInstrument."""
    # Exact match only: guessing at "PHQ-9" or "phq" here would spread a lenient reading to every service.
    if isinstance(instrument, str):
        try:
            return Instrument(instrument)
        except ValueError:
            pass
    raise UnknownInstrument(instrument)


def score(instrument: Instrument | str, answers: Sequence[int], *, pcl5_cutoff: int = PCL5_DEFAULT_CUTOFF) -> Score:
    """Score one completed form.

    ``answers`` are the item ratings in form order (item 1 first). ``pcl5_cutoff`` is the site's PCL-5
    cutoff (0-80); it is checked and used for the PCL-5 only. Raises UnknownInstrument, AnswerError (naming the
    1-based item at fault), or ValueError for a PCL-5 cutoff out of range.
    """
    match parse_instrument(instrument):
        case Instrument.phq9:
            return score_phq9(answers)
        case Instrument.gad7:
            return score_gad7(answers)
        case Instrument.pcl5:
            return score_pcl5(answers, cutoff=pcl5_cutoff)
