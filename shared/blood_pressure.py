"""Blood pressure thresholds: one rule for intake's screening and sessions' pre-dose check."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic.dataclasses import dataclass

# Plausibility of a measured blood pressure, in mmHg. Outside these a reading is a typing error (a swapped or
# extra digit), not a patient; rejecting it beats screening on it.
SYSTOLIC_MIN, SYSTOLIC_MAX = 50, 300
DIASTOLIC_MIN, DIASTOLIC_MAX = 20, 200


@dataclass(frozen=True)
class BloodPressureThreshold:
    """A per-site setting: a reading strictly above either number needs medical review.

    Frozen, so the module default cannot be changed by one caller for all the others.
    """

    systolic_mmhg: int = Field(ge=SYSTOLIC_MIN, le=SYSTOLIC_MAX)
    diastolic_mmhg: int = Field(ge=DIASTOLIC_MIN, le=DIASTOLIC_MAX)

    @model_validator(mode="after")
    def _systolic_above_diastolic(self) -> Self:
        if self.systolic_mmhg <= self.diastolic_mmhg:
            raise ValueError("the systolic threshold must be above the diastolic threshold")
        return self

    def __str__(self) -> str:
        return f"{self.systolic_mmhg}/{self.diastolic_mmhg}"


# Spravato PI 5.x (Increases in Blood Pressure): "as a general guide: >140 mmHg systolic, >90 mmHg diastolic".
DEFAULT_BP_THRESHOLD = BloodPressureThreshold(140, 90)


def bp_above(systolic_mmhg: int, diastolic_mmhg: int, threshold: BloodPressureThreshold) -> bool:
    """Strictly above on either number: exactly at the threshold passes.

    The Spravato PI's guide is ">140 mmHg systolic, >90 mmHg diastolic" and the issue says "above 140/90",
    both strict. ACC/AHA 2017 would call 140/90 itself stage 2 hypertension (>=); a site that wants that
    reading reviewed sets its threshold to 139/89.
    """
    return systolic_mmhg > threshold.systolic_mmhg or diastolic_mmhg > threshold.diastolic_mmhg
