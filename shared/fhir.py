"""FHIR R4 building blocks every service's FHIR read uses: JSON shape helpers, Bundles, OperationOutcomes.

Services emit plain dicts (no FHIR library at run time); tests validate them against the R4B models.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from fastapi.responses import JSONResponse

FHIR_JSON = "application/fhir+json"
# HL7 terminology (terminology.hl7.org), as published with R4 4.0.1.
OBSERVATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_JSON


def fhir_datetime(moment: datetime) -> str:
    """A FHIR dateTime/instant: with a time it must carry a zone. Our columns hold aware UTC times."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def fhir_date(day: date) -> str:
    return day.isoformat()


def reference(resource_type: str, resource_id: object) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def concept(*codings: dict[str, str], text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = list(codings)
    if text:
        concept["text"] = text
    return concept


def drop_empty(element: dict[str, Any]) -> dict[str, Any]:
    """The element without keys whose value is None, "", [] or {}: FHIR allows no empty elements."""
    return {key: value for key, value in element.items() if value not in (None, "", [], {})}


def searchset(resources: Sequence[dict[str, Any]], *, base: str, self_url: str) -> dict[str, Any]:
    """A FHIR searchset Bundle of every match (no paging: a patient has few of each). ``base`` is the FHIR base
    URL (…/fhir), from which each entry's fullUrl is made."""
    return drop_empty(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(resources),
            "link": [{"relation": "self", "url": self_url}],
            "entry": [
                {
                    "fullUrl": f"{base.rstrip('/')}/{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in resources
            ],
        }
    )


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    """A FHIR OperationOutcome with one issue (``code`` from IssueType, e.g. not-found)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }
