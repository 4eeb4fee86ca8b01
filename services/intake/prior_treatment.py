"""A patient's prior treatment of depression: what was tried, whether an antidepressant trial was adequate, and
whether the history meets the definition of treatment-resistant depression (TRD). Pure rules, no I/O.

A payer asks for this history before it authorises esketamine (and often ketamine or TMS): which antidepressants
were tried, at what dose and for how long, and with what result; and which psychotherapy, ECT or TMS. Billing
sends each treatment's ``summary()`` as the evidence of a prior authorisation.

Sources cited below:
- [Spravato PI]: SPRAVATO (esketamine) nasal spray, US prescribing information, Janssen: 1 (indicated for
  treatment-resistant depression in adults, with an oral antidepressant) and 14 (the TRD studies enrolled adults
  who had not responded adequately to at least two different antidepressants of adequate dose and duration in
  the current depressive episode).
- [Popova 2019]: Popova V, et al. Efficacy and safety of flexibly dosed esketamine nasal spray combined with a
  newly initiated oral antidepressant in treatment-resistant depression (TRANSFORM-2). Am J Psychiatry
  2019;176(6):428-438: non-response in the current episode to antidepressants each taken at an adequate dose for
  at least 6 weeks, assessed with the MGH-ATRQ.
- [Chandler 2010]: Chandler GM, Iosifescu DV, Pollack MH, Targum SD, Fava M. Validation of the Massachusetts
  General Hospital Antidepressant Treatment History Questionnaire (ATRQ). CNS Neurosci Ther 2010;16(5):322-325:
  a trial is adequate at or above the drug's minimum effective dose for at least 6 weeks.
- [Sackeim 2001]: Sackeim HA. The definition and meaning of treatment-resistant depression. J Clin Psychiatry
  2001;62(Suppl 16):10-17 (the Antidepressant Treatment History Form, ATHF). The ATHF counts 4 weeks; this
  clinic takes the esketamine trials' stricter 6, since that is the definition a payer reads the label by.
- [US PI <drug>]: the drug's US prescribing information, dosage for major depressive disorder: the lowest daily
  dose it recommends as effective (not a starting dose that it says to raise).
Where no label gives the value the row says "clinic policy". The table is this clinic's; a clinician signs it off
(docs/clinical-rules.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator

from shared.instants import PlausibleDate
from shared.prior_treatment import (
    Antidepressant,
    AugmentationAgent,
    PriorTreatmentKind,
    PsychotherapyType,
    TreatmentOutcome,
    failed_adequate_trial,
)

# [Popova 2019], [Chandler 2010]: at least 6 weeks at an adequate dose.
MIN_ADEQUATE_WEEKS = 6
# [Spravato PI] 14: at least two different antidepressants.
MIN_FAILED_TRIALS_FOR_TRD = 2

# Plausibility, not clinical limits: anything outside is a typing error.
MAX_DAILY_DOSE_MG = 3000.0  # lithium carbonate reaches 2400 mg/day
MAX_DURATION_WEEKS = 52 * 40
MAX_SESSIONS = 500
# Clinic policy: no antidepressant in the table is used above about 6 times its minimum adequate dose (sertraline
# 300 mg, venlafaxine 450 mg), so a daily dose above 8 times it is a typing error (150 for 15 mg mirtazapine).
MAX_TIMES_MINIMUM_DOSE = 8
# A date a clinician enters at a site ahead of UTC can be "tomorrow" on the server's calendar.
FUTURE_DATE_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class MinimumDose:
    mg_per_day: float
    source: str


_AD = Antidepressant
# The minimum adequate (effective) daily dose of each antidepressant for depression in adults.
MINIMUM_ADEQUATE_DAILY_DOSE: Mapping[Antidepressant, MinimumDose] = MappingProxyType(
    {
        _AD.citalopram: MinimumDose(20, "US PI Celexa: 20 mg/day"),
        _AD.escitalopram: MinimumDose(10, "US PI Lexapro: 10 mg/day"),
        _AD.fluoxetine: MinimumDose(20, "US PI Prozac: 20 mg/day"),
        _AD.fluvoxamine: MinimumDose(100, "clinic policy (no US indication for depression)"),
        _AD.paroxetine: MinimumDose(20, "US PI Paxil: 20 mg/day (Paxil CR 25 mg/day)"),
        _AD.sertraline: MinimumDose(50, "US PI Zoloft: 50 mg/day"),
        _AD.venlafaxine: MinimumDose(75, "US PI Effexor XR: 75 mg/day"),
        _AD.desvenlafaxine: MinimumDose(50, "US PI Pristiq: 50 mg/day"),
        _AD.duloxetine: MinimumDose(40, "US PI Cymbalta: 40-60 mg/day"),
        _AD.levomilnacipran: MinimumDose(40, "US PI Fetzima: 40-120 mg/day"),
        _AD.bupropion: MinimumDose(300, "US PI Wellbutrin SR/XL: target 300 mg/day (150 mg/day is the start)"),
        _AD.mirtazapine: MinimumDose(15, "US PI Remeron: 15-45 mg/day"),
        _AD.trazodone: MinimumDose(150, "US PI trazodone: 150 mg/day"),
        _AD.vilazodone: MinimumDose(20, "US PI Viibryd: 20-40 mg/day"),
        _AD.vortioxetine: MinimumDose(10, "clinic policy (US PI Trintellix: 10-20 mg/day; 5 if more is not tolerated)"),
        _AD.amitriptyline: MinimumDose(100, "clinic policy (US PI: 75 mg/day raised to 150 mg/day for outpatients)"),
        _AD.imipramine: MinimumDose(100, "clinic policy (US PI: 75 mg/day raised to 150 mg/day for outpatients)"),
        _AD.nortriptyline: MinimumDose(75, "US PI Pamelor: 75-100 mg/day"),
        _AD.phenelzine: MinimumDose(60, "US PI Nardil: raised to at least 60 mg/day"),
        _AD.tranylcypromine: MinimumDose(30, "US PI Parnate: 30 mg/day"),
        _AD.selegiline_transdermal: MinimumDose(6, "US PI Emsam: 6 mg/24 h"),
    }
)

_OUTCOME_WORDS = {
    TreatmentOutcome.no_response: "no response",
    TreatmentOutcome.partial_response: "partial response",
    TreatmentOutcome.response_then_relapse: "response, then relapse",
    TreatmentOutcome.not_tolerated: "not tolerated",
}
_THERAPY_WORDS = {PsychotherapyType.cbt: "CBT", PsychotherapyType.ipt: "IPT"}
_AGENT_WORDS = {AugmentationAgent.liothyronine: "liothyronine (T3)"}


def _number(value: float) -> str:
    return f"{value:g}"


def _plural(value: float, unit: str) -> str:
    return f"{_number(value)} {unit}{'' if value == 1 else 's'}"


def _not_in_future(value: date | None) -> date | None:
    if value is not None and value > date.today() + FUTURE_DATE_SLACK:
        raise ValueError("the date is in the future")
    return value


def _named_when_other(value: str | None, info: ValidationInfo, choice: str) -> str | None:
    """``<choice>_name`` is given exactly when ``<choice>`` is ``other`` (a listed one is named by its code)."""
    chosen = info.data.get(choice)
    if chosen is None:  # the choice itself failed, and is reported on its own
        return value
    if chosen == "other" and value is None:
        raise ValueError(f"name the {choice} when {choice} is other")
    if chosen != "other" and value is not None:
        raise ValueError(f"give a name only when {choice} is other; {chosen} names itself")
    return value


def _fits_between_dates(weeks: float, info: ValidationInfo) -> float:
    """A duration longer than the dates around it is a contradiction a payer would reject."""
    start, end = info.data.get("start_date"), info.data.get("end_date")
    if start is not None and end is not None:
        days = (end - start).days + 1  # both days included: a dose was taken on each
        if weeks * 7 > days:
            raise ValueError(f"longer than the {days} days from start_date to end_date")
    return weeks


class _Treatment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    kind: PriorTreatmentKind
    current_episode: bool = Field(
        description="tried in the current depressive episode (only these count towards treatment resistance)"
    )
    outcome: TreatmentOutcome
    start_date: PlausibleDate | None = Field(default=None, description="when it started, if known")
    end_date: PlausibleDate | None = Field(default=None, description="when it ended; left out if ongoing or unknown")

    @field_validator("start_date", "end_date")
    @classmethod
    def _dates_not_ahead(cls, value: date | None) -> date | None:
        return _not_in_future(value)

    @field_validator("end_date")
    @classmethod
    def _end_after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start_date")
        if value is not None and start is not None and value < start:
            raise ValueError("end_date is before start_date")
        return value

    @property
    def adequate(self) -> bool | None:
        """Adequacy is judged for antidepressant trials only."""
        return None

    def _context(self) -> str:
        episode = "current episode" if self.current_episode else "earlier episode"
        start, end = self.start_date, self.end_date
        if start is not None and end is not None:
            dates = f", {start} to {end}"
        elif start is not None:
            dates = f", from {start}"
        elif end is not None:
            dates = f", until {end}"
        else:
            dates = ""
        return f"; {episode}{dates}"

    def _result(self) -> str:
        return f": {_OUTCOME_WORDS[self.outcome]}{self._context()}"


class AntidepressantTrial(_Treatment):
    kind: Literal[PriorTreatmentKind.antidepressant_trial]
    drug: Antidepressant
    drug_name: str | None = Field(
        default=None, min_length=1, max_length=100, validate_default=True, description="required when drug is other"
    )
    daily_dose_mg: float = Field(
        gt=0, le=MAX_DAILY_DOSE_MG, allow_inf_nan=False, description="the highest daily dose taken, mg/day"
    )
    duration_weeks: float = Field(
        gt=0, le=MAX_DURATION_WEEKS, allow_inf_nan=False, description="weeks taken at that daily dose"
    )

    @field_validator("drug_name")
    @classmethod
    def _drug_named(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _named_when_other(value, info, "drug")

    @field_validator("daily_dose_mg")
    @classmethod
    def _plausible_dose(cls, value: float, info: ValidationInfo) -> float:
        drug = info.data.get("drug")
        minimum = MINIMUM_ADEQUATE_DAILY_DOSE.get(drug) if isinstance(drug, Antidepressant) else None
        if minimum is None:  # an other drug, or the drug failed and is reported on its own
            return value
        ceiling = MAX_TIMES_MINIMUM_DOSE * minimum.mg_per_day
        if value > ceiling:
            raise ValueError(f"not a plausible daily dose of {drug}: above {_number(ceiling)} mg/day")
        return value

    @field_validator("duration_weeks")
    @classmethod
    def _duration_fits(cls, value: float, info: ValidationInfo) -> float:
        return _fits_between_dates(value, info)

    @property
    def drug_words(self) -> str:
        return self.drug_name if self.drug_name is not None else self.drug.value.replace("_", " ")

    @property
    def minimum_dose(self) -> MinimumDose | None:
        return MINIMUM_ADEQUATE_DAILY_DOSE.get(self.drug)

    def shortfalls(self) -> list[str]:
        """Why the trial is not adequate, in words; empty when it is (or when no minimum dose is known)."""
        found = []
        minimum = self.minimum_dose
        if minimum is not None and self.daily_dose_mg < minimum.mg_per_day:
            found.append(f"below the minimum effective dose of {_number(minimum.mg_per_day)} mg/day")
        if self.duration_weeks < MIN_ADEQUATE_WEEKS:
            found.append(f"under {MIN_ADEQUATE_WEEKS} weeks")
        return found

    @property
    def adequate(self) -> bool | None:
        """At least the minimum effective dose for at least 6 weeks ([Popova 2019], [Chandler 2010]). None when
        the drug has no minimum dose in the table (an ``other`` drug): adequacy is then not judged, and the trial
        does not count towards treatment resistance."""
        if self.minimum_dose is None:
            return None
        return not self.shortfalls()

    def summary(self) -> str:
        """E.g. "sertraline 150 mg/day for 8 weeks (adequate): no response; current episode"."""
        adequate = self.adequate
        if adequate is None:
            adequacy = "adequacy not judged: no minimum effective dose on file"
        elif adequate:
            adequacy = "adequate"
        else:
            adequacy = "not adequate: " + " and ".join(self.shortfalls())
        return (
            f"{self.drug_words} {_number(self.daily_dose_mg)} mg/day for {_plural(self.duration_weeks, 'week')} "
            f"({adequacy}){self._result()}"
        )


class Psychotherapy(_Treatment):
    kind: Literal[PriorTreatmentKind.psychotherapy]
    therapy: PsychotherapyType
    therapy_name: str | None = Field(
        default=None, min_length=1, max_length=100, validate_default=True, description="required when therapy is other"
    )
    sessions: int = Field(ge=1, le=MAX_SESSIONS)

    @field_validator("therapy_name")
    @classmethod
    def _therapy_named(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _named_when_other(value, info, "therapy")

    def summary(self) -> str:
        words = self.therapy_name if self.therapy_name is not None else _THERAPY_WORDS[self.therapy]
        return f"psychotherapy ({words}), {_plural(self.sessions, 'session')}{self._result()}"


class Neuromodulation(_Treatment):
    """Electroconvulsive therapy (ECT) or repetitive transcranial magnetic stimulation (TMS)."""

    kind: Literal[PriorTreatmentKind.ect, PriorTreatmentKind.tms]
    sessions: int = Field(ge=1, le=MAX_SESSIONS)

    def summary(self) -> str:
        return f"{self.kind.value.upper()}, {_plural(self.sessions, 'session')}{self._result()}"


class Augmentation(_Treatment):
    """A drug added to an antidepressant to augment it: lithium, a second-generation antipsychotic, T3."""

    kind: Literal[PriorTreatmentKind.other_augmentation]
    agent: AugmentationAgent
    agent_name: str | None = Field(
        default=None, min_length=1, max_length=100, validate_default=True, description="required when agent is other"
    )
    daily_dose_mg: float | None = Field(
        default=None, gt=0, le=MAX_DAILY_DOSE_MG, allow_inf_nan=False, description="mg/day (T3: 0.025 for 25 µg)"
    )
    duration_weeks: float = Field(gt=0, le=MAX_DURATION_WEEKS, allow_inf_nan=False)

    @field_validator("agent_name")
    @classmethod
    def _agent_named(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _named_when_other(value, info, "agent")

    @field_validator("duration_weeks")
    @classmethod
    def _duration_fits(cls, value: float, info: ValidationInfo) -> float:
        return _fits_between_dates(value, info)

    def summary(self) -> str:
        agent = self.agent_name if self.agent_name is not None else _AGENT_WORDS.get(self.agent, self.agent.value)
        dose = "" if self.daily_dose_mg is None else f" {_number(self.daily_dose_mg)} mg/day"
        return f"{agent} augmentation{dose} for {_plural(self.duration_weeks, 'week')}{self._result()}"


PriorTreatment = Annotated[
    AntidepressantTrial | Psychotherapy | Neuromodulation | Augmentation, Field(discriminator="kind")
]
PRIOR_TREATMENT: TypeAdapter[PriorTreatment] = TypeAdapter(PriorTreatment)


def prior_treatment_from(data: Any) -> PriorTreatment:
    """A stored treatment, read back through the model (never by key)."""
    return PRIOR_TREATMENT.validate_python(data)


def failed_adequate_trials(history: Iterable[PriorTreatment]) -> list[AntidepressantTrial]:
    """The current episode's adequate antidepressant trials without a response (none, or only partial), one per
    drug, the first of each: a second trial of the same drug is not a different antidepressant."""
    found: dict[Antidepressant, AntidepressantTrial] = {}
    for treatment in history:
        if isinstance(treatment, AntidepressantTrial) and failed_adequate_trial(
            treatment.kind,
            current_episode=treatment.current_episode,
            adequate=treatment.adequate,
            outcome=treatment.outcome,
        ):
            found.setdefault(treatment.drug, treatment)
    return list(found.values())


def treatment_resistant(history: Iterable[PriorTreatment]) -> bool:
    """Treatment-resistant depression as the esketamine label defines it ([Spravato PI] 1 and 14): no adequate
    response to at least 2 different antidepressants, each of adequate dose and duration (at least the minimum
    effective dose for at least 6 weeks), in the current episode. Psychotherapy, ECT, TMS and augmentation are
    evidence for a payer but do not count towards the 2; nor does a trial of an unlisted drug, whose adequacy is
    not judged, nor one that was not tolerated or that responded and then relapsed."""
    return len(failed_adequate_trials(history)) >= MIN_FAILED_TRIALS_FOR_TRD
