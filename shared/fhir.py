"""FHIR R4 building blocks every service's FHIR read uses: JSON shape helpers, Bundles, OperationOutcomes.

Services emit plain dicts (no FHIR library at run time); tests validate them against the R4B models.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from fastapi.responses import JSONResponse
from starlette.datastructures import URL

FHIR_JSON = "application/fhir+json"
# HL7 terminology (terminology.hl7.org), as published with R4 4.0.1.
OBSERVATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

# kapnet's own code systems, for what no standard terminology gives a confirmed code: each is a FHIR CodeSystem
# served by the service that uses it (GET /fhir/CodeSystem/{id}), and this canonical URL, its url, is the system
# of its codes. The canonical names the code system; it need not resolve (".example" is reserved, RFC 2606).
KAPNET_CODE_SYSTEM_BASE = "https://kapnet.example/fhir/CodeSystem/"
KAPNET_PUBLISHER = "kapnet"
# A member of staff is known to the services by their token's subject (sub) only.
STAFF_SYSTEM = "urn:kapnet:staff"
XHTML_NAMESPACE = "http://www.w3.org/1999/xhtml"


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


def staff(sub: str) -> dict[str, Any]:
    """A member of staff, known by their token subject only: an identifier-only Practitioner reference."""
    return {"type": "Practitioner", "identifier": {"system": STAFF_SYSTEM, "value": sub}}


def narrative(
    lines: Iterable[str], *, table: Sequence[Sequence[str]] = (), header: Sequence[str] = ()
) -> dict[str, str]:
    """A generated narrative (Resource.text): one XHTML paragraph per line, then an optional table, every text
    escaped. FHIR's narrative XHTML allows no script, no event attribute and no external reference (txt-1, txt-2);
    this writes only div, p, table, tr, th and td with no attribute but the namespace."""

    def cells(tag: str, row: Sequence[str]) -> str:
        return "<tr>" + "".join(f"<{tag}>{html.escape(cell, quote=False)}</{tag}>" for cell in row) + "</tr>"

    body = "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in lines if line)
    if table:
        head = cells("th", header) if header else ""
        body += "<table>" + head + "".join(cells("td", row) for row in table) + "</table>"
    return {"status": "generated", "div": f'<div xmlns="{XHTML_NAMESPACE}">{body}</div>'}


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


# Searches whose matches run to thousands (the network's MeasureReports: about 7,800 a site in make run's demo, 43 MB
# in one Bundle) are served in pages. FHIR leaves paging to the server and its links are opaque to a client
# (R4 http.html#paging); kapnet's say where the page starts with _offset, and how long it is with _count.
PAGE_SIZE = 100
LARGEST_PAGE = 1000


def paged_searchset(
    page: Sequence[dict[str, Any]], *, total: int, base: str, self_url: URL, offset: int, count: int
) -> dict[str, Any]:
    """One page of a searchset Bundle: ``page`` holds the matches from ``offset`` on (at most ``count``), ``total``
    counts them all, and the links lead to the first, the previous and the next page."""
    bundle = searchset(page, base=base, self_url=str(self_url))
    bundle["total"] = total

    def at(start: int) -> dict[str, str]:
        return {"url": str(self_url.include_query_params(_offset=start, _count=count))}

    links = [{"relation": "self", "url": str(self_url)}, {"relation": "first", **at(0)}]
    if offset > 0:
        links.append({"relation": "previous", **at(max(offset - count, 0))})
    if offset + count < total:
        links.append({"relation": "next", **at(offset + count)})
    bundle["link"] = links
    return bundle


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    """A FHIR OperationOutcome with one issue (``code`` from IssueType, e.g. not-found)."""
    return {
        "resourceType": "OperationOutcome",
        "text": narrative([f"{severity.capitalize()} ({code}): {diagnostics}"]),
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


# --- kapnet's CodeSystems -------------------------------------------------------------------------------------


def kapnet_code_system_url(code_system_id: str) -> str:
    """The canonical URL of a kapnet CodeSystem, which is also the system of its codes."""
    return KAPNET_CODE_SYSTEM_BASE + code_system_id


def code_system(
    code_system_id: str,
    *,
    name: str,
    title: str,
    description: str,
    concepts: Sequence[tuple[str, str, str]],
    version: str = "1",
) -> dict[str, Any]:
    """A FHIR R4 CodeSystem of kapnet's own: active, complete (every code kapnet sends is here), case-sensitive,
    each concept as (code, display, definition). ``name`` is the computable name (PascalCase, cnl-0)."""
    codes = [code for code, _, _ in concepts]
    if len(set(codes)) != len(codes):
        raise ValueError(f"CodeSystem {code_system_id} repeats a code")
    url = kapnet_code_system_url(code_system_id)
    return {
        "resourceType": "CodeSystem",
        "id": code_system_id,
        "text": narrative(
            [f"{title} ({url}), version {version}: {description}"],
            header=("Code", "Display", "Definition"),
            table=concepts,
        ),
        "url": url,
        "version": version,
        "name": name,
        "title": title,
        "status": "active",
        "experimental": False,
        "publisher": KAPNET_PUBLISHER,
        "description": description,
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": [
            {"code": code, "display": display, "definition": definition} for code, display, definition in concepts
        ],
    }


def code_systems_matching(code_systems: Iterable[dict[str, Any]], url: str | None) -> list[dict[str, Any]]:
    """The CodeSystems a search by ``url`` (a canonical, optionally ``|version``) matches; all without one."""
    if url is None:
        return list(code_systems)
    canonical, _, version = url.partition("|")
    return [cs for cs in code_systems if cs["url"] == canonical and (not version or cs.get("version") == version)]


def code_system_codes(resource: dict[str, Any]) -> dict[str, str]:
    """code -> display of a CodeSystem made by code_system()."""
    return {concept["code"]: concept["display"] for concept in resource["concept"]}


def kapnet_coding(resource: dict[str, Any], code: str) -> dict[str, str]:
    """A coding of one of kapnet's CodeSystems, with its display; a code the CodeSystem lacks is a bug here, so it
    raises rather than send a code no one can look up."""
    displays = code_system_codes(resource)
    if code not in displays:
        raise KeyError(f"{code!r} is not a code of {resource['url']}")
    return coding(resource["url"], code, displays[code])
