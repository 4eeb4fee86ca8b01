"""Outcomes' HTTP routes. The network role serves aggregates only; it never holds a patient record."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError

from services.outcomes.api.deps import NetworkReader
from services.outcomes.domain.network_view import InstrumentName, NetworkTotals, TrendPoint
from services.outcomes.fhir.measure_reports import measure_report, split_report_id
from services.outcomes.fhir.measures import MEASURE_BASE, MEASURE_VERSION, MEASURES, MeasureDefinition, measure_resource
from services.outcomes.models import NetworkAggregate
from services.outcomes.service import network, publication
from services.outcomes.service.network import PERIOD_PATTERN, CohortKey, CohortSelection
from shared.app import ReadingDep, runtime_of
from shared.auth.guard import Actor, require
from shared.auth.permissions import Permission
from shared.events.outcomes import CohortAggregatePublished, CohortCut, CohortOutcomesPublished
from shared.fhir import (
    FHIR_JSON,
    LARGEST_PAGE,
    PAGE_SIZE,
    FhirJSONResponse,
    operation_outcome,
    paged_searchset,
    searchset,
)
from shared.treatment import Indication, Route

network_router = APIRouter(prefix="/aggregates", tags=["network aggregates"])


def _shown(row: NetworkAggregate) -> dict[str, Any]:
    # Re-validated on the way out: only the published, suppressed shape can leave this route.
    return CohortAggregatePublished.model_validate(row.aggregate).model_dump(mode="json")


@network_router.get("", summary="The latest aggregate of every (site, cohort)")
async def list_aggregates(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.network_aggregates_read))],
    site: str | None = None,
    cohort: str | None = None,
) -> list[dict[str, Any]]:
    async with runtime_of(request).reading() as uow:
        rows = await publication.network_aggregates(uow, site, cohort)
    return [_shown(r) for r in rows]


@network_router.get("/{site}/{cohort}", summary="The latest aggregate of one site's cohort")
async def get_aggregate(
    site: str,
    cohort: str,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.network_aggregates_read))],
) -> dict[str, Any]:
    async with runtime_of(request).reading() as uow:
        row = await uow.session.get(NetworkAggregate, (site, cohort))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no aggregate for site {site!r}, cohort {cohort!r}")
    return _shown(row)


# --- cohort outcomes (CohortOutcomesPublished): per site, summed across sites, month by month ---------------------

cohort_outcomes_router = APIRouter(prefix="/cohort-outcomes", tags=["network cohort outcomes"])

Month = Annotated[str | None, Query(pattern=PERIOD_PATTERN, description="a month, YYYY-MM")]


def _selection(
    site: Annotated[str | None, Query(max_length=40)] = None,
    indication: Indication | None = None,
    route: Route | None = None,
    period: Month = None,
    period_from: Annotated[
        str | None, Query(alias="from", pattern=PERIOD_PATTERN, description="first month of a range, YYYY-MM")
    ] = None,
    period_to: Annotated[
        str | None, Query(alias="to", pattern=PERIOD_PATTERN, description="last month of a range, YYYY-MM")
    ] = None,
    cut: Annotated[CohortCut | None, Query(description="a cut; the totals and trends default to 'all'")] = None,
    cut_value: Annotated[str | None, Query(max_length=40, description="the cut's value; 'all' for cut 'all'")] = None,
) -> CohortSelection:
    return CohortSelection(
        site=site,
        indication=indication,
        route=route,
        period=period,
        period_from=period_from,
        period_to=period_to,
        cut=cut,
        cut_value=cut_value,
    )


Selection = Annotated[CohortSelection, Depends(_selection)]


# A page of the list: enough for a dashboard's view in one read, small enough that a network of 50 sites' whole
# history (hundreds of MB as one answer) is never held in memory at once.
COHORT_PAGE = 500
LARGEST_COHORT_PAGE = 2000


def cohort_cursor(key: CohortKey) -> str:
    """Where the next page starts: the last cohort's key, opaque to the reader."""
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def _after(
    after: Annotated[
        str | None,
        Query(max_length=600, description="where a page starts: the cursor in the previous page's Link (rel=next)"),
    ] = None,
) -> CohortKey | None:
    if after is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)))
        if (
            isinstance(key, list)
            and len(key) == len(network.COHORT_KEY_COLUMNS)
            and all(
                # A key the list gave fits its column and holds no control character (PostgreSQL refuses a NUL).
                isinstance(k, str) and k.isprintable() and len(k) <= length
                for k, length in zip(key, network.COHORT_KEY_LENGTHS, strict=True)
            )
        ):
            return (key[0], key[1], key[2], key[3], key[4], key[5])
    except ValueError:  # base64, UTF-8 and JSON errors alike
        pass
    raise RequestValidationError(
        [{"type": "value_error", "loc": ("query", "after"), "msg": "not a cursor this list gave", "input": after}]
    )


@cohort_outcomes_router.get(
    "",
    summary="The latest cohort outcomes each site published, by the criteria given, a page at a time",
    description="Ordered by site, indication, route, month, cut and cut value. When more follow, the reply's "
    '`Link` header (RFC 8288) names the next page with `rel="next"`; the last page has none.',
    responses={200: {"headers": {"Link": {"description": 'the next page, rel="next"', "schema": {"type": "string"}}}}},
)
async def list_cohort_outcomes(
    request: Request,
    response: Response,
    actor: NetworkReader,
    uow: ReadingDep,
    selection: Selection,
    after: Annotated[CohortKey | None, Depends(_after)],
    limit: Annotated[int, Query(ge=1, le=LARGEST_COHORT_PAGE, description="cohorts a page holds")] = COHORT_PAGE,
) -> list[CohortOutcomesPublished]:
    page = await network.cohort_outcomes(uow, selection, after=after, limit=limit + 1)
    if len(page) > limit:
        page = page[:limit]
        following = request.url.include_query_params(after=cohort_cursor(network.cohort_key(page[-1])))
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return page


@cohort_outcomes_router.get(
    "/totals",
    summary="One cut value's cohorts summed across sites (and months of a range): upper bounds on patients, and "
    "never a suppressed count read as 0",
)
async def cohort_outcome_totals(actor: NetworkReader, uow: ReadingDep, selection: Selection) -> NetworkTotals:
    return await network.network_totals(uow, selection)


@cohort_outcomes_router.get(
    "/trend", summary="Month by month, one cut value's cohorts summed across sites (optionally one instrument's)"
)
async def cohort_outcome_trend(
    actor: NetworkReader,
    uow: ReadingDep,
    selection: Selection,
    instrument: InstrumentName | None = None,
) -> list[TrendPoint]:
    return await network.network_trend(uow, selection, instrument)


@cohort_outcomes_router.get(
    "/{cohort_id}", summary="One site's cohort by its id (the cohort_id MeasureReport ids end in)"
)
async def get_cohort_outcomes(
    cohort_id: Annotated[str, Path(max_length=64)], actor: NetworkReader, uow: ReadingDep
) -> CohortOutcomesPublished:
    found = await network.cohort_outcome(uow, cohort_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no cohort {cohort_id!r}")
    return found


# --- FHIR R4: Measures, and each cohort's figures as MeasureReports ------------------------------------------------

network_fhir_router = APIRouter(prefix="/fhir", tags=["FHIR R4 (network)"])

_FHIR_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {"description": "No such resource (a FHIR OperationOutcome)", "content": {FHIR_JSON: {}}}
}


def _fhir_base(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}{network_fhir_router.prefix}"


def _fhir_not_found(kind: str) -> FhirJSONResponse:
    return FhirJSONResponse(
        operation_outcome("not-found", f"no such {kind} on the network"), status_code=status.HTTP_404_NOT_FOUND
    )


def _measure_named(value: str) -> MeasureDefinition | None:
    """A measure by its id, its canonical URL, or its canonical URL with |version."""
    canonical, _, version = value.partition("|")
    if version and version != MEASURE_VERSION:
        return None
    return MEASURES.get(canonical.removeprefix(MEASURE_BASE))


@network_fhir_router.get(
    "/Measure", response_class=FhirJSONResponse, summary="The network's Measures (FHIR R4), optionally by url"
)
async def search_measures(
    request: Request,
    actor: NetworkReader,
    url: Annotated[
        str | None, Query(max_length=300, description="a Measure's canonical URL, optionally |version")
    ] = None,
) -> FhirJSONResponse:
    found = list(MEASURES.values()) if url is None else [m for m in [_measure_named(url)] if m is not None]
    if url is not None and not url.startswith(MEASURE_BASE):
        found = []
    resources = [measure_resource(m) for m in found]
    return FhirJSONResponse(searchset(resources, base=_fhir_base(request), self_url=str(request.url)))


@network_fhir_router.get(
    "/Measure/{measure_id}",
    response_class=FhirJSONResponse,
    responses=_FHIR_NOT_FOUND,
    summary="Read one of the network's Measures (FHIR R4)",
)
async def read_measure(measure_id: str, actor: NetworkReader) -> FhirJSONResponse:
    if (measure := MEASURES.get(measure_id)) is None:
        return _fhir_not_found("measure")
    return FhirJSONResponse(measure_resource(measure))


@network_fhir_router.get(
    "/MeasureReport",
    response_class=FhirJSONResponse,
    summary="Search the sites' cohort outcomes as MeasureReports (FHIR R4): by site, indication, route, period "
    "(a month), cut, cut-value and measure (id or canonical URL); in the order of the cohorts' keys (site, "
    "indication, route, month, cut, cut value), then of the measures' ids",
)
async def search_measure_reports(
    request: Request,
    actor: NetworkReader,
    uow: ReadingDep,
    site: Annotated[str | None, Query(max_length=40)] = None,
    indication: Indication | None = None,
    route: Route | None = None,
    period: Month = None,
    cut: CohortCut | None = None,
    cut_value: Annotated[str | None, Query(alias="cut-value", max_length=40)] = None,
    measure: Annotated[str | None, Query(max_length=300, description="a Measure's id or canonical URL")] = None,
    count: Annotated[
        int, Query(alias="_count", ge=1, le=LARGEST_PAGE, description="how many reports a page holds")
    ] = PAGE_SIZE,
    offset: Annotated[int, Query(alias="_offset", ge=0, description="the first report of the page, from 0")] = 0,
) -> FhirJSONResponse:
    # The total, the page and the page's cohorts in one snapshot: a take-in between them would change them apart.
    await uow.read_one_snapshot()
    chosen = None if measure is None else _measure_named(measure)
    total = 0
    on_page: list[tuple[MeasureDefinition, CohortOutcomesPublished]] = []
    if measure is None or chosen is not None:
        selection = CohortSelection(
            site=site, indication=indication, route=route, period=period, cut=cut, cut_value=cut_value
        )
        # Counted and paged in the index of the cohorts' reports (service/network.py): only the page's cohorts
        # are read and judged, however large the network's history.
        measure_id = None if chosen is None else chosen.id
        total = await network.measure_report_total(uow, selection, measure_id)
        entries = await network.measure_report_page(uow, selection, measure_id, offset=offset, limit=count)
        cohorts = await network.cohorts_keyed(uow, [key for key, _ in entries])
        on_page = [(MEASURES[m], cohorts[key]) for key, m in entries if key in cohorts and m in MEASURES]
    page = [report for m, c in on_page if (report := measure_report(m, c)) is not None]
    bundle = paged_searchset(
        page, total=total, base=_fhir_base(request), self_url=request.url, offset=offset, count=count
    )
    return FhirJSONResponse(bundle)


@network_fhir_router.get(
    "/MeasureReport/{report_id}",
    response_class=FhirJSONResponse,
    responses=_FHIR_NOT_FOUND,
    summary="Read one MeasureReport (FHIR R4): one measure over one site's cohort",
)
async def read_measure_report(report_id: str, actor: NetworkReader, uow: ReadingDep) -> FhirJSONResponse:
    named = split_report_id(report_id)
    cohort = None if named is None else await network.cohort_outcome(uow, named[1])
    report = None if named is None or cohort is None else measure_report(named[0], cohort)
    if report is None:
        return _fhir_not_found("measure report")
    return FhirJSONResponse(report)


NETWORK_ROUTERS = [cohort_outcomes_router, network_fhir_router]
