"""The network dashboard: the sites' released cohort outcomes, charted and tabled, for network administrators.

Everything comes from the network's outcomes service with the administrator's token; nothing here is a patient.
A suppressed count is shown as suppressed, never as a number (and never as 0 in a sum); a rate is drawn only where
both of its counts were shown; sums across sites count courses, so they are upper bounds on people.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.console.api.deps import Apis, CurrentUser, Templates, needs
from services.console.site_apis import SiteService
from shared.auth.permissions import Permission
from shared.events.outcomes import CohortOutcomesPublished, ReleasedCount
from shared.instruments.scoring import Instrument
from shared.treatment import Indication, Route

router = APIRouter(dependencies=[needs(Permission.network_aggregates_read)])


class GroupBy(StrEnum):
    site = "site"
    indication = "indication"
    route = "route"
    period = "period"
    cut_value = "cut_value"  # within one cut: self-pay or insured, an age band


@dataclass(frozen=True)
class DashboardFilter:
    indication: Indication | None = None
    route: Route | None = None
    period_from: str | None = None
    period_to: str | None = None
    instrument: Instrument = Instrument.phq9
    group_by: GroupBy = GroupBy.site

    def query(self) -> dict[str, str]:
        """The network API's query for whole cohorts (cut 'all') within the filter."""
        found = {"cut": "all", "cut_value": "all"}
        if self.indication:
            found["indication"] = self.indication.value
        if self.route:
            found["route"] = self.route.value
        if self.period_from:
            found["from"] = self.period_from
        if self.period_to:
            found["to"] = self.period_to
        return found


@dataclass(frozen=True)
class CohortRow:
    """One site's whole cohort as released, for the table and the CSV: None where a count is suppressed."""

    site: str
    indication: str
    route: str
    period: str
    courses: int | None
    started: int | None
    with_result: int | None
    responded: int | None
    remitted: int | None
    cut_value: str = "all"
    days_to_first_dose: float | None = None  # the cohort's median, over its courses started
    days_to_response: float | None = None  # the cohort's median, over its responders
    adverse_events: Mapping[str, int | None] = field(default_factory=dict)  # type -> courses with one
    barriers: Mapping[str, int | None] = field(default_factory=dict)  # reason -> courses deferred or declined

    @classmethod
    def of(cls, figures: CohortOutcomesPublished, instrument: Instrument) -> CohortRow:
        measured = next((i for i in figures.instruments if i.instrument == instrument.value), None)

        def count(released: ReleasedCount | None) -> int | None:
            return None if released is None else released.count

        return cls(
            figures.site,
            figures.indication.value,
            figures.route.value,
            figures.period,
            count(figures.courses),
            count(figures.started),
            count(measured.with_result if measured else None),
            count(measured.responded if measured else None),
            count(measured.remitted if measured else None),
            figures.cut_value,
            figures.median_days_to_first_dose,
            measured.median_days_to_response if measured else None,
            {a.type.value: a.courses.count for a in figures.adverse_events},
            {str(b.reason): b.courses.count for b in figures.barriers},
        )

    def key(self, group_by: GroupBy) -> str:
        value: str = getattr(self, group_by.value)
        return value


@dataclass(frozen=True)
class Rate:
    """A part over its whole, summed over the cohorts where both were shown."""

    cohorts: int  # cohorts whose two counts were shown, and so went into the rate
    part: int
    whole: int

    @classmethod
    def over(cls, pairs: list[tuple[int | None, int | None]]) -> Rate:
        shown = [(part, whole) for part, whole in pairs if part is not None and whole is not None]
        return cls(len(shown), sum(part for part, _ in shown), sum(whole for _, whole in shown))

    @property
    def percent(self) -> float | None:
        return round(100 * self.part / self.whole, 1) if self.whole else None


@dataclass(frozen=True)
class GroupRates:
    """Response and remission (each over the cohorts where it and its whole were shown) of one group."""

    group: str
    cohorts: int
    response: Rate
    remission: Rate


def group_rates(rows: list[CohortRow], group_by: GroupBy) -> list[GroupRates]:
    groups: dict[str, list[CohortRow]] = {}
    for row in rows:
        groups.setdefault(row.key(group_by), []).append(row)
    # A suppressed count is never read as 0: a cohort goes into a rate only where both of its counts were shown.
    return [
        GroupRates(
            group,
            len(members),
            Rate.over([(r.responded, r.with_result) for r in members]),
            Rate.over([(r.remitted, r.with_result) for r in members]),
        )
        for group, members in sorted(groups.items())
    ]


@dataclass(frozen=True)
class Weighted:
    """The cohorts' medians, weighted by the count each stands over: not a median of patients (the network has
    none), and only over cohorts where both were shown."""

    cohorts: int
    courses: int
    value: float | None

    @classmethod
    def over(cls, pairs: list[tuple[float | None, int | None]]) -> Weighted:
        shown = [(median, n) for median, n in pairs if median is not None and n]
        courses = sum(n for _, n in shown)
        value = round(sum(m * n for m, n in shown) / courses, 1) if courses else None
        return cls(len(shown), courses, value)


@dataclass(frozen=True)
class NetworkSummary:
    """The figures beyond response and remission, over the rows on screen: time to first dose and to response,
    adverse events per 100 courses started, access barriers per 100 courses, and totals of shown counts (courses,
    so at most that many patients; suppressed cohorts are not in them)."""

    days_to_first_dose: Weighted
    days_to_response: Weighted
    adverse_events: dict[str, Rate]
    barriers: dict[str, Rate]
    total_courses: int
    total_started: int
    suppressed_cohorts: int


def network_summary(rows: list[CohortRow]) -> NetworkSummary:
    event_types = sorted({t for r in rows for t in r.adverse_events})
    reasons = sorted({t for r in rows for t in r.barriers})
    return NetworkSummary(
        Weighted.over([(r.days_to_first_dose, r.started) for r in rows]),
        Weighted.over([(r.days_to_response, r.responded) for r in rows]),
        {t: Rate.over([(r.adverse_events.get(t), r.started) for r in rows]) for t in event_types},
        {b: Rate.over([(r.barriers.get(b), r.courses) for r in rows]) for b in reasons},
        sum(r.courses or 0 for r in rows),
        sum(r.started or 0 for r in rows),
        sum(1 for r in rows if r.courses is None or r.started is None),
    )


CHART_GROUPS = [GroupBy.site.value, GroupBy.indication.value, GroupBy.route.value, GroupBy.period.value]


def _filter(request: Request) -> DashboardFilter:
    params = request.query_params

    def pick(name: str) -> str | None:
        value = params.get(name, "").strip()
        return value or None

    indication, route = pick("indication"), pick("route")
    return DashboardFilter(
        indication=Indication(indication) if indication is not None and indication in Indication.__members__ else None,
        route=Route(route) if route is not None and route in Route.__members__ else None,
        period_from=pick("from"),
        period_to=pick("to"),
        instrument=Instrument(params["instrument"])
        if params.get("instrument") in Instrument.__members__
        else Instrument.phq9,
        group_by=GroupBy(params["group_by"]) if params.get("group_by") in CHART_GROUPS else GroupBy.site,
    )


async def _rows(apis: Apis, token: str, chosen: DashboardFilter, cut: str = "all") -> list[CohortRow]:
    query = chosen.query()
    if cut != "all":
        query = {k: v for k, v in query.items() if k != "cut_value"} | {"cut": cut}
    published = await apis.read_every_page(SiteService.network, "/cohort-outcomes", token, **query)
    cohorts = [CohortOutcomesPublished.model_validate(c) for c in published]
    return sorted(
        (CohortRow.of(c, chosen.instrument) for c in cohorts),
        key=lambda r: (r.site, r.indication, r.route, r.period),
    )


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, templates: Templates, apis: Apis, user: CurrentUser) -> Response:
    chosen = _filter(request)
    rows = await _rows(apis, user.token, chosen)
    rates = group_rates(rows, chosen.group_by)
    chart: dict[str, Any] = {
        "labels": [g.group for g in rates],
        "response": [g.response.percent for g in rates],
        "remission": [g.remission.percent for g in rates],
    }
    # Cost against outcome: the same rates over the payer cut (self-pay or insured).
    by_payer = group_rates(await _rows(apis, user.token, chosen, cut="payer"), GroupBy.cut_value)
    return templates.TemplateResponse(
        request,
        "dashboard.html",
        {
            "user": user,
            "Permission": Permission,
            "title": "Network outcomes",
            "chosen": chosen,
            "rows": rows,
            "rates": rates,
            "chart": chart,
            "summary": network_summary(rows),
            "by_payer": by_payer,
            "indications": [i.value for i in Indication],
            "routes": [r.value for r in Route],
            "instruments": [i.value for i in Instrument],
            "groupings": CHART_GROUPS,
            "csv_query": str(request.query_params),
        },
    )


@router.get("/dashboard.csv")
async def dashboard_csv(request: Request, apis: Apis, user: CurrentUser) -> Response:
    """The table on screen, as CSV: a suppressed count is written as "suppressed"."""
    chosen = _filter(request)
    rows = await _rows(apis, user.token, chosen)
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ["site", "indication", "route", "period", "courses", "started"]
    measured = [f"{chosen.instrument.value}_{name}" for name in ("with_result", "responded", "remitted")]
    writer.writerow(columns + measured)
    for row in rows:
        values = [row.courses, row.started, row.with_result, row.responded, row.remitted]
        writer.writerow(
            [row.site, row.indication, row.route, row.period, *("suppressed" if v is None else v for v in values)]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="kapnet-network-outcomes.csv"'},
    )
