"""A patient's trajectory as a FHIR R4 Observation series, for a chart: one Observation per score of each course,
its value the total, with components for the change from baseline (points and percent), whether it meets the
response and remission definitions, and the phase of the course it fell in. The score itself is intake's or
sessions' Observation (``derivedFrom`` names it by the same id); these Observations are outcomes' reading of it.

Codes: the total's LOINC code where confirmed (shared/instruments/loinc.py), else outcomes' own; the components
and the definition in outcomes' CodeSystem, served at /fhir/CodeSystem.
"""

from __future__ import annotations

import uuid
from typing import Any

from services.outcomes.domain.course_record import CourseTrajectory
from services.outcomes.domain.trajectory import CourseResult, Phase, TrajectoryPoint
from shared.fhir import (
    code_system,
    coding,
    concept,
    drop_empty,
    fhir_datetime,
    kapnet_coding,
    narrative,
    reference,
)
from shared.instruments import LOINC_SYSTEM, usable_loinc
from shared.instruments.scoring import Instrument

OBSERVATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
# Observation ids are outcomes' own: one per (course, score), stable across reads.
_ID_NAMESPACE = uuid.UUID("9b7f2c1e-3c51-4c55-9a43-0f6f0f1d6a11")

INSTRUMENT_NAMES: dict[Instrument, str] = {
    Instrument.phq9: "PHQ-9",
    Instrument.gad7: "GAD-7",
    Instrument.pcl5: "PCL-5",
}

TRAJECTORY_CODE_SYSTEM = code_system(
    "outcome-trajectory",
    name="KapnetOutcomeTrajectory",
    title="kapnet outcome trajectory",
    description="What outcomes reads from a score in a course: its change from baseline, response and "
    "remission by the site's definition, and the phase of the course.",
    concepts=[
        *(
            (f"{i.value}-total", f"{INSTRUMENT_NAMES[i]} total score", f"The {INSTRUMENT_NAMES[i]} total score.")
            for i in Instrument
        ),
        ("change-from-baseline", "Change from baseline", "The score minus the course's baseline, in points."),
        ("percent-change-from-baseline", "Percent change from baseline", "The change as a percent of baseline."),
        ("response", "Response", "A fall of at least the definition's threshold (50 %) from baseline."),
        ("remission", "Remission", "A score below the definition's remission cutoff for the instrument."),
        ("phase", "Phase of the course", "Baseline, in the course, at follow-up, or earlier than the baseline."),
        ("definition", "Outcome definition", "The response and remission definition the score was judged by."),
        *((f"phase-{p.value}", f"Phase: {p.value.replace('_', ' ')}", f"The score's phase: {p.value}.") for p in Phase),
    ],
)
CODE_SYSTEMS = [TRAJECTORY_CODE_SYSTEM]


def _code(instrument: Instrument) -> dict[str, Any]:
    name = INSTRUMENT_NAMES[instrument]
    loinc = usable_loinc(instrument)
    if loinc is not None and loinc.total is not None:
        return concept(coding(LOINC_SYSTEM, loinc.total.code, loinc.total.display), text=f"{name} total score")
    return concept(kapnet_coding(TRAJECTORY_CODE_SYSTEM, f"{instrument.value}-total"), text=f"{name} total score")


def _component(code: str, value: dict[str, Any]) -> dict[str, Any]:
    coded = kapnet_coding(TRAJECTORY_CODE_SYSTEM, code)
    return {"code": concept(coded, text=coded["display"]), **value}


def observation_id(course_id: uuid.UUID, assessment_id: uuid.UUID) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{course_id}/{assessment_id}"))


def trajectory_observation(
    trajectory: CourseTrajectory, result: CourseResult, point: TrajectoryPoint
) -> dict[str, Any]:
    name = INSTRUMENT_NAMES[result.instrument]
    phase = kapnet_coding(TRAJECTORY_CODE_SYSTEM, f"phase-{point.phase.value}")
    components = [
        _component("phase", {"valueCodeableConcept": concept(phase, text=phase["display"])}),
        _component("definition", {"valueString": result.definition}),
    ]
    # Response and remission only where judged (a baseline at or above the cutoff, definitions.py).
    if point.remitted is not None:
        components.append(_component("remission", {"valueBoolean": point.remitted}))
    if point.change is not None:
        components.append(
            _component(
                "change-from-baseline",
                {"valueQuantity": {"value": point.change, "unit": "score points"}},
            )
        )
    if point.percent_change is not None:
        components.append(
            _component(
                "percent-change-from-baseline",
                {
                    "valueQuantity": {
                        "value": point.percent_change,
                        "unit": "%",
                        "system": "http://unitsofmeasure.org",
                        "code": "%",
                    }
                },
            )
        )
    if point.responded is not None:
        components.append(_component("response", {"valueBoolean": point.responded}))
    route, indication = (v.value.replace("_", " ") for v in (trajectory.route, trajectory.indication))
    lines = [
        f"{name} total {point.total} on {fhir_datetime(point.administered_at)}, "
        f"{point.phase.value.replace('_', ' ')} of the {route} course for {indication}.",
    ]
    if point.change is not None:
        judged = (
            f"response {'yes' if point.responded else 'no'}, remission {'yes' if point.remitted else 'no'}"
            if point.responded is not None
            else "response and remission not judged (the baseline was below the remission cutoff)"
        )
        lines.append(
            f"Change from baseline {result.baseline}: {point.change:+d} points ({point.percent_change}%);"
            f" {judged} (definition {result.definition})."
        )
    if point.hours_from_first_dose is not None:
        lines.append(f"{point.hours_from_first_dose} hours from the course's first dose.")
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id(trajectory.course_id, point.assessment_id),
        "text": narrative(lines),
        "status": "final",
        "category": [concept(coding(OBSERVATION_CATEGORY_SYSTEM, "survey", "Survey"))],
        "code": _code(result.instrument),
        "subject": reference("Patient", trajectory.patient_id),
        "effectiveDateTime": fhir_datetime(point.administered_at),
        "valueInteger": point.total,
        # The score as intake or sessions recorded it (their Observation has the assessment's id).
        "derivedFrom": [reference("Observation", point.assessment_id)],
        "component": components,
    }
    return drop_empty(resource)


def trajectory_observations(courses: list[CourseTrajectory]) -> list[dict[str, Any]]:
    """Every score of every course, instrument by instrument, in time order."""
    return [
        trajectory_observation(course, result, point)
        for course in courses
        for result in course.results.values()
        for point in result.points
    ]
