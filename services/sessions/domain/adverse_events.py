"""Adverse events: what happened, how severe ([CTCAE v5]) and whether serious ([21 CFR 312.32]).

Sources (docs/clinical-rules.md): [CTCAE v5], [21 CFR 312.32].
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.treatment import AdverseEventSeverity as AdverseEventSeverity
from shared.treatment import AdverseEventType as AdverseEventType

CTCAE_GRADE: dict[AdverseEventSeverity, int] = {
    AdverseEventSeverity.mild: 1,
    AdverseEventSeverity.moderate: 2,
    AdverseEventSeverity.severe: 3,
    AdverseEventSeverity.life_threatening: 4,
    AdverseEventSeverity.death: 5,
}


class AdverseEvent(BaseModel):
    """One adverse event, with the seriousness criteria of [21 CFR 312.32](a) as explicit answers.

    No criterion has a default: one left out is a validation error, never a silent "no", because an unasked
    seriousness criterion must not read as an absent one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    type: AdverseEventType
    # Required for "other", so the event says what it was.
    description: str | None = Field(default=None, max_length=4000)
    severity: AdverseEventSeverity
    resulted_in_death: bool
    # Placed the patient at immediate risk of death as it occurred.
    life_threatening: bool
    # Inpatient hospitalisation, or a longer existing one.
    hospitalisation: bool
    # A persistent or significant incapacity, or substantial disruption of the ability to conduct normal life.
    persistent_disability: bool
    congenital_anomaly: bool
    # May jeopardise the patient and need intervention to prevent one of the outcomes above (medical judgement).
    important_medical_event: bool

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.type is AdverseEventType.other and not self.description:
            raise ValueError("describe an adverse event of type other")
        # A grade 5 event is a death and a death is grade 5 [CTCAE v5]; a grade 4 event is life-threatening.
        if (self.severity is AdverseEventSeverity.death) != self.resulted_in_death:
            raise ValueError("severity death and resulted_in_death must agree")
        if self.severity is AdverseEventSeverity.life_threatening and not self.life_threatening:
            raise ValueError("a life-threatening severity (grade 4) must be marked life_threatening")
        return self


def is_serious(event: AdverseEvent) -> bool:
    """[21 CFR 312.32](a): serious if it results in death, is life-threatening, requires or prolongs inpatient
    hospitalisation, causes persistent or significant incapacity, is a congenital anomaly, or is an important
    medical event. A severe (grade 3) event that meets none of these is not serious."""
    return (
        event.resulted_in_death
        or event.life_threatening
        or event.hospitalisation
        or event.persistent_disability
        or event.congenital_anomaly
        or event.important_medical_event
        or CTCAE_GRADE[event.severity] >= 4
    )
