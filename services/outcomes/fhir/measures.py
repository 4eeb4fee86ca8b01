"""The network's measures as FHIR R4 Measure resources: what each MeasureReport (measure_reports.py) reports.

One Measure per figure a site publishes per cohort (shared/events/outcomes.py, CohortOutcomesPublished):
response and remission per instrument, completion and dropout, courses with an adverse event (and a serious one)
per type, courses with an access barrier per reason, and the median days to the first dose. Populations use R4's
measure-population codes; each criterion names what the site counted, in words and as the name of its rule, since
the counting is done at the site (services/outcomes/domain/cohorts.py), never by a CQL engine here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.outcomes.domain.network_view import BARRIER_REASONS, INSTRUMENTS, InstrumentName
from shared.events.billing import AccessBarrierReason
from shared.fhir import KAPNET_PUBLISHER, coding, concept, drop_empty, kapnet_code_system_url, narrative
from shared.treatment import AdverseEventType

MEASURE_BASE = "https://kapnet.example/fhir/Measure/"
MEASURE_VERSION = "1"
MEASURE_POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
MEASURE_SCORING_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-scoring"
IMPROVEMENT_NOTATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
# The canonical of sessions' adverse-event CodeSystem (services/sessions/fhir/code_systems.py): its codes are
# shared.treatment.AdverseEventType's values.
ADVERSE_EVENT_SYSTEM = kapnet_code_system_url("adverse-event")

INSTRUMENT_TITLES: dict[InstrumentName, str] = {"phq9": "PHQ-9", "gad7": "GAD-7", "pcl5": "PCL-5"}
BARRIER_TITLES: dict[AccessBarrierReason, str] = {
    "not_covered": "not covered",
    "high_out_of_pocket": "high out-of-pocket cost",
    "authorisation_denied": "authorisation denied",
    "cannot_pay": "cannot pay",
    "other": "another reason",
}


class Scoring(StrEnum):
    proportion = "proportion"
    continuous_variable = "continuous-variable"


class Improvement(StrEnum):
    increase = "increase"
    decrease = "decrease"


class PopulationCode(StrEnum):
    initial_population = "initial-population"
    denominator = "denominator"
    numerator = "numerator"
    measure_population = "measure-population"
    measure_observation = "measure-observation"


POPULATION_DISPLAY: dict[PopulationCode, str] = {
    PopulationCode.initial_population: "Initial Population",
    PopulationCode.denominator: "Denominator",
    PopulationCode.numerator: "Numerator",
    PopulationCode.measure_population: "Measure Population",
    PopulationCode.measure_observation: "Measure Observation",
}


class PopulationDefinition(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: PopulationCode
    criteria: str  # the name of the site's rule, e.g. "Responded"
    description: str


class GroupDefinition(BaseModel):
    """A group of a Measure: the whole cohort (key None), or one adverse-event type or barrier reason."""

    model_config = ConfigDict(frozen=True)

    key: str | None = None
    system: str | None = None  # the code system of key, if it has one
    title: str | None = None
    populations: tuple[PopulationDefinition, ...]


class MeasureDefinition(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str  # computable (PascalCase)
    title: str
    description: str
    scoring: Scoring
    improvement: Improvement
    groups: tuple[GroupDefinition, ...]
    score_unit: str | None = None  # UCUM, for a continuous variable

    @property
    def url(self) -> str:
        return MEASURE_BASE + self.id


COHORT = PopulationDefinition(
    code=PopulationCode.initial_population,
    criteria="Cohort courses",
    description="The site's courses of the cohort's indication and route whose first dose (or planning, if never "
    "dosed) fell in the period, within the cohort's cut.",
)
STARTED = "Courses with a first dose in the cohort."


def _proportion_groups(
    denominator: str, numerator: str, denominator_criteria: str, numerator_criteria: str
) -> tuple[PopulationDefinition, ...]:
    return (
        COHORT,
        PopulationDefinition(code=PopulationCode.denominator, criteria=denominator_criteria, description=denominator),
        PopulationDefinition(code=PopulationCode.numerator, criteria=numerator_criteria, description=numerator),
    )


def _instrument_measures(instrument: InstrumentName) -> list[MeasureDefinition]:
    title = INSTRUMENT_TITLES[instrument]
    with_result = f"Courses with a {title} baseline and a {title} score during the course."
    return [
        MeasureDefinition(
            id=f"response-{instrument}",
            name=f"Response{instrument.capitalize()}",
            title=f"Response on the {title}",
            description=f"The share of courses with a {title} result that responded: a fall of at least 50 % from "
            "the baseline score, by the response definition the site names in each report.",
            scoring=Scoring.proportion,
            improvement=Improvement.increase,
            groups=(
                GroupDefinition(
                    populations=_proportion_groups(
                        with_result, f"Courses that responded on the {title}.", "With result", "Responded"
                    )
                ),
            ),
        ),
        MeasureDefinition(
            id=f"remission-{instrument}",
            name=f"Remission{instrument.capitalize()}",
            title=f"Remission on the {title}",
            description=f"The share of courses with a {title} result whose score during the course fell below the "
            "remission cutoff of the definition the site names in each report.",
            scoring=Scoring.proportion,
            improvement=Improvement.increase,
            groups=(
                GroupDefinition(
                    populations=_proportion_groups(
                        with_result, f"Courses that remitted on the {title}.", "With result", "Remitted"
                    )
                ),
            ),
        ),
    ]


def _per_kind(serious: bool) -> tuple[GroupDefinition, ...]:
    what = "a serious adverse event" if serious else "an adverse event"
    return tuple(
        GroupDefinition(
            key=kind.value,
            system=ADVERSE_EVENT_SYSTEM,
            title=kind.value.replace("_", " "),
            populations=_proportion_groups(
                STARTED,
                f"Started courses with at least {what} of this type.",
                "Started",
                "Serious adverse event" if serious else "Adverse event",
            ),
        )
        for kind in AdverseEventType
    )


MEASURES: dict[str, MeasureDefinition] = {
    m.id: m
    for m in [
        *(m for instrument in INSTRUMENTS for m in _instrument_measures(instrument)),
        MeasureDefinition(
            id="completion",
            name="CourseCompletion",
            title="Courses completed",
            description="The share of started courses that were completed.",
            scoring=Scoring.proportion,
            improvement=Improvement.increase,
            groups=(
                GroupDefinition(populations=_proportion_groups(STARTED, "Completed courses.", "Started", "Completed")),
            ),
        ),
        MeasureDefinition(
            id="dropout",
            name="CourseDropout",
            title="Courses dropped out of",
            description="The share of started courses that were discontinued after a dose.",
            scoring=Scoring.proportion,
            improvement=Improvement.decrease,
            groups=(
                GroupDefinition(
                    populations=_proportion_groups(
                        STARTED, "Courses discontinued after a dose.", "Started", "Dropped out"
                    )
                ),
            ),
        ),
        MeasureDefinition(
            id="adverse-events",
            name="AdverseEvents",
            title="Courses with an adverse event, by type",
            description="Per adverse-event type, the share of started courses with at least one adverse event of "
            "that type.",
            scoring=Scoring.proportion,
            improvement=Improvement.decrease,
            groups=_per_kind(serious=False),
        ),
        MeasureDefinition(
            id="serious-adverse-events",
            name="SeriousAdverseEvents",
            title="Courses with a serious adverse event, by type",
            description="Per adverse-event type, the share of started courses with at least one serious adverse "
            "event (21 CFR 312.32) of that type.",
            scoring=Scoring.proportion,
            improvement=Improvement.decrease,
            groups=_per_kind(serious=True),
        ),
        MeasureDefinition(
            id="access-barriers",
            name="AccessBarriers",
            title="Courses with an access barrier, by reason",
            description="Per reason, the share of the cohort's courses for which care was deferred or declined "
            "because of cost or coverage.",
            scoring=Scoring.proportion,
            improvement=Improvement.decrease,
            groups=tuple(
                GroupDefinition(
                    key=reason,
                    title=BARRIER_TITLES[reason],
                    populations=_proportion_groups(
                        "The cohort's courses.",
                        "Courses with an access barrier of this reason.",
                        "Cohort courses",
                        "Access barrier",
                    ),
                )
                for reason in BARRIER_REASONS
            ),
        ),
        MeasureDefinition(
            id="time-to-first-dose",
            name="TimeToFirstDose",
            title="Days to the first dose",
            description="The median number of days from a patient's registration to the first dose of the course, "
            "over the cohort's started courses (shown only over 11 or more).",
            scoring=Scoring.continuous_variable,
            improvement=Improvement.decrease,
            score_unit="d",
            groups=(
                GroupDefinition(
                    populations=(
                        COHORT,
                        PopulationDefinition(
                            code=PopulationCode.measure_population, criteria="Started", description=STARTED
                        ),
                        PopulationDefinition(
                            code=PopulationCode.measure_observation,
                            criteria="Days from registration to first dose",
                            description="Per started course, the days from the patient's registration to its first "
                            "dose; aggregated as the median.",
                        ),
                    )
                ),
            ),
        ),
    ]
}


def population_code(code: PopulationCode) -> dict[str, Any]:
    return concept(coding(MEASURE_POPULATION_SYSTEM, code.value, POPULATION_DISPLAY[code]))


def group_code(group: GroupDefinition) -> dict[str, Any] | None:
    if group.key is None:
        return None
    if group.system is not None:
        return concept(coding(group.system, group.key), text=group.title)
    return concept(text=group.title)


def measure_resource(measure: MeasureDefinition) -> dict[str, Any]:
    """The FHIR R4 Measure, with a narrative of its populations."""
    rows = [
        (group.title or "the cohort", POPULATION_DISPLAY[p.code], p.description)
        for group in measure.groups
        for p in group.populations
    ]
    return {
        "resourceType": "Measure",
        "id": measure.id,
        "text": narrative(
            [
                f"{measure.title} ({measure.url}, version {MEASURE_VERSION}): {measure.description}",
                f"Scoring: {measure.scoring.value}; improvement is {measure.improvement.value}. Counted by each site "
                "over its own courses and published per cohort (site, indication, route, month and cut) with every "
                "count from 1 to 10 suppressed.",
            ],
            header=("Group", "Population", "Criteria"),
            table=rows,
        ),
        "url": measure.url,
        "version": MEASURE_VERSION,
        "name": measure.name,
        "title": measure.title,
        "status": "active",
        "experimental": False,
        "publisher": KAPNET_PUBLISHER,
        "description": measure.description,
        "scoring": concept(coding(MEASURE_SCORING_SYSTEM, measure.scoring.value)),
        "improvementNotation": concept(coding(IMPROVEMENT_NOTATION_SYSTEM, measure.improvement.value)),
        "group": [
            drop_empty(
                {
                    "code": group_code(group),
                    "population": [
                        {
                            "code": population_code(p.code),
                            "description": p.description,
                            "criteria": {"language": "text/cql", "expression": p.criteria},
                        }
                        for p in group.populations
                    ],
                }
            )
            for group in measure.groups
        ],
    }


def measure_resources() -> list[dict[str, Any]]:
    return [measure_resource(m) for m in MEASURES.values()]
