"""The synthetic cohort end to end: generate, publish, consume at each site, publish to the network, read back.

    python -m bench.synthetic_cohort [--patients 1000] [--sites 2] [--seed 1] [--database sqlite|postgresql]
                                     [--bootstrap HOST:PORT] [--publish-interval 5] [--quick]

1. Generation: ``deploy.synthetic.cohort(patients, sites, seed)`` (pure, no I/O), and ``figures()`` of it.
2. Publishing: ``deploy.synthetic.publish(events, bootstrap)``, against a baseline measured in the same run: the
   same records (pre-encoded) produced by a plain idempotent ``AIOKafkaProducer`` to fresh topics, clocked the same
   way (topic creation, producer start, sends, acknowledgements, stop).
3. The real outcomes service in process: the SITE role for each site and the NETWORK role, each with its own fresh
   database. Clocks: until each site's consumer has taken in everything (its tables against the events), until the
   first site beat that started after that has finished, and until the network holds the latest of every cohort
   the site published. One beat (``review_site``) is also timed by itself at the end.
4. The network's figures, read from its REST API with a network_admin token.

Figures only: nothing here asserts a timing (the machine is shared). A run that did not do the work (a dead
letter, a table that does not match the events) fails instead of printing figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from sqlalchemy import func
from sqlmodel import SQLModel, col, select

from bench.pipeline import Infrastructure, delete_topics, infrastructure
from bench.pipeline import Options as InfrastructureOptions
from deploy import synthetic
from deploy.synthetic import Figures, SyntheticEvent
from services.outcomes.app import create_app
from services.outcomes.domain.definitions import OutcomeDefinition, site_definition
from services.outcomes.domain.network_view import NetworkTotal, NetworkTotals, TotalStatus
from services.outcomes.models import NetworkCohortOutcome, OutcomeCourse, OutcomeDose, OutcomeMeasurement
from services.outcomes.service import beat
from services.outcomes.service.beat import BeatReport, PrivacyBudgetSettings, review_site
from shared.app import ServiceRuntime
from shared.auth.tokens import mint_dev_token
from shared.bus.consumer import EventConsumer
from shared.bus.kafka import TopicSpec, ensure_topics, reliable_producer, start_with_timeout, stop_quietly
from shared.bus.tables import OutboxMessage
from shared.db.unit_of_work import UnitOfWork
from shared.events.envelope import to_kafka
from shared.events.intake import AssessmentRecorded
from shared.events.outcomes import CohortOutcomesPublished
from shared.events.sessions import CoursePlanned, CourseStatusChanged, DoseAdministered, InCourseAssessmentRecorded
from shared.privacy.release import ReleasePeriod
from shared.settings import ServiceSettings
from shared.treatment import CourseStatus, Indication

DEFAULT_PATIENTS = 1000
QUICK_PATIENTS = 100
DEFAULT_SITES = 2
DEFAULT_SEED = 1
DEFAULT_PUBLISH_INTERVAL = 5.0
TIME_ZONE = "America/New_York"
PCL5_CUTOFF = 33  # the settings' default; the beat timed by itself uses site_definition(33)
PARTITIONS = 3  # publish()'s default, and a site topic's partitions (ServiceSettings.kafka_site_topic_partitions)
KAFKA_TIMEOUT = 30.0
POLL_SECONDS = 0.25
SHOWN_AT = 11  # a cohort shows its figures when it has this many started courses or more
COHORT_EVENT = CohortOutcomesPublished.ce_type()

log = logging.getLogger("bench.synthetic_cohort")


# ------------------------------------------------------------------------------------------ options


@dataclass(frozen=True)
class Options:
    patients: int
    sites: int
    seed: int
    database: str
    bootstrap: str | None
    publish_interval: float


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.synthetic_cohort",
        description="The synthetic cohort through publishing, the outcomes service (site and network roles) and "
        "the network's REST API. Prints figures.",
    )
    parser.add_argument("--patients", type=int, default=None, help=f"patients (default {DEFAULT_PATIENTS})")
    parser.add_argument("--sites", type=int, default=DEFAULT_SITES, help=f"sites (default {DEFAULT_SITES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--bootstrap", help="a running broker (else $KAFKA_BOOTSTRAP_SERVERS, else a temp node)")
    parser.add_argument(
        "--publish-interval",
        type=float,
        default=DEFAULT_PUBLISH_INTERVAL,
        help=f"the sites' aggregate_publish_interval_seconds, their beat (default {DEFAULT_PUBLISH_INTERVAL:g})",
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PATIENTS} patients (a smoke test)")
    args = parser.parse_args(argv)
    patients = args.patients if args.patients is not None else (QUICK_PATIENTS if args.quick else DEFAULT_PATIENTS)
    if patients < 1 or args.sites < 1 or args.publish_interval <= 0:
        parser.error("--patients and --sites must be at least 1, --publish-interval above 0")
    bootstrap = args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None
    return Options(patients, args.sites, args.seed, args.database, bootstrap, args.publish_interval)


# ------------------------------------------------------------------------------------------ helpers


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} ev/s" if seconds > 0 else "- ev/s"


async def _until(
    done: Callable[[], Awaitable[bool]], within: float, what: Callable[[], str], every: float = POLL_SECONDS
) -> None:
    deadline = time.perf_counter() + within
    while not await done():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {within:.0f}s waiting for {what()}")
        await asyncio.sleep(every)


def _count_line(label: str, total: NetworkTotal) -> str:
    return f"{label} {_total(total)}"


def _total(total: NetworkTotal) -> str:
    """A network sum as it may be read: a number, a lower bound over the shown cells, or nothing."""
    match total.status:
        case TotalStatus.complete:
            return f"{total.sum_of_shown:,}"
        case TotalStatus.partial:
            return f">={total.sum_of_shown:,} ({total.cells_suppressed}/{total.cells} supp.)"
        case TotalStatus.suppressed:
            return f"supp. ({total.cells}/{total.cells})"
        case _:
            return "-"


def _cell(count: int | None) -> str:
    return "supp." if count is None else f"{count:,}"


def _pct(rate: float | None) -> str:
    return "not shown" if rate is None else f"{rate * 100:.1f} %"


def _share(part: NetworkTotal, whole: NetworkTotal) -> str | None:
    """part/whole per 100, only when both sums are complete (as the network's own rates)."""
    if part.status is not TotalStatus.complete or whole.status is not TotalStatus.complete or not whole.sum_of_shown:
        return None
    assert part.sum_of_shown is not None
    return f"{part.sum_of_shown * 100 / whole.sum_of_shown:.1f} per 100 started"


# --------------------------------------------------------------------------------- 2. publishing


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def wire_records(events: Sequence[SyntheticEvent], topic_of: Callable[[str], str]) -> list[Record]:
    """What publish() puts on the wire for these events (its to_kafka of each envelope), on other topics."""
    records = []
    for item in events:
        headers, value = to_kafka(item.envelope)
        records.append(Record(topic_of(item.topic), item.key.encode(), value, list(headers)))
    return records


@dataclass
class BaselineResult:
    elapsed: float  # topics + start + sends acknowledged + stop
    topics: float
    start: float
    send: float
    stop: float


async def run_baseline(bootstrap: str, records: Sequence[Record]) -> BaselineResult:
    """A plain idempotent producer, clocked as publish() is: create the topics, start, send everything, wait
    for every acknowledgement, stop. (The relay's linger and batch size, so the gap is not producer tuning.)"""
    started = time.perf_counter()
    topics = sorted({r.topic for r in records})
    await ensure_topics(bootstrap, [TopicSpec(t, partitions=PARTITIONS) for t in topics], KAFKA_TIMEOUT)
    created = time.perf_counter()
    producer = reliable_producer(bootstrap, KAFKA_TIMEOUT)  # as deploy.synthetic.publish, which it is compared with
    await start_with_timeout(producer, KAFKA_TIMEOUT)
    up = time.perf_counter()
    try:
        futures = [await producer.send(r.topic, value=r.value, key=r.key, headers=r.headers) for r in records]
        await asyncio.wait_for(asyncio.gather(*futures), KAFKA_TIMEOUT * 4)
        sent = time.perf_counter()
    finally:
        await stop_quietly(producer, KAFKA_TIMEOUT)
    stopped = time.perf_counter()
    return BaselineResult(stopped - started, created - started, up - created, sent - up, stopped - sent)


# ------------------------------------------------------------------------------ 3. the services


@dataclass
class BeatRun:
    site: str
    started: float  # seconds on the services' clock
    ended: float
    report: BeatReport | None
    error: str | None = None

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class SiteExpectation:
    """What a site's outcomes must hold once it has consumed its events."""

    events: int  # on its three topics
    handled: int  # of those, types its consumer has a handler for (filled in once the consumer exists)
    tables: dict[type[SQLModel], int]
    final_status: dict[uuid.UUID, CourseStatus]


def expectations(events: Sequence[SyntheticEvent], site: str) -> SiteExpectation:
    mine = [e for e in events if e.topic.split(".")[1] == site]
    typed = [e.event for e in mine]
    final_status: dict[uuid.UUID, CourseStatus] = {}
    for event in typed:
        if isinstance(event, CourseStatusChanged):
            final_status[event.course_id] = event.status
    return SiteExpectation(
        events=len(mine),
        handled=0,
        tables={
            OutcomeCourse: sum(isinstance(e, CoursePlanned) for e in typed),
            OutcomeMeasurement: sum(isinstance(e, AssessmentRecorded | InCourseAssessmentRecorded) for e in typed),
            OutcomeDose: sum(isinstance(e, DoseAdministered) for e in typed),
        },
        final_status=final_status,
    )


@dataclass
class SiteRun:
    site: str
    settings: ServiceSettings
    app: FastAPI
    expected: SiteExpectation
    assigned_at: float | None = None
    consumed_at: float | None = None
    beat_done_at: float | None = None  # the first beat that started after consumed_at has ended
    first_full_beat: BeatRun | None = None
    network_at: float | None = None
    cohorts_published: int = 0  # distinct cohorts the site published
    publications: int = 0  # CohortOutcomesPublished messages, re-publications included
    timed_beat: BeatRun | None = None

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime

    @property
    def consumer(self) -> EventConsumer:
        return self.runtime.consumers[0]

    def progress(self) -> str:
        c = self.consumer
        return (
            f"{self.site}: {c.processed_total} of {self.expected.handled} handled events processed, "
            f"{c.dead_lettered_total} dead-lettered, lag {c.health.lag}"
        )


async def _count(runtime: ServiceRuntime, table: type[SQLModel]) -> int:
    async with runtime.database.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(table))).one())


async def _holds_everything(run: SiteRun) -> bool:
    for table, n in run.expected.tables.items():
        if await _count(run.runtime, table) != n:
            return False
    async with run.runtime.database.sessions() as session:
        statuses = {c.course_id: c.status for c in (await session.exec(select(OutcomeCourse))).all()}
    return all(statuses.get(course) == status for course, status in run.expected.final_status.items())


async def _latest_published(run: SiteRun) -> dict[str, CohortOutcomesPublished]:
    """The latest publication of every cohort in the site's outbox (and, once sent, on the network topic)."""
    async with run.runtime.database.sessions() as session:
        messages = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.ce_type) == COHORT_EVENT).order_by(col(OutboxMessage.id))
            )
        ).all()
    run.publications = len(messages)
    figures = [CohortOutcomesPublished.model_validate_json(m.payload) for m in messages]
    return {f.cohort_key: f for f in figures}


async def _network_holds(run: SiteRun, network: ServiceRuntime) -> bool:
    """Every cohort the site published is at the network as the site last published it."""
    if await run.runtime.relay.pending_count():
        return False
    latest = await _latest_published(run)
    async with network.database.sessions() as session:
        rows = (
            await session.exec(select(NetworkCohortOutcome).where(col(NetworkCohortOutcome.site) == run.site))
        ).all()
    held = {
        published.cohort_key: published
        for published in (CohortOutcomesPublished.model_validate(r.outcomes) for r in rows)
    }
    run.cohorts_published = len(latest)
    return bool(latest) and held == latest


def _site_settings(options: Options, infra: Infrastructure, var_dir: Path, site: str, url: str) -> ServiceSettings:
    return ServiceSettings(
        service="outcomes",
        site=site,
        database_url=url,
        var_dir=var_dir,
        kafka_bootstrap_servers=infra.bootstrap,
        time_zone=TIME_ZONE,
        pcl5_cutoff=PCL5_CUTOFF,
        aggregate_publish_interval_seconds=options.publish_interval,
        # Every beat may release (still held to the step rule): the bench times the network catching up.
        release_period="beat",
    )


@contextlib.asynccontextmanager
async def _in_process(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (migrations, relay, consumers, beat) in this event loop, and an HTTP client on it
    (as tests/harness.py app_in_process)."""
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
            yield client


def _services_timeout(events: int) -> float:
    # Generous: a stuck run should fail with its counters, not hang a shared machine forever.
    return 120.0 + events * 0.05


class Services:
    """The outcomes service of every site and of the network, in this process, with every beat of a site timed
    (the service's own beat loop calls ``beat.review_site``; a wrapper around it notes when each ran)."""

    def __init__(
        self,
        options: Options,
        infra: Infrastructure,
        events: Sequence[SyntheticEvent],
        site_urls: dict[str, str],
        network_url: str,
        var_dir: Path,
    ) -> None:
        self.events = events
        self.runs = [
            SiteRun(site, settings, create_app(settings), expectations(events, site))
            for site, url in site_urls.items()
            for settings in [_site_settings(options, infra, var_dir, site, url)]
        ]
        self.network_settings = ServiceSettings(
            service="outcomes",
            role="network",
            network_sites=list(site_urls),
            database_url=network_url,
            var_dir=var_dir,
            kafka_bootstrap_servers=infra.bootstrap,
            time_zone=TIME_ZONE,
        )
        self.network_app = create_app(self.network_settings)
        self.beats: list[BeatRun] = []
        self.beat_saw: dict[int, int] = {}  # id(BeatRun) -> events the site's consumer had processed at its start
        self.running: Counter[str] = Counter()  # beats in progress, per site
        self.clock = time.perf_counter()
        self.up_at = 0.0

    def now(self) -> float:
        return time.perf_counter() - self.clock

    def run_of(self, site: str) -> SiteRun:
        return next(r for r in self.runs if r.site == site)

    @property
    def network(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.network_app.state.runtime
        return runtime

    async def timed_review(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        site: str,
        zone: ZoneInfo,
        definition: OutcomeDefinition,
        period: ReleasePeriod,
        now: datetime | None = None,
        noise: PrivacyBudgetSettings | None = None,
    ) -> BeatReport:
        """The service's beat, as it is, with its start, end, report and what its site had consumed noted."""
        started, saw = self.now(), self.run_of(site).consumer.processed_total
        self.running[site] += 1
        try:
            report = await review_site(unit_of_work, site, zone, definition, period, now, noise)
        except Exception as exc:
            self.beats.append(BeatRun(site, started, self.now(), None, type(exc).__name__))
            raise
        finally:
            self.running[site] -= 1
        run = BeatRun(site, started, self.now(), report)
        self.beat_saw[id(run)] = saw
        self.beats.append(run)
        return report

    @contextlib.asynccontextmanager
    async def started(self) -> AsyncIterator[httpx.AsyncClient]:
        with mock.patch.object(beat, "review_site", self.timed_review):
            async with contextlib.AsyncExitStack() as stack:
                self.clock = time.perf_counter()
                client = await stack.enter_async_context(_in_process(self.network_app))
                for run in self.runs:
                    await stack.enter_async_context(_in_process(run.app))
                self.up_at = self.now()
                for run in self.runs:
                    topics = {t.name for t in run.consumer.config.topics}
                    run.expected.handled = sum(
                        e.topic in topics and e.envelope.type in run.consumer.handlers for e in self.events
                    )
                yield client

    def check_health(self) -> None:
        for run in self.runs:
            if run.consumer.dead_lettered_total:
                raise RuntimeError(f"events were dead-lettered: {run.progress()}")
        for consumer in self.network.consumers:
            if consumer.dead_lettered_total:
                raise RuntimeError(f"the network dead-lettered {consumer.dead_lettered_total} publication(s)")

    def progress(self) -> str:
        return "; ".join(
            f"{r.progress()}, consumed at {r.consumed_at}, beat done at {r.beat_done_at}, network at {r.network_at}"
            for r in self.runs
        )

    async def wait_until_the_network_holds_everything(self) -> None:
        """The clocks: each site's consumer joined, took in everything, a beat that saw all of it ended, and the
        network holds the latest of every cohort the site published."""
        last_network_check = 0.0

        async def done() -> bool:
            nonlocal last_network_check
            self.check_health()
            for run in self.runs:
                consumer = run.consumer
                client = consumer._consumer  # no public readiness signal (as bench/pipeline.py)
                if run.assigned_at is None and client is not None and client.assignment():
                    run.assigned_at = self.now()
                if run.consumed_at is None and consumer.processed_total >= run.expected.handled:
                    run.consumed_at = self.now()
                    if not await _holds_everything(run):
                        raise RuntimeError(f"{run.site}: every event processed, but the tables do not match them")
                if run.consumed_at is not None and run.beat_done_at is None:
                    full = [
                        b
                        for b in self.beats
                        if b.site == run.site and b.report is not None and self.beat_saw[id(b)] >= run.expected.handled
                    ]
                    if full:
                        run.first_full_beat, run.beat_done_at = full[0], full[0].ended
            waiting = [r for r in self.runs if r.beat_done_at is not None and r.network_at is None]
            if waiting and self.now() - last_network_check >= 1.0:
                last_network_check = self.now()
                lag = [c.health.lag for c in self.network.consumers]
                if all(value == 0 for value in lag):
                    for run in waiting:
                        if await _network_holds(run, self.network):
                            run.network_at = self.now()
            return all(r.network_at is not None for r in self.runs)

        await _until(done, _services_timeout(len(self.events)), self.progress, every=0.05)

    async def time_one_beat(self, run: SiteRun) -> None:
        """One beat by itself, ``review_site`` in a unit of work of the site's runtime, once no beat of the site's
        own is running (the service judges again only after an event or a new day, so none starts meanwhile)."""

        async def no_beat_running() -> bool:
            return not self.running[run.site]

        await _until(no_beat_running, 120.0, lambda: f"{run.site}'s beat to end", every=0.01)
        started = self.now()
        report = await review_site(
            run.runtime.unit_of_work, run.site, run.settings.zone, site_definition(PCL5_CUTOFF), ReleasePeriod.beat
        )
        run.timed_beat = BeatRun(run.site, started, self.now(), report)


# ------------------------------------------------------------------------------- 4. the network


@dataclass
class NetworkFigures:
    overall: NetworkTotals
    by_site: dict[str, NetworkTotals]
    by_indication: dict[str, NetworkTotals]
    by_route: dict[str, NetworkTotals]
    cohorts: list[CohortOutcomesPublished] = field(default_factory=list)


async def read_network(client: httpx.AsyncClient, headers: dict[str, str], sites: Sequence[str]) -> NetworkFigures:
    async def totals(**params: str) -> NetworkTotals:
        reply = await client.get("/cohort-outcomes/totals", params={"cut": "all", **params}, headers=headers)
        reply.raise_for_status()
        return NetworkTotals.model_validate(reply.json())

    overall = await totals()
    cohorts: list[CohortOutcomesPublished] = []
    following: str | None = "/cohort-outcomes"
    while following is not None:  # every page: each reply's Link header names the next
        reply = await client.get(following, headers=headers)
        reply.raise_for_status()
        cohorts.extend(CohortOutcomesPublished.model_validate(c) for c in reply.json())
        following = reply.links.get("next", {}).get("url")
    return NetworkFigures(
        overall=overall,
        by_site={site: await totals(site=site) for site in sites},
        by_indication={i.value: await totals(indication=i.value) for i in overall.indications},
        by_route={r.value: await totals(route=r.value) for r in overall.routes},
        cohorts=cohorts,
    )


def totals_lines(label: str, t: NetworkTotals, indent: str = "  ") -> list[str]:
    lines = [
        f"{indent}{label}: {len(t.periods)} month(s) {'..'.join(t.periods[:1] + t.periods[-1:])}, "
        f"{len(t.sites)} site(s); courses {_total(t.courses)}, started {_total(t.started)}, "
        f"completed {_total(t.completed)}, dropped out {_total(t.dropped_out)}"
    ]
    for i in t.instruments:
        lines.append(
            f"{indent}  {i.instrument}: with a result {_total(i.with_result)}, responded {_total(i.responded)} "
            f"(rate {_pct(i.response_rate)}), remitted {_total(i.remitted)} (rate {_pct(i.remission_rate)})"
        )
    seen = [a for a in t.adverse_events if a.courses.sum_of_shown or a.courses.cells_suppressed]
    if seen:
        lines.append(
            f"{indent}  adverse events, courses with one: "
            + "; ".join(
                f"{a.type.value} {_total(a.courses)}"
                + ("" if (share := _share(a.courses, t.started)) is None else f" = {share}")
                + (
                    ""
                    if not (a.serious_courses.sum_of_shown or a.serious_courses.cells_suppressed)
                    else f", serious {_total(a.serious_courses)}"
                )
                for a in seen
            )
        )
    if t.barriers:
        lines.append(
            f"{indent}  access barriers, courses: " + "; ".join(f"{b.reason} {_total(b.courses)}" for b in t.barriers)
        )
    return lines


def short_line(label: str, t: NetworkTotals, instrument: str) -> str:
    figures = next((i for i in t.instruments if i.instrument == instrument), None)
    result = (
        ""
        if figures is None
        else f"; {instrument} responded {_total(figures.responded)} of {_total(figures.with_result)} "
        f"({_pct(figures.response_rate)}), remitted {_total(figures.remitted)} ({_pct(figures.remission_rate)})"
    )
    return (
        f"    {label:<30} courses {_total(t.courses)}, started {_total(t.started)}, completed {_total(t.completed)}, "
        f"dropped out {_total(t.dropped_out)}{result}"
    )


def cohort_lines(cohorts: Sequence[CohortOutcomesPublished], runs: Sequence[SiteRun]) -> list[str]:
    def shows(c: CohortOutcomesPublished) -> bool:
        return c.started.count is not None and c.started.count >= SHOWN_AT

    by_cut: Counter[str] = Counter(c.cut for c in cohorts)
    shown_by_cut: Counter[str] = Counter(c.cut for c in cohorts if shows(c))
    emptied = sum(c.courses.count == 0 for c in cohorts)
    lines = [
        "  published by the sites: "
        + "; ".join(
            f"{r.site} {r.cohorts_published} cohorts in {r.publications} publications "
            f"(re-publications as figures changed)"
            for r in runs
        ),
        f"  held by the network: {len(cohorts)} cohorts, {sum(shows(c) for c in cohorts)} show figures "
        f"(started >= {SHOWN_AT}), {emptied} emptied (a course moved to its first dose's month)",
        "  by cut (held / showing figures): "
        + ", ".join(f"{cut} {n}/{shown_by_cut[cut]}" for cut, n in sorted(by_cut.items())),
    ]
    whole = [c for c in cohorts if c.cut == "all" and shows(c)]
    if whole:
        lines.append(f"  cut 'all' cohorts showing figures ({len(whole)}), largest first:")
        for c in sorted(whole, key=lambda c: -(c.started.count or 0))[:8]:
            name = synthetic.PRIMARY[c.indication].value
            figures = next((i for i in c.instruments if i.instrument == name), None)
            result = (
                "no result"
                if figures is None
                else f"{name} with a result {_cell(figures.with_result.count)}, responded "
                f"{_cell(figures.responded.count)}, remitted {_cell(figures.remitted.count)}"
            )
            lines.append(
                f"    {c.site} {c.indication.value} {c.route.value} {c.period}: courses {_cell(c.courses.count)}, "
                f"started {_cell(c.started.count)}, completed {_cell(c.completed.count)}, dropped out "
                f"{_cell(c.dropped_out.count)}; {result}"
            )
    return lines


# ------------------------------------------------------------------------------------------ the run


def _sites(options: Options, run_id: str) -> list[str]:
    names = synthetic.site_names(options.sites)
    # On a broker that was given, fresh topics and consumer groups: sites of this run only.
    return names if options.bootstrap is None else [f"{name}-{run_id}" for name in names]


async def run(
    options: Options,
    infra: Infrastructure,
    run_id: str,
    events: list[SyntheticEvent],
    sites: list[str],
    found: Figures,
) -> None:
    n = len(events)
    print(f"kafka:    {infra.kafka_note}")
    print(f"database: {infra.database_note}; each site's outcomes and the network get a fresh database", flush=True)
    made_topics: list[str] = []
    made_databases: list[str] = []
    try:
        # --- 2. publishing
        warm = wire_records(events, lambda topic: f"bench.{run_id}.warm.{topic}")
        made_topics += sorted({r.topic for r in warm})
        warmed = await run_baseline(infra.bootstrap, warm)
        print(f"warm-up:  one baseline pass, not counted ({_rate(n, warmed.elapsed)})", flush=True)
        records = wire_records(events, lambda topic: f"bench.{run_id}.base.{topic}")
        made_topics += sorted({r.topic for r in records})
        baseline = await run_baseline(infra.bootstrap, records)
        site_topics = sorted({e.topic for e in events})
        made_topics += site_topics + synthetic.dead_letter_topics(sites)
        started = time.perf_counter()
        await synthetic.publish(events, infra.bootstrap, partitions=PARTITIONS)
        publishing = time.perf_counter() - started
        counts = await synthetic.record_counts(infra.bootstrap, site_topics)
        if counts != dict(Counter(e.topic for e in events)):
            raise RuntimeError(f"the topics do not hold what was published: {counts}")
        value_bytes = sum(len(r.value) for r in records)
        print()
        print(f"2. publishing {n:,} events ({value_bytes / n:,.0f} B a value on average) to {len(site_topics)} topics:")
        print(
            f"  baseline  {_rate(n, baseline.elapsed):>12}  {baseline.elapsed:6.2f} s  plain idempotent "
            f"AIOKafkaProducer (topics {baseline.topics:.2f} s, start {baseline.start:.2f} s, "
            f"sends acked {baseline.send:.2f} s "
            f"= {_rate(n, baseline.send)}, stop {baseline.stop:.2f} s)"
        )
        print(
            f"  publish() {_rate(n, publishing):>12}  {publishing:6.2f} s  deploy.synthetic.publish "
            f"(envelopes encoded, batches of 2000 awaited)"
        )
        print(f"  ratio     {baseline.elapsed / publishing:12.3f}            publish() rate / baseline rate")
        print(f"  checked: every topic's end offsets equal the events published to it ({len(site_topics)} topics)")

        # --- 3. the services
        var_dir = infra.workdir / f"var-{run_id}"
        site_urls: dict[str, str] = {}
        for site in sites:
            url = await asyncio.to_thread(infra.fresh_database, f"syn_{run_id}_{site.replace('-', '_')}_outcomes")
            made_databases.append(url)
            site_urls[site] = url
        network_url = await asyncio.to_thread(infra.fresh_database, f"syn_{run_id}_network_outcomes")
        made_databases.append(network_url)
        services = Services(options, infra, events, site_urls, network_url, var_dir)
        print()
        print(
            f"3. the outcomes service: {len(sites)} site role(s) ({', '.join(sites)}) and the network role, in this "
            f"process and event loop; beat every {options.publish_interval:g} s",
            flush=True,
        )
        async with services.started() as network_client:
            await services.wait_until_the_network_holds_everything()
            for site_run in services.runs:
                await services.time_one_beat(site_run)
            print_services(services, baseline, n)

            # --- 4. the network's figures
            headers = {
                "Authorization": "Bearer "
                + mint_dev_token(services.network_settings.dev_key_dir, site="network", roles=["network_admin"])
            }
            started = time.perf_counter()
            figures = await read_network(network_client, headers, sites)
            reading = time.perf_counter() - started
            print_network(figures, services.runs, reading, found)
    finally:
        await asyncio.gather(
            *(asyncio.to_thread(infra.drop_database, url) for url in made_databases), return_exceptions=True
        )
        if not infra.owns_broker and made_topics:
            await delete_topics(infra, made_topics)


def print_services(services: Services, baseline: BaselineResult, events: int) -> None:
    baseline_rate = events / baseline.elapsed
    print(f"  services up (migrations, lifespans) at {services.up_at:.2f} s")
    for r in services.runs:
        assert r.assigned_at is not None and r.consumed_at is not None and r.network_at is not None
        consuming = r.consumed_at - r.assigned_at
        rate = r.expected.events / consuming if consuming > 0 else 0.0
        print(
            f"  {r.site}: {r.expected.events:,} events ({r.expected.handled:,} of types outcomes handles); consumer "
            f"assigned at {r.assigned_at:.2f} s, all taken in at {r.consumed_at:.2f} s: {consuming:.2f} s, "
            f"{_rate(r.expected.events, consuming)} (ratio to the publish baseline {rate / baseline_rate:.3f})"
        )
        tables = ", ".join(f"{t.__name__} {v:,}" for t, v in r.expected.tables.items())
        print(f"    tables equal the events: {tables}; {len(r.expected.final_status):,} courses in their final status")
        beats = [b for b in services.beats if b.site == r.site]
        during = [b.seconds for b in beats if b.started < r.consumed_at]
        if during:
            print(
                f"    beats while consuming: {len(during)} (took {min(during):.2f}..{max(during):.2f} s; "
                f"{sum(during):.2f} s of the event loop)"
            )
        full = r.first_full_beat
        assert full is not None and full.report is not None
        print(
            f"    first beat that saw everything: {full.started:.2f}..{full.ended:.2f} s ({full.seconds:.2f} s): "
            f"{full.report.model_dump()}"
        )
        print(
            f"    network holds every cohort {r.site} published at {r.network_at:.2f} s "
            f"({r.network_at - r.consumed_at:.2f} s after the last event was taken in)"
        )
        timed = r.timed_beat
        assert timed is not None and timed.report is not None
        print(f"    one beat timed by itself (review_site): {timed.seconds:.2f} s, {timed.report!r}")
    last = max(r.network_at or 0.0 for r in services.runs)
    first_assigned = min(r.assigned_at or 0.0 for r in services.runs)
    last_consumed = max(r.consumed_at or 0.0 for r in services.runs)
    print(
        f"  all sites: {events:,} events taken in {last_consumed - first_assigned:.2f} s from the first assignment "
        f"({_rate(events, last_consumed - first_assigned)}, ratio to the publish baseline "
        f"{events / (last_consumed - first_assigned) / baseline_rate:.3f}); the network holds everything at "
        f"{last:.2f} s"
    )
    dead = sum(c.dead_lettered_total for c in services.network.consumers)
    print(f"  dead letters: sites {sum(r.consumer.dead_lettered_total for r in services.runs)}, network {dead}")


def print_network(figures: NetworkFigures, runs: Sequence[SiteRun], seconds: float, found: Figures) -> None:
    print()
    print(
        f"4. the network's figures (GET /cohort-outcomes/totals, cut=all, as network_admin; "
        f"{3 + len(figures.by_site) + len(figures.by_indication) + len(figures.by_route)} requests in {seconds:.2f} s)"
    )
    print("  (a sum over cells of which some are suppressed is the shown part only, '>='; rates only when complete)")
    for line in totals_lines("all sites", figures.overall):
        print(line)
    for site, t in figures.by_site.items():
        for line in totals_lines(f"site {site}", t):
            print(line)
    print(
        f"  for comparison, from the generated events (deploy.synthetic.figures, every course, no suppression): "
        f"{found.with_result} courses with a primary-instrument result, responded "
        f"{found.share(found.responders) * 100:.1f} %, remitted {found.share(found.remitters) * 100:.1f} %; "
        f"dropped out {found.dropped_out} of {found.dosed} dosed"
    )
    print("  by indication (its primary instrument):")
    for name, t in figures.by_indication.items():
        print(short_line(name, t, synthetic.PRIMARY[Indication(name)].value))
    print("  by route (PHQ-9):")
    for name, t in figures.by_route.items():
        print(short_line(name, t, "phq9"))
    print("  cohorts:")
    for line in cohort_lines(figures.cohorts, runs):
        print(line)


def benchmark(argv: Sequence[str] | None = None) -> None:
    """Run it as the command line would and print its figures (a test may check that it ran, never how fast)."""
    options = parse_args(argv)
    run_started = time.perf_counter()
    run_id = uuid.uuid4().hex[:8]
    sites = _sites(options, run_id)
    print(
        f"synthetic cohort: {options.patients} patients at {len(sites)} site(s) ({', '.join(sites)}), "
        f"seed {options.seed}, end {synthetic.DEFAULT_END}"
    )
    # 1. Generation: pure, before any broker or database is started (nothing else on the machine's cores from us).
    started = time.perf_counter()
    events = synthetic.cohort(options.patients, sites, options.seed)
    generation = time.perf_counter() - started
    started = time.perf_counter()
    found: Figures = synthetic.figures(events)
    summarising = time.perf_counter() - started
    print()
    print(
        f"1. generation: {len(events):,} events in {generation:.2f} s ({_rate(len(events), generation)}, "
        f"{options.patients / generation:,.0f} patients/s); figures() over them {summarising:.2f} s"
    )
    for line in found.lines():
        print(f"  {line}")
    print(
        f"  response/remission shares from the generated events (primary instrument, {found.with_result} courses "
        f"with a result): responded {found.share(found.responders) * 100:.1f} %, "
        f"remitted {found.share(found.remitters) * 100:.1f} %"
    )
    print(flush=True)
    where = InfrastructureOptions(
        events=len(events), database=options.database, bootstrap=options.bootstrap, rounds=1, transaction_size=1
    )
    with infrastructure(where) as infra:
        asyncio.run(run(options, infra, run_id, events, sites, found))
    print()
    print(f"whole run: {time.perf_counter() - run_started:.1f} s (broker and database start-up included)")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # aiokafka warns about metadata of topics made a moment ago; ours are made on purpose right before use.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(
        lambda record: "GroupCoordinatorNotAvailable" not in record.getMessage()
    )
    try:
        benchmark(argv)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
