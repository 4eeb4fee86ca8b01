"""Sessions' own code systems as FHIR R4 CodeSystems, for what no standard terminology gives a confirmed code:
the kind of encounter, a course's indication, the sublingual-or-oral route (which SNOMED CT's route codes cannot
express as one route) and the adverse events recorded at the chair.

Each is served at GET /fhir/CodeSystem/{id}; its canonical URL is the system of its codes in every resource, and
resources.py takes every code and display from here (kapnet_coding), so a code sent is always a code defined.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from services.sessions.domain.adverse_events import AdverseEventType
from services.sessions.domain.settings import ESKETAMINE_DEVICE_MG
from shared.fhir import code_system
from shared.treatment import Indication, Route


def _concepts(values: type[StrEnum], definitions: dict[Any, tuple[str, str]], what: str) -> list[tuple[str, str, str]]:
    """A concept per value of the enum: a value added to the enum but not yet defined here still gets a code (its
    words as the display), so every code sent stays defined; tests/sessions/test_fhir.py asks for a definition."""
    return [
        (value.value, *definitions.get(value, (value.value.replace("_", " ").capitalize(), f"{what}: {value.value}.")))
        for value in values
    ]


ENCOUNTER_TYPE_CODE_SYSTEM = code_system(
    "encounter-type",
    name="KapnetEncounterType",
    title="kapnet encounter types",
    description="The kinds of visit sessions records as an Encounter.",
    concepts=[
        (
            "dosing-session",
            "Dosing session",
            "A visit at which a dose of ketamine or esketamine is given under observation: the pre-dose checks, "
            "the dose, monitoring of vital signs, sedation and dissociation, and discharge once the discharge "
            "criteria are met.",
        )
    ],
)

INDICATION_DEFINITIONS: dict[Indication, tuple[str, str]] = {
    Indication.depression: ("Depression", "A depressive disorder, as the indication of a treatment course."),
    Indication.treatment_resistant_depression: (
        "Treatment-resistant depression",
        "A depressive disorder that has not responded adequately to at least two antidepressant treatments of "
        "adequate dose and duration, as the indication of a treatment course.",
    ),
    Indication.anxiety: ("Anxiety disorder", "An anxiety disorder, as the indication of a treatment course."),
    Indication.ptsd: (
        "Post-traumatic stress disorder",
        "Post-traumatic stress disorder (PTSD), as the indication of a treatment course.",
    ),
    Indication.ocd: (
        "Obsessive-compulsive disorder",
        "Obsessive-compulsive disorder (OCD), as the indication of a treatment course.",
    ),
    Indication.substance_use_disorder: (
        "Substance use disorder",
        "A substance use disorder, as the indication of a treatment course.",
    ),
    Indication.other: (
        "Other indication",
        "An indication not listed here, which the course names in free text (the CodeableConcept's text).",
    ),
}
INDICATION_CODE_SYSTEM = code_system(
    "indication",
    name="KapnetIndication",
    title="kapnet treatment indications",
    description="The conditions a course of ketamine or esketamine treatment is planned for, as the prescriber records "
    "them (Encounter.reasonCode).",
    concepts=_concepts(Indication, INDICATION_DEFINITIONS, "An indication of a treatment course"),
)

ROUTE_DEFINITIONS: dict[Route, tuple[str, str]] = {
    Route.iv_infusion: ("Intravenous infusion", "Racemic ketamine by intravenous infusion, dosed in mg/kg."),
    Route.intramuscular: ("Intramuscular injection", "Racemic ketamine by intramuscular injection, dosed in mg/kg."),
    Route.subcutaneous: ("Subcutaneous injection", "Racemic ketamine by subcutaneous injection, dosed in mg/kg."),
    Route.sublingual_oral: (
        "Sublingual or oral",
        "Racemic ketamine as a lozenge or troche held in the mouth, or as an oral solution, recorded as one route "
        "(so neither the sublingual nor the oral route alone), dosed in mg.",
    ),
    Route.intranasal_esketamine: (
        "Esketamine nasal spray",
        f"Esketamine by nasal spray, in whole devices of {ESKETAMINE_DEVICE_MG} mg, dosed in mg.",
    ),
}
ROUTE_CODE_SYSTEM = code_system(
    "route",
    name="KapnetRoute",
    title="kapnet routes of administration",
    description="The routes a course of ketamine or esketamine is planned and dosed by. A MedicationAdministration "
    "carries a SNOMED CT route where one fits, and a code of this system only where none does (sublingual or oral).",
    concepts=_concepts(Route, ROUTE_DEFINITIONS, "A route of administration"),
)

ADVERSE_EVENT_DEFINITIONS: dict[AdverseEventType, tuple[str, str]] = {
    AdverseEventType.nausea: ("Nausea", "Nausea during or after the dosing session."),
    AdverseEventType.vomiting: ("Vomiting", "Vomiting during or after the dosing session."),
    AdverseEventType.hallucinations: (
        "Hallucinations",
        "Perceptions without an external stimulus, reported or observed during or after the dosing session.",
    ),
    AdverseEventType.hypertension: (
        "Hypertension",
        "A rise in blood pressure during or after the dosing session, recorded as an adverse event.",
    ),
    AdverseEventType.sedation: (
        "Sedation",
        "A lowered level of consciousness during or after the dosing session, recorded as an adverse event.",
    ),
    AdverseEventType.agitation: ("Agitation", "Agitation during or after the dosing session."),
    AdverseEventType.respiratory_depression: (
        "Respiratory depression",
        "Slowed or shallow breathing, or a fall in oxygen saturation, during or after the dosing session.",
    ),
    AdverseEventType.other: (
        "Other adverse event",
        "An adverse event not listed here, which the record describes in free text (AdverseEvent.event.text).",
    ),
}
ADVERSE_EVENT_CODE_SYSTEM = code_system(
    "adverse-event",
    name="KapnetAdverseEvent",
    title="kapnet adverse events",
    description="The adverse events recorded at a dosing session (AdverseEvent.event).",
    concepts=_concepts(AdverseEventType, ADVERSE_EVENT_DEFINITIONS, "An adverse event recorded at a dosing session"),
)

# The CodeSystems sessions serves, by id.
CODE_SYSTEMS: dict[str, dict[str, Any]] = {
    cs["id"]: cs
    for cs in (ENCOUNTER_TYPE_CODE_SYSTEM, INDICATION_CODE_SYSTEM, ROUTE_CODE_SYSTEM, ADVERSE_EVENT_CODE_SYSTEM)
}
