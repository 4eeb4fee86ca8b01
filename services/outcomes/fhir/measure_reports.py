"""A site's published cohort outcomes as FHIR R4 MeasureReports: one per cohort (site x indication x route x month x
cut x cut value) and measure (measures.py), type summary, status complete, the month as its period.

- The cohort is a contained Group (the MeasureReport's subject): indication and route coded by kapnet's CodeSystems
  (sessions serves them, services/sessions/fhir/code_systems.py), and the cut in words. The site is the reporter,
  an Organization known by its kapnet site name.
- A suppressed count is never a number: its population carries no ``count``, only the data-absent-reason extension
  ``masked`` on it (``_count``), and the narrative says "suppressed (1 to 10, or hidden to protect another)". A score
  that cannot be given (a count behind it suppressed, a median over fewer than 11, a denominator of 0) is left out
  the same way, on ``measureScore``.
"""

from __future__ import annotations

import calendar
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.outcomes.domain.network_view import cohort_id
from services.outcomes.fhir.measures import (
    IMPROVEMENT_NOTATION_SYSTEM,
    INSTRUMENT_TITLES,
    MEASURES,
    POPULATION_DISPLAY,
    GroupDefinition,
    MeasureDefinition,
    PopulationCode,
    group_code,
    population_code,
)
from shared.events.outcomes import CohortOutcomesPublished, ReleasedCount
from shared.fhir import coding, concept, drop_empty, fhir_datetime, kapnet_code_system_url, narrative

DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
SITE_SYSTEM = "urn:kapnet:site"
REPORT_IDENTIFIER_SYSTEM = "urn:kapnet:network:cohort-measure-report"
UCUM = "http://unitsofmeasure.org"
SUPPRESSED_TEXT = "suppressed (1 to 10, or hidden to protect another count)"


class AbsentReason(BaseModel):
    """Why a figure carries no number (a data-absent-reason code, and the words for the narrative)."""

    model_config = ConfigDict(frozen=True)

    code: str
    text: str


MASKED = AbsentReason(code="masked", text=SUPPRESSED_TEXT)
MEDIAN_MASKED = AbsentReason(code="masked", text="not published: fewer than 11 courses stand behind it")
RATE_MASKED = AbsentReason(code="masked", text="not given: a count behind it is suppressed")
NO_DENOMINATOR = AbsentReason(code="not-applicable", text="not given: no course in the denominator")


class PopulationCount(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: PopulationCode
    count: ReleasedCount


class ReportGroup(BaseModel):
    model_config = ConfigDict(frozen=True)

    definition: GroupDefinition
    populations: tuple[PopulationCount, ...]
    score: float | None
    absent_score: AbsentReason | None  # why there is no score


def _proportion(
    definition: GroupDefinition, courses: ReleasedCount, denominator: ReleasedCount, numerator: ReleasedCount
) -> ReportGroup:
    if denominator.count is None or numerator.count is None:
        score, absent = None, RATE_MASKED
    elif denominator.count == 0:
        score, absent = None, NO_DENOMINATOR
    else:
        score, absent = round(numerator.count / denominator.count, 4), None
    return ReportGroup(
        definition=definition,
        populations=(
            PopulationCount(code=PopulationCode.initial_population, count=courses),
            PopulationCount(code=PopulationCode.denominator, count=denominator),
            PopulationCount(code=PopulationCode.numerator, count=numerator),
        ),
        score=score,
        absent_score=absent,
    )


# A group a cohort reports: its definition, and (denominator, numerator) when the measure is a proportion.
GroupFigures = tuple[GroupDefinition, tuple[ReleasedCount, ReleasedCount] | None]


def _group_figures(measure: MeasureDefinition, cohort: CohortOutcomesPublished) -> list[GroupFigures]:
    """The measure's groups this cohort reports, with their counts; none when the cohort does not report the
    measure (an instrument, adverse-event type or barrier reason it lists no figures for)."""
    whole = measure.groups[0]
    kind, _, instrument = measure.id.partition("-")
    if kind in ("response", "remission") and instrument in INSTRUMENT_TITLES:
        figures = next((f for f in cohort.instruments if f.instrument == instrument), None)
        if figures is None:
            return []
        return [(whole, (figures.with_result, figures.responded if kind == "response" else figures.remitted))]
    if measure.id == "completion":
        return [(whole, (cohort.started, cohort.completed))]
    if measure.id == "dropout":
        return [(whole, (cohort.started, cohort.dropped_out))]
    if measure.id in ("adverse-events", "serious-adverse-events"):
        by_type = {a.type.value: a for a in cohort.adverse_events}
        return [
            (
                group,
                (
                    cohort.started,
                    by_type[group.key].courses
                    if measure.id == "adverse-events"
                    else by_type[group.key].serious_courses,
                ),
            )
            for group in measure.groups
            if group.key in by_type
        ]
    if measure.id == "access-barriers":
        by_reason = {b.reason: b for b in cohort.barriers}
        return [
            (group, (cohort.courses, by_reason[group.key].courses))
            for group in measure.groups
            if group.key in by_reason
        ]
    if measure.id == "time-to-first-dose":
        return [(whole, None)]  # a median, over the courses started
    raise KeyError(f"no mapping for measure {measure.id!r}")


def report_groups(measure: MeasureDefinition, cohort: CohortOutcomesPublished) -> list[ReportGroup]:
    """The measure's groups as this cohort reports them; none when the cohort does not report the measure."""
    groups = []
    for definition, fraction in _group_figures(measure, cohort):
        if fraction is not None:
            groups.append(_proportion(definition, cohort.courses, *fraction))
            continue
        median = cohort.median_days_to_first_dose
        groups.append(
            ReportGroup(
                definition=definition,
                populations=(
                    PopulationCount(code=PopulationCode.initial_population, count=cohort.courses),
                    PopulationCount(code=PopulationCode.measure_population, count=cohort.started),
                ),
                score=median,
                absent_score=None if median is not None else MEDIAN_MASKED,
            )
        )
    return groups


def report_id(measure: MeasureDefinition, cohort: CohortOutcomesPublished) -> str:
    """``<measure id>-<cohort id>``: at most 64 characters of [a-z0-9-], as a FHIR id must be."""
    return f"{measure.id}-{cohort_id(cohort.cohort_key)}"


def split_report_id(resource_id: str) -> tuple[MeasureDefinition, str] | None:
    """(measure, cohort id) of a MeasureReport id, or None if it names no measure."""
    measure_id, _, cohort = resource_id.rpartition("-")
    measure = MEASURES.get(measure_id)
    return None if measure is None or not cohort else (measure, cohort)


def _absent(reason: AbsentReason) -> dict[str, Any]:
    return {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": reason.code}]}


def _population(population: PopulationCount) -> dict[str, Any]:
    shown: dict[str, Any] = {"code": population_code(population.code)}
    if population.count.count is None:
        shown["_count"] = _absent(MASKED)
    else:
        shown["count"] = population.count.count
    return shown


def _score(measure: MeasureDefinition, group: ReportGroup) -> dict[str, Any]:
    if group.score is None:
        assert group.absent_score is not None
        return _absent(group.absent_score)
    if measure.score_unit is not None:
        return {"value": group.score, "unit": "days", "system": UCUM, "code": measure.score_unit}
    return {"value": group.score}


def _cohort_group(cohort: CohortOutcomesPublished) -> dict[str, Any]:
    characteristics = [
        {
            "code": concept(text="indication"),
            "valueCodeableConcept": concept(
                coding(kapnet_code_system_url("indication"), cohort.indication.value),
                text=cohort.indication.value.replace("_", " "),
            ),
            "exclude": False,
        },
        {
            "code": concept(text="route"),
            "valueCodeableConcept": concept(
                coding(kapnet_code_system_url("route"), cohort.route.value), text=cohort.route.value.replace("_", " ")
            ),
            "exclude": False,
        },
    ]
    if cohort.cut != "all":
        characteristics.append(
            {
                "code": concept(text=cohort.cut.replace("_", " ")),
                "valueCodeableConcept": concept(text=cohort.cut_value),
                "exclude": False,
            }
        )
    return {
        "resourceType": "Group",
        "id": "cohort",
        "type": "person",
        "actual": False,
        "name": _cohort_words(cohort),
        "characteristic": characteristics,
    }


def _cohort_words(cohort: CohortOutcomesPublished) -> str:
    cut = "" if cohort.cut == "all" else f", {cohort.cut.replace('_', ' ')} {cohort.cut_value}"
    return (
        f"Courses for {cohort.indication.value.replace('_', ' ')} by {cohort.route.value.replace('_', ' ')} at site "
        f"{cohort.site}, first dose in {cohort.period}{cut}"
    )


def month_period(period: str) -> dict[str, str]:
    year, month = (int(part) for part in period.split("-"))
    last = calendar.monthrange(year, month)[1]
    return {"start": f"{period}-01", "end": f"{period}-{last:02d}"}


def _narrative(
    measure: MeasureDefinition, cohort: CohortOutcomesPublished, groups: list[ReportGroup]
) -> dict[str, str]:
    rows: list[tuple[str, str, str]] = []
    for group in groups:
        title = group.definition.title or "the cohort"
        for population in group.populations:
            count = population.count.count
            rows.append((title, POPULATION_DISPLAY[population.code], SUPPRESSED_TEXT if count is None else str(count)))
        score = group.absent_score.text if group.score is None and group.absent_score else f"{group.score}"
        if measure.score_unit is not None and group.score is not None:
            score = f"{group.score} days (median)"
        rows.append((title, "Score", score))
    return narrative(
        [
            f"{measure.title} ({measure.url}): {_cohort_words(cohort)}.",
            f"Published by site {cohort.site} on {fhir_datetime(cohort.generated_at)}, judged by the definition "
            f"{cohort.definition}.",
            "Counts are of courses. A count from 1 to 10 is suppressed and carries no number (data-absent-reason "
            "'masked'); a suppressed count is not zero.",
        ],
        header=("Group", "Population", "Count"),
        table=rows,
    )


def measure_report(measure: MeasureDefinition, cohort: CohortOutcomesPublished) -> dict[str, Any] | None:
    """The MeasureReport of one measure over one cohort; None if the cohort does not report the measure."""
    groups = report_groups(measure, cohort)
    if not groups:
        return None
    return {
        "resourceType": "MeasureReport",
        "id": report_id(measure, cohort),
        "text": _narrative(measure, cohort, groups),
        "contained": [_cohort_group(cohort)],
        "identifier": [{"system": REPORT_IDENTIFIER_SYSTEM, "value": f"{cohort.cohort_key}|{measure.id}"}],
        "status": "complete",
        "type": "summary",
        "measure": measure.url,
        "subject": {"reference": "#cohort", "display": _cohort_words(cohort)},
        "date": fhir_datetime(cohort.generated_at),
        "reporter": {
            "type": "Organization",
            "identifier": {"system": SITE_SYSTEM, "value": cohort.site},
            "display": f"kapnet site {cohort.site}",
        },
        "period": month_period(cohort.period),
        "improvementNotation": concept(coding(IMPROVEMENT_NOTATION_SYSTEM, measure.improvement.value)),
        "group": [
            drop_empty(
                {
                    "code": group_code(group.definition),
                    "population": [_population(p) for p in group.populations],
                    "measureScore": _score(measure, group),
                }
            )
            for group in groups
        ],
    }


def reported_measures(
    cohort: CohortOutcomesPublished, measure: MeasureDefinition | None = None
) -> list[MeasureDefinition]:
    """The measures a cohort has a MeasureReport of (of ``measure`` alone, when given): a page of a search counts
    them all and builds only its own reports."""
    chosen = [measure] if measure is not None else list(MEASURES.values())
    return [m for m in chosen if _group_figures(m, cohort)]  # the groups' figures only: no report is built


def measure_reports(cohort: CohortOutcomesPublished, measure: MeasureDefinition | None = None) -> list[dict[str, Any]]:
    """Every MeasureReport of a cohort (or of one measure over it)."""
    return [report for m in reported_measures(cohort, measure) if (report := measure_report(m, cohort)) is not None]
