"""The network's FHIR MeasureReport search as the network grows, against its own cohort list in the same run.

    python -m bench.measure_reports [--cohorts 1000,4000,16000] [--json PATH]

For each size: a fresh network database (SQLite) holding that many cohorts, each with three instruments, two
adverse-event types and one access barrier (12 MeasureReports a cohort), taken in by the network's own use
case as its consumer does. Then, through the network app in process with a network_admin token, 20 times each:

- Baseline: the first page of ``/cohort-outcomes`` (20 cohorts: an index seek, then 20 rows).
- Search: the first page, and a page from the middle, of ``/fhir/MeasureReport`` (20 reports, with the total).

Printed: the medians in milliseconds and the ratios search/baseline; what taking a cohort in cost, and the
index check a network leader makes (service/network.py), timed by itself on an index that agrees and on an
empty one (as after the upgrade that made it). A search that reads a page from an index keeps its ratio as the
network grows; one that counts by reading every cohort grows with it. Figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import httpx
import sqlalchemy as sa

from bench.report import print_figures
from services.outcomes.app import NETWORK_ROLE
from services.outcomes.models import NetworkMeasureReport
from services.outcomes.service import network
from shared.app import create_service_app
from shared.auth.tokens import mint_dev_token
from shared.events.outcomes import AccessBarrierReason, CohortOutcomesPublished
from shared.settings import ServiceSettings
from shared.treatment import AdverseEventType, Indication, Route

REPEATS = 20
PAGE = 20
CUT_VALUES = [("all", "all")] + [("age_band", band) for band in ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")]
BARRIER = get_args(AccessBarrierReason)[0]


def shown(count: int) -> dict[str, Any]:
    return {"count": count, "suppressed": False}


def invented_cohorts(how_many: int) -> list[CohortOutcomesPublished]:
    """``how_many`` distinct cohorts over 50 sites, every indication and route, and months from 2025-01."""
    cohorts: list[CohortOutcomesPublished] = []
    month = 0
    while len(cohorts) < how_many:
        period = f"{2025 + month // 12}-{month % 12 + 1:02d}"
        for site in (f"site{n:02d}" for n in range(50)):
            for indication in Indication:
                for route in Route:
                    for cut, cut_value in CUT_VALUES:
                        if len(cohorts) == how_many:
                            return cohorts
                        cohorts.append(one_cohort(site, indication, route, period, cut, cut_value))
        month += 1
    return cohorts


def one_cohort(site: str, indication: Indication, route: Route, period: str, cut: str, value: str) -> Any:
    return CohortOutcomesPublished.model_validate(
        {
            "site": site,
            "indication": indication,
            "route": route,
            "period": period,
            "cut": cut,
            "cut_value": value,
            "definition": "response>=50%;phq9<5;gad7<5;pcl5<33",
            "courses": shown(40),
            "started": shown(30),
            "completed": shown(19),
            "dropped_out": shown(11),
            "instruments": [
                {"instrument": name, "with_result": shown(20), "responded": shown(12), "remitted": shown(11)}
                for name in ("phq9", "gad7", "pcl5")
            ],
            "adverse_events": [
                {"type": kind, "courses": shown(12), "serious_courses": shown(0)}
                for kind in (AdverseEventType.nausea, AdverseEventType.sedation)
            ],
            "barriers": [{"reason": BARRIER, "courses": shown(14)}],
            "median_days_to_first_dose": 9.5,
            "generated_at": datetime(2026, 2, 1, tzinfo=UTC),
        }
    )


async def median_ms(client: httpx.AsyncClient, path: str, params: dict[str, str], headers: dict[str, str]) -> float:
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        reply = await client.get(path, params=params, headers=headers)
        times.append(time.perf_counter() - began)
        if reply.status_code != 200:
            raise SystemExit(f"{path}: {reply.status_code} {reply.text[:200]}")
    return statistics.median(times) * 1000


async def measure(size: int, directory: Path) -> dict[str, Any]:
    settings = ServiceSettings(
        service="outcomes",
        role="network",
        network_sites=["north"],
        database_url=f"sqlite+aiosqlite:///{directory / 'network.db'}",
        var_dir=directory / "var",
        kafka_bootstrap_servers="127.0.0.1:1",  # no broker: the routes only read the database
        kafka_timeout_seconds=1,
    )
    # Without the leader's index check, timed by itself below: it would run beside the first requests.
    app = create_service_app(settings, dataclasses.replace(NETWORK_ROLE, background=[]))
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        cohorts = invented_cohorts(size)
        began = time.perf_counter()
        for start in range(0, len(cohorts), 500):
            async with runtime.unit_of_work() as uow:
                for cohort in cohorts[start : start + 500]:
                    await network.record_cohort_outcomes(uow, cohort)
                await uow.commit()
        take_in_seconds = time.perf_counter() - began
        began = time.perf_counter()
        corrected = await network.check_measure_index(runtime.unit_of_work)
        check_seconds = time.perf_counter() - began
        if corrected:
            raise SystemExit(f"the index check corrected {corrected} cohorts that the take-ins had indexed")
        # As after the upgrade that made the index: cohorts held, none indexed; the check fills it.
        async with runtime.unit_of_work() as uow:
            await uow.session.execute(sa.delete(NetworkMeasureReport))
            await uow.commit()
        began = time.perf_counter()
        filled = await network.check_measure_index(runtime.unit_of_work)
        fill_seconds = time.perf_counter() - began
        if filled != size:
            raise SystemExit(f"the index check filled {filled} of {size} cohorts")
        token = mint_dev_token(settings.dev_key_dir, site="network", roles=["network_admin"])
        headers = {"Authorization": f"Bearer {token}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://network") as client:
            first = await client.get("/fhir/MeasureReport", params={"_count": "1"}, headers=headers)
            total = int(first.json()["total"])
            listed = await median_ms(client, "/cohort-outcomes", {"limit": str(PAGE)}, headers)
            search_first = await median_ms(client, "/fhir/MeasureReport", {"_count": str(PAGE)}, headers)
            middle = {"_count": str(PAGE), "_offset": str(total // 2)}
            search_middle = await median_ms(client, "/fhir/MeasureReport", middle, headers)
    return {
        "cohorts": size,
        "reports": total,
        "take_in_ms_per_cohort": round(take_in_seconds * 1000 / size, 3),
        "index_check_s": round(check_seconds, 2),
        "index_fill_s": round(fill_seconds, 2),
        "list_page_ms": round(listed, 1),
        "search_first_page_ms": round(search_first, 1),
        "search_middle_page_ms": round(search_middle, 1),
        "ratio_first": round(search_first / listed, 2),
        "ratio_middle": round(search_middle / listed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.measure_reports", description=__doc__)
    parser.add_argument("--cohorts", default="1000,4000,16000", help="comma-separated network sizes")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for size in (int(n) for n in args.cohorts.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(asyncio.run(measure(size, Path(tmp))))
        print(rows[-1], flush=True)
    print_figures({"page": PAGE, "repeats": REPEATS, "sizes": rows}, args.json)


if __name__ == "__main__":
    main()
