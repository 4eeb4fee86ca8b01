"""The network role's REST and FHIR routes over the cohort outcomes it holds, in process on SQLite and PostgreSQL.
The rows are written by the network's own use case (service/network.py), as its consumer does; the consumer
itself, with the real broker, is tests/outcomes/test_network_rebuild.py's."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlmodel import col, select

from services.console.settings import ConsoleSettings
from services.console.site_apis import SiteApis, SiteService
from services.outcomes import app as outcomes_app
from services.outcomes.api import network as network_api
from services.outcomes.app import create_app
from services.outcomes.fhir.measure_reports import reported_measures
from services.outcomes.models import NetworkCohortOutcome, NetworkMeasureReport
from services.outcomes.service import network
from shared.db.database import Database
from shared.db.leadership import Leadership
from shared.events.outcomes import CohortOutcomesPublished
from shared.privacy.audit import audit_records, fetch_api_replies
from shared.privacy.identifiers import DEFAULT_ALLOWED_URLS
from shared.settings import ServiceSettings
from tests.harness import ServiceUnderTest, app_in_process, eventually
from tests.outcomes.test_network_view_rules import cohort


def network_settings(database_url: str, tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        service="outcomes",
        role="network",
        network_sites=["north", "south"],
        database_url=database_url,
        var_dir=tmp_path / "network",
        kafka_bootstrap_servers="127.0.0.1:1",  # no broker: the routes only read the database
        kafka_timeout_seconds=1,
    )


@pytest.fixture
async def network_service(new_database_url: Callable[[], str], tmp_path: Path) -> AsyncIterator[NetworkService]:
    settings = network_settings(new_database_url(), tmp_path)
    app = create_app(settings)
    async with app_in_process(app) as client:
        yield NetworkService(client, settings, app)


@pytest.fixture
async def standby_network_service(new_database_url: Callable[[], str], tmp_path: Path) -> AsyncIterator[NetworkService]:
    """A network service while another instance leads the index check (here: holds its lock and checks nothing),
    for a test that makes the index wrong and then checks it itself. The service's own first check would run
    beside the test from whenever its lock's connection opens, which on a loaded machine can be after the test
    made the index wrong: it then corrected the index first (reproduced with its start delayed by 60 ms)."""
    settings = network_settings(new_database_url(), tmp_path)
    elsewhere = Leadership(Database(settings.resolved_database_url()))
    role = outcomes_app.check_measure_index.__name__  # the lock the service's leader job runs under

    async def checks_nothing() -> None:
        await asyncio.Event().wait()

    leading = asyncio.create_task(elsewhere.lead(role, checks_nothing))
    try:
        await eventually(lambda: elsewhere.leading.get(role, False), 30, "the other instance to lead the check")
        app = create_app(settings)
        async with app_in_process(app) as client:
            yield NetworkService(client, settings, app)
    finally:
        leading.cancel()
        await asyncio.gather(leading, return_exceptions=True)
        await elsewhere.dispose()
        await elsewhere.database.dispose()


@dataclass
class NetworkService(ServiceUnderTest):
    app: FastAPI  # for a client of the test's own making (the console's)


INDEX_COLUMNS = ("site", "indication", "route", "period", "cut", "cut_value", "measure")


async def take_in(service: ServiceUnderTest, *cohorts: CohortOutcomesPublished) -> list[bool]:
    taken = []
    for published in cohorts:
        async with service.runtime.unit_of_work() as uow:
            taken.append(await network.record_cohort_outcomes(uow, published))
            await uow.commit()
    return taken


def network_cohorts() -> list[CohortOutcomesPublished]:
    """Two sites, two months, one of them with suppressed counts, and a cut."""
    return [
        cohort("north", "2026-01", responded=12, with_result=20, median_days_to_first_dose=9.5),
        cohort("south", "2026-01", courses=None, started=None, with_result=None, responded=None, completed=None),
        cohort("north", "2026-02", responded=15, with_result=20),
        cohort("south", "2026-02", responded=14, with_result=28),
        cohort("north", "2026-01", cut="age_band", cut_value="25-34", courses=12, started=11, with_result=None),
    ]


async def get(service: ServiceUnderTest, path: str, **params: str) -> Any:
    reply = await service.client.get(path, params=params, headers=service.as_("network_admin"))
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_the_latest_publication_is_kept_and_an_older_one_is_not(network_service: ServiceUnderTest) -> None:
    older, newer = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    assert await take_in(
        network_service,
        cohort(responded=11, generated_at=older),
        cohort(responded=22, generated_at=newer),
        cohort(responded=12, generated_at=older),
    ) == [True, True, False]
    assert await network_service.count(NetworkCohortOutcome) == 1
    [held] = await get(network_service, "/cohort-outcomes")
    assert held["instruments"][0]["responded"] == {"count": 22, "suppressed": False}


async def test_cohorts_by_site_indication_route_cut_and_period(network_service: ServiceUnderTest) -> None:
    await take_in(network_service, *network_cohorts())
    assert len(await get(network_service, "/cohort-outcomes")) == 5
    assert len(await get(network_service, "/cohort-outcomes", site="north")) == 3
    assert len(await get(network_service, "/cohort-outcomes", period="2026-01", cut="all")) == 2
    assert len(await get(network_service, "/cohort-outcomes", **{"from": "2026-02", "to": "2026-12"})) == 2
    assert await get(network_service, "/cohort-outcomes", indication="ptsd") == []
    assert len(await get(network_service, "/cohort-outcomes", route="iv_infusion", cut="age_band")) == 1
    [south] = await get(network_service, "/cohort-outcomes", site="south", period="2026-01")
    assert south["courses"] == {"count": None, "suppressed": True}, "suppressed travels as published: no number"


async def test_the_list_comes_a_page_at_a_time_following_its_links(network_service: ServiceUnderTest) -> None:
    await take_in(network_service, *network_cohorts())
    whole = await get(network_service, "/cohort-outcomes")
    keys = [(c["site"], c["indication"], c["route"], c["period"], c["cut"], c["cut_value"]) for c in whole]
    assert keys == sorted(keys) and len(keys) == 5
    admin = network_service.as_("network_admin")
    pages: list[list[dict[str, Any]]] = []
    reply = await network_service.client.get("/cohort-outcomes", params={"limit": 2}, headers=admin)
    while True:
        assert reply.status_code == 200, reply.text
        pages.append(reply.json())
        following = reply.links.get("next")
        if following is None:
            break
        assert "limit=2" in following["url"]  # the reader's criteria carry over
        reply = await network_service.client.get(following["url"], headers=admin)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [c for page in pages for c in page] == whole
    # Criteria and pages together: north's three cohorts, two then one.
    first = await network_service.client.get("/cohort-outcomes", params={"site": "north", "limit": 2}, headers=admin)
    rest = await network_service.client.get(first.links["next"]["url"], headers=admin)
    assert [c["site"] for c in first.json() + rest.json()] == ["north"] * 3 and "next" not in rest.links
    crafted: list[network.CohortKey] = [
        ("north", "depression", "iv_infusion", "2026-01", "all", "a\x00b"),  # PostgreSQL refuses a NUL in text
        ("north" * 9, "depression", "iv_infusion", "2026-01", "all", "all"),  # longer than the site column
    ]
    for bad in ("nope", "e30", "WyJhIl0", "%%%", *map(network_api.cohort_cursor, crafted)):  # not base64; {}; ["a"]
        refused = await network_service.client.get("/cohort-outcomes", params={"after": bad}, headers=admin)
        assert refused.status_code == 422 and "after" in refused.text, (bad, refused.text)


async def test_the_console_reads_the_whole_list_however_many_pages(network_service: NetworkService) -> None:
    # The network dashboard's reader (services/console): it follows each Link as given, the reader's criteria
    # with it; before, it sent an empty query with the next page's URL and read page one for ever.
    await take_in(network_service, *network_cohorts())
    console = ConsoleSettings(role="network", network_url="http://network")
    apis = SiteApis(console, httpx.ASGITransport(app=network_service.app))
    token = network_service.as_("network_admin")["Authorization"].removeprefix("Bearer ")
    try:
        async with asyncio.timeout(30):
            north = await apis.read_every_page(SiteService.network, "/cohort-outcomes", token, site="north", limit=2)
            whole = await apis.read_every_page(SiteService.network, "/cohort-outcomes", token, limit=1)
    finally:
        await apis.close()
    assert [c["site"] for c in north] == ["north"] * 3
    assert whole == await get(network_service, "/cohort-outcomes") and len(whole) == 5


async def test_totals_are_upper_bounds_and_never_read_a_suppressed_count_as_zero(
    network_service: ServiceUnderTest,
) -> None:
    await take_in(network_service, *network_cohorts())
    january = await get(network_service, "/cohort-outcomes/totals", period="2026-01")
    assert january["sites"] == ["north", "south"] and january["cut"] == "all"
    assert january["courses"]["status"] == "partial" and january["courses"]["sum_of_shown"] == 40
    assert january["courses"]["lower_bound"] is True and january["courses"]["upper_bound"] is False
    assert "suppressed" in january["courses"]["explanation"]
    assert january["instruments"][0]["response_rate"] is None

    february = await get(network_service, "/cohort-outcomes/totals", period="2026-02")
    assert february["courses"] == {
        "status": "complete",
        "sum_of_shown": 80,
        "cells": 2,
        "cells_suppressed": 0,
        "sites": 2,
        "upper_bound": True,
        "lower_bound": False,
        "explanation": february["courses"]["explanation"],
    }
    assert "upper bound" in february["courses"]["explanation"]
    assert february["instruments"][0]["response_rate"] == round(29 / 48, 4)

    by_age = await get(network_service, "/cohort-outcomes/totals", cut="age_band", cut_value="25-34")
    assert by_age["courses"]["sum_of_shown"] == 12 and by_age["sites"] == ["north"]


async def test_the_trend_is_a_month_by_month_series(network_service: ServiceUnderTest) -> None:
    await take_in(network_service, *network_cohorts())
    points = await get(
        network_service, "/cohort-outcomes/trend", instrument="phq9", indication="treatment_resistant_depression"
    )
    assert [p["period"] for p in points] == ["2026-01", "2026-02"]
    assert [p["totals"]["instruments"][0]["responded"]["sum_of_shown"] for p in points] == [12, 29]
    assert [p["totals"]["instruments"][0]["responded"]["status"] for p in points] == ["partial", "complete"]
    north = await get(network_service, "/cohort-outcomes/trend", site="north")
    assert [p["totals"]["instruments"][0]["response_rate"] for p in north] == [0.6, 0.75]


async def test_one_cohort_by_id_and_404s(network_service: ServiceUnderTest) -> None:
    await take_in(network_service, *network_cohorts())
    reports = (await get(network_service, "/fhir/MeasureReport", site="north", period="2026-02"))["entry"]
    cohort_id = reports[0]["resource"]["id"].rsplit("-", 1)[1]
    one = await get(network_service, f"/cohort-outcomes/{cohort_id}")
    assert (one["site"], one["period"]) == ("north", "2026-02")
    admin = network_service.as_("network_admin")
    assert (await network_service.client.get("/cohort-outcomes/nope", headers=admin)).status_code == 404
    missing = await network_service.client.get("/fhir/MeasureReport/response-phq9-nope", headers=admin)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    assert (await network_service.client.get("/fhir/Measure/nope", headers=admin)).status_code == 404
    bad = await network_service.client.get("/cohort-outcomes", params={"period": "2026-1"}, headers=admin)
    assert bad.status_code == 422


async def test_fhir_measure_reports_by_criteria_and_by_id(network_service: ServiceUnderTest) -> None:
    await take_in(network_service, *network_cohorts())
    bundle = await get(network_service, "/fhir/MeasureReport", site="south", period="2026-01", measure="response-phq9")
    [report] = [e["resource"] for e in bundle["entry"]]
    assert (report["type"], report["status"]) == ("summary", "complete")
    assert report["period"] == {"start": "2026-01-01", "end": "2026-01-31"}
    assert report["measure"] == "https://kapnet.example/fhir/Measure/response-phq9"
    populations = report["group"][0]["population"]
    assert all("count" not in p for p in populations), "suppressed counts are not numbers"
    assert all(p["_count"]["extension"][0]["valueCode"] == "masked" for p in populations)
    assert "suppressed" in report["text"]["div"]
    assert await get(network_service, f"/fhir/MeasureReport/{report['id']}") == report

    by_url = await get(network_service, "/fhir/MeasureReport", measure=report["measure"], site="north")
    assert {e["resource"]["measure"] for e in by_url["entry"]} == {report["measure"]}
    assert len(by_url["entry"]) == 3
    cut = await get(network_service, "/fhir/MeasureReport", **{"cut": "age_band", "cut-value": "25-34"})
    assert cut["entry"] and all(
        c["valueCodeableConcept"]["text"] == "25-34"
        for e in cut["entry"]
        for c in e["resource"]["contained"][0]["characteristic"][2:]
    )

    measures = await get(network_service, "/fhir/Measure")
    assert {e["resource"]["id"] for e in measures["entry"]} >= {"response-phq9", "remission-pcl5", "time-to-first-dose"}
    one = await get(network_service, "/fhir/Measure", url="https://kapnet.example/fhir/Measure/adverse-events")
    assert [e["resource"]["id"] for e in one["entry"]] == ["adverse-events"]


async def test_measure_reports_come_in_pages_that_the_next_links_walk_through_once_each(
    network_service: ServiceUnderTest,
) -> None:
    await take_in(network_service, *network_cohorts())
    whole = await get(network_service, "/fhir/MeasureReport", _count="1000")
    every = [e["fullUrl"] for e in whole["entry"]]
    assert whole["total"] == len(every) == sum(len(reported_measures(c)) for c in network_cohorts()) > 6
    assert "next" not in {link["relation"] for link in whole["link"]}

    admin = network_service.as_("network_admin")
    walked: list[str] = []
    page = await get(network_service, "/fhir/MeasureReport", _count="4")
    pages = 1
    assert {link["relation"] for link in page["link"]} == {"self", "first", "next"}
    while True:
        assert page["total"] == len(every) and len(page["entry"]) <= 4
        walked += [e["fullUrl"] for e in page["entry"]]
        links = {link["relation"]: link["url"] for link in page["link"]}
        if "next" not in links:
            break
        reply = await network_service.client.get(links["next"], headers=admin)  # the link as given, absolute
        assert reply.status_code == 200, reply.text
        page = reply.json()
        pages += 1
        assert "previous" in {link["relation"] for link in page["link"]}
    assert walked == every and pages == -(-len(every) // 4)

    for bad in ({"_count": "0"}, {"_count": "1001"}, {"_offset": "-1"}):
        reply = await network_service.client.get("/fhir/MeasureReport", params=bad, headers=admin)
        assert reply.status_code == 422, (bad, reply.text)
    beyond = await get(network_service, "/fhir/MeasureReport", _offset="1000")
    assert beyond["total"] == len(every) and "entry" not in beyond


async def indexed_reports(service: ServiceUnderTest) -> set[tuple[str, ...]]:
    async with service.database.sessions() as session:
        return {
            (r.site, r.indication, r.route, r.period, r.cut, r.cut_value, r.measure)
            for r in (await session.exec(select(NetworkMeasureReport))).all()
        }


def reports_of(*cohorts: CohortOutcomesPublished) -> set[tuple[str, ...]]:
    return {(*network.cohort_key(c), m.id) for c in cohorts for m in reported_measures(c)}


async def test_the_index_check_makes_the_index_agree_with_the_cohorts_as_the_code_judges_them(
    standby_network_service: ServiceUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks of 2: the 5 cohorts are judged in three chunks, and rows between and after them are found too.
    monkeypatch.setattr(network, "MEASURE_INDEX_CHECK_CHUNK", 2)
    cohorts = network_cohorts()
    await take_in(standby_network_service, *cohorts)
    assert await indexed_reports(standby_network_service) == reports_of(*cohorts), "a take-in indexes its reports"
    check = standby_network_service.runtime.unit_of_work
    assert await network.check_measure_index(check) == 0, "an index that agrees is left alone"

    # As after an upgrade whose code judges cohorts otherwise: a report missing, one no cohort has, one of a
    # cohort no longer held (before, between and after the held keys).
    missing = sorted(reports_of(*cohorts))[3]
    async with standby_network_service.runtime.unit_of_work() as uow:
        row = sa.tuple_(*network.REPORT_KEY_COLUMNS, col(NetworkMeasureReport.measure))
        await uow.session.execute(sa.delete(NetworkMeasureReport).where(row == sa.tuple_(*map(sa.literal, missing))))
        stray = ("completion",)
        strays = [
            dict(zip(INDEX_COLUMNS, (*network.cohort_key(cohorts[0]), "retired-measure"), strict=True)),
            *(
                dict(zip(INDEX_COLUMNS, (s, "ocd", "iv_infusion", "2026-01", "all", "all", *stray), strict=True))
                for s in ("aaa", "nnn", "zzz")
            ),
        ]
        await uow.session.execute(sa.insert(NetworkMeasureReport), strays)
        await uow.commit()
    search = await get(standby_network_service, "/fhir/MeasureReport", _count="1000")
    # The search trusts the index for the measures this code defines: the retired measure's row is not counted.
    assert search["total"] == len(reports_of(*cohorts)) - 1 + 3

    # The cohort missing a report, cohorts[0] with a report of a retired measure, and the 3 no longer held.
    assert await network.check_measure_index(check) == len({missing[:6], network.cohort_key(cohorts[0])}) + 3
    assert await indexed_reports(standby_network_service) == reports_of(*cohorts)
    search = await get(standby_network_service, "/fhir/MeasureReport", _count="1000")
    assert search["total"] == len(search["entry"]) == len(reports_of(*cohorts))


async def test_take_ins_beside_the_index_check_leave_the_index_exact(
    network_service: ServiceUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # From the review of the index: 40 transactions replace 10 cohorts each (randomly without some measures) while
    # the check runs 5 times in chunks of 3; afterwards the index is exactly what the latest versions report.
    monkeypatch.setattr(network, "MEASURE_INDEX_CHECK_CHUNK", 3)
    held = [cohort(site, f"2026-{month:02d}", nausea=12) for site in ("north", "south") for month in range(1, 13)]
    await take_in(network_service, *held)
    latest = {network.cohort_key(c): c for c in held}
    chance = random.Random(1)

    async def replace_ten(n: int) -> None:
        versions = [
            c.model_copy(
                update={
                    "generated_at": datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=n),
                    "adverse_events": [] if chance.random() < 0.5 else c.adverse_events,
                    "instruments": [] if chance.random() < 0.5 else c.instruments,
                }
            )
            for c in chance.sample(held, 10)
        ]
        async with network_service.runtime.unit_of_work() as uow:
            # In key order, as no two of the network consumer's batches take the same cohorts in other orders.
            for version in sorted(versions, key=network.cohort_key):
                await network.record_cohort_outcomes(uow, version)
            await uow.commit()
        for version in versions:
            key = network.cohort_key(version)
            if latest[key].generated_at <= version.generated_at:
                latest[key] = version

    async def checks() -> None:
        for _ in range(5):
            await network.check_measure_index(network_service.runtime.unit_of_work)

    await asyncio.wait_for(asyncio.gather(checks(), *(replace_ten(n) for n in range(40))), 120)
    assert await indexed_reports(network_service) == reports_of(*latest.values())
    assert await network.check_measure_index(network_service.runtime.unit_of_work) == 0


async def test_a_page_is_read_in_one_snapshot_that_a_take_in_cannot_change_midway(
    network_service: ServiceUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A replacement that reports fewer measures is taken in between the page's query and the read of its cohorts
    # (by the review of the index: on PostgreSQL the page came back with 2 of 5 entries under a total of 7).
    first = cohort("north", "2026-01", nausea=12)
    await take_in(network_service, first)
    fewer = first.model_copy(
        update={"instruments": [], "adverse_events": [], "generated_at": datetime(2026, 3, 1, tzinfo=UTC)}
    )
    page_cohorts = network.cohorts_keyed
    # Only the page's request (the ASGI transport runs it in this task) takes the detour. The leader's first
    # index check runs beside it and calls cohorts_keyed too, holding the cohort's lock: a take-in from there
    # would wait on its own caller (the CI run of 4f4f594 hung so for 300 s).
    page_task = asyncio.current_task()

    async def replaced_meanwhile(uow: Any, keys: Any) -> Any:
        if asyncio.current_task() is page_task:
            await take_in(network_service, fewer)
        return await page_cohorts(uow, keys)

    monkeypatch.setattr(network, "cohorts_keyed", replaced_meanwhile)
    page = await get(network_service, "/fhir/MeasureReport", _count="5")
    assert page["total"] == len(reported_measures(first)) and len(page["entry"]) == 5, "the page as it was read"
    monkeypatch.setattr(network, "cohorts_keyed", page_cohorts)
    after = await get(network_service, "/fhir/MeasureReport", _count="1000")
    assert after["total"] == len(after["entry"]) == len(reported_measures(fewer))
    ids = [e["resource"]["id"].rsplit("-", 1)[0] for e in after["entry"]]
    assert ids == sorted(ids), "a cohort's reports come in the order of the measures' ids"


async def test_the_leader_indexes_the_cohorts_held_before_the_index_was_and_checks_again_later(
    standby_network_service: ServiceUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As just after the migration that made the index: cohorts held, none indexed.
    cohorts = network_cohorts()
    await take_in(standby_network_service, *cohorts)

    async def forget_the_index() -> None:
        async with standby_network_service.runtime.unit_of_work() as uow:
            await uow.session.execute(sa.delete(NetworkMeasureReport))
            await uow.commit()

    async def indexed_again() -> bool:
        for _ in range(100):
            if await indexed_reports(standby_network_service) == reports_of(*cohorts):
                return True
            await asyncio.sleep(0.05)
        return False

    await forget_the_index()
    assert (await get(standby_network_service, "/fhir/MeasureReport"))["total"] == 0
    assert outcomes_app.check_measure_index in outcomes_app.NETWORK_ROLE.background
    monkeypatch.setattr(outcomes_app, "MEASURE_INDEX_CHECK_INTERVAL_SECONDS", 0.5)
    job = asyncio.create_task(outcomes_app.check_measure_index(standby_network_service.runtime))
    try:
        assert await indexed_again()
        assert (await get(standby_network_service, "/fhir/MeasureReport"))["total"] == len(reports_of(*cohorts))
        # As cohorts an older release took in without index rows, during a rolling upgrade: the next check.
        await forget_the_index()
        assert await indexed_again()
        assert not job.done(), "the job waits for its next check, or the supervisor would start it again at once"
    finally:
        job.cancel()


async def test_only_the_network_admin_reads(network_service: ServiceUnderTest) -> None:
    for path in ("/cohort-outcomes", "/cohort-outcomes/totals", "/fhir/Measure", "/fhir/MeasureReport"):
        assert (await network_service.client.get(path)).status_code == 401
        clinician = network_service.as_("clinician")
        assert (await network_service.client.get(path, headers=clinician)).status_code == 403


async def test_a_cut_without_its_value_is_a_422_that_says_so(network_service: ServiceUnderTest) -> None:
    await take_in(network_service, *network_cohorts())
    for path in ("/cohort-outcomes/totals", "/cohort-outcomes/trend"):
        reply = await network_service.client.get(
            path, params={"cut": "payer"}, headers=network_service.as_("network_admin")
        )
        assert reply.status_code == 422, path
        assert "cut_value is required" in reply.json()["detail"]


async def test_the_privacy_auditor_reads_every_page_and_finds_the_network_api_clean(
    network_service: ServiceUnderTest,
) -> None:
    await take_in(network_service, *network_cohorts())
    whole = await get(network_service, "/fhir/MeasureReport", site="north", _count="1000")
    token = network_service.as_("network_admin")["Authorization"].removeprefix("Bearer ")
    transport = network_service.client._transport  # the app itself, in this process
    fetched = await fetch_api_replies("http://service", token, page_size=3, transport=transport)
    assert fetched.failures == []
    pages = [r for r in fetched.replies if r.request.startswith("GET /fhir/MeasureReport?site=north")]
    assert len(pages) == -(-whole["total"] // 3) > 1
    bodies: list[Any] = [p.body for p in pages]
    assert [e["fullUrl"] for b in bodies for e in b["entry"]] == [e["fullUrl"] for e in whole["entry"]]
    report = audit_records([], fetched.replies, allowed_urls=(*DEFAULT_ALLOWED_URLS, "http://service/"))
    assert report.clean, report.render()
