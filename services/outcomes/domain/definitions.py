"""What response and remission mean. Every result outcomes stores carries the definition it was judged by
(its ``key``), so a site that later changes its PCL-5 cutoff does not silently rewrite what was reported.

- Response: a fall of at least 50 % from the baseline score, for every instrument ([ACNP 2006]: "a reduction of
  50 % or more in symptom severity"; used for the PHQ-9 by [Kroenke 2001] follow-up work and for the PCL-5 by
  the National Center for PTSD's own guidance on clinically meaningful change).
- Remission: PHQ-9 below 5 ([Kroenke 2001]: 0-4 is "minimal"; [ACNP 2006] uses the instrument's normal
  range); GAD-7 below 5 ([Spitzer 2006]: 0-4 is "minimal"); PCL-5 below the site's cutoff for probable PTSD
  ([NCPTSD], "Using the PCL-5": 31-33; the site's setting, default 33, see shared/instruments/pcl5.py).
- Only a course that began with symptoms is judged: from a baseline below the instrument's remission cutoff
  (PHQ-9 or GAD-7 below 5, PCL-5 below the site's cutoff) neither response nor remission is judged (None). [ACNP
  2006] defines both for patients who met the disorder's criteria; every course is scored on all three
  instruments, and a depression course's PCL-5 of 12 falling to 5 is not a PTSD remission (found in review).

[ACNP 2006]: Rush AJ et al. Report by the ACNP Task Force on response and remission in major depressive
    disorder. Neuropsychopharmacology 2006;31(9):1841-53.
[Kroenke 2001]: Kroenke K, Spitzer RL, Williams JB. J Gen Intern Med 2001;16(9):606-13.
[Spitzer 2006]: Spitzer RL, Kroenke K, Williams JB, Löwe B. Arch Intern Med 2006;166(10):1092-7.
[NCPTSD]: National Center for PTSD, "Using the PTSD Checklist for DSM-5 (PCL-5)", 2018 revision.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.instruments import pcl5
from shared.instruments.scoring import Instrument

RESPONSE_REDUCTION_PERCENT = 50
PHQ9_REMISSION_BELOW = 5
GAD7_REMISSION_BELOW = 5


class OutcomeDefinition(BaseModel):
    """One version of the definitions: the response threshold and each instrument's remission cutoff."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    response_reduction_percent: int = Field(default=RESPONSE_REDUCTION_PERCENT, ge=1, le=100)
    phq9_remission_below: int = Field(default=PHQ9_REMISSION_BELOW, ge=1, le=27)
    gad7_remission_below: int = Field(default=GAD7_REMISSION_BELOW, ge=1, le=21)
    pcl5_remission_below: int = Field(default=pcl5.DEFAULT_CUTOFF, ge=0, le=80)  # the setting's own range

    @property
    def key(self) -> str:
        """A stable name of this version, stored beside each result: ``response>=50%;phq9<5;gad7<5;pcl5<33``."""
        return (
            f"response>={self.response_reduction_percent}%;phq9<{self.phq9_remission_below};"
            f"gad7<{self.gad7_remission_below};pcl5<{self.pcl5_remission_below}"
        )

    def remission_below(self, instrument: Instrument) -> int:
        return {
            Instrument.phq9: self.phq9_remission_below,
            Instrument.gad7: self.gad7_remission_below,
            Instrument.pcl5: self.pcl5_remission_below,
        }[instrument]

    def judged(self, instrument: Instrument, baseline: int) -> bool:
        """Whether a course from this baseline is judged at all: it began at or above the remission cutoff."""
        return baseline > 0 and baseline >= self.remission_below(instrument)

    def responded(self, instrument: Instrument, baseline: int, score: int) -> bool | None:
        """At least the response threshold's fall from baseline, in whole points compared exactly (20 to 10 is
        50 %: a response; 20 to 11 is not). None when the course is not judged."""
        if not self.judged(instrument, baseline):
            return None
        return (baseline - score) * 100 >= self.response_reduction_percent * baseline

    def response_line(self, instrument: Instrument, baseline: int) -> float | None:
        """The highest score that is a response from this baseline, for a chart to draw (the rule is responded's:
        a score at or below the line responds). None when the course is not judged."""
        if not self.judged(instrument, baseline):
            return None
        return baseline * (100 - self.response_reduction_percent) / 100

    def remitted(self, instrument: Instrument, baseline: int, score: int) -> bool | None:
        """Below the instrument's remission cutoff. None when the course is not judged."""
        if not self.judged(instrument, baseline):
            return None
        return score < self.remission_below(instrument)


def site_definition(pcl5_cutoff: int) -> OutcomeDefinition:
    """The definition a site judges by: the defaults, with the site's PCL-5 cutoff."""
    return OutcomeDefinition(pcl5_remission_below=pcl5.check_cutoff(pcl5_cutoff))
